#!/usr/bin/env python3
"""Duplicates after a crash or a restart of `ringcast serve` (issue 11, defect 6): every trigger's
cursor is saved with the broker's ring, so a restarted broker re-delivers to each trigger at most
what it had in flight, even while another trigger lags far behind and holds the feeds back.

- kill -9 of serve in a loop under steady load, with a lagging trigger (a slow subscriber) and
  two healthy ones (one on the lagging trigger's worker, so on its feed, one on another worker):
  the workers die with serve; duplicates at each healthy sink, per kill, stay within the
  trigger's in-flight window; every event that got 202 reaches every sink at least once.
- a clean stop and start while a trigger lags: no duplicate at all at the healthy sink.
- a trigger renamed while serve was down starts at the latest event; one removed and added back
  starts there too (its saved cursor was dropped); the kept ones resume.
- a ring replaced (another size) does not inherit the old ring's cursors: nothing is skipped.

Sinks are `ringcast sink` processes (their --out lines carry the event ids) and an http.server
subscriber whose speed the test switches. Every wait is bounded."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Conn, Runner, alive, check, children, eq  # noqa: E402
from rc_sink import Sink  # noqa: E402
from subscriber import Subscriber  # noqa: E402

HEALTHY_WINDOW = 10  # ringcast.dev/max-inflight of the healthy triggers
LAG_WINDOW = 4
LAG_DELAY = 0.2  # seconds the lagging subscriber takes per event: 20 events/s at most
RATE = 250       # events per second the sender aims at
KILLS = 4
LOAD_S = 2.5     # load between two kills

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: %d
  shutdownTimeout: 2s
  ring: {size: %s}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def trigger(name, uri, window):
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
            "  name: %s\n  annotations:\n    ringcast.dev/max-inflight: \"%d\"\n"
            "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
            "  delivery: {retry: 50, backoffPolicy: linear, backoffDelay: PT0.05S,"
            " backoffMax: PT0.1S, timeout: PT5S}\n" % (name, window, uri))


def config(*triggers, workers=1, size="16Mi"):
    doc = HEAD % (workers, size)
    if size != "16Mi":  # the loader checks that the default limits fit the ring
        doc = doc.replace("  ring: {size: %s}\n" % size, "  ring: {size: %s}\n  limits: "
                          "{maxEventBytes: 256Ki, maxBatchBytes: 1Mi, maxBatchEvents: 100}\n"
                          % size)
    return doc + "".join(triggers)


class Lagging:
    """An http.server subscriber that answers 200 after LAG_DELAY until told to hurry."""

    def __init__(self):
        self.slow = True
        self.sub = Subscriber(self._answer)

    def _answer(self, _i, _req):
        return 200, {}, b"", LAG_DELAY if self.slow else 0.0

    def ids(self):
        return self.sub.ids()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sub.close()


class Sender:
    """Posts events at RATE per second to whichever broker `self.b` is now, over one
    keep-alive connection, reconnecting after a failure (the broker was killed, or is not up
    yet). An event that did not get 202 is never sent again: its id is given up, so a second
    copy at a sink can only be a re-delivery."""

    def __init__(self, b, prefix):
        self.b, self.prefix = b, prefix
        self.accepted = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c, cb, i = None, None, 0
        start = time.monotonic()
        while not self.stop.is_set():
            due = start + i / RATE
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            eid = "%s-%d" % (self.prefix, i)
            i += 1
            b = self.b
            if b is None:
                self.refused += 1
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.02)
                continue
            try:
                if c is None or cb is not b:
                    if c is not None:
                        c.close()
                    c, cb = Conn(b.host, b.port, timeout=2.0), b
                c.send_request("POST", "/default/default",
                               {"ce-id": eid, "ce-source": "/crash", "ce-type": "a",
                                "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
                r = c.response()
                if r.status == 202:
                    self.accepted.append(eid)
                else:
                    self.refused += 1
            except (OSError, EOFError, ValueError):
                self.refused += 1
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.02)
        if c is not None:
            c.close()

    def join(self):
        self.stop.set()
        self.thread.join(10)
        check(not self.thread.is_alive(), "sender stopped")
        return list(self.accepted)


def sink_ids(sink):
    return [e["id"] for e in sink.events()]


def dups(ids):
    return len(ids) - len(set(ids))


def start(cfg, prefix):
    """A broker on the ring prefix `prefix` (shared by every restart)."""
    return Broker(cfg, args=["--ring-prefix", prefix])


def discard(b):
    """Forgets a broker that was killed or stopped, keeping the rings for the next one."""
    b.stop()
    log = b.log()
    b.proc.stdout.close()
    b.stderr.close()
    b.tmp.cleanup()
    return log


def wait_all(want, sources, timeout):
    """Waits until every id in `want` reached every source (a callable returning ids)."""
    deadline = time.monotonic() + timeout
    missing = {}
    while time.monotonic() < deadline:
        missing = {name: want - set(f()) for name, f in sources.items()}
        if not any(missing.values()):
            return
        time.sleep(0.1)
    raise AssertionError("lost: %s" % {k: (len(v), sorted(v)[:5]) for k, v in missing.items()
                                        if v})


# ---- tests ------------------------------------------------------------------------------------

def test_kill_loop_duplicates_bounded():
    """KILLS times: steady load for LOAD_S, kill -9 serve, start it again at once. The lagging
    trigger falls further behind every round, so a broker that resumed every trigger from the
    feeds' oldest position would re-deliver thousands of events to the healthy sinks."""
    with Lagging() as lag, Sink("--quiet") as ha, Sink("--quiet") as hb:
        # Worker 0: lag and healthy-a (one feed); worker 1: healthy-b.
        cfg = config(trigger("lag", lag.sub.url, LAG_WINDOW),
                     trigger("healthy-b", hb.url, HEALTHY_WINDOW),
                     trigger("healthy-a", ha.url, HEALTHY_WINDOW), workers=2)
        first = Broker(cfg)
        prefix = first.prefix
        b = first
        snd = None
        try:
            snd = Sender(b, "k")
            per_kill = []
            before = {"a": 0, "b": 0}
            for k in range(KILLS):
                time.sleep(LOAD_S)
                now = {"a": dups(sink_ids(ha)), "b": dups(sink_ids(hb))}
                if k > 0:
                    per_kill.append({s: now[s] - before[s] for s in now})
                before = now
                workers = children(b.proc.pid)
                eq(len(workers), 2, "two workers before kill %d" % (k + 1))
                os.kill(b.proc.pid, signal.SIGKILL)
                b.proc.wait(5)
                nb = start(cfg, prefix)
                snd.b = nb
                if b is not first:
                    discard(b)
                b = nb
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and any(alive(p) for p in workers):
                    time.sleep(0.02)
                check(not any(alive(p) for p in workers),
                      "the workers of the killed broker died with it")
            time.sleep(LOAD_S)
            accepted, refused = snd.join(), snd.refused
            snd = None
            check(len(accepted) > KILLS * LOAD_S * RATE / 3,
                  "sender got %d events in (%d refused)" % (len(accepted), refused))
            lag_behind = len(accepted) - len(set(lag.ids()))
            print("lagging trigger: %d events behind at the end of the load" % lag_behind)
            check(lag_behind > len(accepted) // 2,
                  "the lagging trigger lagged (%d behind)" % lag_behind)
            lag.slow = False
            want = set(accepted)
            wait_all(want, {"healthy-a": lambda: sink_ids(ha), "healthy-b": lambda: sink_ids(hb),
                            "lag": lag.ids}, 60)
            now = {"a": dups(sink_ids(ha)), "b": dups(sink_ids(hb))}
            per_kill.append({s: now[s] - before[s] for s in now})
            print("duplicates per kill at the healthy sinks: %s (accepted %d, refused %d)"
                  % (per_kill, len(accepted), refused))
            bound = 2 * HEALTHY_WINDOW  # the window, plus the events in flight at the kill
            for k, d in enumerate(per_kill):
                for s, n in d.items():
                    check(n <= bound, "kill %d: %d duplicates at healthy-%s (bound %d); all: %s"
                          % (k + 1, n, s, bound, per_kill))
            eq(b.stop(), 0, "the last broker stops cleanly")
        finally:
            if snd is not None:
                snd.join()
            if b is not first:
                discard(b)
            first.__exit__(None, None, None)


