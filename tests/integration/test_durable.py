#!/usr/bin/env python3
"""The file store (issue 13, first increment; docs/durability.md) with the real broker:

- a clean stop, every /dev/shm object of the broker removed (what a reboot does), a restart:
  every event is still there (`ringcast tail --storage-dir --verify` from the oldest), and a
  Trigger whose subscriber acknowledged the first half gets the second half: nothing lost,
  nothing of the acknowledged half sent again;
- kill -9 of serve while events pour in, then a restart, three times: every event that got 202
  is in the log after each restart (durability none survives a crash of the process);
- damage done to the file while the broker is down: flipped bits in the middle of the record
  area, a zero-filled tail, a file cut short, a file cut inside its tables: recovery reports
  (log line naming the position, ringcast_storage_corrupt_records_total), keeps what is intact,
  and the broker serves; the file cut in its tables is refused with what to do;
- what serve refuses at start: a storage directory that does not exist or is a file, a ring
  size other than the file's, a second broker on the same directory;
- /metrics shows each broker's storage type, durability and file size.

Every wait is bounded; processes are stopped by pid; only 127.0.0.1."""

import glob
import os
import re
import signal
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import RINGCAST, Broker, Conn, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

WINDOW = 8  # ringcast.dev/max-inflight of the test trigger

SETTINGS = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  shutdownTimeout: 2s
  workers: 1
  ring: {size: %s}
  limits: {maxEventBytes: 64Ki, maxHeaderBytes: 8Ki, maxBatchBytes: 256Ki, maxBatchEvents: 50}
  storage: {type: file, directory: %s, durability: none}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def config(directory, size="1Mi", triggers=""):
    return SETTINGS % (size, directory) + triggers


def trigger(uri):
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
            "  name: half\n  annotations:\n    ringcast.dev/max-inflight: \"%d\"\n"
            "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
            "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT0.1S,"
            " backoffMax: PT0.2S, timeout: PT5S}\n" % (WINDOW, uri))


def publish(b, eid, data=b"x"):
    r = b.request("POST", "/default/default",
                  {"ce-id": eid, "ce-source": "/durable", "ce-type": "t", "ce-specversion": "1.0",
                   "Content-Type": "application/octet-stream"}, data)
    eq(r.status, 202, "publish %s: %r" % (eid, r))


def tail(directory, *args):
    """(exit code, event ids, stderr) of `ringcast tail --storage-dir` from the oldest."""
    import json
    rc, out, err = run_cli(["tail", "default/default", "--storage-dir", directory, "--timeout",
                            "600ms"] + list(args))
    return rc, [json.loads(line)["id"] for line in out.splitlines() if line], err


def ring_path(directory):
    return os.path.join(directory, "default.default.ring")


def wipe_shm(b):
    """Removes every /dev/shm object of the broker (its ring prefix), as a reboot would, and
    returns how many there were."""
    n = 0
    for p in glob.glob("/dev/shm/%s.*" % b.prefix):
        os.unlink(p)
        n += 1
    return n


def forget(b):
    """Closes what the harness holds for a stopped broker (its store stays in the directory)."""
    b.stop()
    log = b.log()
    b.__exit__(None, None, None)
    return log


def records(path):
    """The records of a ring file that has not wrapped: (position, file offset, length with
    header, type, seq) for each, walking the headers as the ring does (shm/ring_internal.h)."""
    with open(path, "rb") as f:
        data = f.read()
    cap, = struct.unpack_from("<Q", data, 16)
    key, = struct.unpack_from("<Q", data, 32)
    roff, = struct.unpack_from("<Q", data, 56)
    head, = struct.unpack_from("<Q", data, 256)
    out, p = [], 0
    while p < head:
        off = roff + (p & (cap - 1))
        word, stamp, seq = struct.unpack_from("<QQQ", data, off)
        check(stamp == p ^ key and word >> 63, "record header at %d" % p)
        n = word & 0xffffffff
        out.append((p, off, n, (word >> 32) & 0xffff, seq))
        p += (n + 7) & ~7
    return roff, cap, out


def metric(b, name):
    for k, v in b.metrics().items():
        if k.startswith(name + "{") or k == name:
            return k, v
    return None, None


# ---- restart after /dev/shm is gone ------------------------------------------------------------

