#!/usr/bin/env python3
"""The file store's delivery feeds (issue 13): they verify each record's CRC32C before a
trigger gets it, and in durability sync a worker finishes an event whose reply it stored only
once an fdatasync covering the reply returned (docs/durability.md, "Feeds verify" and "Replies
under sync"). Real broker, real workers, real files; the fdatasync shim (fsync_fault.c) slows
or breaks the workers' fdatasync only (RC_FSYNC_FORKED_ONLY)."""
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, alive, check, children, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402
from test_durable import (durable_config, fault_env, forget, metric, publish, records,  # noqa: E402
                          ring_path, tail)


def trigger(uri, name="feed"):
    """A trigger on type `t` only (the replies, type `reply`, are not sent back to it)."""
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
            "  name: %s\n  annotations:\n    ringcast.dev/max-inflight: \"8\"\n"
            "spec:\n  broker: default\n  filter: {attributes: {type: t}}\n"
            "  subscriber: {uri: %s}\n"
            "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT0.1S,"
            " backoffMax: PT0.2S, timeout: PT10S}\n" % (name, uri))


def ids(sub):
    return [r.ce("id") for r in list(sub.requests)]


def wait_until(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %.1f s: %s" % (timeout, what))


# ---- feeds verify --------------------------------------------------------------------------

def test_feed_skips_corrupt_record():
    """Bits flipped in the file of a running broker, in a record its feed has not read yet (the
    worker is stopped meanwhile): the trigger never gets it, the worker logs it by position and
    the broker counts it; every other event is delivered, and new ones after it."""
    with tempfile.TemporaryDirectory(prefix="rc-feeds-") as d, Subscriber() as sub:
        b = Broker(durable_config(d, "none") + trigger(sub.url))
        try:
            publish(b, "first")
            sub.wait_for(1)
            workers = children(b.proc.pid)
            eq(len(workers), 1, "one worker: %r" % workers)
            os.kill(workers[0], signal.SIGSTOP)  # a process of this broker, by pid
            try:
                for i in range(10):
                    publish(b, "v%d" % i, b"payload %d " % i + b"x" * 64)
                _, _, recs = records(ring_path(d))
                eq(len(recs), 11, "records in the file")
                pos, off, n = recs[6][0], recs[6][1], recs[6][2]  # event v5
                check(n > 120, "record length %d" % n)
                # A byte of the event's data (in its run of x): the event still decodes, only
                # the checksum tells.
                with open(ring_path(d), "r+b") as f:  # the page cache the mapping shares
                    f.seek(off)
                    at = off + f.read(n).find(b"payload 5 " + b"x" * 64) + 20
                    check(at > off + 20, "the data of v5 in its record")
                    f.seek(at)
                    f.write(b"y")
            finally:
                os.kill(workers[0], signal.SIGCONT)
            sub.wait_for(10, timeout=10)
            publish(b, "after")
            sub.wait_for(11, timeout=10)
            time.sleep(0.2)  # a late v5 would arrive now
            got = ids(sub)
            eq(got[0], "first", "first")
            eq(got[-1], "after", "after")
            eq(sorted(got[1:-1]), ["v%d" % i for i in range(10) if i != 5],
               "delivered (8 in flight: in any order), v5 skipped")
            _, v = metric(b, "ringcast_storage_corrupt_records_total")
            eq(v, 1, "corrupt records metric")
            log = b.log()
            check("the record at position %d (seq 6) fails its checksum: skipped" % pos in log,
                  log)
            eq(b.proc.poll(), None, "the broker runs")
            eq(children(b.proc.pid), workers, "the same worker, alive")
        finally:
            forget(b)


# ---- replies under sync --------------------------------------------------------------------

def replier(delay_path, slow_for):
    """A subscriber behaviour that answers each event with a reply event; for the id in
    `slow_for` it first makes the workers' fdatasync slow (writes `delay_path`)."""
    def behaviour(_i, req):
        eid = req.ce("id")
        if eid in slow_for:
            with open(delay_path, "w") as f:
                f.write(str(slow_for[eid]))
        return (200, {"ce-id": "r-" + eid, "ce-source": "/replier", "ce-type": "reply",
                      "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"answer", 0.0)
    return behaviour


def reply_env(d):
    env = fault_env(d)
    env["RC_FSYNC_FORKED_ONLY"] = "1"  # the workers' fdatasyncs, not the broker's flusher's
    return env


def test_reply_flushed_before_ack():
    """durability sync: the worker stores the reply of q1, then its fdatasync takes 3 s (the
    shim); serve is killed during it. The restarted broker delivers q1 again: its cursor did not
    pass q1 before the reply's flush returned. Then q2, whose reply's flush (1 s) does return:
    after a stop and a restart q2 is not delivered again (the ack came once the flush did)."""
    with tempfile.TemporaryDirectory(prefix="rc-feeds-reply-") as d:
        env = reply_env(d)
        delay = env["RC_FSYNC_DELAY_FILE"]
        with Subscriber(replier(delay, {"q1": 3000, "q2": 1000})) as sub:
            cfg = durable_config(d, "sync") + trigger(sub.url)
            b = Broker(cfg, env=env)
            try:
                publish(b, "q1")
                sub.wait_for(1)
                # The reply is committed at once; its fdatasync (3 s) is running.
                wait_until(lambda: "r-q1" in tail(d)[1], 5, "r-q1 in the file")
                time.sleep(0.3)
                check(any(alive(p) for p in children(b.proc.pid)), "a worker runs")
                b.signal(signal.SIGKILL)
                b.wait()
            finally:
                forget(b)
            os.unlink(delay)
            b = Broker(cfg, env=env)
            try:
                sub.wait_for(2, timeout=10)
                eq(ids(sub), ["q1", "q1"], "q1 delivered again after the kill")
                publish(b, "q2")
                sub.wait_for(3, timeout=10)
                time.sleep(1.5)  # the reply's 1 s fdatasync returns, then q2 is acknowledged
                os.unlink(delay)
                eq(b.stop(), 0, "graceful stop")
            finally:
                forget(b)
            b = Broker(cfg, env=env)
            try:
                publish(b, "q3")
                sub.wait_for(4, timeout=10)
                time.sleep(0.3)
                eq(ids(sub), ["q1", "q1", "q2", "q3"], "q2 not again: acknowledged after its "
                   "reply's flush")
                _, replies, _ = tail(d)
                eq([x for x in replies if x.startswith("r-")], ["r-q1", "r-q1", "r-q2", "r-q3"],
                   "the replies in the file")
            finally:
                forget(b)


def test_reply_flush_fails_keeps_event():
    """durability sync, the workers' fdatasync failing (EIO, the shim): the reply is stored but
    its flush fails, logged; the event it answers is never acknowledged and its trigger sends
    nothing more, so a restart (with a working disk) delivers it and the next one."""
    with tempfile.TemporaryDirectory(prefix="rc-feeds-fail-") as d:
        env = reply_env(d)
        fail = env["RC_FSYNC_FAIL_FILE"]
        with Subscriber(replier(env["RC_FSYNC_DELAY_FILE"], {})) as sub:
            cfg = durable_config(d, "sync") + trigger(sub.url)
            b = Broker(cfg, env=env)
            try:
                open(fail, "w").close()
                publish(b, "f1")  # the broker's own flush works: 202
                sub.wait_for(1)
                wait_until(lambda: "replies or dead letters failed" in b.log(), 5,
                           "the failed flush logged")
                publish(b, "f2")
                time.sleep(0.5)
                eq(ids(sub), ["f1"], "the trigger stopped at its unflushed reply")
                eq(b.stop(), 0, "graceful stop")
                log = b.log()
                check("fdatasync of ring file %s for 1 replies or dead letters failed: "
                      "Input/output error" % ring_path(d) in log, log)
            finally:
                forget(b)
            os.unlink(fail)
            b = Broker(cfg, env=env)
            try:
                sub.wait_for(3, timeout=10)
                time.sleep(0.3)
                eq(sorted(ids(sub)), ["f1", "f1", "f2"], "f1 again and f2 after the restart")
                _, got, _ = tail(d)
                eq(sorted(x for x in got if x.startswith("r-")), ["r-f1", "r-f1", "r-f2"],
                   "the replies in the file (f1 and f2 again in flight together: any order)")
            finally:
                forget(b)


if __name__ == "__main__":
    Runner().run([
        test_feed_skips_corrupt_record,
        test_reply_flushed_before_ack,
        test_reply_flush_fails_keeps_event,
    ])