def test_clean_restart_no_duplicates():
    """SIGTERM while a trigger lags: the workers finish what is in flight and leave every
    cursor saved, so the next broker sends the healthy trigger nothing twice."""
    with Lagging() as lag, Sink("--quiet") as h:
        cfg = config(trigger("lag", lag.sub.url, LAG_WINDOW),
                     trigger("healthy", h.url, HEALTHY_WINDOW))
        first = Broker(cfg)
        b = first
        try:
            snd = Sender(b, "c")
            time.sleep(2.0)
            snd.b = None  # the sender fails (and gives ids up) until the next broker is up
            eq(b.stop(), 0, "graceful stop")
            b = start(cfg, first.prefix)
            snd.b = b
            time.sleep(1.5)
            accepted = snd.join()
            lag.slow = False
            wait_all(set(accepted), {"healthy": lambda: sink_ids(h), "lag": lag.ids}, 60)
            eq(dups(sink_ids(h)), 0, "duplicates at the healthy sink after a clean restart")
            check("resuming" in b.log(), "the feeds resumed")
        finally:
            if b is not first:
                discard(b)
            first.__exit__(None, None, None)


def publish(b, eid):
    r = b.request("POST", "/default/default",
                  {"ce-id": eid, "ce-source": "/crash", "ce-type": "a", "ce-specversion": "1.0",
                   "Content-Type": "text/plain"}, b"x")
    eq(r.status, 202, "publish %s" % eid)


