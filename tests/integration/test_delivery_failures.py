#!/usr/bin/env python3
"""Delivery failures through the whole broker: the real `ringcast serve` with Trigger manifests
and worker processes, real subscribers on loopback (http.server, a raw-socket subscriber that
misbehaves at the byte level, `ringcast sink` processes). Status classes exactly as
CONTRACTS.md, connection resets / garbage / silent closes / lying Content-Length, a subscriber
down for a while, dead-letter contents, kill -9 of a worker under load, SIGHUP while events
flow. Every wait is bounded; every count is exact."""

import base64
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import children, Broker as _Broker, Conn, Runner, check, eq  # noqa: E402
from rc_sink import Sink as _Sink  # noqa: E402
from subscriber import RawSubscriber, Subscriber, b64, http_answer  # noqa: E402

# Limits that fit a 64 KiB ring (records of 16 KiB, batches of 32 KiB: docs/config.md).
SMALL_LIMITS = ("  limits: {maxEventBytes: 8Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki,"
                " maxBatchEvents: 6}\n")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def no_sanitizer_report(what, text):
    for mark in SANITIZER_MARKS:
        check(mark not in text, "%s: sanitizer report:\n%s" % (what, text[-4000:]))


class Broker(_Broker):
    """rc_harness.Broker that, when the test body passed, also checks the graceful stop (exit
    code 0) and that no process of the broker (supervisor, workers) printed a sanitizer
    report."""

    def log(self):
        """The log as text; bytes that are not UTF-8 show as U+FFFD instead of raising."""
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def __exit__(self, exc_type, *rest):
        rc = self.stop()
        log = self.log()
        super().__exit__(exc_type, *rest)
        if exc_type is None:
            no_sanitizer_report("ringcast serve", log)
            eq(rc, 0, "ringcast serve exit code (log: %s)" % log[-2000:])


class Sink(_Sink):
    """rc_sink.Sink with the same checks as Broker."""

    def __exit__(self, exc_type, *rest):
        rc = self.stop()
        err = self.errors()
        super().__exit__(exc_type, *rest)
        if exc_type is None:
            no_sanitizer_report("ringcast sink", err)
            eq(rc, 0, "ringcast sink exit code (stderr: %s)" % err[-2000:])


HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: %d
  lag: {policy: block}  # subscribers that are down hold the ring on purpose
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def trigger(name, uri, filt="", delivery=()):
    doc = "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n" % name
    doc += "spec:\n  broker: default\n  subscriber: {uri: %s}\n" % uri
    doc += filt
    if delivery:
        doc += "  delivery:\n" + "".join("    %s\n" % line for line in delivery)
    return doc


def config(*triggers, workers=1):
    return HEAD % workers + "".join(triggers)


def fast(retry, dls=None, timeout="PT2S"):
    """A delivery block with short waits: `retry` retries 50 ms apart (linear, capped)."""
    d = ["retry: %d" % retry, "backoffPolicy: linear", "backoffDelay: PT0.05S",
         "backoffMax: PT0.05S", "timeout: %s" % timeout]
    if dls:
        d.append("deadLetterSink: {uri: %s}" % dls)
    return d


def ce_headers(i, etype="a", extra=None):
    h = {"ce-id": str(i), "ce-source": "/test", "ce-type": etype, "ce-specversion": "1.0",
         "Content-Type": "text/plain"}
    h.update(extra or {})
    return h


def publish(b, i, etype="a", headers=None, body=b"data"):
    r = b.request("POST", "/default/default", ce_headers(i, etype, headers), body)
    eq(r.status, 202, "publish status (%r)" % r.body)


def metric(b, name, trig):
    key = '%s{namespace="default",trigger="%s",broker="default"}' % (name, trig)
    return b.metrics().get(key)


def wait_metric(b, name, trig, value, timeout=10.0):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = metric(b, name, trig)
        if v == value:
            return
        time.sleep(0.05)
    raise AssertionError("%s{%s} = %r, expected %r" % (name, trig, v, value))


def counters(b, trig):
    """delivered, retried, failed, dead_lettered, dropped of one trigger."""
    m = b.metrics()
    return tuple(m.get('ringcast_trigger_%s_total{namespace="default",trigger="%s",'
                       'broker="default"}' % (n, trig))
                 for n in ("delivered", "retried", "failed", "dead_lettered", "dropped"))


def wait_counters(b, trig, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = counters(b, trig)
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError("%s: (delivered, retried, failed, dead_lettered, dropped) = %r, "
                         "expected %r" % (trig, got, want))


def worker_pids(b):
    return children(b.proc.pid)


def read_proc(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return "(%s)" % e.strerror


def proc_fields(path, names):
    """Lines of a /proc status file whose key is in `names`, as "Key value" pairs."""
    out = []
    for line in read_proc(path).splitlines():
        key, _, value = line.partition(":")
        if key in names:
            out.append("%s %s" % (key, value.strip()))
    return " ".join(out)


def diagnose(pid):
    """What a process that stopped making progress is doing: its state and pending signals, per
    thread its state, wait channel, blocked and pending signals, children (a child is listed
    under the thread that forked it) and kernel stack, then the threads' user stacks (gdb, when
    installed); the same for each child."""
    base = "/proc/%d/task" % pid
    try:
        tids = sorted(os.listdir(base), key=int)
    except OSError as e:
        return "process %d: %s" % (pid, e.strerror)
    out = ["process %d: %s" % (pid, proc_fields("/proc/%d/status" % pid,
                                                ("State", "ShdPnd", "SigIgn", "SigCgt")))]
    for tid in tids:
        t = "%s/%s" % (base, tid)
        out.append("  task %s (%s) %s wchan %s children [%s]" % (
            tid, read_proc(t + "/comm"), proc_fields(t + "/status", ("State", "SigPnd", "SigBlk")),
            read_proc(t + "/wchan"), read_proc(t + "/children")))
        out += ["      " + ln for ln in read_proc(t + "/stack").splitlines()]
    if shutil.which("gdb") and "zombie" not in out[0]:
        try:
            r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                                "thread apply all bt"], capture_output=True, text=True,
                               timeout=60)
            out += [ln for ln in r.stdout.splitlines() if ln.startswith(("#", "Thread "))]
        except (OSError, subprocess.SubprocessError) as e:
            out.append("gdb: %s" % e)
    for tid in tids:
        for child in read_proc("%s/%s/children" % (base, tid)).split():
            if child.isdigit():
                out.append(diagnose(int(child)))
    return "\n".join(out)


def diagnose_broker(b):
    """diagnose() of `ringcast serve`, whether its main loop (which serves the admin port and
    runs the supervisor) still answers, and its exit status if it is gone."""
    out = [diagnose(b.proc.pid)]
    try:
        c = Conn(b.host, b.admin_port, timeout=2.0)
        try:
            c.send_request("GET", "/metrics")
            r = c.response()
            restarts = [ln for ln in r.body.decode("utf-8", "replace").splitlines()
                        if ln.startswith(("ringcast_worker_restarts_total", "ringcast_worker_up",
                                          "ringcast_worker_restart_wait", "ringcast_supervisor"))]
            out.append("main loop answers /metrics: %s" % restarts)
        finally:
            c.close()
    except (OSError, EOFError, ValueError) as e:
        out.append("main loop does not answer /metrics within 2 s: %r" % e)
    rc = b.proc.poll()
    out.append("serve still running" if rc is None else "serve exited: returncode %d" % rc)
    return "\n".join(out)


def status_seq(*statuses, body=b"", headers=None):
    """Answers the i-th request with statuses[i] (the last one repeats)."""
    def f(i, _req):
        return statuses[min(i, len(statuses) - 1)], headers or {}, body, 0.0
    return f


def by_path(reqs):
    out = {}
    for r in reqs:
        out.setdefault(r.path, []).append(r)
    return out


def quiet(seconds):
    """Lets the broker run a little longer so that an extra (wrong) attempt would show."""
    time.sleep(seconds)


# ---- 1. status classes ----------------------------------------------------------------------

FAIL_AT_ONCE = (301, 302, 307, 401, 403, 405, 410, 413, 418, 422)
RETRIED_4XX = (404, 408, 409)
OTHER_2XX = (201, 203, 204, 206, 299)


