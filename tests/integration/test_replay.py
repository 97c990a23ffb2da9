#!/usr/bin/env python3
"""Replay (issue 13; docs/durability.md, "Replay") with the real broker:

- three bursts of events with pauses between them; `ringcast tail --from T`, T taken between
  the first and the second burst, prints exactly bursts 2 and 3 (by id), for a memory broker
  and a file store, and for the file store again after a restart (with a fourth burst);
- a time before every event starts at the oldest and says so on stderr, also when the ring
  overwrote its first events (it says so); a time after every event prints nothing; a bad
  time is refused (exit 2);
- a time index damaged while the broker is down: tail says so and still prints exactly the
  same events (it scans from the oldest);
- Triggers added by a SIGHUP reload after the bursts: ringcast.dev/start-from oldest gets every
  held event, <time> exactly those from that time, latest only new ones; a reload that changes
  start-from on a trigger that has a cursor does not rewind it, and says so;
- `ringcast serve --check` refuses bad start-from values with FILE:LINE.

Every wait is bounded; processes are stopped by pid; only 127.0.0.1."""

import datetime
import glob
import json
import os
import signal
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

PAUSE = 1.3  # between bursts: more than the index's sampling interval and its 1 s slack
BURST = 12

BASE = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  shutdownTimeout: 2s
  workers: 1
  ring: {size: 1Mi}
  limits: {maxEventBytes: 64Ki, maxHeaderBytes: 8Ki, maxBatchBytes: 256Ki, maxBatchEvents: 50}
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def config(storage="", triggers=""):
    return BASE % storage + triggers


def file_storage(d):
    return "  storage: {type: file, directory: %s, durability: none}\n" % d


def trigger(name, uri, start_from=None):
    ann = ""
    if start_from is not None:
        ann = "  annotations:\n    ringcast.dev/start-from: \"%s\"\n" % start_from
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
            "  name: %s\n%sspec:\n  broker: default\n  subscriber: {uri: %s}\n"
            % (name, ann, uri))


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def publish(b, eid):
    r = b.request("POST", "/default/default",
                  {"ce-id": eid, "ce-source": "/replay", "ce-type": "t", "ce-specversion": "1.0",
                   "Content-Type": "application/octet-stream"}, b"x" * 64)
    eq(r.status, 202, "publish %s: %r" % (eid, r))


def burst(b, name, n=BURST):
    ids = ["%s-%d" % (name, i) for i in range(n)]
    for i in ids:
        publish(b, i)
    return ids


def three_bursts(b):
    """Bursts 1, 2, 3 with pauses; returns (ids of each, T: a time after burst 1's last 202
    and before burst 2's first request)."""
    b1 = burst(b, "b1")
    time.sleep(PAUSE)
    t2 = time.time()
    time.sleep(0.01)
    b2 = burst(b, "b2")
    time.sleep(PAUSE)
    b3 = burst(b, "b3")
    return b1, b2, b3, rfc3339(t2)


def tail(target_args, frm, timeout="800ms"):
    rc, out, err = run_cli(["tail", "default/default", "--from", frm, "--timeout", timeout]
                           + target_args)
    ids = [json.loads(line)["id"] for line in out.splitlines() if line] if rc == 0 else []
    return rc, ids, err


def expect_tail(target_args, frm, want, what):
    rc, ids, err = tail(target_args, frm)
    eq(rc, 0, "%s: tail --from %s: %s" % (what, frm, err))
    eq(ids, want, "%s: tail --from %s" % (what, frm))
    return err