def test_renamed_and_removed_triggers():
    """While serve is down a trigger is renamed and another removed. After the restart the
    renamed one (a new identity) starts at the latest event instead of inheriting a cursor or
    starting at the feed's old position; the kept one resumes. The removed trigger's cursor is
    dropped: added back by a later restart, it too starts at the latest event."""
    with Lagging() as lag, Sink("--quiet") as kept, Sink("--quiet") as renamed, \
            Sink("--quiet") as removed:
        v1 = config(trigger("lag", lag.sub.url, 1), trigger("kept", kept.url, 5),
                    trigger("old-name", renamed.url, 5), trigger("removed", removed.url, 5))
        v2 = config(trigger("lag", lag.sub.url, 1), trigger("kept", kept.url, 5),
                    trigger("new-name", renamed.url, 5))
        first = Broker(v1)
        b = first
        try:
            for i in range(60):
                publish(b, "one-%d" % i)
            want = {"one-%d" % i for i in range(60)}
            wait_all(want, {"kept": lambda: sink_ids(kept), "old-name": lambda: sink_ids(renamed),
                            "removed": lambda: sink_ids(removed)}, 10)
            os.kill(b.proc.pid, signal.SIGKILL)
            b.proc.wait(5)
            b = start(v2, first.prefix)
            for i in range(20):
                publish(b, "two-%d" % i)
            two = {"two-%d" % i for i in range(20)}
            wait_all(two, {"kept": lambda: sink_ids(kept), "new-name": lambda: sink_ids(renamed)},
                     10)
            time.sleep(0.3)
            eq(sorted(set(sink_ids(renamed)) - want - two), [], "unexpected ids at new-name")
            eq(dups(sink_ids(renamed)), 0, "new-name got nothing the old name had")
            check(dups(sink_ids(kept)) <= 5, "kept: %d duplicates" % dups(sink_ids(kept)))
            eq(b.stop(), 0, "graceful stop")
            discard(b)
            b = start(v1, first.prefix)
            for i in range(10):
                publish(b, "three-%d" % i)
            three = {"three-%d" % i for i in range(10)}
            wait_all(three, {"removed": lambda: sink_ids(removed)}, 10)
            time.sleep(0.3)
            got = set(sink_ids(removed))
            eq(sorted(got & two), [], "the re-added trigger starts at the latest event")
        finally:
            if b is not first:
                discard(b)
            first.__exit__(None, None, None)


def test_replaced_ring_starts_cursors_afresh():
    """Cursors saved for one ring never apply to its replacement: after 300 events the broker
    restarts with another ring size (the ring is replaced, its sequence numbers start again at
    0) and the next 10 events all arrive."""
    with Sink("--quiet") as s:
        cfg = config(trigger("t", s.url, 5))
        first = Broker(cfg)
        b = first
        try:
            for i in range(300):
                publish(b, "old-%d" % i)
            wait_all({"old-%d" % i for i in range(300)}, {"t": lambda: sink_ids(s)}, 15)
            eq(b.stop(), 0, "graceful stop")
            b = start(config(trigger("t", s.url, 5), size="8Mi"), first.prefix)
            check("replacing" in b.log(), "the ring was replaced: %s" % b.log()[-1500:])
            new = {"new-%d" % i for i in range(10)}
            for eid in sorted(new):
                publish(b, eid)
            wait_all(new, {"t": lambda: sink_ids(s)}, 10)
        finally:
            if b is not first:
                discard(b)
            first.__exit__(None, None, None)


if __name__ == "__main__":
    Runner().run([
        test_kill_loop_duplicates_bounded,
        test_clean_restart_no_duplicates,
        test_renamed_and_removed_triggers,
        test_replaced_ring_starts_cursors_afresh,
    ])