def test_fail_at_once_statuses():
    """3xx, 401, 403 and other 4xx: one attempt, then straight to the dead-letter sink with
    knativeerrorcode = that status and knativeerrordata = base64 of the body."""
    subs = [Subscriber(status_seq(code, body=b"because %d" % code,
                                  headers={"Location": "http://127.0.0.1:1/elsewhere"}))
            for code in FAIL_AT_ONCE]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger("s%d" % code, s.url, delivery=fast(3, "%s/dl/%d" % (dlq.url,
                                                                                     code)))
                           for code, s in zip(FAIL_AT_ONCE, subs)], workers=2)
            with Broker(cfg) as b:
                pids = worker_pids(b)
                publish(b, 1, body=b"payload")
                dlq.wait_for(len(FAIL_AT_ONCE))
                for code in FAIL_AT_ONCE:
                    wait_counters(b, "s%d" % code, (0, 0, 1, 1, 0))
                quiet(0.3)
                got = by_path(dlq.requests)
                eq(sorted(got), sorted("/dl/%d" % c for c in FAIL_AT_ONCE), "dead-letter paths")
                for code, s in zip(FAIL_AT_ONCE, subs):
                    eq(s.count(), 1, "%d: attempts (no retry)" % code)
                    d = got["/dl/%d" % code]
                    eq(len(d), 1, "%d: dead-lettered once" % code)
                    eq(d[0].ce("knativeerrorcode"), str(code), "%d: knativeerrorcode" % code)
                    eq(d[0].ce("knativeerrordest"), s.url, "%d: knativeerrordest" % code)
                    eq(d[0].ce("knativeerrordata"), b64(b"because %d" % code),
                       "%d: knativeerrordata" % code)
                    eq((d[0].ce("id"), d[0].body), ("1", b"payload"), "%d: the event" % code)
                eq(worker_pids(b), pids, "workers")
    finally:
        for s in subs:
            s.close()


def test_sink_redirects_fail_at_once():
    """The same with `ringcast sink --status` as the subscriber (301, 302, 304, 307): one
    request each, dead-lettered with that code; the 304 has no body, so no knativeerrordata."""
    codes = ("301", "302", "304", "307")
    sinks = [Sink("--status", c) for c in codes]
    try:
        with Sink() as dls:
            cfg = config(*[trigger("r" + c, s.url, delivery=fast(3, dls.url))
                           for c, s in zip(codes, sinks)], workers=2)
            with Broker(cfg) as b:
                publish(b, "redir", body=b"body")
                got = dls.wait_events(len(codes))
                for c in codes:
                    wait_counters(b, "r" + c, (0, 0, 1, 1, 0))
                quiet(0.3)
                by_code = {str(e["knativeerrorcode"]): e for e in dls.events()}
                eq(sorted(by_code), sorted(codes), "dead letters: %r" % got)
                for c, s in zip(codes, sinks):
                    eq([l.rsplit(" ", 1)[1] for l in s.log_lines()], [c], "%s: one answer" % c)
                    e = by_code[c]
                    eq((e["id"], e["knativeerrordest"]), ("redir", s.url), "%s: event, dest" % c)
                    want = None if c == "304" else b64(
                        b'{"error": "ringcast sink told to fail"}\n')
                    eq(e.get("knativeerrordata"), want, "%s: knativeerrordata" % c)
    finally:
        for s in sinks:
            s.__exit__(None, None, None)


def test_status_600_and_1xx_final_fail_at_once():
    """Codes of 600 and above fail at once (CONTRACTS: 'everything else'); a lone 1xx interim
    answer followed by a close is a transport error, retried."""
    with RawSubscriber(lambda i, r: (http_answer(600, b"six"), "close")) as s600, \
            RawSubscriber(lambda i, r: (b"HTTP/1.1 100 Continue\r\n\r\n", "close")) as s1xx, \
            Subscriber() as dlq:
        cfg = config(trigger("s600", s600.url, delivery=fast(3, dlq.url + "/600")),
                     trigger("s1xx", s1xx.url, delivery=fast(2, dlq.url + "/1xx")))
        with Broker(cfg) as b:
            publish(b, 1)
            wait_counters(b, "s600", (0, 0, 1, 1, 0))
            wait_counters(b, "s1xx", (0, 2, 1, 1, 0))
            quiet(0.3)
            eq(s600.count(), 1, "600: not retried")
            eq(s1xx.count(), 3, "1xx then close: retried")
            got = by_path(dlq.requests)
            eq(got["/600"][0].ce("knativeerrorcode"), "600", "600 code")
            eq(got["/600"][0].ce("knativeerrordata"), b64(b"six"), "600 data")
            eq(got["/1xx"][0].ce("knativeerrorcode"), "500", "transport error code")


def test_retried_4xx_then_dead_letter():
    """404, 408 and 409 are retried: the subscriber sees 1 + retry attempts, then the event goes
    to the dead-letter sink with the last status."""
    retry = 2
    subs = [Subscriber(status_seq(code, body=b"nope")) for code in RETRIED_4XX]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger("s%d" % code, s.url, delivery=fast(retry, "%s/dl/%d" % (
                dlq.url, code))) for code, s in zip(RETRIED_4XX, subs)], workers=2)
            with Broker(cfg) as b:
                publish(b, 5, body=b"x")
                for code in RETRIED_4XX:
                    wait_counters(b, "s%d" % code, (0, retry, 1, 1, 0))
                quiet(0.3)
                got = by_path(dlq.requests)
                for code, s in zip(RETRIED_4XX, subs):
                    eq(s.count(), 1 + retry, "%d: attempts" % code)
                    eq(s.ids(), ["5"] * (1 + retry), "%d: same event each time" % code)
                    d = got["/dl/%d" % code]
                    eq(len(d), 1, "%d: dead-lettered once" % code)
                    eq(d[0].ce("knativeerrorcode"), str(code), "%d: code" % code)
                    eq(d[0].ce("knativeerrordata"), b64(b"nope"), "%d: data" % code)
    finally:
        for s in subs:
            s.close()


def test_retried_4xx_then_success():
    """A 404 and a 409 before a 200: retried, delivered, nothing dead-lettered."""
    with Subscriber(status_seq(404, 409, 200)) as s, Subscriber() as dlq:
        cfg = config(trigger("t", s.url, delivery=fast(5, dlq.url)))
        with Broker(cfg) as b:
            publish(b, 1)
            wait_counters(b, "t", (1, 2, 0, 0, 0))
            quiet(0.3)
            eq(s.count(), 3, "attempts")
            eq(dlq.count(), 0, "nothing dead-lettered")


def test_other_2xx_succeed():
    """201, 203, 204, 206, 299 succeed: one attempt, delivered, no retry, no dead letter."""
    subs = [Subscriber(status_seq(code)) for code in OTHER_2XX]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger("s%d" % code, s.url, delivery=fast(3, dlq.url))
                           for code, s in zip(OTHER_2XX, subs)], workers=2)
            with Broker(cfg) as b:
                for i in range(3):
                    publish(b, i)
                for code in OTHER_2XX:
                    wait_counters(b, "s%d" % code, (3, 0, 0, 0, 0))
                quiet(0.3)
                for code, s in zip(OTHER_2XX, subs):
                    eq(sorted(s.ids()), ["0", "1", "2"], "%d: one attempt per event" % code)
                eq(dlq.count(), 0, "nothing dead-lettered")
    finally:
        for s in subs:
            s.close()


def test_retry_after_on_503_and_its_caps():
    """Retry-After is honoured on 503 (as on 429), capped by retryAfterMax, ignored with
    retryAfterMax PT0S and on other statuses (500): the wait before the retry shows it."""
    def after(code, value):
        return status_seq(code, 200, headers={"Retry-After": value})
    cases = [("s503", after(503, "1"), [], (0.9, 1.6)),
             ("capped", after(503, "30"), ["retryAfterMax: PT0.3S"], (0.25, 0.9)),
             ("ignored", after(503, "30"), ["retryAfterMax: PT0S"], (0.0, 0.5)),
             ("on500", after(500, "30"), [], (0.0, 0.5)),
             ("httpdate", after(503, "Sun, 06 Nov 1994 08:49:37 GMT"), [], (0.0, 0.5))]
    subs = [Subscriber(f) for _, f, _, _ in cases]
    try:
        cfg = config(*[trigger(name, sub.url, delivery=["retry: 2", "backoffDelay: PT0.01S"]
                               + extra) for (name, _, extra, _), sub in zip(cases, subs)],
                     workers=2)
        with Broker(cfg) as b:
            publish(b, 1)
            for (name, _, _, (lo, hi)), sub in zip(cases, subs):
                reqs = sub.wait_for(2, timeout=5)
                eq(len(reqs), 2, "%s: attempts" % name)
                gap = reqs[1].t - reqs[0].t
                check(lo <= gap < hi, "%s: wait %.3f s not in [%s, %s)" % (name, gap, lo, hi))
                wait_counters(b, name, (1, 1, 0, 0, 0))
    finally:
        for sub in subs:
            sub.close()


