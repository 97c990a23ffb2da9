#!/usr/bin/env python3
"""Routing in the workers, end to end: each worker reads a broker's events through one feed and
routes them once with one route program over all its triggers there (docs/delivery.md,
"Workers"). Many exact-type triggers, per-trigger queues (a stuck trigger does not hold back
another on the same worker), kill -9 of workers under load, reload with events pending, CESQL
error counters on /metrics."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402
from test_delivery import config, metric, publish, trigger, wait_metric, worker_pids  # noqa: E402


def by_path(sub):
    """{path: [ids in arrival order]} of a subscriber's requests."""
    out = {}
    for r in list(sub.requests):
        out.setdefault(r.path, []).append(r.ce("id"))
    return out


def wait_ids(sub, ids, timeout=15.0):
    """Waits until every id in `ids` has reached `sub` at least once."""
    deadline = time.monotonic() + timeout
    want = set(ids)
    while time.monotonic() < deadline and not want <= set(sub.ids()):
        time.sleep(0.05)
    missing = want - set(sub.ids())
    check(not missing, "%d ids never delivered, e.g. %r" % (len(missing), sorted(missing)[:5]))


def test_many_exact_triggers():
    """2,000 exact-type triggers (one path each), a prefix, a CESQL and an all-events trigger on
    two workers: each event reaches exactly the triggers it matches."""
    n = 2000
    with Subscriber() as exact, Subscriber() as pfx, Subscriber() as sql, Subscriber() as every:
        trigs = [trigger("ex-%d" % i, "%s/ex-%d" % (exact.url, i),
                         "  filter: {attributes: {type: t%d}}\n" % i) for i in range(n)]
        trigs.append(trigger("pfx", pfx.url, "  filters: [{prefix: {type: order.}}]\n"))
        trigs.append(trigger("sql", sql.url,
                             "  filters: [{cesql: \"source = '/special' AND type LIKE 't1%'\"}]\n"))
        trigs.append(trigger("every", every.url))
        with Broker(config(*trigs, workers=2)) as b:
            sent = [("1", "t0", "/test"), ("2", "t7", "/test"), ("3", "t1999", "/special"),
                    ("4", "t7", "/test"), ("5", "nomatch", "/test"), ("6", "order.new", "/test"),
                    ("7", "t2000", "/test"), ("8", "t1234", "/special"), ("9", "t10", "/x")]
            for i, etype, source in sent:
                publish(b, i, etype, {"ce-source": source})
            every.wait_for(len(sent))
            exact.wait_for(6)
            pfx.wait_for(1)
            sql.wait_for(2)
            time.sleep(0.5)  # anything extra would arrive by now
            # Each once, in any order: events 2 and 4 are in ex-7's window (100) together.
            got = {path: sorted(ids, key=int) for path, ids in by_path(exact).items()}
            eq(got, {"/ex-0": ["1"], "/ex-7": ["2", "4"], "/ex-1999": ["3"], "/ex-1234": ["8"],
                     "/ex-10": ["9"]}, "exact triggers")
            eq(pfx.ids(), ["6"], "prefix trigger")
            eq(sorted(sql.ids()), ["3", "8"], "cesql trigger")
            eq(sorted(every.ids(), key=int), [s[0] for s in sent], "trigger without filter")
            wait_metric(b, "ringcast_trigger_delivered_total", "ex-7", 2)
            wait_metric(b, "ringcast_trigger_delivered_total", "ex-8", 0)
            wait_metric(b, "ringcast_trigger_lag_events", "ex-8", 0)
            wait_metric(b, "ringcast_trigger_lag_events", "every", 0)


def test_stuck_trigger_does_not_hold_back_its_worker():
    """One worker, two triggers. The first has a window of 2 and a subscriber that hangs on its
    first requests: its other events wait in its queue while the second trigger gets
    everything at once; then the first catches up with nothing lost."""
    release = threading.Event()

    def stuck(i, _req):
        if i < 2:
            release.wait(10)
        return 200, {}, b"", 0.0
    with Subscriber(stuck) as slow, Subscriber() as fast:
        cfg = config(trigger("slow", slow.url, annotations=[("ringcast.dev/max-inflight", 2)],
                             delivery=["timeout: PT30S"]),
                     trigger("fast", fast.url), workers=1)
        with Broker(cfg) as b:
            ids = [str(i) for i in range(60)]
            for i in ids:
                publish(b, i)
            wait_ids(fast, ids, timeout=5)
            eq(slow.count(), 2, "the stuck trigger has only its window out")
            wait_metric(b, "ringcast_trigger_inflight", "slow", 2)
            wait_metric(b, "ringcast_trigger_lag_events", "fast", 0)
            check(metric(b, "ringcast_trigger_lag_events", "slow") >= 58, "slow trigger lags")
            release.set()
            wait_ids(slow, ids)
            wait_metric(b, "ringcast_trigger_delivered_total", "slow", 60)
            wait_metric(b, "ringcast_trigger_lag_events", "slow", 0)
            wait_metric(b, "ringcast_trigger_inflight", "slow", 0)
            eq(len(slow.ids()), 60, "no duplicates without a crash")


