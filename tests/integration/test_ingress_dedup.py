#!/usr/bin/env python3
"""Deduplication at the ingress (issue 15, item 4; docs/delivery.md, "Deduplication"): the real
`ringcast serve` with `ringcast.dev/dedup-window` on its Broker. A producer that retries after a
lost 202 (the connection closed before the answer was read) gets 202 and the event is stored
and delivered once; repeats inside one batch and of earlier events are left out of a batch;
the window ends; a full table drops its oldest keys and says so; a restarted broker with a
file store remembers what its last run accepted; durability sync answers duplicates too; the
metrics pass promtool. Every wait is bounded."""

import json
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 1s
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
%s"""


def config(annotations, storage="", trigger_url=None):
    ann = "".join("    %s: \"%s\"\n" % kv for kv in annotations.items())
    doc = HEAD % (storage, "  annotations:\n" + ann if ann else "")
    if trigger_url:
        doc += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\n"
                "spec:\n  broker: default\n  subscriber: {uri: \"%s\"}\n" % trigger_url)
    return doc


def event(eid, source="/dedup"):
    return {"ce-id": eid, "ce-source": source, "ce-type": "t", "ce-specversion": "1.0",
            "Content-Type": "text/plain"}


def post(b, eid, source="/dedup", body=b"x"):
    return b.request("POST", "/default/default", event(eid, source), body).status


def batch(b, ids):
    body = json.dumps([{"specversion": "1.0", "id": i, "source": "/dedup", "type": "t",
                        "data": i} for i in ids]).encode()
    return b.request("POST", "/default/default",
                     {"Content-Type": "application/cloudevents-batch+json"}, body).status


def stored_ids(b):
    return [e["id"] for e in b.tail("default/default", "--from", "oldest")]


def metric(b, name):
    return b.metrics().get('%s{namespace="default",broker="default"}' % name)


def lost_answer(b, eid):
    """Sends the event and closes the connection without reading the answer: the producer
    never learns whether it was stored."""
    s = socket.create_connection((b.host, b.port), timeout=5)
    head = "POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n" + \
        "".join("%s: %s\r\n" % kv for kv in event(eid).items()) + "\r\n"
    s.sendall(head.encode() + b"x")
    s.close()


def wait_until(cond, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def test_retry_after_lost_202():
    with Subscriber() as sub:
        with Broker(config({"ringcast.dev/dedup-window": "1m"}, trigger_url=sub.url)) as b:
            lost_answer(b, "order-1")
            wait_until(lambda: stored_ids(b) == ["order-1"], "the first copy stored")
            for _ in range(3):  # the producer retries, and retries again
                eq(post(b, "order-1"), 202, "a retry is accepted")
            eq(post(b, "order-1", source="/elsewhere"), 202, "same id, other source")
            eq(stored_ids(b), ["order-1", "order-1"], "one copy per (source, id)")
            sub.wait_for(2)
            time.sleep(0.3)
            eq(len(sub.requests), 2, "delivered once per (source, id)")
            eq(metric(b, "ringcast_ingress_duplicates_total"), 3, "duplicates counted")
            eq(metric(b, "ringcast_dedup_keys"), 2, "keys held")
            eq(metric(b, "ringcast_dedup_window_seconds"), 60, "window")
            check("deduplication over 60000 ms" in b.log(), b.log())


def test_batches():
    with Broker(config({"ringcast.dev/dedup-window": "1m"})) as b:
        eq(post(b, "a"), 202, "single")
        eq(batch(b, ["a", "b", "c", "b", "d"]), 202, "batch with repeats")
        eq(stored_ids(b), ["a", "b", "c", "d"], "repeats left out of the batch")
        eq(batch(b, ["a", "c"]), 202, "a batch of repeats only")
        eq(stored_ids(b), ["a", "b", "c", "d"], "nothing stored for it")
        eq(metric(b, "ringcast_ingress_duplicates_total"), 4, "duplicates")
        # A refused publish leaves no key behind: its retry is stored.
        eq(b.request("POST", "/default/default", {"Content-Type": "application/json"},
                     b'{"specversion":"1.0","id":"e","source":"/dedup"}').status, 400, "invalid")
        eq(post(b, "e"), 202, "the corrected retry")
        eq(stored_ids(b)[-1], "e", "stored")


def test_window_ends():
    with Broker(config({"ringcast.dev/dedup-window": "1s"})) as b:
        eq(post(b, "w"), 202, "first")
        eq(post(b, "w"), 202, "within the window")
        time.sleep(1.2)
        eq(post(b, "w"), 202, "after the window")
        eq(stored_ids(b), ["w", "w"], "stored again once the window ended")


def test_full_table():
    with Broker(config({"ringcast.dev/dedup-window": "1h",
                        "ringcast.dev/dedup-capacity": "1024"})) as b:
        n = 1100
        for start in range(0, n, 100):
            eq(batch(b, ["k%d" % i for i in range(start, start + 100)]), 202, "batch")
        eq(metric(b, "ringcast_dedup_capacity_keys"), 1024, "capacity")
        eq(metric(b, "ringcast_dedup_keys"), 1024, "full")
        eq(metric(b, "ringcast_dedup_evicted_total"), n - 1024, "evicted")
        check(metric(b, "ringcast_dedup_oldest_key_age_seconds") < 60, "effective window")
        eq(post(b, "k0"), 202, "an evicted key")
        eq(post(b, "k%d" % (n - 1), ), 202, "a held key")
        ids = stored_ids(b)
        eq(len(ids), n + 1, "the evicted key stored again, the held one not")
        eq(ids[-1], "k0", "k0 again")


def test_restart_remembers():
    with tempfile.TemporaryDirectory(prefix="rc-dedup-") as d:
        storage = "  storage: {type: file, directory: %s}\n" % d
        cfg = config({"ringcast.dev/dedup-window": "1m"}, storage)
        with Broker(cfg) as b:
            for i in range(10):
                eq(post(b, "r%d" % i), 202, "publish")
            eq(b.stop(), 0, "clean stop")
        with Broker(cfg) as b:
            check("10 keys of events still in the store loaded" in b.log(), b.log())
            for i in range(5, 15):
                eq(post(b, "r%d" % i), 202, "publish after the restart")
            eq(metric(b, "ringcast_ingress_duplicates_total"), 5, "the repeats of the last run")
            rc, out, err = run_cli(["tail", "default/default", "--storage-dir", d, "--from",
                                    "oldest", "--timeout", "500ms"])
            eq(rc, 0, err)
            ids = [json.loads(ln)["id"] for ln in out.splitlines() if ln]
            eq(ids, ["r%d" % i for i in range(15)], "each event once")


def test_sync_duplicates():
    with tempfile.TemporaryDirectory(prefix="rc-dedup-sync-") as d:
        storage = "  storage: {type: file, directory: %s, durability: sync}\n" % d
        with Broker(config({"ringcast.dev/dedup-window": "1m"}, storage)) as b:
            for _ in range(3):
                eq(post(b, "s1"), 202, "sync publish and repeats")
            eq(batch(b, ["s1", "s2"]), 202, "a batch with a repeat")
            rc, out, err = run_cli(["tail", "default/default", "--storage-dir", d, "--from",
                                    "oldest", "--timeout", "500ms"])
            eq(rc, 0, err)
            eq([json.loads(ln)["id"] for ln in out.splitlines() if ln], ["s1", "s2"],
               "stored once each")
            eq(metric(b, "ringcast_ingress_duplicates_total"), 3, "duplicates")


def test_metrics_clean():
    from test_metrics import collisions, families, promtool
    with Broker(config({"ringcast.dev/dedup-window": "10s"})) as b:
        eq(post(b, "m"), 202, "publish")
        eq(post(b, "m"), 202, "repeat")
        text = b.request("GET", "/metrics", admin=True).body.decode()
        check("ringcast_ingress_duplicates_total{" in text, "the family is there")
        rc, out = promtool(text)
        eq((rc, out.strip()), (0, ""), "promtool check metrics")
        types, _ = families(text)
        eq(collisions(types), [], "OpenMetrics collisions")
    with Broker(config({})) as b:
        text = b.request("GET", "/metrics", admin=True).body.decode()
        check("ringcast_dedup" not in text and "duplicates_total" not in text,
              "no dedup families without the annotation")


def test_bad_annotations():
    for ann, want in (({"ringcast.dev/dedup-window": "100ms"}, "must be from 1s to 24h"),
                      ({"ringcast.dev/dedup-capacity": "5000"}, "applies with"),
                      ({"ringcast.dev/dedup-windows": "1m"}, "unknown annotation")):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(config(ann))
            f.flush()
            rc, out, err = run_cli(["serve", "--check", "--config", f.name])
            eq(rc, 2, "serve --check exit for %r" % ann)
            check(want in out + err, out + err)


if __name__ == "__main__":
    Runner().run([
        test_retry_after_lost_202,
        test_batches,
        test_window_ends,
        test_full_table,
        test_restart_remembers,
        test_sync_duplicates,
        test_metrics_clean,
        test_bad_annotations,
    ])