def tail_checks(args, b1, b2, b3, t2, what):
    expect_tail(args, t2, b2 + b3, what)
    expect_tail(args, "oldest", b1 + b2 + b3, what)
    err = expect_tail(args, "2001-01-01T00:00:00Z", b1 + b2 + b3, what)
    check("is before the oldest event the ring holds" in err, "%s: said so: %r" % (what, err))
    expect_tail(args, rfc3339(time.time() + 3600), [], what + " (a future time)")
    # The same instant written with another offset.
    dt = datetime.datetime.strptime(t2, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    expect_tail(args, dt.isoformat(), b2 + b3, what + " (+02:00)")


def test_tail_from_memory():
    with Broker(config()) as b:
        b1, b2, b3, t2 = three_bursts(b)
        args = ["--ring-prefix", b.prefix]
        eq(os.path.exists("/dev/shm/%s.timeindex" % b.ring_name("default", "default")), True,
           "the time index beside the ring")
        tail_checks(args, b1, b2, b3, t2, "memory")
        for bad in ("yesterday", "2026-12-04", "2026-12-04T25:00:00Z", ""):
            rc, _, err = tail(args, bad)
            eq(rc, 2, "tail --from %r: %s" % (bad, err))
            check("--from must be oldest, latest or an RFC 3339 time" in err, err)
        rc, _, err = tail(args + ["--group", "g"], t2)
        eq(rc, 2, "--from TIME with --group: %s" % err)


def test_tail_from_wrapped_ring():
    """A ring that overwrote its first events: a time before the oldest held starts there and
    says the rest was overwritten; a time inside still prints exactly what arrived since."""
    with Broker(config()) as b:
        args = ["--ring-prefix", b.prefix]
        big = b"y" * 8000
        for i in range(200):  # 1.6 MB into a 1 MiB ring
            r = b.request("POST", "/default/default",
                          {"ce-id": "w-%d" % i, "ce-source": "/replay", "ce-type": "t",
                           "ce-specversion": "1.0", "Content-Type": "application/octet-stream"},
                          big)
            eq(r.status, 202, "publish w-%d" % i)
        time.sleep(PAUSE)
        t = rfc3339(time.time())
        time.sleep(0.01)
        tail_ids = burst(b, "after", 5)
        rc, ids, err = tail(args, "2001-01-01T00:00:00Z")
        eq(rc, 0, err)
        first = int(ids[0].split("-")[1])
        check(first > 0, "the first events were overwritten: %s" % ids[:3])
        eq(ids, ["w-%d" % i for i in range(first, 200)] + tail_ids, "from the oldest held")
        check("is before the oldest event the ring holds (seq %d" % first in err and
              "the events before it were overwritten" in err, err)
        expect_tail(args, t, tail_ids, "wrapped ring")


def damage_index(path):
    """Makes the samples of a time index file go back in time (header left intact)."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        count, = struct.unpack_from("<Q", data, 24)
        entries, = struct.unpack_from("<I", data, 12)
        check(count >= 2, "samples taken: %d" % count)
        n = count - 1  # the newest sample claims to be older than every other
        struct.pack_into("<q", data, 64 + (n % entries) * 32 + 8, 1)
        f.seek(0)
        f.write(data)


def test_tail_from_file_store():
    with tempfile.TemporaryDirectory(prefix="rc-replay-") as d:
        args = ["--storage-dir", d]
        b = Broker(config(file_storage(d)))
        prefix = b.prefix
        try:
            b1, b2, b3, t2 = three_bursts(b)
            index = os.path.join(d, "default.default.timeindex")
            eq(os.stat(index).st_mode & 0o777, 0o600, "time index mode")
            tail_checks(args, b1, b2, b3, t2, "file")
            eq(b.stop(), 0, "graceful stop")
        finally:
            b.__exit__(None, None, None)
        # Stopped: tail reads the file by itself, and a damaged index only costs a scan.
        expect_tail(args, t2, b2 + b3, "file, broker stopped")
        damage_index(index)
        err = expect_tail(args, t2, b2 + b3, "file, damaged index")
        check("damaged" in err and "scanning from the oldest event" in err,
              "the damage is reported: %r" % err)
        b = Broker(config(file_storage(d)), args=["--ring-prefix", prefix])
        try:
            b4 = burst(b, "b4")
            time.sleep(0.3)  # a sample after the restart
            expect_tail(args, t2, b2 + b3 + b4, "file, after a restart")
            expect_tail(args, "oldest", b1 + b2 + b3 + b4, "file, after a restart")
            eq(b.stop(), 0, "graceful stop")
        finally:
            b.__exit__(None, None, None)
        for p in glob.glob("/dev/shm/%s.*" % prefix):
            os.unlink(p)


def wait_ids(s, want, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not set(want) <= set(s.ids()):
        time.sleep(0.05)
    return s.ids()


def reload(b, text, reloads):
    with open(os.path.join(b.tmp.name, "ringcast.yaml"), "w") as f:
        f.write(text)
    b.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if b.metrics().get("ringcast_config_reloads_total", 0) >= reloads:
            return
        time.sleep(0.05)
    raise AssertionError("reload %d not applied: %s" % (reloads, b.log()[-2000:]))


def trigger_checks(storage, what):
    with Subscriber() as s0, Subscriber() as s_old, Subscriber() as s_time, \
            Subscriber() as s_late:
        with Broker(config(storage, trigger("base", s0.url))) as b:
            b1, b2, b3, t2 = three_bursts(b)
            wait_ids(s0, b1 + b2 + b3)
            triggers = (trigger("base", s0.url) + trigger("from-oldest", s_old.url, "oldest")
                        + trigger("from-time", s_time.url, t2)
                        + trigger("from-latest", s_late.url, "latest"))
            reload(b, config(storage, triggers), 1)
            b4 = burst(b, "b4")
            got_old = wait_ids(s_old, b1 + b2 + b3 + b4)
            got_time = wait_ids(s_time, b2 + b3 + b4)
            got_late = wait_ids(s_late, b4)
            time.sleep(0.5)  # anything more would have come by now
            eq(sorted(set(s_old.ids())), sorted(b1 + b2 + b3 + b4), what + ": start-from oldest")
            eq(sorted(set(s_time.ids())), sorted(b2 + b3 + b4), what + ": start-from " + t2)
            eq(sorted(set(s_late.ids())), sorted(b4), what + ": start-from latest")
            check(got_old and got_time and got_late, "delivered")
            log = b.log()
            check("trigger default/from-time: new, start-from" in log and
                  "starts at event seq %d" % BURST in log, log[-3000:])
            # A changed start-from on a trigger with a cursor does not rewind it.
            n = len(s_time.ids())
            triggers = triggers.replace('start-from: "%s"' % t2, 'start-from: "oldest"')
            reload(b, config(storage, triggers), 2)
            b5 = burst(b, "b5", 3)
            wait_ids(s_time, b5)
            time.sleep(0.3)
            # (a window above 1: the three may arrive in any order, but only they arrive)
            eq(sorted(s_time.ids()[n:]), sorted(b5), what + ": no rewind after start-from changed")
            check("trigger default/from-time: ringcast.dev/start-from changed; it has a saved "
                  "cursor and resumes where it acknowledged" in b.log(), b.log()[-2000:])


def test_trigger_start_from_memory():
    trigger_checks("", "memory")


def test_trigger_start_from_file_store():
    with tempfile.TemporaryDirectory(prefix="rc-replay-") as d:
        trigger_checks(file_storage(d), "file")


def test_check_refuses_bad_start_from():
    with tempfile.TemporaryDirectory(prefix="rc-replay-") as d:
        path = os.path.join(d, "c.yaml")
        for bad in ("Oldest", "soon", "2026-12-04T22:00:00", "2026-02-30T00:00:00Z"):
            with open(path, "w") as f:
                f.write(config("", trigger("t", "http://127.0.0.1:9/", bad)))
            code, _, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix",
                                    "rcck%dr" % os.getpid()])
            check(code != 0, "--check accepted start-from %r" % bad)
            want = ("%s:18: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' "
                    "must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, "
                    "not '%s'" % (path, bad))
            check(want in err, "message for %r: %r" % (bad, err))
        for good in ("oldest", "latest", "2026-12-04T22:00:00+01:00"):
            with open(path, "w") as f:
                f.write(config("", trigger("t", "http://127.0.0.1:9/", good)))
            code, _, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix",
                                    "rcck%dr" % os.getpid()])
            eq(code, 0, "--check start-from %r: %s" % (good, err))
        for p in glob.glob("/dev/shm/rcck%dr.*" % os.getpid()):
            os.unlink(p)


if __name__ == "__main__":
    Runner().run([
        test_tail_from_memory,
        test_tail_from_wrapped_ring,
        test_tail_from_file_store,
        test_trigger_start_from_memory,
        test_trigger_start_from_file_store,
        test_check_refuses_bad_start_from,
    ])