def test_restart_after_shm_wipe():
    """N events, a trigger whose subscriber takes the first half and refuses the rest; SIGTERM,
    /dev/shm wiped, restart: every event readable, the second half delivered, the first not
    again."""
    n = 60
    half = n // 2

    def first_half(_i, req):
        return (200 if int(req.ce("id").split("-")[1]) < half else 503), {}, b"", 0.0

    with tempfile.TemporaryDirectory(prefix="rc-durable-") as d, \
            Subscriber(first_half) as s1, Subscriber() as s2:
        b = Broker(config(d, triggers=trigger(s1.url)))
        prefix = b.prefix
        try:
            for i in range(n):
                publish(b, "e-%d" % i)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                got = set(s1.ids())
                if all("e-%d" % i in got for i in range(half)) and \
                        any(int(x.split("-")[1]) >= half for x in got):
                    break
                time.sleep(0.05)
            check(all("e-%d" % i in set(s1.ids()) for i in range(half)), "first half delivered")
            k, v = metric(b, "ringcast_storage_info")
            check(k is not None and 'type="file"' in k and 'durability="none"' in k and v == 1,
                  "storage info metric: %s" % k)
            k, v = metric(b, "ringcast_storage_file_bytes")
            check(v is not None and v >= 1 << 20, "file size metric %s" % v)
            eq(b.stop(), 0, "graceful stop")
            wiped = wipe_shm(b)
        finally:
            log1 = forget(b)
        check("created ring file %s" % ring_path(d) in log1, "created the file: %s" % log1)
        eq(os.path.exists(ring_path(d)), True, "ring file")
        eq(os.path.exists(os.path.join(d, "default.default.cursors")), True, "cursor table")
        eq(os.stat(ring_path(d)).st_mode & 0o777, 0o600, "ring file mode")
        check(not glob.glob("/dev/shm/%s.*" % prefix), "nothing of the broker in /dev/shm")

        b = Broker(config(d, triggers=trigger(s2.url)), args=["--ring-prefix", prefix])
        try:
            rc, ids, err = tail(d, "--verify")
            eq(rc, 0, "tail --verify: %s" % err)
            eq(ids, ["e-%d" % i for i in range(n)], "every event, in order, after the restart")
            want = {"e-%d" % i for i in range(half, n)}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not want <= set(s2.ids()):
                time.sleep(0.05)
            got = s2.ids()
            check(want <= set(got), "second half delivered after the restart: missing %s"
                  % sorted(want - set(got))[:5])
            again = [x for x in got if int(x.split("-")[1]) < half]
            eq(again, [], "acknowledged events sent again")
            check(len(got) - len(set(got)) <= WINDOW, "duplicates within the window")
            log2 = b.log()
            check(re.search(r"recovered %d events \(oldest seq 0, newest seq %d\) from %s in "
                            r"[\d.]+ ms; stopped at position \d+: the head"
                            % (n, n - 1, re.escape(ring_path(d))), log2), log2)
        finally:
            forget(b)
        print("  (%d /dev/shm objects of the broker removed between the runs)" % wiped)


# ---- kill -9 during ingest ---------------------------------------------------------------------

RATE = 750  # events per second per connection: three rounds stay well inside the ring (no
            # event is overwritten before it is checked; retention is the ring's size)


class Sender:
    """Posts events over two keep-alive connections until stopped, each at RATE per second;
    keeps the ids that got 202. A request the broker died under is given up (never sent
    again)."""

    def __init__(self, b, prefix):
        self.b, self.prefix = b, prefix
        self.accepted = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.n = 0
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(2)]
        for t in self.threads:
            t.start()

    def _run(self, k):
        c = None
        i = 0
        start = time.monotonic()
        while not self.stop.is_set():
            wait = start + i / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            eid = "%s-%d-%d" % (self.prefix, k, i)
            i += 1
            try:
                if c is None:
                    c = Conn(self.b.host, self.b.port, timeout=2.0)
                c.send_request("POST", "/default/default",
                               {"ce-id": eid, "ce-source": "/kill", "ce-type": "t",
                                "ce-specversion": "1.0", "Content-Type": "text/plain"},
                               b"y" * (64 + i % 300))
                r = c.response()
                if r.status == 202:
                    with self.lock:
                        self.accepted.append(eid)
            except (OSError, EOFError, ValueError):
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.01)
        if c is not None:
            c.close()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)
        return list(self.accepted)