# ---- 2. subscribers that misbehave on the wire ----------------------------------------------

GOOD = (http_answer(200), "close")


def first_n(n, bad):
    """`bad` for the first n requests, then a good answer."""
    return lambda i, _r: bad if i < n else GOOD


def test_broken_connections_retried_then_delivered():
    """Resets mid status line and mid headers, garbage, a close without an answer, a body
    shorter than Content-Length: each attempt fails as a transport error, is retried, and the
    event is delivered once the subscriber behaves. The workers never crash."""
    cases = [
        ("rststatus", (b"HTTP/1.1 20", "rst")),
        ("rstheaders", (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConte", "rst")),
        ("rstbody", (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "rst")),
        ("garbage", (b"\x00\x01garbage that is not HTTP\r\n\r\n", "close")),
        ("badstatus", (b"HTTP/1.1 2oo OK\r\nContent-Length: 0\r\n\r\n", "close")),
        ("silent", (b"", "close")),
        ("silentrst", (b"", "rst")),
        ("shortbody", (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", "close")),
        ("badlength", (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "close")),
    ]
    subs = [RawSubscriber(first_n(2, bad)) for _, bad in cases]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger(name, s.url, delivery=fast(4, dlq.url))
                           for (name, _), s in zip(cases, subs)], workers=2)
            with Broker(cfg) as b:
                pids = worker_pids(b)
                publish(b, 1, body=b"hello")
                for name, _ in cases:
                    wait_counters(b, name, (1, 2, 0, 0, 0))
                quiet(0.3)
                for (name, _), s in zip(cases, subs):
                    eq(s.count(), 3, "%s: two broken attempts, then delivered" % name)
                    eq([r.body for r in s.requests], [b"hello"] * 3, "%s: same body" % name)
                eq(dlq.count(), 0, "nothing dead-lettered")
                eq(worker_pids(b), pids, "no worker restarted")
                eq(b.metrics().get("ringcast_worker_restarts_total"), 0.0, "restarts")
    finally:
        for s in subs:
            s.close()


def test_broken_connections_exhausted_to_dead_letter():
    """The same misbehaviours on every attempt: 1 + retry attempts, then the dead-letter sink
    with knativeerrorcode 500 and no knativeerrordata (no response body)."""
    cases = [
        ("rst", (b"HTTP/1.1 200 OK\r\nContent-Le", "rst")),
        ("garbage", (b"SSH-2.0-OpenSSH_9.6\r\n", "close")),
        ("silent", (b"", "close")),
        ("shortbody", (b"HTTP/1.1 503 X\r\nContent-Length: 50\r\n\r\nshort", "close")),
    ]
    retry = 2
    subs = [RawSubscriber(lambda i, r, bad=bad: bad) for _, bad in cases]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger(name, s.url, delivery=fast(retry, "%s/%s" % (dlq.url, name)))
                           for (name, _), s in zip(cases, subs)], workers=2)
            with Broker(cfg) as b:
                pids = worker_pids(b)
                publish(b, 1, body=b"hello")
                for name, _ in cases:
                    wait_counters(b, name, (0, retry, 1, 1, 0))
                quiet(0.3)
                got = by_path(dlq.requests)
                for (name, _), s in zip(cases, subs):
                    eq(s.count(), 1 + retry, "%s: attempts" % name)
                    d = got["/" + name]
                    eq(len(d), 1, "%s: dead-lettered once" % name)
                    eq(d[0].ce("knativeerrorcode"), "500", "%s: code" % name)
                    eq(d[0].ce("knativeerrordest"), s.url, "%s: dest" % name)
                    eq(d[0].ce("knativeerrordata"), None, "%s: no data" % name)
                    eq(d[0].body, b"hello", "%s: data" % name)
                eq(worker_pids(b), pids, "no worker restarted")
                eq(b.metrics().get("ringcast_worker_restarts_total"), 0.0, "restarts")
    finally:
        for s in subs:
            s.close()


def test_bytes_after_declared_end_still_succeed():
    """A body longer than its Content-Length: the response (200) stands, one attempt."""
    with RawSubscriber(lambda i, r: (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
                                     "close")) as s:
        cfg = config(trigger("t", s.url, delivery=fast(3)))
        with Broker(cfg) as b:
            for i in range(3):
                publish(b, i)
            wait_counters(b, "t", (3, 0, 0, 0, 0))
            quiet(0.3)
            eq(sorted(s.ids()), ["0", "1", "2"], "one attempt each")


def test_response_framing():
    """Answers framed every legal way, and some too big: chunked and close-delimited bodies
    reach knativeerrordata de-framed; a 1xx interim answer before the final one is skipped; a
    3 MB error body is read and dropped (first 768 bytes kept); headers larger than the
    client's limit are a transport error (retried, code 500)."""
    big = bytes((i * 13) & 0xff for i in range(3 << 20))
    cases = [
        ("chunked", lambda i, r: (b"HTTP/1.1 400 X\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "close"),
         0, (0, 0, 1, 1, 0), "400", b64(b"hello world")),
        ("closedelim", lambda i, r: (b"HTTP/1.1 400 X\r\n\r\nuntil the close", "close"),
         0, (0, 0, 1, 1, 0), "400", b64(b"until the close")),
        ("interim", lambda i, r: (b"HTTP/1.1 100 Continue\r\n\r\n" + http_answer(403, b"no"),
                                  "close"), 0, (0, 0, 1, 1, 0), "403", b64(b"no")),
        ("bigbody", lambda i, r: (http_answer(500, big), "close"),
         1, (0, 1, 1, 1, 0), "500", base64.b64encode(big[:768]).decode()),
        ("bighead", lambda i, r: (b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * (256 << 10)
                                  + b"\r\nContent-Length: 0\r\n\r\n", "close"),
         1, (0, 1, 1, 1, 0), "500", None),
    ]
    subs = [RawSubscriber(f) for _, f, _, _, _, _ in cases]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger(c[0], s.url, delivery=fast(c[2], "%s/%s" % (dlq.url, c[0])))
                           for c, s in zip(cases, subs)], workers=2)
            with Broker(cfg) as b:
                pids = worker_pids(b)
                publish(b, 1)
                for name, _, _, want, _, _ in cases:
                    wait_counters(b, name, want)
                quiet(0.3)
                got = by_path(dlq.requests)
                for (name, _, retry, _, code, data), sub in zip(cases, subs):
                    eq(sub.count(), 1 + retry, "%s: attempts" % name)
                    d = got["/" + name]
                    eq(len(d), 1, "%s: dead-lettered once" % name)
                    eq(d[0].ce("knativeerrorcode"), code, "%s: code" % name)
                    eq(d[0].ce("knativeerrordata"), data, "%s: data" % name)
                eq(worker_pids(b), pids, "no worker restarted")
    finally:
        for s in subs:
            s.close()


def test_slow_answers_and_timeout():
    """An answer dripped over 0.6 s inside a 2 s timeout succeeds at once; one dripped over
    1.5 s with a 0.5 s timeout times out (retried, then dead-lettered with code 500)."""
    answer = http_answer(200, b"fine")
    drip = [x for k in range(0, len(answer), 6) for x in (answer[k:k + 6], 0.6 / 12)]
    slow = [x for k in range(0, len(answer), 6) for x in (answer[k:k + 6], 1.5 / 12)]
    with RawSubscriber(lambda i, r: (drip, "close")) as ok_sub, \
            RawSubscriber(lambda i, r: (slow, "close")) as late, Subscriber() as dlq:
        cfg = config(trigger("drip", ok_sub.url, delivery=fast(2)),
                     trigger("late", late.url, delivery=fast(1, dlq.url, "PT0.5S")),
                     workers=2)
        with Broker(cfg) as b:
            publish(b, 1)
            wait_counters(b, "drip", (1, 0, 0, 0, 0))
            wait_counters(b, "late", (0, 1, 1, 1, 0))
            eq(ok_sub.count(), 1, "drip: one attempt")
            eq(late.count(), 2, "late: two attempts")
            eq(dlq.wait_for(1)[0].ce("knativeerrorcode"), "500", "timeout code")


