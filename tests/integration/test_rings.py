#!/usr/bin/env python3
"""`ringcast rings ls|rm` (issue 14 item 5) against real brokers with unique ring prefixes:
ls shows a running broker's ring with its pid, reader slots and fill after N undelivered
events, as a table and as JSON; a broker killed with SIGKILL leaves a stale ring (owner -) that
rm removes with its cursors, while rm refuses a live broker's ring naming its pid; a file store
is listed with --storage-dir and refused by rm; bad arguments exit 2; a start that fails on a
busy port leaves no ring. Every wait is bounded; processes are stopped by pid."""

import json
import os
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402

N = 7


def config(subscriber_port=None, storage_dir=None):
    doc = ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  workers: 1\n"
           "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default")
    if storage_dir is not None:
        doc += (", annotations: {ringcast.dev/storage-type: file, "
                "ringcast.dev/storage-directory: %s}" % storage_dir)
    doc += "}\n"
    if subscriber_port is not None:
        # A subscriber that refuses connections, retried for long: the events stay unacknowledged
        # in the ring, so the worker's feed (a lossless reader) holds them and FILL is above 0.
        doc += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\n"
                "spec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:%d/}\n"
                "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT10S}\n"
                % subscriber_port)
    return doc


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post_events(b, n):
    for i in range(n):
        r = b.request("POST", "/default/default",
                      {"ce-id": str(i), "ce-source": "/t", "ce-type": "a",
                       "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"hello")
        eq(r.status, 202, "event %d accepted" % i)


def ls_json(prefix, *extra):
    rc, out, err = run_cli(["rings", "ls", "--ring-prefix", prefix, "-o", "json"] + list(extra))
    eq(rc, 0, "rings ls -o json: %s" % err)
    return json.loads(out)


def shm_objects(prefix):
    return sorted(p for p in os.listdir("/dev/shm") if p.startswith(prefix + "."))


def test_ls_live_broker():
    with Broker(config(closed_port())) as b:
        post_events(b, N)
        rows = ls_json(b.prefix)
        eq(len(rows), 1, "one ring: %r" % rows)
        r = rows[0]
        eq(r["name"], "default/default", "name")
        eq(r["storage"], "memory", "storage")
        eq(r["ownerPid"], b.proc.pid, "owner is the broker")
        eq(r["path"], "/dev/shm/" + b.ring_name("default", "default"), "path")
        check(r["readers"] >= 1, "the worker's feed is a reader: %r" % r)
        check(r["fillBytes"] > 0 and 0 < r["fillPercent"] < 100, "fill: %r" % r)
        eq((r["oldestSeq"], r["newestSeq"]), (0, N - 1), "oldest/newest seq")
        rc, out, err = run_cli(["rings", "ls", "--ring-prefix", b.prefix])
        eq(rc, 0, "table: " + err)
        lines = out.splitlines()
        check(lines[0].split()[:4] == ["NAME", "STORAGE", "OWNER", "PID"], lines[0])
        cols = lines[1].split()
        eq(cols[:3], ["default/default", "memory", str(b.proc.pid)], "table row " + lines[1])
        rc, out, err = run_cli(["rings", "ls", "--ring-prefix", b.prefix, "--output", "wide"])
        eq(rc, 0, "wide: " + err)
        check("/dev/shm/" + b.ring_name("default", "default") in out, out)
        # ls took no reader slot and no lock: the broker still takes events
        post_events(b, 1)
        eq(ls_json(b.prefix)[0]["newestSeq"], N, "still ingesting after ls")
        rc, out, err = run_cli(["rings", "rm", "default/default", "--ring-prefix", b.prefix])
        eq(rc, 1, "rm of a live broker's ring")
        check(("pid %d" % b.proc.pid) in err, err)
        check(shm_objects(b.prefix) != [], "ring still there")
        eq(b.request("POST", "/default/default",
                     {"ce-id": "z", "ce-source": "/t", "ce-type": "a", "ce-specversion": "1.0"},
                     b"x").status, 202, "broker unaffected by the refused rm")


def test_stale_ring_rm():
    with Broker(config()) as b:
        post_events(b, 3)
        b.signal(signal.SIGKILL)
        check(b.wait(10) is not None, "broker gone")
        rows = ls_json(b.prefix)
        eq(len(rows), 1, "stale ring listed")
        eq(rows[0]["ownerPid"], None, "no owner")
        rc, out, err = run_cli(["rings", "ls", "--ring-prefix", b.prefix])
        eq(out.splitlines()[1].split()[2], "-", "owner - in the table")
        # a cursors object beside it, as a store with saved cursors has
        cur = "/dev/shm/%s.cursors" % b.ring_name("default", "default")
        with open(cur, "wb") as f:
            f.write(b"x")
        os.chmod(cur, 0o600)
        rc, out, err = run_cli(["rings", "rm", "default/default", "--ring-prefix", b.prefix])
        eq(rc, 0, "rm stale: " + err)
        check("removed ring default/default" in out, out)
        eq(shm_objects(b.prefix), [], "ring and cursors gone")
        rc, out, err = run_cli(["rings", "rm", "default/default", "--ring-prefix", b.prefix])
        eq(rc, 1, "rm of a missing ring")
        check("no ring for default/default" in err, err)
        eq(ls_json(b.prefix), [], "nothing left to list")


def test_file_store():
    with tempfile.TemporaryDirectory(prefix="rc-it-") as d:
        with Broker(config(storage_dir=d)) as b:
            post_events(b, 2)
            rows = ls_json(b.prefix, "--storage-dir", d)
            files = [r for r in rows if r["storage"] == "file"]
            eq(len(files), 1, "file store listed: %r" % rows)
            eq(files[0]["name"], "default/default", "file store name")
            eq(files[0]["ownerPid"], b.proc.pid, "file store owner")
            eq(files[0]["newestSeq"], 1, "file store newest")
            rc, out, err = run_cli(["rings", "rm", "default/default", "--ring-prefix", b.prefix,
                                    "--storage-dir", d])
            eq(rc, 1, "rm of a file store")
            check("file store" in err and "by hand" in err, err)
            check(os.path.exists(os.path.join(d, "default.default.ring")), "file kept")


def test_bad_arguments():
    for args, what in [(["rings"], "no sub-command"),
                       (["rings", "frobnicate"], "unknown sub-command"),
                       (["rings", "ls", "--ring-prefix", "bad.prefix"], "bad prefix"),
                       (["rings", "ls", "-o", "yaml"], "bad output"),
                       (["rings", "ls", "--bogus"], "unknown option"),
                       (["rings", "rm"], "rm without a name"),
                       (["rings", "rm", "nodash"], "rm name without a slash"),
                       (["rings", "rm", "a/b/c"], "rm name with two slashes"),
                       (["rings", "rm", "a.b/c"], "rm name with a dot")]:
        rc, out, err = run_cli(args)
        eq(rc, 2, "%s: %r" % (what, err))
        check(err.strip() != "", "%s says why" % what)
    for args in (["rings", "--help"], ["rings", "ls", "--help"], ["rings", "rm", "--help"]):
        rc, out, err = run_cli(args)
        eq(rc, 0, " ".join(args))
        check("usage: ringcast rings" in out, out)
    rc, out, err = run_cli(["rings", "ls", "--ring-prefix", "rcitnone%d" % os.getpid(),
                            "--storage-dir", "/nonexistent-rc-dir"])
    eq(rc, 1, "unreadable storage dir")
    check("/nonexistent-rc-dir" in err, err)


def test_busy_port_leaves_no_ring():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    prefix = "rcitbusy%dx%d" % (os.getpid(), int(time.time() * 1000) % 100000)
    try:
        rc, out, err = run_cli(["serve", "--listen", "127.0.0.1:%d" % port, "--admin",
                                "127.0.0.1:0", "--ring-prefix", prefix])
        eq(rc, 1, "serve on a busy port: " + err)
        check("Address already in use" in err, err)
        eq(shm_objects(prefix), [], "no ring left behind")
    finally:
        s.close()
        for p in shm_objects(prefix):
            os.unlink("/dev/shm/" + p)


def test_busy_port_keeps_an_existing_ring():
    # A ring with events from an earlier run is not this start's to remove.
    with Broker(config()) as b:
        post_events(b, 2)
        b.stop()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            rc, out, err = run_cli(["serve", "--listen", "127.0.0.1:%d" % s.getsockname()[1],
                                    "--admin", "127.0.0.1:0", "--ring-prefix", b.prefix])
            eq(rc, 1, "serve on a busy port")
        finally:
            s.close()
        check(b.ring_name("default", "default") in shm_objects(b.prefix), "earlier ring kept")
        eq(ls_json(b.prefix)[0]["newestSeq"], 1, "its events kept")


if __name__ == "__main__":
    Runner().run([test_ls_live_broker, test_stale_ring_rm, test_file_store, test_bad_arguments,
                  test_busy_port_leaves_no_ring, test_busy_port_keeps_an_existing_ring])
