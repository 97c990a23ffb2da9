#!/usr/bin/env python3
"""A stuck consumer must not stop the broker (issue 11, defect 3): the real `ringcast serve`.
A SIGSTOPped worker is replaced by the watchdog and delivery resumes; a SIGSTOPped
`ringcast tail --group` member does not stop ingestion once its group passes the lag limit, and
the events it skipped are counted exactly; /metrics and the log name the reader that holds the
ring back while a trigger's subscriber hangs. Every wait is bounded."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import RINGCAST, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402

SETTINGS = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 500ms
  ring: {size: 256Ki}
  limits: {maxEventBytes: 32Ki, maxHeaderBytes: 8Ki, maxBatchBytes: 32Ki, maxBatchEvents: 16}
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""

BODY = b"x" * 1000  # about 1.2 KiB of ring per event: 256 KiB hold about 200


def config(extra="", triggers=()):
    doc = SETTINGS % extra
    for name, uri in triggers:
        doc += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                "metadata: {name: %s}\nspec:\n  broker: default\n  subscriber: {uri: %s}\n"
                % (name, uri))
    return doc


def publish(conn, i):
    """One binary-mode event on a keep-alive connection; returns the status."""
    conn.send_request("POST", "/default/default",
                      {"ce-id": str(i), "ce-source": "/lag", "ce-type": "t",
                       "ce-specversion": "1.0", "Content-Type": "text/plain"}, BODY)
    return conn.response().status


def publish_until_accepted(b, conn, i, timeout=5.0):
    """Publishes event i, again after each 429, until it is accepted; returns the 429 count."""
    deadline = time.monotonic() + timeout
    refused = 0
    while True:
        st = publish(conn, i)
        if st == 202:
            return refused
        eq(st, 429, "status of event %d" % i)
        refused += 1
        if time.monotonic() > deadline:
            raise AssertionError("event %d: still 429 after %.0f s (%d tries)" %
                                 (i, timeout, refused))
        time.sleep(0.01)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out (%.0f s) waiting for %s" % (timeout, what))


def metric(b, prefix):
    """The value of the one series whose name and labels start with `prefix` (None if none)."""
    found = [v for k, v in b.metrics().items() if k.startswith(prefix)]
    check(len(found) <= 1, "several series start with %s" % prefix)
    return found[0] if found else None


# ---- the watchdog ---------------------------------------------------------------------------

def test_watchdog_replaces_stopped_worker():
    """The default watchdog timeout (5 s): an idle worker sleeps on the ring for 50 ms at a time
    and stays fresh; a SIGSTOPped one is killed and replaced, and the new one delivers."""
    with Subscriber() as s:
        with Broker(config(triggers=[("t", s.url)])) as b:
            c = b.conn()
            eq(publish(c, 0), 202, "first event")
            s.wait_for(1)
            m = re.search(r"worker 0 \(pid (\d+)\): 1 trigger", b.log())
            check(m, "worker start not logged: %s" % b.log())
            pid = int(m.group(1))
            time.sleep(6)  # idle for longer than the timeout
            check("no heartbeat" not in b.log(), "an idle worker was killed: %s" % b.log())
            os.kill(pid, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                for i in range(1, 6):
                    eq(publish(c, i), 202, "publish while the worker is stopped")
                wait_until(lambda: {"1", "2", "3", "4", "5"} <= set(s.ids()), 15,
                           "delivery by a new worker")
                took = time.monotonic() - t0
                check(took < 9, "replaced after %.1f s" % took)
                wait_until(lambda: not alive(pid), 5, "the stopped worker to be gone")
                check("worker 0 (pid %d): no heartbeat for" % pid in b.log(), b.log())
                eq(b.metrics().get("ringcast_worker_watchdog_kills_total"), 1, "kills")
                eq(b.metrics().get("ringcast_worker_restarts_total"), 1, "restarts")
                eq(publish(c, 6), 202, "publish after")
                wait_until(lambda: "6" in s.ids(), 5, "delivery after")
            finally:
                if alive(pid):  # only if it still exists: the test failed then
                    os.kill(pid, signal.SIGCONT)
            c.close()


def test_watchdog_timeout_setting():
    """spec.watchdogTimeout: a stopped worker goes after about that long."""
    with Subscriber() as s:
        with Broker(config("  watchdogTimeout: 1s\n", [("t", s.url)])) as b:
            c = b.conn()
            eq(publish(c, 0), 202, "first event")
            s.wait_for(1)
            pid = int(re.search(r"worker 0 \(pid (\d+)\): 1 trigger", b.log()).group(1))
            os.kill(pid, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                wait_until(lambda: not alive(pid), 10, "the stopped worker to be gone")
                took = time.monotonic() - t0
                check(0.9 < took < 4, "killed after %.1f s" % took)
                check("(watchdogTimeout 1000 ms)" in b.log(), b.log())
                eq(publish(c, 1), 202, "publish after")
                wait_until(lambda: "1" in s.ids(), 10, "delivery after")
            finally:
                if alive(pid):
                    os.kill(pid, signal.SIGCONT)
            c.close()


# ---- a stopped consumer-group member -----------------------------------------------------

def read_line(proc, timeout):
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return None
    return proc.stdout.readline()


def test_stopped_group_member_does_not_stop_ingestion():
    total = 1000  # about five rings
    with Broker(config()) as b:
        tail = subprocess.Popen([RINGCAST, "tail", "default/default", "--group", "g1",
                                 "--from", "latest", "--ring-prefix", b.prefix,
                                 "--timeout", "1s"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            c = b.conn()
            line = None
            deadline = time.monotonic() + 10
            while line is None and time.monotonic() < deadline:
                eq(publish(c, 0), 202, "first event")  # until the member has joined
                line = read_line(tail, 0.5)
            check(line and '"id":"0"' in line, "tail printed %r" % line)
            time.sleep(0.5)  # it acknowledges event 0 and waits for the next
            os.kill(tail.pid, signal.SIGSTOP)
            refused = 0
            for i in range(1, total + 1):
                refused += publish_until_accepted(b, c, i)
            # The lag watch runs every 10 ms: wait until it has skipped what the last events
            # pushed past the limit (the count stops moving) before reading it for good.
            lagged, deadline = None, time.monotonic() + 5
            while time.monotonic() < deadline:
                now = metric(b, 'ringcast_group_lagged_total{namespace="default",'
                                'broker="default",group="g1"}')
                if now is not None and now == lagged:
                    break
                lagged = now
                time.sleep(0.2)
            check(lagged and lagged > total / 2, "lagged %r" % lagged)
            eq(metric(b, 'ringcast_group_members{namespace="default",broker="default",'
                         'group="g1"}'), 1, "members")
            check(metric(b, 'ringcast_group_lag_bytes{namespace="default",broker="default",'
                            'group="g1"}') <= 128 * 1024, "group lag within the limit")
            eq(metric(b, 'ringcast_group_lag_limit_bytes{namespace="default",broker="default",'
                         'group="g1"}'), 128 * 1024, "default limit: 50% of the ring")
            check("consumer group 'g1' fell more than its lag limit" in b.log(), b.log())
            # The member resumes with the newest events; each event was printed or skipped.
            os.kill(tail.pid, signal.SIGCONT)
            out, err = tail.communicate(timeout=20)
            eq(tail.returncode, 0, "tail exit (%s)" % err)
            ids = [int(re.search(r'"id":"(\d+)"', x).group(1)) for x in out.splitlines() if x]
            check(ids, "tail printed nothing after it resumed")
            eq(ids, list(range(ids[0], total + 1)), "printed after event 0: the newest, in order")
            eq(int(lagged), ids[0] - 1, "skipped events 1..%d counted exactly" % (ids[0] - 1))
            eq(1 + len(ids) + int(lagged), total + 1, "printed + skipped")
            print("    %d published, %d refused on the way, %d skipped, %d printed" %
                  (total + 1, refused, int(lagged), 1 + len(ids)))
            c.close()
        finally:
            if tail.poll() is None:
                os.kill(tail.pid, signal.SIGCONT)
                tail.kill()
                tail.wait(5)


# ---- who holds the ring back -------------------------------------------------------------

def hang(_i, _req):
    return 200, {}, b"", 30.0


def test_metrics_name_slowest_reader():
    with Subscriber(hang) as hung, Subscriber() as ok:
        # policy block: the hung trigger holds the ring (a dead-letter one would let go)
        with Broker(config("  lag: {policy: block}\n",
                           triggers=[("hung", hung.url), ("ok", ok.url)])) as b:
            c = b.conn()
            for i in range(50):
                eq(publish(c, i), 202, "publish")
            ok.wait_for(50)
            m = re.search(r"worker 0 \(pid (\d+)\)", b.log())
            check(m, b.log())
            series = ('ringcast_ring_slowest_reader_lag_%s{namespace="default",broker="default",'
                      'reader="feed~w0",pid="%s",trigger="default/hung"}')
            wait_until(lambda: b.metrics().get(series % ("events", m.group(1))) == 50, 5,
                       "50 events behind: %r" % [(k, v) for k, v in b.metrics().items()
                                                 if "slowest" in k])
            check(b.metrics()[series % ("bytes", m.group(1))] > 50 * 1000, "bytes behind")
            # Fill the ring: 429s, and the log names the holder.
            refused = 0
            for i in range(50, 1000):
                st = publish(c, i)
                if st == 429:
                    refused += 1
                    if refused >= 3:
                        break
                else:
                    eq(st, 202, "publish")
            check(refused >= 3, "the ring never filled")
            wait_until(lambda: "held back by reader 'feed~w0' (pid %s, trigger default/hung)"
                       % m.group(1) in b.log(), 3, "the holder log line")
            check(b.metrics().get('ringcast_ring_refused_total{namespace="default",'
                                  'broker="default"}') >= 3, "refused count")
            c.close()


def test_metrics_local_reader_lag():
    """A stopped `ringcast tail` (a local reader, not a feed or a group) shows its lag in
    /metrics by name, slot, pid and mode; it goes when the reader goes."""
    with Broker(config()) as b:
        c = b.conn()
        for i in range(20):
            eq(publish(c, i), 202, "publish")
        tail = subprocess.Popen([RINGCAST, "tail", "default/default", "--ring-prefix", b.prefix,
                                 "--from", "latest", "--timeout", "20s"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            prefix = 'ringcast_reader_lag_events{namespace="default",broker="default",' \
                     'reader="ringcast-tail",'
            wait_until(lambda: metric(b, prefix) is not None, 5, "the tail's series")
            key = [k for k in b.metrics() if k.startswith(prefix)][0]
            check('pid="%d"' % tail.pid in key and 'mode="lossy"' in key, key)
            eq(metric(b, prefix), 0, "a reader at the head lags by nothing")
            os.kill(tail.pid, signal.SIGSTOP)
            for i in range(20, 50):
                eq(publish(c, i), 202, "publish")
            eq(metric(b, prefix), 30, "events behind the stopped tail")
            lag_bytes = metric(b, prefix.replace("_events{", "_bytes{"))
            check(30 * 1000 < lag_bytes < 30 * 2000, "bytes behind: %r" % lag_bytes)
            # Feeds and groups are not local readers.
            check(not [k for k in b.metrics() if k.startswith("ringcast_reader_lag_")
                       and ("feed~" in k or 'reader="g:' in k)], "feeds listed")
        finally:
            os.kill(tail.pid, signal.SIGKILL)
            tail.wait(timeout=5)
        c.close()


if __name__ == "__main__":
    Runner().run([
        test_watchdog_replaces_stopped_worker,
        test_watchdog_timeout_setting,
        test_stopped_group_member_does_not_stop_ingestion,
        test_metrics_name_slowest_reader,
        test_metrics_local_reader_lag,
    ])