def test_keepalive_closed_by_subscriber_while_idle():
    """The subscriber keeps connections alive but closes each one 0.1 s after an answer: events
    0.3 s apart each reach it exactly once, with no retry (a stale pooled connection is never
    an attempt)."""
    with RawSubscriber(lambda i, r: (http_answer(200, keep=True), ("keep", 0.1))) as s:
        cfg = config(trigger("t", s.url, delivery=fast(3)))
        with Broker(cfg) as b:
            for i in range(5):
                publish(b, i)
                time.sleep(0.3)
            wait_counters(b, "t", (5, 0, 0, 0, 0))
            quiet(0.2)
            eq(s.ids(), ["0", "1", "2", "3", "4"], "each event once")


def test_reused_connection_closed_without_answer():
    """The subscriber reads the second request on a kept-alive connection and closes without
    answering. The client sends it again once on a fresh connection (docs/delivery.md, stale
    keep-alive): the subscriber sees that event twice, the broker counts no retry. On a fresh
    connection the same close is a failed attempt (retried)."""
    def f(i, req):
        if req.conn_index == 1:
            return b"", "close"
        return http_answer(200, keep=True), ("keep", 5.0)
    with RawSubscriber(f) as s:
        cfg = config(trigger("t", s.url, delivery=fast(3)))
        with Broker(cfg) as b:
            publish(b, 1)
            wait_counters(b, "t", (1, 0, 0, 0, 0))
            publish(b, 2)
            wait_counters(b, "t", (2, 0, 0, 0, 0))
            quiet(0.3)
            eq(s.ids(), ["1", "2", "2"], "event 2 sent again on a fresh connection")
            eq([r.conn_index for r in s.requests], [0, 1, 0], "connections")
    with RawSubscriber(lambda i, r: (b"", "close") if i == 0 else GOOD) as s:
        cfg = config(trigger("t", s.url, delivery=fast(3)))
        with Broker(cfg) as b:
            publish(b, 1)
            wait_counters(b, "t", (1, 1, 0, 0, 0))
            quiet(0.3)
            eq(s.ids(), ["1", "1"], "fresh connection: a failed attempt, then a retry")