def test_kill9_during_ingest():
    """kill -9 of serve under load, three times: after each restart every event that got 202
    is in the ring file (tail --verify), and recovery says what it padded over."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-") as d:
        prefix = None
        accepted = []
        for k in range(3):
            b = Broker(config(d, size="16Mi"), args=["--ring-prefix", prefix] if prefix else [])
            prefix = b.prefix
            try:
                if k > 0:
                    rc, ids, err = tail(d, "--verify")
                    eq(rc, 0, "tail --verify after kill %d: %s" % (k, err))
                    missing = set(accepted) - set(ids)
                    eq(sorted(missing)[:5], [], "202s lost by kill %d (of %d)"
                       % (k, len(accepted)))
                    check("recovered %d events" % len(ids) in b.log(), b.log())
                snd = Sender(b, "k%d" % k)
                time.sleep(1.0)
                b.signal(signal.SIGKILL)
                b.wait(5)
                accepted += snd.join()
                check(len(accepted) > 50 * (k + 1), "events were accepted (%d)" % len(accepted))
            finally:
                forget(b)
        b = Broker(config(d, size="16Mi"), args=["--ring-prefix", prefix])
        try:
            rc, ids, err = tail(d, "--verify")
            eq(rc, 0, "tail --verify after the last kill: %s" % err)
            eq(sorted(set(accepted) - set(ids))[:5], [], "202s lost (of %d)" % len(accepted))
            publish(b, "after")
        finally:
            forget(b)
        print("  (%d events accepted over 3 kills)" % len(accepted))


# ---- damage while the broker is down -----------------------------------------------------------

def fill(d, n):
    """A broker that stores n events and stops; returns the record list of its file."""
    b = Broker(config(d))
    try:
        for i in range(n):
            publish(b, "d-%d" % i, b"z" * (100 + i))
        eq(b.stop(), 0, "graceful stop")
    finally:
        forget(b)
    return records(ring_path(d))


def restart(d):
    b = Broker(config(d))
    return b, b.log()


def test_flipped_bits():
    """A bit of one record's data and one of another's header, in the middle: both reported
    by position and counted, the others kept, the broker serves."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-") as d:
        _, _, recs = fill(d, 100)
        eq(len(recs), 100, "records")
        with open(ring_path(d), "r+b") as f:
            for k, delta in ((40, 200), (60, 8)):  # payload byte; the header's stamp
                off = recs[k][1] + delta
                f.seek(off)
                byte = f.read(1)[0]
                f.seek(off)
                f.write(bytes([byte ^ 0x20]))
        rc, ids, err = tail(d, "--verify")
        eq(rc, 1, "tail --verify finds the damage before the broker recovers it")
        check("position %d (seq 40) fails its checksum" % recs[40][0] in err, err)
        b, _ = restart(d)
        try:
            log = b.log()
            for k in (40, 60):
                check("corrupt record at position %d" % recs[k][0] in log, log)
            check("recovered 98 events" in log, log)
            _, v = metric(b, "ringcast_storage_corrupt_records_total")
            eq(v, 2, "corrupt records metric")
            publish(b, "new")
            rc, ids, err = tail(d, "--verify")
            eq(rc, 0, err)
            eq(ids, ["d-%d" % i for i in range(100) if i not in (40, 60)] + ["new"], "kept")
        finally:
            forget(b)


def test_zero_filled_tail():
    """The record area zeroed from record 70 on, as a machine crash can leave the pages not
    written back: the head moves back there, 70 events stay, new ones follow them."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-") as d:
        roff, cap, recs = fill(d, 100)
        with open(ring_path(d), "r+b") as f:
            f.seek(recs[70][1])
            f.write(b"\0" * (roff + cap - recs[70][1]))
        b, _ = restart(d)
        try:
            log = b.log()
            check(re.search(r"recovered 70 events \(oldest seq 0, newest seq 69\) .* stopped at "
                            r"position %d: a torn record" % recs[70][0], log), log)
            publish(b, "new")
            rc, ids, err = tail(d, "--verify")
            eq(rc, 0, err)
            eq(ids, ["d-%d" % i for i in range(70)] + ["new"], "kept, then the new one")
        finally:
            forget(b)


def test_truncated_file():
    """A file cut short in its record area: extended, the events before the cut kept (the one
    the cut went through is torn), the broker serves. Cut inside its tables: refused."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-") as d:
        roff, _, recs = fill(d, 100)
        size = os.path.getsize(ring_path(d))
        os.truncate(ring_path(d), recs[50][1] + 30)
        b, _ = restart(d)
        try:
            log = b.log()
            check("has %d bytes, its header says %d" % (recs[50][1] + 30, size) in log, log)
            check("recovered 50 events" in log, log)
            eq(os.path.getsize(ring_path(d)), size, "size restored")
            publish(b, "new")
            rc, ids, err = tail(d, "--verify")
            eq(ids, ["d-%d" % i for i in range(50)] + ["new"], "kept")
        finally:
            forget(b)
        os.truncate(ring_path(d), roff - 4096)
        try:
            b = Broker(config(d))
            forget(b)
            check(False, "a file cut inside its tables was accepted")
        except RuntimeError as e:
            check("cannot be recovered; move it aside" in str(e), str(e))


