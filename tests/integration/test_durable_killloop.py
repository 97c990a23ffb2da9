#!/usr/bin/env python3
"""kill -9 of `ringcast serve` at random points, 50 times, with a file store in durability sync
(issue 13; docs/durability.md, "What the tests prove").

A broker with a file store (`durability: sync`, two ingress loops, two workers) and two
triggers, each to its own `ringcast sink` process (separate processes the test starts: they
outlive every broker and append each event they get to a file, duplicates included). Three
producer threads publish unique ids at a steady rate to whichever broker is up, and keep the ids
that got 202. Each iteration: the broker runs for a random time (0 to MAX_UP seconds; some
kills land during its start), is killed with SIGKILL, its workers die with it (PDEATHSIG), and
a new serve starts on the same directory and ring prefix. After KILLS iterations and a last
restart:

- every id that got a 202 is in the ring file (`ringcast tail --storage-dir --verify`, which
  also checks every record's checksum);
- every id that got a 202 reached each sink at least once;
- the duplicates each sink got after each restart stay within the trigger's in-flight window.

The duplicate bound checked, per trigger and per restart, is WINDOW (ringcast.dev/max-inflight),
not WINDOW times the workers: each trigger is on one worker, and its worker sends only events of
its window, the first max-inflight events of its queue from its cursor on (net/delivery/
worker.c, fill_window). The cursor is published as the window front moves (advance), before
any event past the old window is sent, so every event that any earlier broker sent lies below
the saved cursor + WINDOW; the events below the saved cursor are skipped after the restart
(docs/delivery.md, "Saved cursors": "Per crash, each trigger gets again at most its window").
Copies that arrive at a sink after a restart of ids it already had are therefore at most WINDOW
per restart. To attribute each copy to the right broker, the sink files are read after the
killed broker's workers are gone and the sink has been quiet for QUIET seconds, before the next
serve starts.

The loop is bounded in time (LOOP_BUDGET): it fails, not passes, when 50 iterations do not fit.
RC_KILLLOOP_SEED replays a run's random delays (the seed is printed). Every wait is bounded;
processes are stopped by pid; only 127.0.0.1."""

import json
import os
import random
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Conn, Runner, alive, check, children, eq, run_cli  # noqa: E402
from rc_sink import Sink  # noqa: E402

KILLS = 50
MAX_UP = 0.6        # seconds a broker runs at most before its kill (uniform from 0)
RATE = 150          # events per second per producer connection
PRODUCERS = 3
WINDOW = 8          # ringcast.dev/max-inflight of both triggers
QUIET = 0.15        # the sinks are quiet this long before a restart (late arrivals counted)
LOOP_BUDGET = 150.0  # seconds for the KILLS iterations
DRAIN = 60.0        # seconds for the sinks to get every 202 after the last restart

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  shutdownTimeout: 2s
  workers: 2
  ingressLoops: 2
  ring: {size: 16Mi}
  storage: {type: file, directory: %s, durability: sync}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def trigger(name, uri):
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
            "  name: %s\n  annotations:\n    ringcast.dev/max-inflight: \"%d\"\n"
            "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
            "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT0.05S,"
            " backoffMax: PT0.2S, timeout: PT5S}\n" % (name, WINDOW, uri))


class Producers:
    """PRODUCERS threads, each posting unique ids at RATE per second over one keep-alive
    connection to whichever broker `self.b` is now (None while none is up), reconnecting after
    a failure. An id that did not get 202 is given up, never sent again, so a second copy at a
    sink can only be a re-delivery."""

    def __init__(self):
        self.b = None
        self.accepted = []
        self.failed = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(PRODUCERS)]
        for t in self.threads:
            t.start()

    def _run(self, k):
        c, cb, i = None, None, 0
        start = time.monotonic()
        while not self.stop.is_set():
            due = start + i / RATE
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            eid = "p%d-%d" % (k, i)
            i += 1
            b = self.b
            try:
                if b is None:
                    raise OSError("no broker up")
                if c is None or cb is not b:
                    if c is not None:
                        c.close()
                    c, cb = Conn(b.host, b.port, timeout=3.0), b
                c.send_request("POST", "/default/default",
                               {"ce-id": eid, "ce-source": "/killloop", "ce-type": "t",
                                "ce-specversion": "1.0", "Content-Type": "text/plain"},
                               b"k" * (50 + i % 200))
                r = c.response()
                with self.lock:
                    if r.status == 202:
                        self.accepted.append(eid)
                    else:
                        self.failed += 1
            except (OSError, EOFError, ValueError):
                with self.lock:
                    self.failed += 1
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.01)
        if c is not None:
            c.close()

    def count(self):
        with self.lock:
            return len(self.accepted)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)
        check(not any(t.is_alive() for t in self.threads), "producers stopped")
        return list(self.accepted)


def sink_ids(sink):
    return [e["id"] for e in sink.events()]


def discard(b):
    """Forgets a killed broker, keeping its files and rings for the next one."""
    b.stop()
    log = b.log()
    b.proc.stdout.close()
    b.stderr.close()
    b.tmp.cleanup()
    return log