def test_flaky_subscriber_under_load_counts_exact():
    """300 events, two triggers on two workers, subscribers that break every third request
    (reset mid-headers, garbage, a silent close, in turn). Every request arrives on a fresh
    connection, so the counters must match what the subscribers saw exactly: delivered = 300,
    retried = the broken requests, every id answered 200 exactly once."""
    n = 300
    breaks = [(b"HTTP/1.1 200 OK\r\nConte", "rst"), (b"\x16\x03\x01 not http\r\n\r\n", "close"),
              (b"", "close")]

    def flaky(i, _req):
        return breaks[(i // 3) % 3] if i % 3 == 0 else GOOD
    with RawSubscriber(flaky) as s1, RawSubscriber(flaky) as s2:
        cfg = config(trigger("f1", s1.url, delivery=fast(10)),
                     trigger("f2", s2.url, delivery=fast(10)), workers=2)
        with Broker(cfg) as b:
            pids = worker_pids(b)
            c = Conn(b.host, b.port)
            try:
                for i in range(n):
                    c.send_request("POST", "/default/default", ce_headers("l-%d" % i), b"x")
                    eq(c.response().status, 202, "publish")
            finally:
                c.close()
            for name, sub in (("f1", s1), ("f2", s2)):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and metric(
                        b, "ringcast_trigger_delivered_total", name) != n:
                    time.sleep(0.1)
                quiet(0.3)
                reqs = sub.requests
                broken = sum(1 for i in range(len(reqs)) if i % 3 == 0)
                okd = [reqs[i].ce("id") for i in range(len(reqs)) if i % 3 != 0]
                eq(sorted(okd), sorted("l-%d" % i for i in range(n)),
                   "%s: every id answered 200 exactly once" % name)
                eq(counters(b, name), (n, broken, 0, 0, 0), "%s: counters" % name)
            eq(worker_pids(b), pids, "no worker restarted")


def test_many_triggers_each_retried_once():
    """40 triggers on 2 workers, 25 events: the subscriber fails the first attempt of every
    (trigger, event) and accepts the second. Exactly 1000 deliveries and 1000 retries, each
    (trigger, event) answered 200 exactly once."""
    seen, ok = set(), {}
    lock = threading.Lock()

    def f(_i, req):
        k = (req.path, req.ce("id"))
        with lock:
            if k not in seen:
                seen.add(k)
                return 500, {}, b"", 0.0
            ok[k] = ok.get(k, 0) + 1
        return 200, {}, b"", 0.0
    nt, ne = 40, 25
    with Subscriber(f) as s:
        cfg = config(*[trigger("t%d" % k, "%s/t%d" % (s.url, k), delivery=fast(3))
                       for k in range(nt)], workers=2)
        with Broker(cfg) as b:
            c = Conn(b.host, b.port)
            try:
                for i in range(ne):
                    c.send_request("POST", "/default/default", ce_headers("e%d" % i), b"x")
                    eq(c.response().status, 202, "publish")
            finally:
                c.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(ok) < nt * ne:
                time.sleep(0.1)
            quiet(0.3)
            eq(len(ok), nt * ne, "(trigger, event) pairs delivered")
            eq(sorted(set(ok.values())), [1], "each answered 200 once")
            eq(s.count(), 2 * nt * ne, "requests")
            for k in range(nt):
                wait_counters(b, "t%d" % k, (ne, ne, 0, 0, 0))


def test_ring_full_while_subscriber_down():
    """A 64 KiB ring and a subscriber down (503): the trigger's cursor holds the ring, ingress
    answers 429 once it is full. The subscriber comes back: every accepted event is delivered,
    and ingress accepts again."""
    up = [False]
    done = set()

    def f(_i, req):
        if up[0]:
            done.add(req.ce("id"))
            return 200, {}, b"", 0.0
        return 503, {}, b"", 0.0
    body = b"z" * 1024
    with Subscriber(f) as s:
        cfg = config(trigger("t", s.url, delivery=[
            "retry: 100", "backoffPolicy: linear", "backoffDelay: PT0.1S",
            "backoffMax: PT0.2S"]))
        cfg = cfg.replace("  workers: 1\n", "  workers: 1\n  ring: {size: 64Ki}\n" + SMALL_LIMITS)
        with Broker(cfg) as b:
            accepted, refused = [], 0
            for i in range(500):
                r = b.request("POST", "/default/default", ce_headers("f-%d" % i), body)
                if r.status == 202:
                    accepted.append("f-%d" % i)
                else:
                    eq(r.status, 429, "ring full answer (%r)" % r.body)
                    refused += 1
                    if refused >= 5:
                        break
            eq(refused, 5, "ingress answered 429 once the ring was full")
            check(20 <= len(accepted) < 64, "%d events fit" % len(accepted))
            quiet(0.5)
            eq(metric(b, "ringcast_trigger_delivered_total", "t"), 0, "nothing delivered yet")
            up[0] = True
            wait_metric(b, "ringcast_trigger_delivered_total", "t", len(accepted), timeout=15)
            eq(done, set(accepted), "every accepted event delivered")
            publish(b, "after", body=body)
            wait_metric(b, "ringcast_trigger_delivered_total", "t", len(accepted) + 1)
            eq(counters(b, "t")[2:], (0, 0, 0), "nothing failed")


def test_pending_event_survives_other_traffic():
    """A 64 KiB ring; trigger `slow` has one event waiting for retries (subscriber 503) while
    1 KiB events for trigger `fast` flow past it. The slow trigger's cursor stays at its pending
    event, so ingress answers 429 before that event could be overwritten; every accepted fast
    event is delivered; when the slow subscriber comes back it gets its event byte-exact."""
    up = [False]
    got = []

    def slow_sub(_i, req):
        if up[0]:
            got.append((req.ce("id"), req.body))
            return 200, {}, b"", 0.0
        return 503, {}, b"", 0.0
    pending = bytes(range(256)) * 4
    with Subscriber(slow_sub) as slow, Subscriber() as fast_sub:
        retrying = ["retry: 100", "backoffPolicy: linear", "backoffDelay: PT0.1S",
                    "backoffMax: PT0.2S"]
        cfg = config(trigger("slow", slow.url, "  filter: {attributes: {type: slow}}\n",
                             delivery=retrying),
                     trigger("fast", fast_sub.url, "  filter: {attributes: {type: fast}}\n"))
        cfg = cfg.replace("  workers: 1\n", "  workers: 1\n  ring: {size: 64Ki}\n" + SMALL_LIMITS)
        with Broker(cfg) as b:
            publish(b, "pending", "slow", {"Content-Type": "application/octet-stream"}, pending)
            slow.wait_for(2)
            accepted, refused = [], 0
            for i in range(300):
                r = b.request("POST", "/default/default", ce_headers("q-%d" % i, "fast"),
                              b"q" * 1024)
                if r.status == 202:
                    accepted.append("q-%d" % i)
                    fast_sub.wait_for(len(accepted), timeout=5)
                else:
                    eq(r.status, 429, "full ring answer")
                    refused += 1
                    break
            eq(refused, 1, "ingress refuses once the pending event holds the ring")
            check(len(accepted) < 64, "%d events accepted past the pending one" % len(accepted))
            eq(sorted(fast_sub.ids()), sorted(accepted), "every accepted fast event delivered")
            up[0] = True
            wait_metric(b, "ringcast_trigger_delivered_total", "slow", 1, timeout=10)
            eq(got, [("pending", pending)], "the pending event, byte-exact")
            publish(b, "q-after", "fast", body=b"q")
            eq(fast_sub.wait_for(len(accepted) + 1)[-1].ce("id"), "q-after", "ingress again")


# ---- 3. a subscriber down for a while -------------------------------------------------------

def test_subscriber_down_then_back():
    """The sink is stopped, N events are accepted, several retries fail (connection refused),
    the sink comes back on the same port: every event arrives, none is lost or dead-lettered."""
    n = 20
    with Sink() as first:
        port, url = first.port, first.url
    with Subscriber() as dlq:
        # linear 0.1 s steps capped at 0.3 s, 40 retries: about 11 s of retrying per event.
        cfg = config(trigger("t", url, delivery=[
            "retry: 40", "backoffPolicy: linear", "backoffDelay: PT0.1S", "backoffMax: PT0.3S",
            "timeout: PT1S", "deadLetterSink: {uri: %s}" % dlq.url]))
        with Broker(cfg) as b:
            for i in range(n):
                publish(b, "down-%d" % i)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (metric(
                    b, "ringcast_trigger_retried_total", "t") or 0) < 3 * n:
                time.sleep(0.05)
            check(metric(b, "ringcast_trigger_retried_total", "t") >= 3 * n,
                  "several retries per event while the sink is down")
            eq(metric(b, "ringcast_trigger_delivered_total", "t"), 0, "nothing delivered yet")
            with Sink("--listen", "127.0.0.1:%d" % port) as back:
                got = back.wait_events(n, timeout=10)
                wait_metric(b, "ringcast_trigger_delivered_total", "t", n)
                eq({e["id"] for e in got}, {"down-%d" % i for i in range(n)},
                   "every event arrived")
                eq(counters(b, "t")[2:], (0, 0, 0), "nothing failed, dead-lettered, dropped")
                eq(dlq.count(), 0, "dead-letter sink unused")


# ---- 4. dead-letter contents ----------------------------------------------------------------

def test_dead_letter_empty_body_has_no_errordata():
    """An empty response body: knativeerrordata is absent (docs/delivery.md: omitted when the
    body was empty), not an empty string; code and dest are set."""
    with Subscriber(status_seq(400)) as s, Subscriber(status_seq(503, body=b"")) as s503, \
            Subscriber() as dlq:
        cfg = config(trigger("t", s.url + "/in", delivery=fast(1, dlq.url + "/a")),
                     trigger("u", s503.url, delivery=fast(1, dlq.url + "/b")))
        with Broker(cfg) as b:
            publish(b, 1)
            got = by_path(dlq.wait_for(2))
            d = got["/a"][0]
            eq(d.ce("knativeerrordest"), s.url + "/in", "dest is the full subscriber URI")
            eq(d.ce("knativeerrorcode"), "400", "code")
            check("ce-knativeerrordata" not in d.headers, "no knativeerrordata header: %r"
                  % d.headers.get("ce-knativeerrordata"))
            d = got["/b"][0]
            eq(d.ce("knativeerrorcode"), "503", "code after retries")
            check("ce-knativeerrordata" not in d.headers, "no knativeerrordata after retries")


def test_dead_letter_errordata_truncation():
    """knativeerrordata is base64 of the body; the encoded string is at most 1024 characters,
    so at most the first 768 body bytes are kept. Binary bytes survive."""
    body_767 = bytes(range(256)) * 2 + bytes(range(255))        # 767 bytes -> 1024 chars
    body_768 = bytes(range(256)) * 3                            # 768 -> 1024 chars
    body_769 = b"\xff" + body_768                               # 769 -> first 768
    body_big = bytes((i * 7) & 0xff for i in range(5000))       # 5000 -> first 768
    cases = [("b767", body_767), ("b768", body_768), ("b769", body_769), ("big", body_big)]
    subs = [Subscriber(status_seq(400, body=body)) for _, body in cases]
    try:
        with Subscriber() as dlq:
            cfg = config(*[trigger(name, s.url, delivery=fast(0, "%s/%s" % (dlq.url, name)))
                           for (name, _), s in zip(cases, subs)])
            with Broker(cfg) as b:
                publish(b, 1)
                got = by_path(dlq.wait_for(len(cases)))
                for name, body in cases:
                    data = got["/" + name][0].ce("knativeerrordata")
                    eq(data, base64.b64encode(body[:768]).decode(), name)
                    check(len(data) <= 1024, "%s: %d characters" % (name, len(data)))
    finally:
        for s in subs:
            s.close()


def test_dead_letter_keeps_attributes_and_data_exact():
    """The dead-lettered event is the original: every attribute and extension (percent-encoded
    values included) and the data byte for byte, plus the three error extensions; in structured
    mode (format: json) the same holds for the JSON event."""
    data = bytes(range(256)) * 4
    attrs = {"ce-subject": "sub ject/é", "ce-time": "2024-05-06T07:08:09.123Z",
             "ce-dataschema": "http://example.com/schema", "ce-myext": "a b%c\"d",
             "ce-other": "42", "Content-Type": "application/octet-stream"}
    enc = {k: (urllib.parse.quote(v, safe="/:.-+!$&'()*,;=@") if k.startswith("ce-") else v)
           for k, v in attrs.items()}
    with Subscriber(status_seq(422, body=b"rejected")) as s, Subscriber() as dlq:
        cfg = config(trigger("t", s.url, delivery=fast(0, dlq.url)))
        with Broker(cfg) as b:
            publish(b, "orig-1", "my.type", enc, data)
            d = dlq.wait_for(1)[0]
            orig = s.wait_for(1)[0]
            eq(d.body, data, "data byte-exact")
            eq(d.headers.get("content-type"), "application/octet-stream", "datacontenttype")
            want = {k: v for k, v in orig.headers.items() if k.startswith("ce-")}
            have = {k: v for k, v in d.headers.items() if k.startswith("ce-")}
            for k in ("ce-knativeerrordest", "ce-knativeerrorcode", "ce-knativeerrordata"):
                check(k in have, "%s present" % k)
                del have[k]
            eq(have, want, "the subscriber's and the dead-letter sink's attributes")
            dec = {k: urllib.parse.unquote(v) for k, v in have.items()}
            for k, v in attrs.items():
                if k.startswith("ce-"):
                    eq(dec.get(k), v, k)
            eq((dec["ce-id"], dec["ce-type"], dec["ce-source"]), ("orig-1", "my.type", "/test"),
               "core attributes")
            check("ce-knativearrivaltime" in have, "arrival time kept")
            check("ce-knativebrokerttl" not in have, "no ttl sent to the dead-letter sink")
            eq(d.headers.get("kn-namespace"), "default", "Kn-Namespace")
            check("prefer" not in d.headers, "no Prefer: reply to the dead-letter sink")


def test_dead_letter_sink_fails_then_recovers():
    """Delivery to the dead-letter sink is retried with the trigger's policy: a sink that
    resets, then answers garbage, then 500, then 202, gets four requests, all of the same
    dead letter, and the event counts as dead-lettered (not dropped)."""
    def dls_answers(i, _r):
        return [(b"HTTP/1.1 2", "rst"), (b"garbage\r\n\r\n", "close"),
                (http_answer(500), "close"), (http_answer(202), "close")][min(i, 3)]
    with Subscriber(status_seq(500, body=b"boom")) as s, RawSubscriber(dls_answers) as dls:
        cfg = config(trigger("t", s.url, delivery=fast(4, dls.url)))
        with Broker(cfg) as b:
            publish(b, 1, body=b"p")
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "t", 1)
            quiet(0.3)
            eq(s.count(), 5, "subscriber attempts")
            reqs = dls.requests
            eq(len(reqs), 4, "dead-letter attempts")
            for r in reqs:
                eq((r.ce("id"), r.ce("knativeerrorcode"), r.ce("knativeerrordata"), r.body),
                   ("1", "500", b64(b"boom"), b"p"), "the same dead letter each time")
            # retried: 4 to the subscriber and 3 to the dead-letter sink.
            eq(counters(b, "t"), (0, 7, 1, 1, 0), "counters")


def test_dead_letter_sink_always_fails_drops():
    """A dead-letter sink that fails on every attempt: 1 + retry requests to it, then the event
    is dropped and counted."""
    with Subscriber(status_seq(400)) as s, Subscriber(status_seq(503)) as dls:
        cfg = config(trigger("t", s.url, delivery=fast(2, dls.url)))
        with Broker(cfg) as b:
            publish(b, 1)
            wait_metric(b, "ringcast_trigger_dropped_total", "t", 1)
            quiet(0.3)
            eq(s.count(), 1, "400 not retried")
            eq(dls.count(), 3, "dead-letter sink: 1 + retry attempts")
            eq(counters(b, "t"), (0, 2, 1, 0, 1), "counters: two retries to the sink, dropped")


def test_dead_letter_structured_mode():
    """format: json: the subscriber and the dead-letter sink both get structured events; the
    dead letter carries the three error extensions as JSON attributes and the same data."""
    import json
    with Subscriber(status_seq(409, 400, body=b"conflict")) as s, Subscriber() as dlq:
        cfg = config(trigger("t", s.url, delivery=fast(3, dlq.url) + ["format: json"]))
        with Broker(cfg) as b:
            publish(b, "j-1", "a", {"ce-myext": "v", "Content-Type": "application/json"},
                    b'{"k": [1, 2, "\\u00e9"]}')
            d = dlq.wait_for(1)[0]
            wait_counters(b, "t", (0, 1, 1, 1, 0))
            eq(d.headers.get("content-type"), "application/cloudevents+json", "structured")
            ev = json.loads(d.body)
            orig = json.loads(s.requests[0].body)
            eq(str(ev.pop("knativeerrorcode")), "400", "code (the last status)")
            eq(ev.pop("knativeerrordest"), s.url, "dest")
            eq(ev.pop("knativeerrordata"), b64(b"conflict"), "data of the last body")
            eq(ev, orig, "the dead letter is the event the subscriber got")
            eq((ev["id"], ev["myext"], ev["data"]), ("j-1", "v", {"k": [1, 2, "\u00e9"]}),
               "attributes and data")
            eq(s.count(), 2, "409 retried, then 400 fails at once")


def test_dead_letter_dest_of_service_ref():
    """A subscriber given as a Service ref plus a path: knativeerrordest is the resolved URL."""
    with Subscriber(status_seq(400, body=b"x")) as s, Subscriber() as dlq:
        cfg = config() + """---
apiVersion: v1
kind: Service
metadata: {name: consumer}
spec:
  ports: [{port: %d}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t}
spec:
  broker: default
  subscriber:
    ref: {apiVersion: v1, kind: Service, name: consumer}
    uri: /in?q=1
  delivery:
    deadLetterSink: {uri: %s/dl}
""" % (s.port, dlq.url)
        with Broker(cfg) as b:
            publish(b, 1)
            d = dlq.wait_for(1)[0]
            eq(s.requests[0].path, "/in?q=1", "request path")
            eq(d.ce("knativeerrordest"), "http://127.0.0.1:%d/in?q=1" % s.port, "dest")


def test_dead_letter_of_a_1mib_event():
    """An event of almost 1 MiB (binary data) dead-lettered in binary and in structured mode:
    the data arrives byte-exact (structured: data_base64)."""
    import json
    data = bytes((i * 7 + (i >> 8)) & 0xff for i in range(1024 * 1024 - 4096))
    with Subscriber(status_seq(400, body=b"x")) as s, Subscriber(status_seq(400)) as sj, \
            Subscriber() as dlq:
        cfg = config(trigger("bin", s.url, delivery=fast(0, dlq.url + "/bin")),
                     trigger("json", sj.url, delivery=fast(0, dlq.url + "/json")
                             + ["format: json"]))
        with Broker(cfg) as b:
            publish(b, 1, "a", {"Content-Type": "application/octet-stream"}, data)
            d = by_path(dlq.wait_for(2))
            check(s.requests[0].body == data, "subscriber got the data")
            check(d["/bin"][0].body == data, "binary dead letter: data byte-exact")
            ev = json.loads(d["/json"][0].body)
            check(base64.b64decode(ev["data_base64"]) == data, "structured dead letter: data")
            eq((str(ev["knativeerrorcode"]), ev.get("knativeerrordata")), ("400", None),
               "code, no data for an empty body")


def test_subscriber_that_never_reads():
    """A subscriber that accepts connections and never reads: sending a 1 MiB event cannot
    finish, the attempt times out (0.5 s), is retried once, and the event is dead-lettered
    (code 500) within a few seconds; another trigger is not held up."""
    import socket
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    held = []

    def accept():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            held.append(c)
    threading.Thread(target=accept, daemon=True).start()
    url = "http://127.0.0.1:%d" % ls.getsockname()[1]
    data = b"y" * (1024 * 1024 - 4096)
    try:
        with Subscriber() as dlq, Subscriber() as other:
            cfg = config(trigger("stuck", url, "  filter: {attributes: {type: big}}\n",
                                 delivery=fast(1, dlq.url, "PT0.5S")),
                         trigger("other", other.url), workers=1)
            with Broker(cfg) as b:
                t0 = time.monotonic()
                publish(b, "big-1", "big", {"Content-Type": "application/octet-stream"}, data)
                for i in range(5):
                    publish(b, "small-%d" % i)
                eq(sorted(other.wait_for(6, timeout=5)[i].ce("id") for i in range(6)),
                   ["big-1"] + ["small-%d" % i for i in range(5)], "the other trigger")
                d = dlq.wait_for(1, timeout=10)
                check(time.monotonic() - t0 < 5, "dead-lettered in %.2fs"
                      % (time.monotonic() - t0))
                eq((d[0].ce("id"), d[0].ce("knativeerrorcode")), ("big-1", "500"), "dead letter")
                check(d[0].body == data, "dead letter data")
                wait_counters(b, "stuck", (0, 1, 1, 1, 0))
                eq(len(held), 2, "two connections: one attempt each")
    finally:
        ls.close()
        for c in held:
            c.close()


def test_invalid_replies_are_ignored():
    """2xx answers that look like replies but are not valid CloudEvents are ignored (logged):
    delivered once, no retry, no reply stored (CONTRACTS: a non-empty 2xx body that is not a
    CloudEvent is ignored)."""
    cases = {
        "nosource": (200, {"ce-id": "r", "ce-type": "x", "ce-specversion": "1.0"}, b"d"),
        "badspec": (200, {"ce-id": "r", "ce-source": "/s", "ce-type": "x",
                          "ce-specversion": "0.3"}, b"d"),
        "badjson": (200, {"Content-Type": "application/cloudevents+json"},
                    b'{"id": "r", "source"'),
        "jsonnotce": (200, {"Content-Type": "application/cloudevents+json"}, b'{"id": "r"}'),
        "onlyspec": (201, {"ce-specversion": "1.0"}, b""),
        "badext": (200, {"ce-id": "r", "ce-source": "/s", "ce-type": "x",
                         "ce-specversion": "1.0", "ce-Bad_Name": "v"}, b"d"),
        "badtime": (200, {"ce-id": "r", "ce-source": "/s", "ce-type": "x",
                          "ce-specversion": "1.0", "ce-time": "yesterday"}, b"d"),
    }
    subs = {k: Subscriber(lambda i, r, a=a: (a[0], a[1], a[2], 0.0)) for k, a in cases.items()}
    try:
        cfg = config(*[trigger(k, sub.url, "  filter: {attributes: {type: a}}\n",
                               delivery=fast(2)) for k, sub in subs.items()], workers=2)
        with Broker(cfg) as b:
            publish(b, 1, "a")
            for k in cases:
                wait_counters(b, k, (1, 0, 0, 0, 0))
            quiet(0.3)
            for k, sub in subs.items():
                eq(sub.count(), 1, "%s: one attempt" % k)
                eq((metric(b, "ringcast_trigger_replies_total", k),
                    metric(b, "ringcast_trigger_replies_failed_total", k)), (0, 0),
                   "%s: replies, replies_failed" % k)
            eq([e["id"] for e in b.tail("default/default", "--from", "oldest")], ["1"],
               "nothing but the event in the ring")
    finally:
        for sub in subs.values():
            sub.close()


def test_oversized_reply_dropped_not_cut():
    """A binary reply whose data is over the client's 1 MiB response limit is not stored cut
    short (nor retried): the delivery counts, the reply counts as failed, nothing is routed."""
    big = bytes((i * 31) & 0xff for i in range(1536 * 1024))

    def replier(_i, _req):
        return 200, {"ce-id": "r-1", "ce-source": "/replier", "ce-type": "reply.x",
                     "ce-specversion": "1.0", "Content-Type": "application/octet-stream"}, big, 0.0
    with Subscriber(replier) as s1, Subscriber() as s2:
        cfg = config(trigger("first", s1.url, "  filter: {attributes: {type: a}}\n"),
                     trigger("second", s2.url, "  filter: {attributes: {type: reply.x}}\n"))
        with Broker(cfg) as b:
            publish(b, 1, "a")
            wait_metric(b, "ringcast_trigger_replies_failed_total", "first", 1)
            quiet(0.5)
            eq(metric(b, "ringcast_trigger_delivered_total", "first"), 1, "delivered once")
            eq(metric(b, "ringcast_trigger_replies_total", "first"), 0, "no reply stored")
            eq(s1.count(), 1, "no retry")
            eq(s2.count(), 0, "nothing routed to the reply trigger")
            check(b"over the" in open(b.stderr_path, "rb").read(), "the log says why")


# ---- 5. kill -9 of a worker under load ------------------------------------------------------
def test_kill_worker_with_retries_and_dead_letters_pending():
    """One worker holds events waiting for a retry (subscriber down: 503) and dead letters
    waiting for a retry (dead-letter sink down: 503). kill -9; the restarted worker sends them
    again: once both come back, every event reached the subscriber and every dead letter the
    sink (at least once)."""
    up = {"sub": False, "dls": False}
    ok_ids, dl_ids = set(), set()  # ids answered 2xx

    def sub(_i, req):
        if up["sub"]:
            ok_ids.add(req.ce("id"))
            return 200, {}, b"", 0.0
        return 503, {}, b"", 0.0

    def dls(_i, req):
        if up["dls"] and req.ce("knativeerrorcode") == "400":
            dl_ids.add(req.ce("id"))
            return 202, {}, b"", 0.0
        return 503, {}, b"", 0.0

    n = 15
    slow = ["retry: 60", "backoffPolicy: linear", "backoffDelay: PT0.1S", "backoffMax: PT0.2S",
            "timeout: PT2S"]
    with Subscriber(sub) as s, Subscriber(status_seq(400, body=b"no")) as rej, \
            Subscriber(dls) as dl:
        cfg = config(trigger("retrying", s.url, delivery=slow),
                     trigger("rejected", rej.url, delivery=slow + [
                         "deadLetterSink: {uri: %s}" % dl.url]))
        with Broker(cfg) as b:
            pids = worker_pids(b)
            eq(len(pids), 1, "one worker")
            for i in range(n):
                publish(b, "p-%d" % i)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (len(set(s.ids())) < n
                                                   or len(set(dl.ids())) < n):
                time.sleep(0.05)
            eq((len(set(s.ids())), len(set(dl.ids()))), (n, n), "all tried before the kill")
            os.kill(pids[0], signal.SIGKILL)
            deadline = time.monotonic() + 10
            # One look per turn: two (len, then equality) could see the killed worker alive,
            # then gone, and end the wait at once, before the restart (a flake seen in CI).
            now_pids = worker_pids(b)
            while time.monotonic() < deadline and (len(now_pids) != 1 or now_pids == pids):
                time.sleep(0.05)
                now_pids = worker_pids(b)
            check(len(now_pids) == 1 and now_pids != pids,
                  "restarted: workers %s before the kill, %s 10 s after; log:\n%s\n%s"
                  % (pids, now_pids, b.log()[-3000:], diagnose_broker(b)))
            time.sleep(0.5)
            up["sub"] = up["dls"] = True
            want = {"p-%d" % i for i in range(n)}
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (ok_ids != want or dl_ids != want):
                time.sleep(0.1)
            # Every id got an answer of 200/202 once the subscribers were up.
            wait_metric(b, "ringcast_trigger_delivered_total", "retrying", n, timeout=15)
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "rejected", n, timeout=15)
            eq(ok_ids, want, "every event reached the subscriber after the restart")
            eq(dl_ids, want, "every dead letter reached the sink after the restart")
            eq(b.metrics().get("ringcast_worker_restarts_total"), 1.0, "one restart")