# ---- what serve refuses ------------------------------------------------------------------------

def serve_fails(cfg, why):
    with tempfile.TemporaryDirectory(prefix="rc-durable-cfg-") as t:
        path = os.path.join(t, "c.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        import subprocess
        p = subprocess.run([RINGCAST, "serve", "--config", path, "--listen", "127.0.0.1:0",
                            "--admin", "127.0.0.1:0", "--ring-prefix", "rcdur%d" % os.getpid()],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode != 0, "serve started: %s" % why)
        check(why in p.stderr, "expected %r in: %s" % (why, p.stderr))
        return p


def test_refused_at_start():
    with tempfile.TemporaryDirectory(prefix="rc-durable-") as d:
        missing = os.path.join(d, "nope")
        serve_fails(config(missing), "storage directory %s does not exist: create it" % missing)
        afile = os.path.join(d, "file")
        open(afile, "w").close()
        serve_fails(config(afile), "storage directory %s is not a directory" % afile)
        p = serve_fails(SETTINGS.replace("type: file, directory: %s, durability: none",
                                         "type: memory, durability: sync") % "1Mi",
                        "durability sync needs storage type file")
        eq(p.returncode, 2, "a config error")
        serve_fails(durable_config(d, "batch", ", flushInterval: 0ms"),
                    "'spec.storage.flushInterval' must be a duration from 1ms")
        serve_fails(durable_config(d, "batch", ", flushInterval: 20s"),
                    "'spec.storage.flushInterval' must be between 1ms and 10s, not 20000ms")
        serve_fails(durable_config(d, "sync", ", flushInterval: 5ms"),
                    "flushInterval applies to durability batch only, and this broker's "
                    "durability is sync")
        serve_fails(durable_config(d, "often"),
                    "'spec.storage.durability' must be none, batch or sync, not 'often'")
        if os.geteuid() != 0:
            ro = os.path.join(d, "ro")
            os.mkdir(ro, 0o500)
            serve_fails(config(ro), "storage directory %s is not writable" % ro)
        else:
            print("  (root: a directory without write permission is writable for it, not tried)")
        fill(d, 3)
        serve_fails(config(d, size="2Mi"), "holds 1048576 bytes of events and spec.ring.size is "
                    "2097152: a file store is not resized")
        b = Broker(config(d))
        try:
            serve_fails(config(d), "is in use by another broker (pid %d)" % b.proc.pid)
            rc, ids, _ = tail(d)
            eq(ids, ["d-0", "d-1", "d-2"], "the first broker's events untouched")
        finally:
            forget(b)


# ---- durability batch and sync -------------------------------------------------------------------

def durable_config(d, mode, extra="", loops=1):
    """A file store in durability `mode` (extra: more spec.storage fields), `loops` ingress
    loops."""
    return (SETTINGS.replace("durability: none", "durability: %s%s" % (mode, extra))
            .replace("  workers: 1\n", "  workers: 1\n  ingressLoops: %d\n" % loops)
            % ("16Mi", d))


def fsyncs(b):
    m = b.metrics()
    get = lambda name: next((v for k, v in m.items() if k.startswith(name + "{")), None)  # noqa
    return (get("ringcast_storage_fsyncs_total"), get("ringcast_storage_fsync_seconds_count"),
            get("ringcast_storage_durable_events"))


def settled(b, quiet=0.3, timeout=5.0):
    """The fdatasync count once it stayed the same for `quiet` seconds (a flush still running
    may land late while other processes write); fails when it never does within `timeout`."""
    end = time.monotonic() + timeout
    last = fsyncs(b)[0]
    while time.monotonic() < end:
        time.sleep(quiet)
        now = fsyncs(b)[0]
        if now == last:
            return now
        last = now
    raise AssertionError("fdatasyncs never stopped: %d after %.0f s" % (last, timeout))


def burst(b, prefix, conns, per_conn):
    """`conns` threads, each posting `per_conn` events back to back on one keep-alive
    connection; returns the ids that got 202."""
    ok, lock = [], threading.Lock()

    def run(k):
        c = Conn(b.host, b.port, timeout=10.0)
        try:
            for i in range(per_conn):
                eid = "%s-%d-%d" % (prefix, k, i)
                c.send_request("POST", "/default/default",
                               {"ce-id": eid, "ce-source": "/sync", "ce-type": "t",
                                "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"z" * 100)
                if c.response().status == 202:
                    with lock:
                        ok.append(eid)
        finally:
            c.close()
    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return ok


def test_sync_kill9_after_202s():
    """durability sync: a burst of 202s, kill -9 at once, restart: every 202 is in the log.
    This proves the ordering (202 after the fdatasync covering it) only against a crash of the
    process: the page cache would keep the events even without the fdatasync; power loss is not
    reproducible here (docs/durability.md)."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-sync-") as d:
        prefix, accepted = None, []
        for k in range(2):
            b = Broker(durable_config(d, "sync", loops=2),
                       args=["--ring-prefix", prefix] if prefix else [])
            prefix = b.prefix
            try:
                ok = burst(b, "s%d" % k, 4, 50)
                eq(len(ok), 200, "every sync publish got 202")
                n, count, durable = fsyncs(b)
                check(n is not None and n >= 1 and count == n, "fsync metrics %s %s" % (n, count))
                check(durable is not None and durable >= 200 * (k + 1),
                      "durable events %s after %d 202s" % (durable, 200 * (k + 1)))
                accepted += ok
                b.signal(signal.SIGKILL)
                b.wait(5)
            finally:
                forget(b)
        b = Broker(durable_config(d, "sync"), args=["--ring-prefix", prefix])
        try:
            rc, ids, err = tail(d, "--verify")
            eq(rc, 0, "tail --verify: %s" % err)
            eq(sorted(set(accepted) - set(ids))[:5], [], "202s lost (of %d)" % len(accepted))
        finally:
            forget(b)


def test_sync_group_commit():
    """Many connections in durability sync: every request gets its 202, with fewer fdatasyncs
    than events (one flush covers every commit made before it started). Each flush takes 5 ms
    (the shim: a slow disk), so that commits do arrive while one runs whatever the build's
    speed: the journal's write takes ~0.1 ms here, shorter than a request's turn in a TSan
    build."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-sync-") as d:
        env = slow_disk_env(d)
        b = Broker(durable_config(d, "sync", loops=4), env=env)
        try:
            before, _, _ = fsyncs(b)
            ok = burst(b, "g", 16, 40)
            eq(len(ok), 640, "every sync publish got 202")
            after, _, durable = fsyncs(b)
            n = after - before
            check(durable >= 640, "durable events %s" % durable)
            check(1 <= n < 640 * 0.75, "group commit: %d fdatasyncs for 640 events" % n)
            print("  (640 events from 16 connections, %d fdatasyncs: %.1f events each)"
                  % (n, 640.0 / n))
        finally:
            forget(b)


def test_batch_flush_bound():
    """durability batch: 202s come before the flush, and fdatasyncs stay at most one per
    flushInterval (plus one) while events pour in; once quiet, no more fdatasyncs."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-batch-") as d:
        b = Broker(durable_config(d, "batch", ", flushInterval: 50ms"))
        try:
            k, v = metric(b, "ringcast_storage_info")
            check(k is not None and 'durability="batch"' in k, "storage info %s" % k)
            before, _, _ = fsyncs(b)
            t0 = time.monotonic()
            ok = burst(b, "b", 4, 150)
            elapsed = time.monotonic() - t0
            eq(len(ok), 600, "every batch publish got 202")
            # The last flush: an fdatasync can take long while other processes write.
            end = time.monotonic() + 5
            while fsyncs(b)[2] < 600 and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.1)
            after, _, durable = fsyncs(b)
            n = after - before
            bound = int((time.monotonic() - t0) / 0.05) + 2
            check(1 <= n <= bound, "%d fdatasyncs in %.2f s (bound %d)" % (n, elapsed, bound))
            eq(durable >= 600, True, "durable events %s after the flush" % durable)
            idle = settled(b)
            eq(idle, after, "fdatasyncs while nothing was committed")
            print("  (600 events in %.2f s, %d fdatasyncs, bound %d)" % (elapsed, n, bound))
        finally:
            forget(b)


def test_cursors_follow_deliveries():
    """durability batch: deliveries that go on after the last commit (a slow subscriber) still
    get their cursors flushed (the readers moved, the head did not); once every event is
    delivered and nothing moves, no more fdatasyncs."""
    slow = lambda i, req: (200, {}, b"", 0.02)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="rc-durable-cur-") as d, Subscriber(slow) as sub:
        cfg = durable_config(d, "batch", ", flushInterval: 20ms") + trigger(sub.url)
        b = Broker(cfg.replace('max-inflight: "%d"' % WINDOW, 'max-inflight: "1"'))
        try:
            for i in range(40):
                publish(b, "c%d" % i)
            time.sleep(0.1)  # the commits' flush
            ingest_done, _, _ = fsyncs(b)
            check(len(sub.requests) < 30, "the subscriber was meant to be slow: %d delivered "
                  "already" % len(sub.requests))
            sub.wait_for(40, timeout=20)
            delivered = settled(b)
            check(delivered - ingest_done >= 3, "%d fdatasyncs while deliveries went on after "
                  "the last commit" % (delivered - ingest_done))
            print("  (%d fdatasyncs during deliveries after the last commit)"
                  % (delivered - ingest_done))
        finally:
            forget(b)


# ---- the Dapr publish API in durability sync ------------------------------------------------------

HELPER_DIR = os.environ.get("RC_TEST_HELPER_DIR") or os.path.join(
    os.path.dirname(RINGCAST), "../tests")
FSYNC_FAULT = os.path.join(HELPER_DIR, "fsync_fault.so")

PUBSUB = """---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: %s}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: %s}
"""


def dapr_config(d, port, brokers=("default",)):
    """A sync file store per broker in `brokers` (the first is `default`, from SETTINGS), a
    pubsub.ringcast component per broker (`pubsub`, then `pubsub-<broker>`), the Dapr API on
    the ingress port and on 127.0.0.1:`port`."""
    doc = durable_config(d, "sync", loops=2).replace(
        "  workers: 1\n", "  workers: 1\n  dapr: {listen: 127.0.0.1:%d}\n" % port)
    for name in brokers[1:]:
        doc += ("---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n"
                "  name: %s\n  annotations:\n    ringcast.dev/storage-type: file\n"
                "    ringcast.dev/storage-directory: %s\n" % (name, d))
    for name in brokers:
        doc += PUBSUB % ("pubsub" if name == "default" else "pubsub-" + name, name)
    return doc


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fault_env(d):
    """The environment of a broker whose fdatasync the test slows or breaks (fsync_fault.c)."""
    check(os.path.exists(FSYNC_FAULT), "the fdatasync shim is not built: %s" % FSYNC_FAULT)
    env = dict(os.environ)
    env["LD_PRELOAD"] = FSYNC_FAULT
    env["RC_FSYNC_DELAY_FILE"] = os.path.join(d, "fsync-delay-ms")
    env["RC_FSYNC_FAIL_FILE"] = os.path.join(d, "fsync-fail")
    # An ASan build's runtime wants to be the first library loaded; the shim is.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env


def slow_disk_env(d, ms=5):
    """fault_env with every flush (fdatasync, journal write) taking `ms` longer."""
    env = fault_env(d)
    with open(env["RC_FSYNC_DELAY_FILE"], "w") as f:
        f.write("%d" % ms)
    return env


def dapr_publish(host, port, eid, topic="orders", pubsub="pubsub", conn=None):
    c = conn or Conn(host, port, timeout=10.0)
    try:
        c.send_request("POST", "/v1.0/publish/%s/%s?metadata.cloudevent.id=%s"
                       % (pubsub, topic, eid), {"Content-Type": "text/plain"}, b"dapr " + eid.encode())
        return c.response()
    finally:
        if conn is None:
            c.close()


def dapr_bulk(host, port, ids, pubsub="pubsub"):
    import json
    body = json.dumps([{"entryId": "e%d" % i, "event": "bulk " + x, "contentType": "text/plain",
                        "metadata": {"cloudevent.id": x}} for i, x in enumerate(ids)])
    c = Conn(host, port, timeout=10.0)
    try:
        c.send_request("POST", "/v1.0/publish/bulk/%s/orders" % pubsub,
                       {"Content-Type": "application/json"}, body)
        return c.response()
    finally:
        c.close()


def test_dapr_sync_publish():
    """Dapr publish and bulk publish to a sync file store, on the ingress port and on
    spec.dapr.listen: 204 after a flush, and every event in the file."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-dapr-") as d:
        port = free_port()
        b = Broker(dapr_config(d, port))
        try:
            before, _, _ = fsyncs(b)
            want = []
            for where, p in (("ingress", b.port), ("dapr", port)):
                r = dapr_publish(b.host, p, "one-" + where)
                eq(r.status, 204, "Dapr publish on the %s port: %r" % (where, r))
                want.append("one-" + where)
                ids = ["bulk-%s-%d" % (where, i) for i in range(3)]
                r = dapr_bulk(b.host, p, ids)
                eq(r.status, 204, "Dapr bulk publish on the %s port: %r" % (where, r))
                want += ids
            after, _, durable = fsyncs(b)
            check(after > before, "fdatasyncs %s -> %s" % (before, after))
            check(durable >= len(want), "durable events %s after %d" % (durable, len(want)))
            m = b.metrics()
            acc = sum(v for k, v in m.items() if k.startswith("ringcast_ingress_events_accepted"))
            check(acc >= len(want), "accepted events counted once answered: %s" % acc)
            rc, got, err = tail(d, "--verify")
            eq(rc, 0, "tail --verify: %s" % err)
            eq(got, want, "the Dapr events in the file, in order")
        finally:
            forget(b)


