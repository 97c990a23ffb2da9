#!/usr/bin/env python3
"""A stuck consumer must not stop the broker (issue 11, defect 3): the real `ringcast serve`.
A SIGSTOPped worker is replaced by the watchdog and delivery resumes. Every wait is bounded."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402

SETTINGS = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 500ms
  ring: {size: 256Ki}
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


if __name__ == "__main__":
    Runner().run([
        test_watchdog_replaces_stopped_worker,
        test_watchdog_timeout_setting,
    ])