def test_sighup_with_retries_pending():
    """A reload (same file) while events wait for retries: the workers restart and the
    unfinished events are sent again; when the subscriber comes back all are delivered."""
    up = [False]
    n = 10
    done = set()  # ids answered 200

    def f(_i, req):
        if up[0]:
            done.add(req.ce("id"))
            return 200, {}, b"", 0.0
        return 503, {}, b"", 0.0
    with Subscriber(f) as s:
        cfg = config(trigger("t", s.url, delivery=[
            "retry: 60", "backoffPolicy: linear", "backoffDelay: PT0.1S", "backoffMax: PT0.2S"]))
        with Broker(cfg) as b:
            pids = worker_pids(b)
            for i in range(n):
                publish(b, "r-%d" % i)
            s.wait_for(2 * n)
            b.signal(signal.SIGHUP)
            wait_reloads(b, "ringcast_config_reloads_total", 1.0)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and worker_pids(b) in ([], pids):
                time.sleep(0.05)
            check(worker_pids(b) not in ([], pids), "workers restarted by the reload")
            up[0] = True
            wait_metric(b, "ringcast_trigger_delivered_total", "t", n, timeout=15)
            eq(done, {"r-%d" % i for i in range(n)}, "all delivered after the reload")
            eq(metric(b, "ringcast_trigger_failed_total", "t"), 0, "nothing failed")



