#!/usr/bin/env python3
"""Delivery of Dapr subscriptions end to end: the real `ringcast serve` with Dapr Component,
DaprApp and Subscription manifests, apps whose replicas are real HTTP servers on loopback
(tests/integration/dapr_app.py), events published to the Knative ingress with a `topic`
extension. Replicas as competing consumers (exactly once over both, a replica down, maxConcurrency),
fan-out to other apps and to Knative triggers on the same topic, routing rules, the app's
answers exactly as CONTRACTS.md "Delivery to an app" (SUCCESS, RETRY, unknown, DROP, 404,
errors), retries, dead-letter topics with the reason, no route, expiry, rawPayload,
bulkSubscribe (batches, the await, per-entry statuses, lying apps, a worker killed mid-batch),
and the counters /metrics shows. Every wait is bounded; every count is exact."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import children, BIN_DIR, Broker as _Broker, Runner, check, eq  # noqa: E402
from dapr_app import Replica, wait_until  # noqa: E402
from subscriber import Subscriber  # noqa: E402

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


class Broker(_Broker):
    """rc_harness.Broker that, when the test body passed, also checks the graceful stop (exit
    code 0) and that no process of the broker printed a sanitizer report."""

    def __exit__(self, exc_type, *rest):
        rc = self.stop()
        log = self.log()
        super().__exit__(exc_type, *rest)
        if exc_type is None:
            for mark in SANITIZER_MARKS:
                check(mark not in log, "sanitizer report:\n%s" % log[-4000:])
            eq(rc, 0, "ringcast serve exit code (log: %s)" % log[-2000:])

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: %d
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
spec:
  delivery: {retry: %d, backoffDelay: PT0.05S, backoffPolicy: linear}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namespace: default}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: default}
"""


def app(name, urls, max_concurrency=None):
    doc = ("---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\n"
           "metadata: {name: %s, namespace: default}\nspec:\n  endpoints: [%s]\n"
           % (name, ", ".join('"%s"' % u for u in urls)))
    if max_concurrency:
        doc += "  maxConcurrency: %d\n" % max_concurrency
    return doc


def sub(name, topic, apps, default="/orders", rules=(), dead_letter=None, raw=False, bulk=None):
    """`bulk`: (maxMessagesCount, maxAwaitDurationMs) enables bulkSubscribe."""
    doc = ("---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\n"
           "metadata: {name: %s, namespace: default}\nspec:\n  pubsubname: pubsub\n"
           "  topic: %s\n  routes:\n" % (name, topic))
    if rules:
        doc += "    rules:\n" + "".join("    - {match: '%s', path: %s}\n" % r for r in rules)
    if default:
        doc += "    default: %s\n" % default
    if dead_letter:
        doc += "  deadLetterTopic: %s\n" % dead_letter
    if raw:
        doc += "  metadata: {rawPayload: \"true\"}\n"
    if bulk:
        doc += ("  bulkSubscribe: {enabled: true, maxMessagesCount: %d, maxAwaitDurationMs: %d}\n"
                % bulk)
    return doc + "scopes: [%s]\n" % ", ".join(apps)


def knative_trigger(name, uri, topic):
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
            "metadata: {name: %s, namespace: default}\nspec:\n  broker: default\n"
            "  filter: {attributes: {topic: %s}}\n  subscriber: {uri: %s}\n" % (name, topic, uri))


def config(*docs, workers=1, retry=2, spec=""):
    return HEAD % (workers, spec, retry) + "".join(docs)


def publish(b, eid, topic="orders", etype="order", data=b'{"n":1}', headers=None):
    h = {"ce-id": str(eid), "ce-source": "/test", "ce-type": etype, "ce-specversion": "1.0",
         "ce-topic": topic, "Content-Type": "application/json"}
    h.update(headers or {})
    r = b.request("POST", "/default/default", h, data)
    eq(r.status, 202, "publish status (%r)" % r.body)


def publish_batch(b, ids, topic="orders"):
    """Structured events in batches of 100 (the ingress takes 1000 at most)."""
    for k in range(0, len(ids), 100):
        batch = [{"specversion": "1.0", "id": str(i), "source": "/test", "type": "order",
                  "topic": topic, "datacontenttype": "application/json", "data": {"n": i}}
                 for i in ids[k:k + 100]]
        r = b.request("POST", "/default/default",
                      {"Content-Type": "application/cloudevents-batch+json"},
                      json.dumps(batch).encode())
        eq(r.status, 202, "batch publish (%r)" % r.body)


def metric(b, name, trig, **labels):
    key = '%s{namespace="default",trigger="%s",broker="default"' % (name, trig)
    key += "".join(',%s="%s"' % kv for kv in labels.items()) + "}"
    return b.metrics().get(key)


def wait_metric(b, name, trig, value, timeout=15.0, **labels):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = metric(b, name, trig, **labels)
        if v == value:
            return
        time.sleep(0.05)
    raise AssertionError("%s{%s %s} = %r, expected %r\n%s" % (name, trig, labels, v, value,
                                                               b.log()[-3000:]))


