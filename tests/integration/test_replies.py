#!/usr/bin/env python3
"""Replies when the ring has no room (issue 11, defect 1): a reply never holds back the
acknowledgement of the event it answers. The answered event finishes at once (delivered once,
its ring space released); its reply waits in the worker's reply queue until it fits, and past
the queue's limits goes to the trigger's dead-letter sink (or is dropped), counted in /metrics
and logged with the trigger and the ids. Small rings (64Ki, 1Mi), bounded times. The happy path
(replies stored and routed) is in test_delivery.py."""

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import BIN_DIR, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402

HELPER_DIR = os.environ.get("RC_TEST_HELPER_DIR") or os.path.join(BIN_DIR, "../tests")
RING_HOLDER = os.path.join(HELPER_DIR, "ring_holder")

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  retryAfterSeconds: 1
  shutdownTimeout: %s
  ring: {size: %s}
  lag: {policy: block}  # these hung subscribers hold the ring on purpose
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def trigger(name, uri, etype, delivery=()):
    doc = ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n"
           "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
           "  filter: {attributes: {type: %s}}\n" % (name, uri, etype))
    if delivery:
        doc += "  delivery:\n" + "".join("    %s\n" % line for line in delivery)
    return doc


# Limits that fit each ring size (the loader refuses limits a ring cannot hold).
LIMITS = {
    "64Ki": "  limits: {maxEventBytes: 8Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki,"
            " maxBatchEvents: 4}\n",
    "1Mi": "  limits: {maxEventBytes: 128Ki, maxBatchBytes: 256Ki, maxBatchEvents: 50}\n",
}


def config(*triggers, ring="1Mi", shutdown="5s"):
    return HEAD % (shutdown, ring, LIMITS.get(ring, "")) + "".join(triggers)


def env(**knobs):
    e = dict(os.environ)
    for k, v in knobs.items():
        e["RINGCAST_" + k] = str(v)
    return e


def ce_headers(i, etype="a", ttl=None):
    h = {"ce-id": str(i), "ce-source": "/test", "ce-type": etype, "ce-specversion": "1.0",
         "Content-Type": "text/plain"}
    if ttl is not None:
        h["ce-knativebrokerttl"] = str(ttl)
    return h


def replier(etype, body=b"r" * 1000, gate=None):
    """Answers 200 with a reply of type `etype` and id r-<id of the event answered>; with a
    `gate` (threading.Event), only once it is set (at most 20 s)."""
    def f(_i, req):
        if gate is not None:
            gate.wait(20)
        return 200, {"ce-id": "r-" + (req.ce("id") or ""), "ce-source": "/replier",
                     "ce-type": etype, "ce-specversion": "1.0",
                     "Content-Type": "text/plain"}, body, 0.0
    return f


def metric(b, name, trig, m=None):
    m = m if m is not None else b.metrics()
    return m.get('%s{namespace="default",trigger="%s",broker="default"}' % (name, trig), 0)


def wait_until(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


def counts(b, trig):
    m = b.metrics()
    return {k: metric(b, "ringcast_trigger_%s" % k, trig, m) for k in (
        "delivered_total", "replies_total", "replies_delayed_total", "replies_failed_total",
        "replies_dead_lettered_total", "replies_dropped_total", "replies_expired_total",
        "replies_queued")}


def settled(b, trig):
    """Every reply of the trigger is stored, expired or given up (failed = dead-lettered +
    dropped), none waits in the queue, and every delivered event had its reply handled."""
    c = counts(b, trig)
    return (c["replies_queued"] == 0 and
            c["replies_failed_total"] == c["replies_dead_lettered_total"] +
            c["replies_dropped_total"] and
            c["replies_total"] + c["replies_expired_total"] + c["replies_failed_total"] ==
            c["delivered_total"])


def load(b, seconds, etype="a", ttl=None, body=b"e" * 1000, threads=3):
    """Producers on keep-alive connections posting as fast as they are answered (a 429 is
    retried at once, as an impatient client would) for `seconds`. Returns (accepted ids, number
    of 429s, other statuses)."""
    stop = time.monotonic() + seconds
    accepted, refused, other = [], [0], []
    lock = threading.Lock()

    def run(k):
        c, n = b.conn(), 0
        try:
            while time.monotonic() < stop:
                i = "p%d-%d" % (k, n)
                n += 1
                c.send_request("POST", "/default/default", ce_headers(i, etype, ttl), body)
                r = c.response()
                with lock:
                    if r.status == 202:
                        accepted.append(i)
                    elif r.status == 429:
                        refused[0] += 1
                    else:
                        other.append(r.status)
        finally:
            c.close()
    ts = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 15)
    return accepted, refused[0], other