class Sender:
    """Posts events on one keep-alive connection until stopped; records the ids that got 202."""

    def __init__(self, b, prefix, types=("a",)):
        self.b, self.prefix, self.types = b, prefix, types
        self.accepted = []
        self.other = 0
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c = None
        i = 0
        try:
            while not self.stop.is_set() and i < 100000:
                if c is None:
                    c = Conn(self.b.host, self.b.port)
                etype = self.types[i % len(self.types)]
                eid = "%s-%d" % (self.prefix, i)
                c.send_request("POST", "/default/default", ce_headers(eid, etype), b"load")
                r = c.response()
                if r.status == 202:
                    self.accepted.append((eid, etype, time.monotonic()))
                else:
                    self.other += 1
                    time.sleep(0.01)
                i += 1
                time.sleep(0.001)
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.error = e
        finally:
            if c is not None:
                c.close()

    def join(self):
        self.stop.set()
        self.thread.join(10)
        check(not self.thread.is_alive(), "sender stopped")
        if self.error:
            raise AssertionError("sender: %r" % self.error)
        return self.accepted


def wait_ids(sink, want, timeout):
    deadline = time.monotonic() + timeout
    have = set()
    while time.monotonic() < deadline:
        have = {e["id"] for e in sink.events()}
        if want <= have:
            break
        time.sleep(0.1)
    return have