def test_kill_workers_under_load_no_loss():
    """Three workers, six triggers; while events are being published, two workers are killed
    with SIGKILL. Every event that got 202 reaches every trigger at least once."""
    subs = [Subscriber() for _ in range(6)]
    try:
        cfg = config(*[trigger("t%d" % i, s.url) for i, s in enumerate(subs)], workers=3)
        with Broker(cfg) as b:
            pids = worker_pids(b)
            eq(len(pids), 3, "three workers")
            ids = []
            for i in range(600):
                publish(b, i)
                ids.append(str(i))
                if i == 150:
                    os.kill(pids[0], signal.SIGKILL)
                if i == 350:
                    os.kill(pids[2], signal.SIGKILL)
            for s in subs:
                wait_ids(s, ids, timeout=20)
            eq(b.metrics().get("ringcast_worker_restarts_total"), 2.0, "restarts")
    finally:
        for s in subs:
            s.close()


def test_reload_keeps_pending_events():
    """A stuck trigger with events pending in its queue survives a reload that adds a trigger
    and changes the number of workers: it still gets every event, the new trigger only what
    was published after the reload."""
    release = threading.Event()

    def stuck(i, _req):
        if i < 1:
            release.wait(10)
        return 200, {}, b"", 0.0
    with Subscriber(stuck) as slow, Subscriber() as other, Subscriber() as new:
        v1 = config(trigger("slow", slow.url, annotations=[("ringcast.dev/max-inflight", 1)]),
                    trigger("other", other.url), workers=1)
        v2 = config(trigger("slow", slow.url, annotations=[("ringcast.dev/max-inflight", 1)]),
                    trigger("other", other.url), trigger("new", new.url), workers=2)
        with Broker(v1) as b:
            path = [a for a in b.proc.args if a.endswith(".yaml")][0]
            before = [str(i) for i in range(20)]
            for i in before:
                publish(b, i)
            wait_ids(other, before, timeout=5)
            eq(slow.count(), 1, "stuck on its first event")
            with open(path, "w") as f:
                f.write(v2)
            b.signal(signal.SIGHUP)
            time.sleep(0.2)
            release.set()  # the drain on reload ends the stuck attempt at the latest here
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and b.metrics().get(
                    "ringcast_config_reloads_total") != 1.0:
                time.sleep(0.05)
            eq(b.metrics().get("ringcast_config_reloads_total"), 1.0, "reloaded")
            after = [str(i) for i in range(20, 30)]
            for i in after:
                publish(b, i)
            wait_ids(slow, before + after)
            wait_ids(other, after)
            wait_ids(new, after)
            time.sleep(0.3)
            eq(sorted(new.ids(), key=int), after, "new trigger starts at the reload")


def test_cesql_errors_counted():
    """A CESQL filter on an extension most events lack: each such event is an evaluation error
    (no match), counted per trigger on /metrics."""
    with Subscriber() as s, Subscriber() as plain:
        cfg = config(trigger("sql", s.url, "  filters: [{cesql: \"myext = 'x'\"}]\n"),
                     trigger("plain", plain.url, "  filter: {attributes: {type: a}}\n"))
        with Broker(cfg) as b:
            publish(b, 1, "a")
            publish(b, 2, "a", {"ce-myext": "x"})
            publish(b, 3, "a")
            publish(b, 4, "a", {"ce-myext": "y"})
            publish(b, 5, "a")
            eq([r.ce("id") for r in s.wait_for(1)], ["2"], "the matching event")
            wait_metric(b, "ringcast_trigger_cesql_errors_total", "sql", 3)
            eq(metric(b, "ringcast_trigger_cesql_errors_total", "plain"), 0, "no cesql, no errors")
            plain.wait_for(5)
            time.sleep(0.2)
            eq(s.count(), 1, "errors do not match")


def test_restart_resumes_every_feed():
    """Two workers; trigger `down` cannot deliver (503) when the broker stops. The next broker on
    the same rings resumes the feeds where the old ones stood: `down` gets every event, `up`
    may get some again (at-least-once) but loses none."""
    def unavailable(_i, _req):
        return 503, {}, b"", 0.0
    with Subscriber(unavailable) as down, Subscriber() as up, Subscriber() as other:
        cfg = config(trigger("down", down.url, delivery=["retry: 1000", "backoffDelay: PT0.05S",
                                                         "backoffMax: PT0.05S"]),
                     trigger("up", up.url), trigger("other", other.url), workers=2)
        ids = [str(i) for i in range(10)]
        b = Broker(cfg)
        try:
            for i in ids:
                publish(b, i)
            wait_ids(up, ids, timeout=5)
            down.wait_for(10)
            b.stop()
            failed = down.count()
            down.behaviour = lambda _i, _req: (200, {}, b"", 0.0)
            b2 = Broker(cfg, args=["--ring-prefix", b.prefix])
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and \
                        not set(ids) <= set(down.ids()[failed:]):
                    time.sleep(0.05)
                eq(sorted(set(down.ids()[failed:]), key=int), ids, "delivered after the restart")
                publish(b2, "after")
                wait_ids(up, ids + ["after"])
                wait_ids(other, ids + ["after"])
                check("resuming from its saved cursor" in b2.log(), "resumed")
                wait_metric(b2, "ringcast_trigger_lag_events", "down", 0)
            finally:
                b2.stop()
                b2.remove_rings()
        finally:
            b.stop()
            b.remove_rings()


if __name__ == "__main__":
    Runner().run([
        test_many_exact_triggers,
        test_stuck_trigger_does_not_hold_back_its_worker,
        test_kill_workers_under_load_no_loss,
        test_reload_keeps_pending_events,
        test_cesql_errors_counted,
        test_restart_resumes_every_feed,
    ])