def test_dapr_sync_group_commit():
    """16 connections publishing through spec.dapr.listen, which is one loop (the main loop):
    held answers let that loop commit every request that arrives while a flush runs, so the
    fdatasyncs are fewer than the requests. A loop that waited in the commit would take the
    requests one by one, one fdatasync each. Flushes of 5 ms, as in test_sync_group_commit."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-dapr-") as d:
        port = free_port()
        b = Broker(dapr_config(d, port), env=slow_disk_env(d))
        try:
            before, _, _ = fsyncs(b)
            ok, lock = [], threading.Lock()

            def run(k):
                c = Conn(b.host, port, timeout=10.0)
                try:
                    for i in range(20):
                        eid = "g-%d-%d" % (k, i)
                        if dapr_publish(b.host, port, eid, conn=c).status == 204:
                            with lock:
                                ok.append(eid)
                finally:
                    c.close()
            threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            eq(len(ok), 320, "every Dapr publish got 204")
            after, _, durable = fsyncs(b)
            n = after - before
            check(durable >= 320, "durable events %s" % durable)
            check(1 <= n < 320 * 0.75, "group commit: %d fdatasyncs for 320 Dapr publishes" % n)
            rc, got, err = tail(d, "--verify")
            eq(rc, 0, err)
            eq(sorted(got), sorted(ok), "every 204 in the file")
            print("  (320 Dapr publishes on spec.dapr.listen, %d fdatasyncs: %.1f each)"
                  % (n, 320.0 / n))
        finally:
            forget(b)


def test_dapr_sync_loop_responsive():
    """fdatasync made slow (300 ms, the shim): Dapr publishes on both listeners wait for the
    flush, and meanwhile /v1.0/healthz on both listeners and the admin /healthz (the main loop,
    which also serves spec.dapr.listen) answer at once."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-dapr-") as d:
        port = free_port()
        env = fault_env(d)
        b = Broker(dapr_config(d, port), env=env)
        try:
            with open(env["RC_FSYNC_DELAY_FILE"], "w") as f:
                f.write("300")
            res, lock = {}, threading.Lock()

            def pub(k, p):
                t0 = time.monotonic()
                r = dapr_bulk(b.host, p, ["slow-%d" % k]) if k % 2 else \
                    dapr_publish(b.host, p, "slow-%d" % k)
                with lock:
                    res[k] = (r.status, time.monotonic() - t0)
            threads = [threading.Thread(target=pub, args=(k, port if k < 4 else b.port),
                                        daemon=True) for k in range(8)]
            for t in threads:
                t.start()
            time.sleep(0.1)  # the publishes are committed and wait for the flush
            probes = []
            for _ in range(3):
                for name, p, admin in (("dapr", port, False), ("ingress", b.port, False),
                                       ("admin", None, True)):
                    t0 = time.monotonic()
                    if admin:
                        r = b.request("GET", "/healthz", admin=True)
                    else:
                        c = Conn(b.host, p, timeout=10.0)
                        try:
                            c.send_request("GET", "/v1.0/healthz")
                            r = c.response()
                        finally:
                            c.close()
                    dt = time.monotonic() - t0
                    probes.append((name, r.status, dt))
                    with lock:
                        waiting = len(res) < 8
                    check(waiting or dt < 0.1, "probe %s answered after the publishes" % name)
            for t in threads:
                t.join(30)
            eq(sorted(res), list(range(8)), "every publish answered")
            for k, (status, dt) in sorted(res.items()):
                eq(status, 204, "publish %d" % k)
                check(dt >= 0.25, "publish %d answered in %.3f s, before its 300 ms flush" % (k, dt))
            slow = [(n, s, round(dt, 3)) for n, s, dt in probes if s not in (200, 204) or dt > 0.1]
            eq(slow, [], "probes slower than 100 ms while publishes waited for the flush")
            os.unlink(env["RC_FSYNC_DELAY_FILE"])
            rc, got, err = tail(d, "--verify")
            eq(sorted(got), sorted("slow-%d" % k for k in range(8)), "the events in the file")
            print("  (8 publishes waiting %.2f-%.2f s; probes within %.1f ms)"
                  % (min(dt for _, dt in res.values()), max(dt for _, dt in res.values()),
                     1000 * max(dt for _, _, dt in probes)))
        finally:
            forget(b)


