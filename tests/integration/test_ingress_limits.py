"""Integration test: the real `ringcast serve` binary at its limits (issue 11, defects 4, 8, 9a).

- Request bodies in memory: one budget over all ingress loops (spec.limits.maxBodyMemory).
  Clients that declare large bodies and stall mid-body hold at most that much; past it a new
  body gets 503 with Retry-After before it is read, while requests that fit still get 202, and
  serve's memory does not grow beyond the budget.
- File descriptors: serve started under a low RLIMIT_NOFILE with many idle connections answers
  the extra ones 503 (a status, never a silent close or a reset), logs it once, and /healthz and
  /metrics keep answering.
- Host: an HTTP/1.1 request without Host (or with two) gets 400 naming the header; HTTP/1.0
  needs none.
"""

import os
import re
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq  # noqa: E402

MiB = 1024 * 1024

EVENT = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-type": "t", "ce-source": "/s",
         "Content-Type": "application/json"}


def wait_for(what, cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        check(time.monotonic() < deadline, "timed out waiting for " + what)
        time.sleep(0.05)


def rss_anon(pid):
    """Private memory of the process in bytes (RssAnon: the shm ring is not counted)."""
    with open("/proc/%d/status" % pid) as f:
        status = f.read()
    m = re.search(r"^RssAnon:\s+(\d+) kB", status, re.M) or \
        re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) * 1024


def logged_once_per_interval(b, text, started):
    """The warning containing `text` was logged, at most once per 10 s since `started`."""
    lines = [ln for ln in b.log().splitlines() if text in ln]
    most = 1 + int((time.monotonic() - started) / 10)
    check(1 <= len(lines) <= most, "%d lines in %.1fs: %r"
          % (len(lines), time.monotonic() - started, lines))


# ---- Host (RFC 9112 3.2) -------------------------------------------------------------------


def test_host():
    with Broker() as b:
        c = b.conn()
        c.send_request("POST", "/default/default", dict(EVENT, Host=None), "{}")
        r = c.response()
        eq(r.status, 400, "HTTP/1.1 without Host")
        eq(r.json(), {"error": "malformed HTTP request: HTTP/1.1 request without a Host header"},
           "400 body")
        eq(r.header("Connection"), "close", "closes")
        check(c.closed_by_peer(), "closed after 400")
        c.close()
        c = b.conn()
        c.send("POST /default/default HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n"
               "ce-specversion: 1.0\r\nce-id: 2\r\nce-type: t\r\nce-source: /s\r\n\r\n{}")
        r = c.response()
        eq(r.status, 400, "two Host headers")
        eq(r.json(), {"error": "malformed HTTP request: more than one Host header"}, "400 body")
        c.close()
        # HTTP/1.0 needs no Host; an empty Host is valid in HTTP/1.1.
        c = b.conn()
        c.send_request("POST", "/default/default", dict(EVENT, Host=None), "{}",
                       version="HTTP/1.0")
        eq(c.response().status, 202, "HTTP/1.0 without Host")
        c.close()
        eq(b.request("POST", "/default/default", dict(EVENT, Host=""), "{}").status, 202,
           "empty Host")
        eq(b.request("POST", "/default/default", EVENT, "{}").status, 202, "with Host")
        m = b.metrics()
        eq(m['ringcast_ingress_rejected_total{reason="malformed_http"}'], 2, "400s counted")


# ---- request bodies in memory --------------------------------------------------------------

BUDGET_CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  limits:
    maxEventBytes: 1Mi
    maxBatchBytes: 4Mi
    maxBodyMemory: 18Mi
    bodyTimeout: 30s
