#!/usr/bin/env python3
"""Delivery of Dapr subscriptions end to end: the real `ringcast serve` with Dapr Component,
DaprApp and Subscription manifests, apps whose replicas are real HTTP servers on loopback
(tests/integration/dapr_app.py), events published to the Knative ingress with a `topic`
extension. Replicas as competing consumers (exactly once over both, a replica down, maxConcurrency),
fan-out to other apps and to Knative triggers on the same topic, routing rules, the app's
answers exactly as CONTRACTS.md "Delivery to an app" (SUCCESS, RETRY, unknown, DROP, 404,
errors), retries, dead-letter topics with the reason, no route, expiry, rawPayload, and the
counters /metrics shows. Every wait is bounded; every count is exact."""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import BIN_DIR, Broker as _Broker, Runner, check, eq  # noqa: E402
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


def sub(name, topic, apps, default="/orders", rules=(), dead_letter=None, raw=False):
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


def main():
    Runner().run([
        test_request_shape,
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
    ])


if __name__ == "__main__":
    main()