def test_sync_stop_with_held_answers():
    """SIGTERM while answers wait for a slow flush (300 ms, the shim): every held publish
    (Knative and Dapr, on both listeners) is answered, and the stop does not wait for the
    answered connections to time out: a held answer sent during the drain closes its
    connection as soon as the client does (it took the linger time, 2 s, before)."""
    with tempfile.TemporaryDirectory(prefix="rc-durable-dapr-") as d:
        port = free_port()
        env = fault_env(d)
        cfg = dapr_config(d, port).replace("shutdownTimeout: 2s", "shutdownTimeout: 10s")
        b = Broker(cfg, env=env)
        try:
            with open(env["RC_FSYNC_DELAY_FILE"], "w") as f:
                f.write("300")
            res, lock = {}, threading.Lock()

            def pub(k):
                if k == 0:
                    r = b.request("POST", "/default/default",
                                  {"ce-id": "stop-0", "ce-source": "/s", "ce-type": "t",
                                   "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
                else:
                    r = dapr_publish(b.host, port if k == 1 else b.port, "stop-%d" % k)
                with lock:
                    res[k] = r.status
            threads = [threading.Thread(target=pub, args=(k,), daemon=True) for k in range(3)]
            for t in threads:
                t.start()
            time.sleep(0.1)  # committed, waiting for the flush
            t0 = time.monotonic()
            b.signal(signal.SIGTERM)
            for t in threads:
                t.join(10)
            eq(res, {0: 202, 1: 204, 2: 204}, "answers held across the stop")
            eq(b.wait(10), 0, "graceful stop")
            took = time.monotonic() - t0
            # The held flush (at most 300 ms left) and the last flush at close (300 ms).
            check(took < 1.5, "the stop took %.2f s" % took)
            print("  (stop with 3 held answers: %.2f s)" % took)
        finally:
            forget(b)


def test_dapr_sync_fdatasync_fails():
    """fdatasync failing (EIO, the shim): a held Dapr publish is answered 500
    ERR_PUBSUB_PUBLISH_MESSAGE with the ingress's message, a bulk publish lists every entry
    failed; once failed, the store refuses the next ones at once (the failure sticks), and the
    Knative ingress answers 500 too."""
    import json
    with tempfile.TemporaryDirectory(prefix="rc-durable-dapr-") as d:
        port = free_port()
        env = fault_env(d)
        b = Broker(dapr_config(d, port, brokers=("default", "other")), env=env)
        try:
            eq(dapr_publish(b.host, port, "fine").status, 204, "before the failure")
            open(env["RC_FSYNC_FAIL_FILE"], "w").close()
            msg = "the event was stored but cannot be made durable: "

            def failed(r, what):
                eq(r.status, 500, "%s: %r" % (what, r))
                body = json.loads(r.body)
                eq(body["errorCode"], "ERR_PUBSUB_PUBLISH_MESSAGE", what)
                check(body["message"].startswith(msg) and "Input/output error" in body["message"],
                      "%s: %s" % (what, body["message"]))
                return body
            # broker default: a single publish waits for the failing flush, then a bulk one
            # finds the failure stuck; broker other: the other way round.
            failed(dapr_publish(b.host, port, "held-one"), "held publish")
            body = failed(dapr_bulk(b.host, b.port, ["x", "y"]), "bulk after the failure")
            eq([(e["entryId"], e["error"].startswith(msg)) for e in body["failedEntries"]],
               [("e0", True), ("e1", True)], "every entry failed")
            body = failed(dapr_bulk(b.host, port, ["p", "q", "r"], pubsub="pubsub-other"),
                          "held bulk publish")
            eq([e["entryId"] for e in body["failedEntries"]], ["e0", "e1", "e2"],
               "every entry of the held bulk publish failed")
            failed(dapr_publish(b.host, b.port, "after", pubsub="pubsub-other"),
                   "publish after the failure")
            r = b.request("POST", "/default/default",
                          {"ce-id": "k", "ce-source": "/s", "ce-type": "t",
                           "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
            eq(r.status, 500, "Knative ingress after the failure: %r" % r)
            check(msg.encode() in r.body, r.body)
            check("write of journal" in b.log() and "Input/output error" in b.log(),
                  "the failure is logged: %s" % b.log())
        finally:
            forget(b)


if __name__ == "__main__":
    Runner().run([
        test_restart_after_shm_wipe,
        test_kill9_during_ingest,
        test_flipped_bits,
        test_zero_filled_tail,
        test_truncated_file,
        test_refused_at_start,
        test_sync_kill9_after_202s,
        test_sync_group_commit,
        test_batch_flush_bound,
        test_cursors_follow_deliveries,
        test_dapr_sync_publish,
        test_dapr_sync_group_commit,
        test_dapr_sync_loop_responsive,
        test_sync_stop_with_held_answers,
        test_dapr_sync_fdatasync_fails,
    ])