"""

BIG = 4 * MiB - 1  # the largest batch allowed
STALLED = 4        # 4 x (4 MiB - 1) fit in 18 MiB, a fifth does not
REFUSED = 36
SENT = 2 * MiB     # what each client sends of its body before it stalls


def big_head(expect=False):
    return ("POST /default/default HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/cloudevents-batch+json\r\nContent-Length: %d\r\n%s\r\n"
            % (BIG, "Expect: 100-continue\r\n" if expect else "")).encode()


def test_body_memory():
    with Broker(BUDGET_CONFIG) as b:
        for _ in range(3):  # warm up: the first requests allocate what every request uses
            eq(b.request("POST", "/default/default", EVENT, "{}").status, 202, "warm-up")
        before = rss_anon(b.proc.pid)
        started = time.monotonic()
        part = b"[" + b" " * (SENT - 1)  # a batch that never ends
        stalled, refused = [], []
        try:
            # Clients that declare 4 MiB and stall after 2 MiB: the first four fit.
            for _ in range(STALLED):
                c = b.conn()
                c.send(big_head() + part)
                stalled.append(c)
            wait_for("the stalled bodies to be reserved", lambda: b.metrics()[
                "ringcast_ingress_body_memory_bytes"] == STALLED * BIG)
            # The next ones do not: 503 with Retry-After as soon as the headers are in, before
            # any of the body is sent; what they send anyway is skipped, not kept.
            for i in range(REFUSED):
                c = b.conn()
                c.send(big_head())
                r = c.response()
                eq(r.status, 503, "body %d over the budget" % i)
                eq(r.header("Retry-After"), "1", "Retry-After")
                check("request bodies in memory" in r.json()["error"], r.body)
                c.send(part)
                refused.append(c)
            time.sleep(0.3)  # let the server read what was sent
            grown = rss_anon(b.proc.pid) - before
            check(grown < 18 * MiB + 8 * MiB,
                  "serve grew by %.1f MiB with %d stalled bodies of %d MiB (budget 18 MiB)"
                  % (grown / MiB, STALLED + REFUSED, SENT // MiB))
            # Requests that fit are still served.
            for i in range(3):
                r = b.request("POST", "/default/default", dict(EVENT, **{"ce-id": "s-%d" % i}),
                              "x" * 1000)
                eq(r.status, 202, "a small request while the budget is used")
            # A client waiting for 100 Continue gets the 503 instead.
            c = b.conn()
            c.send(big_head(expect=True))
            r = c.response()
            eq((r.status, r.header("Retry-After")), (503, "1"), "100-continue over the budget")
            c.close()
            m = b.metrics()
            eq(m["ringcast_ingress_body_memory_bytes"], STALLED * BIG, "body memory gauge")
            eq(m["ringcast_ingress_body_memory_limit_bytes"], 18 * MiB, "body memory limit")
            eq(m['ringcast_http_refused_total{listener="ingress",limit="body_memory"}'],
               REFUSED + 1, "refusals counted")
            check(m['ringcast_ingress_rejected_total{reason="unavailable"}'] >= REFUSED + 1,
                  "counted as unavailable")
            logged_once_per_interval(b, "request bodies held in memory", started)
        finally:
            for c in refused:
                c.close()
            for c in stalled:
                c.close()
        # Closed connections give their share back: a large body is admitted again.
        wait_for("the budget to be released",
                 lambda: b.metrics()["ringcast_ingress_body_memory_bytes"] == 0)
        c = b.conn()
        c.send(big_head(expect=True))
        eq(c.response().status, 100, "admitted once the budget is free")
        c.close()


# ---- file descriptors ----------------------------------------------------------------------

FD_LIMIT = 256
CONNS = 260  # more than the limit: many must be refused
FD_CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  limits:
    headerTimeout: 30s
"""


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def classify(socks, timeout=3.0):
    """Reads from every socket for up to `timeout`: 'refused' (a whole 503 then EOF), 'open'
    (nothing, still open), or what else happened."""
    sel = selectors.DefaultSelector()
    data = {}
    state = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        data[s] = b""
    deadline = time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = None
            if chunk:
                data[s] += chunk
                continue
            sel.unregister(s)
            state[s] = "reset" if chunk is None else "eof"
    out = []
    for s in socks:
        d = data[s]
        if s not in state:
            out.append("open" if not d else "open with data %r" % d[:80])
        elif (d.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in d
              and b"out of file descriptors" in d):
            out.append("refused")
        else:
            out.append("%s after %r" % (state[s], d[:80]))
        s.setblocking(True)
    return out


def healthz(b):
    r = b.request("GET", "/healthz", admin=True)
    return (r.status, r.body)


def test_fd_limit():
    with Broker(FD_CONFIG, preexec_fn=low_fd_limit) as b:
        socks = []
        started = time.monotonic()
        try:
            for i in range(CONNS):
                socks.append(socket.create_connection((b.host, b.port), timeout=5))
                if i % 20 == 0:
                    eq(healthz(b), (200, b"ok\n"), "/healthz with %d connections" % (i + 1))
            got = classify(socks)
            odd = [g for g in got if g not in ("open", "refused")]
            eq(odd, [], "every connection is either kept or answered 503")
            opened, refused = got.count("open"), got.count("refused")
            check(opened > 50 and refused > 0, "kept %d, refused %d" % (opened, refused))
            eq(healthz(b), (200, b"ok\n"), "/healthz at the limit")
            m = b.metrics()
            eq(m['ringcast_http_refused_total{listener="ingress",limit="file_descriptors"}'],
               refused, "refusals counted")
            eq(m["process_max_fds"], FD_LIMIT, "process_max_fds")
            check(m["process_open_fds"] < FD_LIMIT, "open fds under the limit")
            # A connection that was kept is served normally.
            keep = socks[got.index("open")]
            keep.settimeout(5)
            keep.sendall(b"OPTIONS /default/default HTTP/1.1\r\nHost: x\r\n\r\n")
            check(keep.recv(65536).startswith(b"HTTP/1.1 200 "), "a kept connection is served")
            logged_once_per_interval(b, "file descriptors are running out", started)
            check("warn serve: the open-files limit (256)" in b.log(), "startup warning")
        finally:
            for s in socks:
                s.close()
        # Descriptors come back with the closes: new connections are served again.
        wait_for("a new connection to be served", lambda: b.request(
            "OPTIONS", "/default/default").status == 200)
        eq(healthz(b), (200, b"ok\n"), "/healthz after")


def main():
    Runner().run([test_host, test_body_memory, test_fd_limit])


if __name__ == "__main__":
    main()