def recovers(b, timeout, etype="probe"):
    """Posts a probe every 100 ms until one is accepted; returns the seconds it took."""
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < timeout:
        r = b.request("POST", "/default/default", ce_headers("probe-%d" % n, etype), b"p")
        n += 1
        if r.status == 202:
            return time.monotonic() - start
        eq(r.status, 429, "probe answer (%r)" % r.body)
        time.sleep(0.1)
    raise AssertionError("ingress still answers 429 %.1f s after the load stopped" % timeout)


LOG_ONE = re.compile(r"trigger default/(\S+): reply (\S+) to event (\S+) not stored \(([a-z_]+):")
LOG_MORE = re.compile(r"trigger default/(\S+): (\d+) more repl(?:y|ies) not stored in the "
                      r"last [\d.]+ s \(([^;]*);")


LOG_SINK_ONE = re.compile(r"trigger default/(\S+): reply \S+ to event \S+ not dead-lettered")
LOG_SINK_MORE = re.compile(r"trigger default/(\S+): (\d+) more repl(?:y|ies) not dead-lettered")


def logged_sink_failures(text):
    """Replies the log says the dead-letter sink did not take, per trigger."""
    n = collections.Counter()
    for line in text.splitlines():
        m = LOG_SINK_ONE.search(line)
        if m:
            n[m.group(1)] += 1
        m = LOG_SINK_MORE.search(line)
        if m:
            n[m.group(1)] += int(m.group(2))
    return n


def logged_failures(text):
    """Replies the log says were not stored, per trigger (one line each, or a summary line with
    counts per reason for those a rate limit folded), and how many for each reason."""
    n, reasons = collections.Counter(), collections.Counter()
    for line in text.splitlines():
        m = LOG_ONE.search(line)
        if m:
            n[m.group(1)] += 1
            reasons[m.group(4)] += 1
            continue
        m = LOG_MORE.search(line)
        if m:
            n[m.group(1)] += int(m.group(2))
            for part in m.group(3).split(", "):
                reason, k = part.split(" ")
                reasons[reason] += int(k)
    return n, reasons


def fill(b, body, prefix="f", limit=400):
    """Publishes until the first 429; returns the accepted ids."""
    accepted = []
    c = b.conn()
    try:
        for i in range(limit):
            c.send_request("POST", "/default/default", ce_headers("%s-%d" % (prefix, i)), body)
            r = c.response()
            if r.status != 202:
                eq(r.status, 429, "full ring (%r)" % r.body)
                return accepted
            accepted.append("%s-%d" % (prefix, i))
    finally:
        c.close()
    raise AssertionError("the ring never filled")