def dead_url():
    """A loopback URL where nothing listens: connections are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


def counts(ids):
    out = {}
    for i in ids:
        out[i] = out.get(i, 0) + 1
    return out


def test_group_position_survives_restart():
    """A Dapr group's position is its trigger's saved cursor: after a graceful restart of the
    broker on the same ring, what the app acknowledged is not sent again and what it had not
    (refused while the broker stopped) is (at least once), then the new events."""
    up = {"c": False}

    def beh(_i, _req, ev):
        if ev["id"].startswith("c") and not up["c"]:
            return 503, b"", 0
        return 200, b"", 0
    with Replica(beh) as r:
        cfg = config(app("checkout", [r.url]), sub("orders", "orders", ["checkout"]), retry=1000)
        first = Broker(cfg)  # its exit removes the rings, so it is left last
        with first:
            publish_batch(first, ["a%d" % i for i in range(50)])
            wait_metric(first, "ringcast_trigger_delivered_total", "checkout:orders", 50)
            publish_batch(first, ["c%d" % i for i in range(5)])
            wait_until(lambda: any(i.startswith("c") for i in r.ids()), 10, "c refused once")
            eq(first.stop(), 0, "graceful stop")
            up["c"] = True
            with Broker(cfg, args=["--ring-prefix", first.prefix]) as b:
                publish_batch(b, ["b%d" % i for i in range(50)])
                wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 55)
                time.sleep(0.3)
            acked = [i for i in r.ids() if not i.startswith("c")]
            got = counts(acked)
            eq({k: v for k, v in got.items() if v > 1}, {}, "nothing acknowledged sent twice")
            eq(sorted(got), sorted(["a%d" % i for i in range(50)] +
                                   ["b%d" % i for i in range(50)]), "a and b once each")
            eq(sorted(set(i for i in r.ids() if i.startswith("c"))),
               ["c%d" % i for i in range(5)], "the refused ones delivered after the restart")


# ---- competing consumers and fan-out --------------------------------------------------------

def test_replicas_share_and_others_get_all():
    """Two replicas of `checkout` share 1,000 events exactly once; another app (`billing`) and a
    Knative Trigger filtering on the topic each get all of them."""
    n = 1000
    with Replica() as r1, Replica() as r2, Replica() as bill, Subscriber() as kn:
        cfg = config(app("checkout", [r1.url, r2.url]), app("billing", [bill.url]),
                     sub("orders", "orders", ["checkout", "billing"]),
                     knative_trigger("audit", kn.url, "orders"), workers=2)
        with Broker(cfg) as b:
            publish_batch(b, list(range(n)))
            publish(b, "other", topic="payments")  # no subscriber of that topic
            want = [str(i) for i in range(n)]
            wait_until(lambda: r1.count() + r2.count() >= n and bill.count() >= n and
                       kn.count() >= n, 30, "every delivery")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", n)
            wait_metric(b, "ringcast_trigger_delivered_total", "billing:orders", n)
            wait_metric(b, "ringcast_trigger_delivered_total", "audit", n)
            time.sleep(0.3)
            got = r1.ids() + r2.ids()
            dup = {k: v for k, v in counts(got).items() if v > 1}
            eq(dup, {}, "duplicates over the replicas")
            eq(sorted(got, key=int), want, "each event once over the replicas")
            check(r1.count() > 50 and r2.count() > 50,
                  "both replicas take a share: %d and %d" % (r1.count(), r2.count()))
            eq(sorted(bill.ids(), key=int), want, "the other app gets every event once")
            eq(sorted((r.ce("id") for r in kn.requests), key=int), want,
               "the Knative trigger gets every event once")
            for trig, reps in (("checkout:orders", (r1, r2)), ("billing:orders", (bill,))):
                for r in reps:
                    wait_metric(b, "ringcast_trigger_replica_delivered_total", trig, r.count(),
                                replica=r.url)
                    eq(metric(b, "ringcast_trigger_replica_inflight", trig, replica=r.url), 0,
                       "replica in flight")
            eq(metric(b, "ringcast_trigger_retried_total", "checkout:orders"), 0, "no retries")


def test_request_shape():
    """POST {replica}{path}, structured, no Prefer and no Kn-Namespace; rules pick the path."""
    with Replica() as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], default="/orders",
                         rules=[('event.type == "order.priority"', "/priority"),
                                ('event.data.n > 5', "/big")]))
        with Broker(cfg) as b:
            publish(b, "p1", etype="order.priority", headers={"ce-myext": "v"})
            publish(b, "b1", data=b'{"n":9}')
            publish(b, "d1", data=b'{"n":1}')
            reqs = r.wait_for(3)
            eq(len(reqs), 3, "requests")
            by_id = {q.event["id"]: q for q in reqs}
            eq(by_id["p1"].path, "/priority", "first rule")
            eq(by_id["b1"].path, "/big", "second rule")
            eq(by_id["d1"].path, "/orders", "default")
            q = by_id["p1"]
            eq(q.headers.get("content-type"), "application/cloudevents+json", "content type")
            eq(q.headers.get("prefer"), None, "no Prefer")
            eq(q.headers.get("kn-namespace"), None, "no Kn-Namespace")
            eq(q.ce("id"), None, "structured, not binary")
            ev = q.event
            eq((ev["specversion"], ev["type"], ev["topic"], ev["myext"], ev["data"]),
               ("1.0", "order.priority", "orders", "v", {"n": 1}), "the whole event")
            check("knativebrokerttl" not in ev, "no TTL on the wire")


def test_replica_down_from_start():
    """A replica that refuses connections is skipped: all events reach the other one, none is
    lost and none counts as a retry."""
    n = 200
    down = dead_url()
    with Replica() as live:
        cfg = config(app("checkout", [down, live.url]), sub("orders", "orders", ["checkout"]))
        with Broker(cfg) as b:
            publish_batch(b, list(range(n)))
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", n)
            eq(sorted(live.ids(), key=int), [str(i) for i in range(n)], "all on the live one")
            eq(metric(b, "ringcast_trigger_retried_total", "checkout:orders"), 0, "no retries")
            eq(metric(b, "ringcast_trigger_dropped_total", "checkout:orders"), 0, "none dropped")
            check(metric(b, "ringcast_trigger_replica_failed_total", "checkout:orders",
                         replica=down) >= 1, "the refusals are counted on the down replica")
            eq(metric(b, "ringcast_trigger_replica_delivered_total", "checkout:orders",
                      replica=down), 0, "nothing delivered there")
            check("replica %s" % down in b.log() and "skipped for" in b.log(),
                  "the skip is logged")


def test_all_replicas_down_then_up():
    """With every replica refusing, the ordinary retries apply; the event arrives once a replica
    comes up, counted as retried, never dropped."""
    down = dead_url()
    port = int(down.rsplit(":", 1)[1])
    cfg = config(app("checkout", [down]), sub("orders", "orders", ["checkout"]), retry=40)
    with Broker(cfg) as b:
        publish(b, "x1")
        wait_until(lambda: (metric(b, "ringcast_trigger_retried_total", "checkout:orders") or 0)
                   >= 2, 10, "retries while the replica is down")
        with Replica(port=port) as r:
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 1, timeout=20)
            eq(r.ids(), ["x1"], "delivered once")
            eq(metric(b, "ringcast_trigger_dropped_total", "checkout:orders"), 0, "not dropped")
            check("answers again" in b.log(), "the replica's return is logged")


def test_max_concurrency():
    """At most maxConcurrency requests in flight per replica, and the limit is used."""
    n = 40
    hold = 0.25

    def slow(_i, _req, _ev):
        return 200, b"", hold
    with Replica(slow) as r1, Replica(slow) as r2:
        cfg = config(app("checkout", [r1.url, r2.url], max_concurrency=3),
                     sub("orders", "orders", ["checkout"]))
        with Broker(cfg) as b:
            publish_batch(b, list(range(n)))
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", n, timeout=30)
            eq((r1.max_active <= 3, r2.max_active <= 3), (True, True),
               "limit per replica (%d, %d)" % (r1.max_active, r2.max_active))
            eq(max(r1.max_active, r2.max_active), 3, "the limit is reached")
            eq(r1.count() + r2.count(), n, "each event once")
    # The window is maxConcurrency x replicas (6): with one replica down, the other still takes
    # only its 3, and the rest wait for room instead of going to the down one.
    with Replica(slow) as r:
        cfg = config(app("checkout", [dead_url(), r.url], max_concurrency=3),
                     sub("orders", "orders", ["checkout"]))
        with Broker(cfg) as b:
            publish_batch(b, list(range(20)))
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 20, timeout=30)
            eq(r.max_active, 3, "the live replica's limit")
            eq(sorted(r.ids(), key=int), [str(i) for i in range(20)], "each event once")
            eq(metric(b, "ringcast_trigger_retried_total", "checkout:orders"), 0, "no retries")


# ---- the app's answers ----------------------------------------------------------------------

def test_retry_then_success():
    """RETRY, then an unknown status (retried as well), then SUCCESS: delivered once, two
    retries; a non-JSON body and a JSON body without status are success."""
    seen = {}

    def behave(_i, _req, ev):
        eid = ev["id"]
        seen[eid] = seen.get(eid, 0) + 1
        if eid == "r1":
            return 200, [{"status": "RETRY"}, {"status": "success"},
                         {"status": "SUCCESS"}][min(seen[eid], 3) - 1], 0
        if eid == "t1":
            return 200, b"OK, thanks", 0
        return 200, {"note": "no status"}, 0
    with Replica(behave) as r:
        cfg = config(app("checkout", [r.url]), sub("orders", "orders", ["checkout"]), retry=3)
        with Broker(cfg) as b:
            publish(b, "r1")
            publish(b, "t1")
            publish(b, "j1")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 3)
            time.sleep(0.3)
            eq(counts(r.ids()), {"r1": 3, "t1": 1, "j1": 1}, "attempts per event")
            eq(metric(b, "ringcast_trigger_retried_total", "checkout:orders"), 2, "retried")
            eq(metric(b, "ringcast_trigger_failed_total", "checkout:orders"), 0, "failed")


def dlq_app(dlq):
    return (app("dlq", [dlq.url]) +
            sub("orders-dead", "orders-dead", ["dlq"], default="/dead"))


def test_drop_and_404_to_dead_letter_topic():
    def behave(_i, _req, ev):
        return {"d1": (200, {"status": "DROP"}, 0), "n1": (404, b"no such route", 0)}.get(
            ev["id"], (200, b"", 0))
    with Replica(behave) as r, Replica() as dlq:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], dead_letter="orders-dead"),
                     dlq_app(dlq))
        with Broker(cfg) as b:
            publish(b, "d1", data=b'{"n":"drop me"}', headers={"ce-myext": "kept"})
            publish(b, "n1")
            publish(b, "ok1")
            wait_until(lambda: dlq.count() >= 2, 10, "two dead letters")
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "checkout:orders", 2)
            time.sleep(0.3)
            dead = {e["id"]: e for e in dlq.events()}
            eq(sorted(dead), ["d1", "n1"], "dead letters")
            d = dead["d1"]
            eq((d["topic"], d["ringcastdaprreason"], d["knativeerrorcode"], d["myext"],
                d["data"], d["type"]),
               ("orders-dead", "drop", "200", "kept", {"n": "drop me"}, "order"), "DROP")
            eq(d["knativeerrordest"], r.url + "/orders", "where it failed")
            eq((dead["n1"]["ringcastdaprreason"], dead["n1"]["knativeerrorcode"]),
               ("not_found", "404"), "404")
            eq(counts(r.ids()), {"d1": 1, "n1": 1, "ok1": 1}, "DROP and 404 are not retried")
            eq(dlq.requests[0].path, "/dead", "the dead-letter app's route")
            m = {k: metric(b, "ringcast_trigger_%s" % k, "checkout:orders")
                 for k in ("delivered_total", "dapr_drop_total", "dapr_not_found_total",
                           "dropped_total", "retried_total")}
            eq(m, {"delivered_total": 1, "dapr_drop_total": 1, "dapr_not_found_total": 1,
                   "dropped_total": 0, "retried_total": 0}, "counters")
            wait_metric(b, "ringcast_trigger_delivered_total", "dlq:orders-dead", 2)
            check("event d1 not delivered (drop" in b.log(), "DROP logged")


def test_retries_exhausted():
    """An app that keeps failing: retry + 1 attempts, then the dead-letter topic (reason
    retries_exhausted, last status); without a dead-letter topic: dropped and counted."""
    def fail(_i, _req, _ev):
        return 503, b"busy", 0
    with Replica(fail) as r, Replica(fail) as r2, Replica() as dlq:
        cfg = config(app("checkout", [r.url]), app("other", [r2.url]),
                     sub("orders", "orders", ["checkout"], dead_letter="orders-dead"),
                     sub("orders2", "orders", ["other"]), dlq_app(dlq), retry=2)
        with Broker(cfg) as b:
            publish(b, "f1")
            wait_until(lambda: dlq.count() >= 1, 10, "the dead letter")
            d = dlq.events()[0]
            eq((d["id"], d["ringcastdaprreason"], d["knativeerrorcode"], d["topic"]),
               ("f1", "retries_exhausted", "503", "orders-dead"), "dead letter")
            wait_metric(b, "ringcast_trigger_dropped_total", "other:orders2", 1)
            eq(r.count(), 3, "three attempts")
            eq(r2.count(), 3, "three attempts")
            for trig, dl, dr in (("checkout:orders", 1, 0), ("other:orders2", 0, 1)):
                wait_metric(b, "ringcast_trigger_dead_lettered_total", trig, dl)
                eq((metric(b, "ringcast_trigger_failed_total", trig),
                    metric(b, "ringcast_trigger_retried_total", trig),
                    metric(b, "ringcast_trigger_dropped_total", trig)), (1, 2, dr), trig)


def test_no_route():
    """No rule matches and no default path: acknowledged, counted, dead-lettered when the
    subscription has a dead-letter topic, else dropped; the others are delivered."""
    rules = [('event.type == "a"', "/a")]
    with Replica() as r, Replica() as r2, Replica() as dlq:
        cfg = config(app("checkout", [r.url]), app("other", [r2.url]),
                     sub("orders", "orders", ["checkout"], default=None, rules=rules,
                         dead_letter="orders-dead"),
                     sub("orders2", "orders", ["other"], default=None, rules=rules),
                     dlq_app(dlq))
        with Broker(cfg) as b:
            publish(b, "a1", etype="a")
            publish(b, "b1", etype="b")
            publish(b, "a2", etype="a")
            wait_until(lambda: dlq.count() >= 1, 10, "the dead letter")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 2)
            wait_metric(b, "ringcast_trigger_delivered_total", "other:orders2", 2)
            eq(dlq.events()[0]["ringcastdaprreason"], "no_route", "reason")
            check("knativeerrorcode" not in dlq.events()[0], "no app answered it")
            eq(sorted(r.ids()), ["a1", "a2"], "routed ones")
            eq({q.path for q in r.requests}, {"/a"}, "their path")
            eq(sorted(r2.ids()), ["a1", "a2"], "routed ones")
            for trig, dl, dr in (("checkout:orders", 1, 0), ("other:orders2", 0, 1)):
                wait_metric(b, "ringcast_trigger_dead_lettered_total", trig, dl)
                eq((metric(b, "ringcast_trigger_dapr_unrouted_total", trig),
                    metric(b, "ringcast_trigger_dropped_total", trig)), (1, dr), trig)
                wait_metric(b, "ringcast_trigger_lag_events", trig, 0)


def test_expired():
    """An event past its `expiration` is not delivered: counted, dead-lettered without the
    expiration; one in the future is delivered."""
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    with Replica() as r, Replica() as dlq:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], dead_letter="orders-dead"),
                     dlq_app(dlq))
        with Broker(cfg) as b:
            publish(b, "old", headers={"ce-expiration": past})
            publish(b, "new", headers={"ce-expiration": future})
            wait_until(lambda: dlq.count() >= 1, 10, "the dead letter")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 1)
            eq(r.ids(), ["new"], "only the live one")
            eq(r.events()[0]["expiration"], future, "expiration kept on the wire")
            d = dlq.events()[0]
            eq((d["id"], d["ringcastdaprreason"]), ("old", "expired"), "dead letter")
            check("expiration" not in d, "the dead letter has no expiration")
            eq(metric(b, "ringcast_trigger_expired_total", "checkout:orders"), 1, "expired")


def test_expires_while_retried():
    """An event whose expiration passes while it is retried is not sent again."""
    soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1.5))
    soon += ".%03dZ" % int((time.time() % 1) * 1000)

    def fail(_i, _req, _ev):
        return 500, b"", 0
    with Replica(fail) as r:
        cfg = config(app("checkout", [r.url]), sub("orders", "orders", ["checkout"]), retry=100)
        with Broker(cfg) as b:
            publish(b, "e1", headers={"ce-expiration": soon})
            wait_metric(b, "ringcast_trigger_expired_total", "checkout:orders", 1, timeout=15)
            n = r.count()
            check(n >= 2, "retried until it expired (%d attempts)" % n)
            eq(metric(b, "ringcast_trigger_dropped_total", "checkout:orders"), 1,
               "dropped: no dead-letter topic")
            time.sleep(0.5)
            eq(r.count(), n, "no attempt after it expired")


def test_raw_payload():
    with Replica() as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], raw=True))
        with Broker(cfg) as b:
            payload = b"plain bytes \x00\x01 not json"
            publish(b, "raw1", data=payload, headers={"Content-Type": "application/octet-stream"})
            publish(b, "raw2", data=b"")
            reqs = r.wait_for(2)
            evs = {q.event["id"]: q.event for q in reqs}
            e = evs["raw1"]
            eq(base64.b64decode(e["data_base64"]), payload, "the raw bytes")
            eq((e["datacontenttype"], e["type"], e["topic"], e["pubsubname"], e["source"]),
               ("application/octet-stream", "com.dapr.event.sent", "orders", "pubsub", "/test"),
               "the synthesised envelope")
            check("data" not in e, "no data member")
            eq(evs["raw2"]["data_base64"], "", "empty data")
            eq(reqs[0].headers.get("content-type"), "application/cloudevents+json", "type")


def test_dead_letter_loop_ends():
    """A dead-letter topic whose subscription dead-letters back: the TTL ends the loop."""
    def drop(_i, _req, _ev):
        return 200, {"status": "DROP"}, 0
    with Replica(drop) as r, Replica(drop) as r2:
        cfg = config(app("a1", [r.url]), app("a2", [r2.url]),
                     sub("ping", "ping", ["a1"], dead_letter="pong"),
                     sub("pong", "pong", ["a2"], dead_letter="ping"))
        with Broker(cfg) as b:
            publish(b, "loop", topic="ping", headers={"ce-knativebrokerttl": "6"})
            wait_until(lambda: "knativebrokerttl ran out" in b.log(), 15, "the loop to end")
            total = r.count() + r2.count()
            time.sleep(0.5)
            eq(r.count() + r2.count(), total, "no more deliveries")
            check(5 <= total <= 6, "one delivery per hop (%d)" % total)


RING_HOLDER = os.path.join(os.environ.get("RC_TEST_HELPER_DIR") or
                           os.path.join(BIN_DIR, "../tests"), "ring_holder")


def test_dead_letters_wait_for_a_full_ring():
    """Dead letters that find the ring full wait in the worker's reply queue and are stored
    once there is room: none is lost. A lossless reader that never reads (ring_holder) keeps
    the ring full while the app answers DROP to every event."""
    gate = threading.Event()

    def drop_later(_i, _req, _ev):
        gate.wait(20)
        return 200, {"status": "DROP"}, 0
    spec = ("  ring: {size: 64Ki}\n  lag: {policy: block}\n"
            "  limits: {maxEventBytes: 8Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki,"
            " maxBatchEvents: 4}\n")
    with Replica(drop_later) as r, Replica() as dlq:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], dead_letter="orders-dead"),
                     dlq_app(dlq), spec=spec)
        with Broker(cfg) as b:
            holder = subprocess.Popen([RING_HOLDER, b.ring_name("default", "default")],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                eq(holder.stdout.readline().strip(), "ready", "ring holder attached")
                accepted = []
                c = b.conn()
                for i in range(400):
                    c.send_request("POST", "/default/default",
                                   {"ce-id": "f%d" % i, "ce-source": "/t", "ce-type": "t",
                                    "ce-specversion": "1.0", "ce-topic": "orders",
                                    "Content-Type": "text/plain"}, b"e" * 1500)
                    resp = c.response()
                    if resp.status != 202:
                        eq(resp.status, 429, "a full ring (%r)" % resp.body)
                        break
                    accepted.append("f%d" % i)
                c.close()
                n = len(accepted)
                check(n >= 20, "%d events fit" % n)
                gate.set()
                wait_metric(b, "ringcast_trigger_dapr_drop_total", "checkout:orders", n)
                wait_metric(b, "ringcast_trigger_replies_queued", "checkout:orders", n)
                eq((metric(b, "ringcast_trigger_dead_lettered_total", "checkout:orders"),
                    metric(b, "ringcast_trigger_dropped_total", "checkout:orders")), (0, 0),
                   "nothing stored nor dropped while the ring is full")
            finally:
                holder.stdin.close()
                holder.wait(10)
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "checkout:orders", n)
            wait_metric(b, "ringcast_trigger_replies_queued", "checkout:orders", 0)
            wait_until(lambda: dlq.count() >= n, 15, "every dead letter delivered")
            eq(sorted(dlq.ids()), sorted(accepted), "each dead letter once")
            eq({e["ringcastdaprreason"] for e in dlq.events()}, {"drop"}, "reason")
            eq(metric(b, "ringcast_trigger_dropped_total", "checkout:orders"), 0, "none lost")
            eq(sorted(r.ids()), sorted(accepted), "each event delivered once")


# ---- bulkSubscribe ----------------------------------------------------------------------------

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def entries(req):
    """The entries of a bulk POST (its body must be the bulk envelope)."""
    check(isinstance(req.event, dict) and isinstance(req.event.get("entries"), list),
          "a bulk body: %r" % req.body[:300])
    return req.event["entries"]


def bulk_ids(reps):
    """Event ids over every bulk POST the replicas got, in arrival order."""
    return [en["event"]["id"] for r in reps for q in list(r.requests) for en in entries(q)]


def answer(ev, status_of):
    """A bulk answer giving each entry status_of(event id) (None: left out)."""
    out = []
    for en in ev["entries"]:
        st = status_of(en["event"]["id"])
        if st is not None:
            out.append({"entryId": en["entryId"], "status": st})
    return {"statuses": out}


def test_bulk_batches_and_shape():
    """250 events to a bulkSubscribe subscription (maxMessagesCount 100) on two replicas: at least
    three POSTs of at most 100 entries, each event exactly once, the body exactly Dapr's bulk
    envelope, entries in ring order with distinct entryIds; one bulk request counted per POST."""
    n = 250

    def ok(_i, _req, ev):
        return 200, answer(ev, lambda _id: "SUCCESS"), 0
    with Replica(ok) as r1, Replica(ok) as r2:
        cfg = config(app("checkout", [r1.url, r2.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 1000)))
        with Broker(cfg) as b:
            publish_batch(b, list(range(n)))
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", n)
            time.sleep(0.3)
            reqs = list(r1.requests) + list(r2.requests)
            check(len(reqs) >= 3, "at least three POSTs (%d)" % len(reqs))
            got = bulk_ids((r1, r2))
            eq(counts(got), {str(i): 1 for i in range(n)}, "each event exactly once")
            for q in reqs:
                ev = q.event
                eq(q.headers.get("content-type"), "application/json", "bulk content type")
                eq(q.path, "/orders", "the path")
                eq(sorted(ev), ["entries", "id", "metadata", "pubsubname", "topic", "type"],
                   "bulk envelope members")
                eq((ev["type"], ev["topic"], ev["pubsubname"], ev["metadata"]),
                   ("com.dapr.event.sent.bulk", "orders", "pubsub", {}), "bulk envelope")
                check(UUID_RE.match(ev["id"]), "a UUID id: %r" % ev["id"])
                ens = ev["entries"]
                check(1 <= len(ens) <= 100, "at most 100 entries (%d)" % len(ens))
                for en in ens:
                    eq(sorted(en), ["contentType", "entryId", "event", "metadata"], "entry members")
                    eq((en["contentType"], en["metadata"]),
                       ("application/cloudevents+json", {}), "entry")
                    e = en["event"]
                    eq((e["specversion"], e["type"], e["topic"], e["source"], e["data"]),
                       ("1.0", "order", "orders", "/test", {"n": int(e["id"])}), "the event")
                    check("knativebrokerttl" not in e, "no TTL on the wire")
                seqs = [int(en["entryId"]) for en in ens]
                eq(seqs, sorted(set(seqs)), "distinct entryIds, in ring order")
                ids = [int(en["event"]["id"]) for en in ens]
                eq(ids, sorted(ids), "events in ring order")
            eq(len({q.event["id"] for q in reqs}), len(reqs), "a new id per POST")
            eq(metric(b, "ringcast_trigger_dapr_bulk_requests_total", "checkout:orders"),
               len(reqs), "bulk requests counted")
            eq(sum(metric(b, "ringcast_trigger_replica_delivered_total", "checkout:orders",
                          replica=r.url) for r in (r1, r2)), n, "replica counters count events")
            eq((metric(b, "ringcast_trigger_retried_total", "checkout:orders"),
                metric(b, "ringcast_trigger_inflight", "checkout:orders")), (0, 0),
               "no retries, nothing in flight")
            check("bulkSubscribe is not supported" not in b.log(), "no old warning")
            check("bulkSubscribe: batches of up to 100 events" in b.log(), "the start line")


def test_bulk_await():
    """5 events with maxAwaitDurationMs 200: one POST of 5, about 200 ms after they arrived; a
    later event waits its own 200 ms."""
    with Replica(lambda _i, _r, ev: (200, answer(ev, lambda _id: "SUCCESS"), 0)) as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 200)))
        with Broker(cfg) as b:
            t0 = time.monotonic()
            publish_batch(b, list(range(5)))
            reqs = r.wait_for(1, 5)
            time.sleep(0.4)
            eq(r.count(), 1, "one POST, not five")
            waited = reqs[0].t - t0
            check(0.17 <= waited <= 1.0, "sent after the await (%.3f s)" % waited)
            eq([en["event"]["id"] for en in entries(reqs[0])], [str(i) for i in range(5)],
               "all five in it")
            t1 = time.monotonic()
            publish(b, "late")
            reqs = r.wait_for(2, 5)
            waited = reqs[1].t - t1
            check(0.17 <= waited <= 1.0, "the late one waited too (%.3f s)" % waited)
            eq([en["event"]["id"] for en in entries(reqs[1])], ["late"], "alone")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 6)
            eq(metric(b, "ringcast_trigger_dapr_bulk_requests_total", "checkout:orders"), 2,
               "bulk requests")


def test_bulk_paths_and_expiry():
    """Events whose rules give different paths go in different batches; an expired event is
    not sent (counted, dead-lettered); an unrouted one neither."""
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    with Replica(lambda _i, _r, ev: (200, answer(ev, lambda _id: "SUCCESS"), 0)) as r, \
            Replica() as dlq:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], default=None, bulk=(10, 150),
                         rules=[('event.type == "a"', "/a"), ('event.type == "b"', "/b")],
                         dead_letter="orders-dead"),
                     dlq_app(dlq))
        with Broker(cfg) as b:
            for i in range(3):
                publish(b, "a%d" % i, etype="a")
                publish(b, "b%d" % i, etype="b")
            publish(b, "old", etype="a", headers={"ce-expiration": past})
            publish(b, "c0", etype="c")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 6)
            wait_until(lambda: dlq.count() >= 2, 10, "two dead letters")
            time.sleep(0.3)
            by_path = {q.path: [en["event"]["id"] for en in entries(q)] for q in r.requests}
            eq(by_path, {"/a": ["a0", "a1", "a2"], "/b": ["b0", "b1", "b2"]}, "a batch per path")
            eq(sorted((e["id"], e["ringcastdaprreason"]) for e in dlq.events()),
               [("c0", "no_route"), ("old", "expired")], "dead letters")
            eq((metric(b, "ringcast_trigger_expired_total", "checkout:orders"),
                metric(b, "ringcast_trigger_dapr_unrouted_total", "checkout:orders"),
                metric(b, "ringcast_trigger_dapr_bulk_requests_total", "checkout:orders")),
               (1, 1, 2), "expired, unrouted, requests")


def test_bulk_entry_statuses():
    """Per-entry statuses: SUCCESS done; RETRY, an unknown value, "" and a missing entry retried
    (together, in the next batch) and then delivered; DROP dead-lettered with its reason."""
    first = {"e3": "RETRY", "e4": "RETRY", "e5": "DROP", "e6": "DROP", "e7": None,
             "e8": "later", "e9": ""}
    lock = threading.Lock()
    seen = {}

    def behave(_i, _req, ev):
        def status(eid):
            with lock:
                seen[eid] = seen.get(eid, 0) + 1
                again = seen[eid] > 1
            return "SUCCESS" if again or eid not in first else first[eid]
        return 200, answer(ev, status), 0
    with Replica(behave) as r, Replica() as dlq:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 100),
                         dead_letter="orders-dead"),
                     dlq_app(dlq), retry=3)
        with Broker(cfg) as b:
            publish_batch_ids(b, ["e%d" % i for i in range(10)])
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 8)
            wait_until(lambda: dlq.count() >= 2, 10, "the dead letters")
            time.sleep(0.3)
            eq(r.count(), 2, "two POSTs")
            eq([en["event"]["id"] for en in entries(r.requests[0])], ["e%d" % i for i in range(10)],
               "the first has all ten")
            eq(sorted(en["event"]["id"] for en in entries(r.requests[1])),
               ["e3", "e4", "e7", "e8", "e9"], "the retries go together in the next one")
            dead = {e["id"]: e for e in dlq.events()}
            eq(sorted(dead), ["e5", "e6"], "DROP dead-lettered")
            eq((dead["e5"]["ringcastdaprreason"], dead["e5"]["knativeerrorcode"],
                dead["e5"]["knativeerrordest"], dead["e5"]["topic"]),
               ("drop", "200", r.url + "/orders", "orders-dead"), "the dead letter")
            m = {k: metric(b, "ringcast_trigger_%s" % k, "checkout:orders")
                 for k in ("delivered_total", "retried_total", "dapr_drop_total",
                           "dead_lettered_total", "dropped_total", "failed_total",
                           "dapr_bulk_requests_total")}
            eq(m, {"delivered_total": 8, "retried_total": 5, "dapr_drop_total": 2,
                   "dead_lettered_total": 2, "dropped_total": 0, "failed_total": 0,
                   "dapr_bulk_requests_total": 2}, "counters")
            eq((metric(b, "ringcast_trigger_replica_delivered_total", "checkout:orders",
                       replica=r.url),
                metric(b, "ringcast_trigger_replica_failed_total", "checkout:orders",
                       replica=r.url)), (8, 7), "replica counters per event")
            check("no status for 1 of its 10 events" in b.log(), "the missing entry is logged")


def publish_batch_ids(b, ids, topic="orders"):
    batch = [{"specversion": "1.0", "id": i, "source": "/test", "type": "order", "topic": topic,
              "datacontenttype": "application/json", "data": {"n": 1}} for i in ids]
    r = b.request("POST", "/default/default",
                  {"Content-Type": "application/cloudevents-batch+json"},
                  json.dumps(batch).encode())
    eq(r.status, 202, "batch publish (%r)" % r.body)


def test_bulk_status_codes():
    """A non-2xx answer retries every entry of the batch; 404 drops them all (dead-lettered);
    a connection refused by one replica sends the batch to the other, no retry."""
    calls = []

    def flaky(_i, _req, ev):
        calls.append(len(ev["entries"]))
        if len(calls) == 1:
            return 503, b"busy", 0
        return 200, answer(ev, lambda _id: "SUCCESS"), 0
    with Replica(flaky) as r:
        cfg = config(app("checkout", [dead_url(), r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 100)), retry=3)
        with Broker(cfg) as b:
            publish_batch_ids(b, ["s%d" % i for i in range(7)])
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 7)
            time.sleep(0.2)
            eq(calls, [7, 7], "all seven retried together after the 503")
            eq(metric(b, "ringcast_trigger_retried_total", "checkout:orders"), 7,
               "retried: per event, not for the refused replica")
    with Replica(lambda _i, _r, _ev: (404, b"no such route", 0)) as r, Replica() as dlq:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 100),
                         dead_letter="orders-dead"),
                     dlq_app(dlq))
        with Broker(cfg) as b:
            publish_batch_ids(b, ["n%d" % i for i in range(4)])
            wait_until(lambda: dlq.count() >= 4, 10, "four dead letters")
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "checkout:orders", 4)
            time.sleep(0.2)
            eq(r.count(), 1, "one POST, not retried")
            eq(sorted((e["id"], e["ringcastdaprreason"], e["knativeerrorcode"])
                      for e in dlq.events()),
               [("n%d" % i, "not_found", "404") for i in range(4)], "dead letters")
            eq((metric(b, "ringcast_trigger_dapr_not_found_total", "checkout:orders"),
                metric(b, "ringcast_trigger_delivered_total", "checkout:orders"),
                metric(b, "ringcast_trigger_retried_total", "checkout:orders")), (4, 0, 0),
               "counters")


def test_bulk_lying_app():
    """An app whose answers Dapr could not decode (statuses not a list, garbage, an empty body,
    numbers for ids, statuses for ids it was never sent) gets every entry again, until the
    retry policy gives up: then dropped (no dead-letter topic), counted once each."""
    lies = [b'{"statuses":{"entryId":"1","status":"SUCCESS"}}', b"garbage", b"",
            b'[{"status":"SUCCESS"}]', None]

    def lie(i, _req, ev):
        body = lies[i % len(lies)]
        if body is None:  # the event ids instead of the entryIds: no entry has a status
            body = json.dumps({"statuses": [{"entryId": en["event"]["id"], "status": "SUCCESS"}
                                            for en in ev["entries"]]}).encode()
        return 200, body, 0
    with Replica(lie) as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 50)), retry=4)
        with Broker(cfg) as b:
            publish_batch_ids(b, ["x0", "x1", "x2"])
            wait_metric(b, "ringcast_trigger_dropped_total", "checkout:orders", 3)
            time.sleep(0.4)
            eq(r.count(), 5, "retry + 1 POSTs")
            for q in r.requests:
                eq([en["event"]["id"] for en in entries(q)], ["x0", "x1", "x2"], "all again")
            eq((metric(b, "ringcast_trigger_delivered_total", "checkout:orders"),
                metric(b, "ringcast_trigger_retried_total", "checkout:orders"),
                metric(b, "ringcast_trigger_failed_total", "checkout:orders")), (0, 12, 3),
               "counters")
            log = b.log()
            check("the bulk answer is not a JSON object" in log, "undecodable answers logged")
            check("no status for 3 of its 3 events" in log, "missing statuses logged")


def test_bulk_worker_killed():
    """A worker killed while its batch is in flight: the next worker sends the batch's events
    again (at least once), none is lost, each is counted delivered once."""
    gate = threading.Event()

    def held(i, _req, ev):
        if i == 0:
            gate.wait(10)
        return 200, answer(ev, lambda _id: "SUCCESS"), 0
    with Replica(held) as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(100, 100)))
        with Broker(cfg) as b:
            pids = worker_pids(b)
            eq(len(pids), 1, "one worker")
            publish_batch(b, list(range(50)))
            r.wait_for(1, 5)
            os.kill(pids[0], signal.SIGKILL)
            reqs = r.wait_for(2, 15)
            gate.set()
            eq([en["event"]["id"] for en in entries(reqs[1])], [str(i) for i in range(50)],
               "the next worker sends them all again")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 50)
            eq(b.metrics().get("ringcast_worker_restarts_total"), 1.0, "restarts")
            publish(b, "after")
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 51)


def test_bulk_lagged_while_in_flight():
    """An app that holds its batches while the ring moves on: past the lag limit the trigger
    gives up its oldest events, those of the batches in flight included (counted lagged, dropped:
    Dapr subscriptions have no dead-letter sink for them); when the app answers, they are let go
    and the rest is delivered. Every accepted event is delivered or lagged, none twice."""
    gate = threading.Event()

    def held(_i, _req, ev):
        gate.wait(30)
        return 200, answer(ev, lambda _id: "SUCCESS"), 0
    spec = ("  ring: {size: 256Ki}\n  lag: {limit: 64Ki}\n"
            "  limits: {maxEventBytes: 8Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki,"
            " maxBatchEvents: 4}\n")
    with Replica(held) as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], bulk=(50, 50)), spec=spec)
        with Broker(cfg) as b:
            c = b.conn()
            accepted = 0
            for i in range(600):
                if i == 10:  # the first batch is held by the app before the flood
                    wait_until(lambda: r.count() >= 1, 10, "a batch held in flight")
                for _ in range(100):
                    c.send_request("POST", "/default/default",
                                   {"ce-id": "l%d" % i, "ce-source": "/t", "ce-type": "t",
                                    "ce-specversion": "1.0", "ce-topic": "orders",
                                    "Content-Type": "text/plain"}, b"e" * 1000)
                    resp = c.response()
                    if resp.status == 202:
                        accepted += 1
                        break
                    eq(resp.status, 429, "a full ring (%r)" % resp.body)
                    time.sleep(0.02)
            c.close()
            eq(accepted, 600, "every event accepted in the end")
            wait_until(lambda: (metric(b, "ringcast_trigger_lagged_total", "checkout:orders")
                                or 0) > 100, 10, "events given up for lag")
            check(r.count() >= 1, "a batch held in flight (%d)" % r.count())
            gate.set()
            wait_until(lambda: (metric(b, "ringcast_trigger_lagged_total", "checkout:orders") +
                                metric(b, "ringcast_trigger_delivered_total", "checkout:orders"))
                       == 600, 20, "every event delivered or lagged")
            lagged = metric(b, "ringcast_trigger_lagged_total", "checkout:orders")
            eq(metric(b, "ringcast_trigger_lagged_dropped_total", "checkout:orders"), lagged,
               "lagged events dropped")
            wait_metric(b, "ringcast_trigger_inflight", "checkout:orders", 0)
            got = counts(bulk_ids((r,)))
            eq({k: v for k, v in got.items() if v > 1}, {}, "none sent twice")
            check(len(got) >= 600 - lagged, "the app got at least every delivered event")
            check("given up past its lag limit" in b.log(), "the lag is logged")


def test_bulk_raw_payload():
    """A rawPayload bulk subscription: each entry's event is the synthesised envelope."""
    with Replica(lambda _i, _r, ev: (200, answer(ev, lambda _id: "SUCCESS"), 0)) as r:
        cfg = config(app("checkout", [r.url]),
                     sub("orders", "orders", ["checkout"], raw=True, bulk=(10, 50)))
        with Broker(cfg) as b:
            publish_batch_ids(b, ["w0", "w1"])
            wait_metric(b, "ringcast_trigger_delivered_total", "checkout:orders", 2)
            eq(r.count(), 1, "one POST")
            evs = [en["event"] for en in entries(r.requests[0])]
            eq([(e["id"], e["type"], e["topic"], e["pubsubname"],
                 json.loads(base64.b64decode(e["data_base64"]))) for e in evs],
               [("w0", "com.dapr.event.sent", "orders", "pubsub", {"n": 1}),
                ("w1", "com.dapr.event.sent", "orders", "pubsub", {"n": 1})], "raw entries")


def worker_pids(b):
    return children(b.proc.pid)


def main():
    Runner().run([
        test_request_shape,
        test_group_position_survives_restart,
        test_replicas_share_and_others_get_all,
        test_replica_down_from_start,
        test_all_replicas_down_then_up,
        test_max_concurrency,
        test_retry_then_success,
        test_drop_and_404_to_dead_letter_topic,
        test_retries_exhausted,
        test_no_route,
        test_expired,
        test_expires_while_retried,
        test_raw_payload,
        test_dead_letter_loop_ends,
        test_dead_letters_wait_for_a_full_ring,
        test_bulk_batches_and_shape,
        test_bulk_await,
        test_bulk_paths_and_expiry,
        test_bulk_entry_statuses,
        test_bulk_status_codes,
        test_bulk_lying_app,
        test_bulk_worker_killed,
        test_bulk_lagged_while_in_flight,
        test_bulk_raw_payload,
    ])


if __name__ == "__main__":
    main()