def test_kill_worker_under_load():
    """Three workers, three triggers; a sender keeps posting; one worker is killed with
    SIGKILL mid-stream, and its replacement is killed again at once (restarted after the 1 s
    delay for a worker that lived less than 1 s): every event that got 202 reaches every sink
    at least once."""
    with Sink("--quiet") as s0, Sink("--quiet") as s1, Sink("--quiet") as s2:
        sinks = (s0, s1, s2)
        cfg = config(*[trigger("t%d" % k, s.url, delivery=fast(20)) for k, s in
                       enumerate(sinks)], workers=3)
        with Broker(cfg) as b:
            pids = worker_pids(b)
            eq(len(pids), 3, "three workers")
            snd = Sender(b, "k")
            time.sleep(1.0)
            os.kill(pids[1], signal.SIGKILL)
            deadline = time.monotonic() + 5
            fresh = []
            while time.monotonic() < deadline and not fresh:
                now = worker_pids(b)
                fresh = [p for p in now if p not in pids] if len(now) == 3 else []
                time.sleep(0.01)
            check(len(fresh) == 1, "a replacement worker: workers %s before the kill, %s 5 s "
                  "after; log:\n%s\n%s" % (pids, worker_pids(b), b.log()[-3000:],
                                             diagnose_broker(b)))
            os.kill(fresh[0], signal.SIGKILL)
            time.sleep(2.0)
            accepted = snd.join()
            check(len(accepted) >= 100, "sender got %d events in (%d refused)"
                  % (len(accepted), snd.other))
            want = {eid for eid, _, _ in accepted}
            for k, s in enumerate(sinks):
                have = wait_ids(s, want, 15)
                missing = want - have
                eq(len(missing), 0, "t%d: %d of %d accepted events never delivered, e.g. %r"
                   % (k, len(missing), len(want), sorted(missing)[:5]))
                check(have <= want, "t%d: no unknown ids" % k)
            eq(b.metrics().get("ringcast_worker_restarts_total"), 2.0, "two restarts")
            now = worker_pids(b)
            eq(len(now), 3, "three workers again")
            check(pids[1] not in now and fresh[0] not in now, "the killed workers were replaced")
            eq(len(set(now) & set(pids)), 2, "the other workers kept running")


# ---- 6. SIGHUP while events flow ------------------------------------------------------------

def wait_log(b, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and text not in b.log():
        time.sleep(0.05)
    check(text in b.log(), "log has %r" % text)


def wait_reloads(b, name, value, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and b.metrics().get(name) != value:
        time.sleep(0.05)
    eq(b.metrics().get(name), value, name)


def test_sighup_filter_change_while_flowing():
    """Events of types a and b flow; a reload changes one trigger's filter from a to b, then a
    reload with broken YAML is rejected. The unchanged trigger loses nothing; the changed one
    gets b events accepted after the reload, and never an a event accepted after it."""
    with Sink("--quiet") as steady, Sink("--quiet") as changing:
        v1 = config(trigger("steady", steady.url, delivery=fast(20)),
                    trigger("changing", changing.url, "  filter: {attributes: {type: a}}\n",
                            delivery=fast(20)), workers=2)
        v2 = config(trigger("steady", steady.url, delivery=fast(20)),
                    trigger("changing", changing.url, "  filter: {attributes: {type: b}}\n",
                            delivery=fast(20)), workers=2)
        with Broker(v1) as b:
            path = [a for a in b.proc.args if a.endswith(".yaml")][0]
            snd = Sender(b, "h", types=("a", "b"))
            time.sleep(1.0)
            with open(path, "w") as f:
                f.write(v2)
            t_hup = time.monotonic()
            b.signal(signal.SIGHUP)
            wait_reloads(b, "ringcast_config_reloads_total", 1.0)
            t_reloaded = time.monotonic()
            time.sleep(1.0)
            pids = worker_pids(b)
            with open(path, "w") as f:
                f.write(v2 + "  filter: {attributes: [unclosed\n")
            b.signal(signal.SIGHUP)
            wait_log(b, "reload rejected")
            wait_reloads(b, "ringcast_config_reload_errors_total", 1.0)
            time.sleep(1.0)
            accepted = snd.join()
            eq(worker_pids(b), pids, "a rejected reload restarts no worker")
            eq(b.metrics().get("ringcast_config_reloads_total"), 1.0, "one good reload")
            want = {eid for eid, _, _ in accepted}
            check(len(want) >= 100, "sender got %d events in" % len(want))
            have = wait_ids(steady, want, 15)
            missing = want - have
            eq(len(missing), 0, "steady: %d of %d accepted events lost, e.g. %r"
               % (len(missing), len(want), sorted(missing)[:5]))
            after_b = {eid for eid, t, at in accepted if t == "b" and at > t_reloaded}
            after_a = {eid for eid, t, at in accepted if t == "a" and at > t_reloaded}
            have = wait_ids(changing, after_b, 15)
            eq(len(after_b - have), 0, "changing: b events after the reload all delivered")
            eq(have & after_a, set(), "changing: no a event accepted after the reload")
            types = {eid: t for eid, t, _ in accepted}
            for e in changing.events():
                check(e["type"] == types[e["id"]], "type of %s" % e["id"])
            check(len({e["id"] for e in changing.events() if e["type"] == "a"}) > 0,
                  "changing: a events before the reload")


def test_repeated_reloads_name_the_file():
    """Every reload logs the file it read (the path once pointed into the config the reload
    had just freed: garbage in the log, a heap-use-after-free under ASan). The first SIGHUP
    comes right after the start, often before the worker has set its signal handlers: it
    still stops at once (its signals stay blocked until then), never after the drain with a
    SIGKILL, and /metrics answers all along."""
    with Subscriber() as s:
        with Broker(config(trigger("t", s.url))) as b:
            path = [a for a in b.proc.args if a.endswith(".yaml")][0]
            for n in (1, 2, 3):
                b.signal(signal.SIGHUP)
                wait_reloads(b, "ringcast_config_reloads_total", float(n))
            raw = open(b.stderr_path, "rb").read()
            eq(raw.count(b"reloaded " + path.encode() + b":"), 3, "reload log lines name the file")
            check(b"did not stop" not in raw, "every worker stopped on SIGTERM")
            publish(b, 1)
            eq([r.ce("id") for r in s.wait_for(1)], ["1"], "still delivering")


if __name__ == "__main__":
    Runner().run([
        test_fail_at_once_statuses,
        test_sink_redirects_fail_at_once,
        test_status_600_and_1xx_final_fail_at_once,
        test_retried_4xx_then_dead_letter,
        test_retried_4xx_then_success,
        test_other_2xx_succeed,
        test_retry_after_on_503_and_its_caps,
        test_broken_connections_retried_then_delivered,
        test_broken_connections_exhausted_to_dead_letter,
        test_bytes_after_declared_end_still_succeed,
        test_response_framing,
        test_slow_answers_and_timeout,
        test_keepalive_closed_by_subscriber_while_idle,
        test_reused_connection_closed_without_answer,
        test_flaky_subscriber_under_load_counts_exact,
        test_many_triggers_each_retried_once,
        test_ring_full_while_subscriber_down,
        test_pending_event_survives_other_traffic,
        test_subscriber_down_then_back,
        test_dead_letter_empty_body_has_no_errordata,
        test_dead_letter_errordata_truncation,
        test_dead_letter_keeps_attributes_and_data_exact,
        test_dead_letter_sink_fails_then_recovers,
        test_dead_letter_sink_always_fails_drops,
        test_dead_letter_structured_mode,
        test_dead_letter_dest_of_service_ref,
        test_dead_letter_of_a_1mib_event,
        test_subscriber_that_never_reads,
        test_invalid_replies_are_ignored,
        test_oversized_reply_dropped_not_cut,
        test_kill_worker_under_load,
        test_kill_worker_with_retries_and_dead_letters_pending,
        test_sighup_with_retries_pending,
        test_sighup_filter_change_while_flowing,
        test_repeated_reloads_name_the_file,
    ])