class Holder:
    """A lossless reader that does not read (tests/integration/ring_holder.c): while it is
    attached nothing in the ring can be released, so every reply finds the ring full."""

    def __init__(self, b):
        self.p = subprocess.Popen([RING_HOLDER, b.ring_name("default", "default")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        eq(self.p.stdout.readline().strip(), "ready", "ring holder attached")

    def release(self):
        self.p.stdin.close()
        self.p.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.release()


# ---- tests ----------------------------------------------------------------------------------

def test_full_ring_under_load_recovers():
    """(a) Producers keep a 1 MiB ring full of events whose subscriber answers 200 with a reply.
    Before the fix a reply that found the ring full turned the delivery into a retry, so the
    answered events never finished, the ring was never released and ingress answered 429 long
    after the load stopped. Now: ingress accepts again within seconds, every accepted event is
    delivered exactly once (before, up to 1 + `retry` times), and every reply is stored or
    accounted for. The default delivery policy (10 retries, backoff from 0.2 s to 60 s)."""
    with Subscriber(replier("r")) as s:
        cfg = config(trigger("t", s.url, "a"))
        with Broker(cfg) as b:
            accepted, refused, other = load(b, 3.0)
            eq(other, [], "only 202 and 429")
            check(refused > 0, "the ring never filled (%d accepted)" % len(accepted))
            took = recovers(b, 5.0)
            wait_until("every accepted event delivered",
                       lambda: metric(b, "ringcast_trigger_delivered_total", "t") >=
                       len(accepted), 30)
            wait_until("replies settled", lambda: settled(b, "t"), 30)
            per_id = collections.Counter(s.ids())
            again = {i: n for i, n in per_id.items() if n > 1}
            eq(again, {}, "events answered 200 and delivered again")
            missing = set(accepted) - set(per_id)
            eq(missing, set(), "accepted events never delivered")
            c = counts(b, "t")
            print("     %d accepted, %d refused, 202 again after %.2f s; %s" %
                  (len(accepted), refused, took, c))
            wait_logged(b, {"t": c["replies_failed_total"]})


def no_room(b, s, gate):
    """Holds the ring, fills it, then lets subscriber `s` answer: every reply finds the ring
    full. Checks that no answered event is sent again (a retry would come within 1 s) and
    waits until every reply of trigger t is settled; returns the accepted ids and the holder
    (still attached)."""
    holder = Holder(b)
    accepted = fill(b, b"e" * 1500)
    check(len(accepted) >= 20, "%d events fit" % len(accepted))
    gate.set()
    s.wait_for(len(accepted))
    time.sleep(1.0)
    again = {i: n for i, n in collections.Counter(s.ids()).items() if n > 1}
    eq(again, {}, "events answered 200 and delivered again")
    eq(sorted(s.ids()), sorted(accepted), "every accepted event delivered")
    wait_until("replies settled", lambda: settled(b, "t") and
               metric(b, "ringcast_trigger_delivered_total", "t") == len(accepted), 15)
    return accepted, holder


def wait_logged(b, expect):
    """The log adds up to `expect` (trigger -> replies not stored) within 3 s: a summary line
    comes at the end of its one-second window."""
    got = None
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        got = logged_failures(b.log())
        if all(got[0][t] == n for t, n in expect.items()):
            return got
        time.sleep(0.1)
    raise AssertionError("replies logged as not stored: %r, metrics say %r" % (dict(got[0]),
                                                                                expect))


def test_no_room_for_replies_dead_letters_them():
    """Nothing in the ring can be released (a lossless reader that never reads holds it), so
    every reply finds it full. Before the fix each answered event was sent again and again.
    Now each is delivered once; its reply waits in the queue (counted as delayed) and after the
    maximum wait goes to the dead-letter sink (reason timeout, knativeerrorcode 429), with its
    own attributes and data. The metrics, the log and the sink agree; once the reader moves on,
    ingress accepts again."""
    gate = threading.Event()
    with Subscriber(replier("r", gate=gate)) as s, Subscriber() as dlq:
        cfg = config(trigger("t", s.url, "a", ["retry: 2", "backoffDelay: PT0.05S",
                                               "deadLetterSink: {uri: %s}" % dlq.url]),
                     ring="64Ki")
        with Broker(cfg, env=env(REPLY_MAX_WAIT_MS=700)) as b:
            accepted, holder = no_room(b, s, gate)
            n = len(accepted)
            c = counts(b, "t")
            eq((c["replies_total"], c["replies_delayed_total"], c["replies_failed_total"],
                c["replies_dead_lettered_total"], c["replies_dropped_total"]),
               (0, n, n, n, 0), "replies stored, delayed, failed, dead-lettered, dropped")
            got = dlq.wait_for(n)
            eq(sorted(r.ce("id") for r in got), sorted("r-" + i for i in accepted),
               "the replies reached the sink")
            for r in got:
                eq(r.ce("ringcastreplyerror"), "timeout", "ringcastreplyerror")
                eq(r.ce("knativeerrorcode"), "429", "knativeerrorcode")
                eq(r.ce("knativeerrordest"), "/default/default", "knativeerrordest")
                eq(r.ce("ringcastreplyto"), r.ce("id")[2:], "ringcastreplyto")
                eq((r.ce("source"), r.ce("type")), ("/replier", "r"), "the reply's attributes")
                eq(r.body, b"r" * 1000, "the reply's data")
                eq(r.ce("knativebrokerttl"), None, "no TTL to the sink")
            _, reasons = wait_logged(b, {"t": n})
            eq(set(reasons), {"timeout"}, "logged reasons")
            holder.release()
            recovers(b, 5.0)


def test_full_reply_queue_drops_without_sink():
    """As above with a 16 KiB reply queue and no dead-letter sink: the replies that find the
    queue full are dropped at once (reason queue_full), the queued ones after the maximum wait
    (timeout); every one is counted and logged."""
    gate = threading.Event()
    with Subscriber(replier("r", gate=gate)) as s:
        cfg = config(trigger("t", s.url, "a"), ring="64Ki")
        with Broker(cfg, env=env(REPLY_QUEUE_BYTES=16384, REPLY_MAX_WAIT_MS=500)) as b:
            accepted, holder = no_room(b, s, gate)
            n = len(accepted)
            c = counts(b, "t")
            delayed = c["replies_delayed_total"]
            check(0 < delayed < n, "some replies waited, not all: %s" % c)
            eq((c["replies_total"], c["replies_failed_total"], c["replies_dead_lettered_total"],
                c["replies_dropped_total"]), (0, n, 0, n),
               "replies stored, failed, dead-lettered, dropped")
            _, reasons = wait_logged(b, {"t": n})
            eq(dict(reasons), {"queue_full": n - delayed, "timeout": delayed}, "logged reasons")
            check("dropped (no dead-letter sink)" in b.log(), "the log says what became of them")
            holder.release()
            recovers(b, 5.0)


def test_failing_sink_drops_replies():
    """The dead-letter sink refuses the replies given up (400: not retried): each is dropped,
    counted and logged; failed = dead-lettered + dropped still holds."""
    gate = threading.Event()
    with Subscriber(replier("r", gate=gate)) as s, \
            Subscriber(lambda _i, _r: (400, {}, b"no", 0.0)) as dlq:
        cfg = config(trigger("t", s.url, "a", ["deadLetterSink: {uri: %s}" % dlq.url]),
                     ring="64Ki")
        with Broker(cfg, env=env(REPLY_MAX_WAIT_MS=300)) as b:
            accepted, holder = no_room(b, s, gate)
            n = len(accepted)
            c = counts(b, "t")
            eq((c["replies_failed_total"], c["replies_dead_lettered_total"],
                c["replies_dropped_total"]), (n, 0, n), "replies failed, dead-lettered, dropped")
            eq(dlq.count(), n, "one attempt each at the sink")
            wait_logged(b, {"t": n})
            deadline = time.monotonic() + 3
            while logged_sink_failures(b.log())["t"] != n and time.monotonic() < deadline:
                time.sleep(0.1)
            eq(logged_sink_failures(b.log())["t"], n, "logged as not dead-lettered")
            holder.release()


def test_stop_dead_letters_queued_replies():
    """SIGTERM while replies wait for room (the ring is held): within shutdownTimeout the worker
    gives them to the dead-letter sink (reason stopping) and logs each; none is lost
    silently."""
    gate = threading.Event()
    with Subscriber(replier("r", gate=gate)) as s, Subscriber() as dlq:
        cfg = config(trigger("t", s.url, "a", ["deadLetterSink: {uri: %s}" % dlq.url]),
                     ring="64Ki", shutdown="2s")
        with Broker(cfg) as b:
            holder = Holder(b)
            try:
                accepted = fill(b, b"e" * 1500)
                gate.set()
                s.wait_for(len(accepted))
                time.sleep(0.3)
                start = time.monotonic()
                b.signal(signal.SIGTERM)
                eq(b.wait(10), 0, "serve exit code")
                check(time.monotonic() - start < 5, "stopped within the drain time")
            finally:
                holder.release()
            got = dlq.wait_for(len(accepted), timeout=2)
            eq(sorted(r.ce("id") for r in got), sorted("r-" + i for i in accepted),
               "queued replies dead-lettered at stop")
            eq({r.ce("ringcastreplyerror") for r in got}, {"stopping"}, "reason")
            logged, reasons = logged_failures(b.log())
            eq(logged["t"], len(accepted), "logged")
            eq(set(reasons), {"stopping"}, "logged reason")


def test_reply_loop_does_not_freeze_the_ring():
    """(b) Two triggers whose subscribers answer each other (ping -> pong -> ping ...), a loop
    limited only by the TTL, on a 1 MiB ring under load, with the default delivery policy.
    Before the fix the deliveries stood still with the ring full of answered events. Now they
    never stall while there is work, ingress answers only 202 or 429 and accepts again soon
    after the load stops, the loop ends, and every reply that could not be stored is counted in
    /metrics exactly as the log says (a small reply queue makes some fail)."""
    with Subscriber(replier("pong", b"x" * 2000)) as ping, \
            Subscriber(replier("ping", b"y" * 2000)) as pong, Subscriber() as dlq:
        cfg = config(trigger("ping", ping.url, "ping", ["deadLetterSink: {uri: %s}" % dlq.url]),
                     trigger("pong", pong.url, "pong"))
        with Broker(cfg, env=env(REPLY_QUEUE_BYTES=32768, REPLY_MAX_WAIT_MS=500)) as b:
            samples = []  # (time, deliveries so far, whether events wait for delivery)
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    m = b.metrics()
                    n = busy = 0
                    for t in ("ping", "pong"):
                        n += metric(b, "ringcast_trigger_delivered_total", t, m)
                        busy += metric(b, "ringcast_trigger_inflight", t, m)
                        busy += metric(b, "ringcast_trigger_lag_events", t, m)
                    samples.append((time.monotonic(), n, busy > 0))
                    time.sleep(0.25)
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            try:
                accepted, refused, other = load(b, 3.0, "ping", ttl=6, body=b"e" * 2000)
                eq(other, [], "only 202 and 429")
                check(len(accepted) > 0, "nothing accepted")
                took = recovers(b, 10.0)
                ended = False
                deadline = time.monotonic() + 30
                while not ended and time.monotonic() < deadline:
                    ended = settled(b, "ping") and settled(b, "pong") and not samples[-1][2]
                    time.sleep(0.1)
            finally:
                stop.set()
                th.join(5)
            # The deliveries never stood still for 3 s while events waited for them (before the
            # fix they stopped for good).
            t0, since, last = samples[0][0], samples[0][0], samples[0][1]
            for t, n, busy in samples[1:]:
                if n != last or not busy:
                    since, last = t, n
                check(t - since < 3.0, "deliveries stalled from %.1f s to %.1f s with events "
                      "waiting" % (since - t0, t - t0))
            check(ended, "the reply loop did not end within 30 s")
            cp, cq = counts(b, "ping"), counts(b, "pong")
            print("     %d accepted, %d refused, 202 again after %.2f s; ping %s; pong %s" %
                  (len(accepted), refused, took, cp, cq))
            wait_logged(b, {"ping": cp["replies_failed_total"],
                            "pong": cq["replies_failed_total"]})
            eq(dlq.count(), cp["replies_dead_lettered_total"], "dead letters of ping's replies")
            eq(cq["replies_dead_lettered_total"], 0, "pong has no sink")
            eq(cq["replies_dropped_total"], cq["replies_failed_total"], "pong drops")


if __name__ == "__main__":
    Runner().run([
        test_full_ring_under_load_recovers,
        test_no_room_for_replies_dead_letters_them,
        test_full_reply_queue_drops_without_sink,
        test_failing_sink_drops_replies,
        test_stop_dead_letters_queued_replies,
        test_reply_loop_does_not_freeze_the_ring,
    ])