def settle(sinks):
    """Waits until no sink's file has grown for QUIET seconds (at most 3 s); returns how many
    events each holds."""
    counts = [len(s.events()) for s in sinks]
    quiet_since = time.monotonic()
    deadline = quiet_since + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.03)
        now = [len(s.events()) for s in sinks]
        if now != counts:
            counts, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET:
            break
    return counts


def duplicates_per_restart(ids, marks):
    """Copies of ids already seen, per stretch between two marks (the sink's event count when
    each broker started); the first stretch is the first broker's."""
    seen, out = set(), []
    bounds = list(marks) + [len(ids)]
    for j in range(len(marks)):
        n = 0
        for x in ids[bounds[j]:bounds[j + 1]]:
            if x in seen:
                n += 1
            seen.add(x)
        out.append(n)
    return out


def tail_ids(directory):
    rc, out, err = run_cli(["tail", "default/default", "--storage-dir", directory, "--verify",
                            "--timeout", "600ms"], timeout=60)
    return rc, [json.loads(line)["id"] for line in out.splitlines() if line], err


def test_sync_kill_loop():
    seed = int(os.environ.get("RC_KILLLOOP_SEED") or random.randrange(1 << 30))
    rnd = random.Random(seed)
    print("  seed %d (RC_KILLLOOP_SEED replays the kill delays)" % seed, flush=True)
    with tempfile.TemporaryDirectory(prefix="rc-killloop-") as d, \
            Sink("--quiet") as sa, Sink("--quiet") as sb:
        sinks = [sa, sb]
        cfg = CONFIG % d + trigger("a", sa.url) + trigger("b", sb.url)
        prod = Producers()
        first = Broker(cfg)
        b, prefix = first, first.prefix
        marks = [[0], [0]]
        ups, restarts = [], []
        try:
            prod.b = b
            t0 = time.monotonic()
            for k in range(KILLS):
                check(time.monotonic() - t0 < LOOP_BUDGET,
                      "the loop took more than %.0f s after %d kills" % (LOOP_BUDGET, k))
                up = rnd.uniform(0.0, MAX_UP)
                ups.append(up)
                time.sleep(up)
                workers = children(b.proc.pid)
                os.kill(b.proc.pid, signal.SIGKILL)
                prod.b = None
                eq(b.wait(5), -signal.SIGKILL, "serve killed (kill %d)" % (k + 1))
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and any(alive(p) for p in workers):
                    time.sleep(0.01)
                check(not any(alive(p) for p in workers),
                      "the workers of the broker killed at %d died with it" % (k + 1))
                for m, n in zip(marks, settle(sinks)):
                    m.append(n)
                t1 = time.monotonic()
                nb = Broker(cfg, args=["--ring-prefix", prefix])
                restarts.append(time.monotonic() - t1)
                if b is not first:
                    discard(b)
                b = nb
                prod.b = b
            loop_s = time.monotonic() - t0
            time.sleep(0.5)  # the last broker takes some events too
            accepted = prod.join()
            check(len(accepted) > KILLS * 10, "only %d events got 202 (%d failed)"
                  % (len(accepted), prod.failed))
            want = set(accepted)
            eq(len(want), len(accepted), "ids are unique")
            deadline = time.monotonic() + DRAIN
            missing = {}
            while time.monotonic() < deadline:
                missing = {s.url: want - set(sink_ids(s)) for s in sinks}
                if not any(missing.values()):
                    break
                time.sleep(0.1)
            for url, m in missing.items():
                check(not m, "202s never delivered to %s: %d of %d, e.g. %s"
                      % (url, len(m), len(want), sorted(m)[:5]))
            rc, ids, err = tail_ids(d)
            eq(rc, 0, "tail --verify (a corrupt record?): %s" % err[-2000:])
            lost = want - set(ids)
            check(not lost, "202s not in the ring file: %d of %d, e.g. %s"
                  % (len(lost), len(want), sorted(lost)[:5]))
            dups = [duplicates_per_restart(sink_ids(s), m) for s, m in zip(sinks, marks)]
            for name, per in zip("ab", dups):
                worst = max(per)
                check(worst <= WINDOW, "trigger %s: %d duplicates after one restart (window %d);"
                      " per restart: %s" % (name, worst, WINDOW, per))
            eq(b.stop(), 0, "the last broker stops cleanly")
            print("  %d kills in %.1f s (up %.2f-%.2f s, restart median %.0f ms); %d events got "
                  "202, %d did not; duplicates per restart: trigger a max %d total %d, "
                  "trigger b max %d total %d; %d events in the ring file"
                  % (KILLS, loop_s, min(ups), max(ups), sorted(restarts)[len(restarts) // 2] * 1000,
                     len(accepted), prod.failed, max(dups[0]), sum(dups[0]), max(dups[1]),
                     sum(dups[1]), len(ids)), flush=True)
        finally:
            prod.stop.set()
            if b is not first:
                discard(b)
            first.__exit__(None, None, None)


if __name__ == "__main__":
    Runner().run([test_sync_kill_loop])
