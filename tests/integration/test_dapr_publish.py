"""Integration test: the Dapr sidecar publish API of the real `ringcast serve` (issue 12,
../shared/CONTRACTS.md "Dapr"). Publishes JSON, text, binary and CloudEvent bodies, with every
metadata.* parameter, in bulk, on the ingress port and on spec.dapr.listen, reads the stored
events back with `ringcast tail` and through a Knative Trigger filtered on the topic, and checks
every refusal's status and errorCode, the probes the SDKs make first, and a full ring."""

import base64
import calendar
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import BIN_DIR, Broker, Conn, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

HELPER_DIR = os.environ.get("RC_TEST_HELPER_DIR") or os.path.join(BIN_DIR, "../tests")
RING_HOLDER = os.path.join(HELPER_DIR, "ring_holder")

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
TIME_SEC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


LIMITS = "  limits:\n    maxEventBytes: 8Ki\n    maxBatchBytes: 64Ki\n    maxBatchEvents: 5\n"
SMALL_RING = ("  ring:\n    size: 64Ki\n  limits:\n    maxEventBytes: 8Ki\n    maxBatchBytes: 12Ki\n"
              "    maxHeaderBytes: 4Ki\n    maxBatchEvents: 5\n")


def config(dapr_port, app_url, sink_url, limits=LIMITS):
    spec = "  retryAfterSeconds: 2\n  dapr:\n    listen: 127.0.0.1:%d\n" % dapr_port + limits
    return """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: orders, namespace: shop}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namespace: default}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: default}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: shop-pubsub, namespace: shop}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: orders}
---
apiVersion: ringcast.dev/v1alpha1
kind: DaprApp
metadata: {name: checkout, namespace: default}
spec:
  endpoints: ["%s"]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders, namespace: default}
spec:
  pubsubname: pubsub
  topic: routed
  routes:
    rules: [{match: 'event.type == "order.priority"', path: /priority}]
    default: /orders
  deadLetterTopic: orders-dead
scopes: [checkout]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: knative-orders, namespace: default}
spec:
  broker: default
  filter: {attributes: {topic: orders}}
  subscriber: {uri: "%s"}
""" % (spec, app_url, sink_url)


B = None     # the shared broker
SINK = None  # the Knative Trigger's subscriber (topic orders)


def publish(path, body=b"", headers=None, method="POST", port=None):
    if isinstance(body, str):
        body = body.encode()
    c = Conn(B.host, port or B.port)
    try:
        c.send_request(method, path, headers or {}, body)
        return c.response()
    finally:
        c.close()


def tail_raw(ring="default/default"):
    rc, out, err = run_cli(["tail", ring, "--ring-prefix", B.prefix, "--timeout", "700ms"])
    if rc != 0:
        raise AssertionError("tail failed (%d): %s" % (rc, err))
    return [line for line in out.splitlines() if line]


def events(topic, ring="default/default"):
    return [e for e in B.tail(ring) if e.get("topic") == topic]


def ok(r, what):
    eq(r.status, 204, "%s: %r" % (what, r))
    eq(r.body, b"", what + ": empty body")


def dapr_error(r, status, code, msg_part=""):
    eq(r.status, status, "status of %r" % r)
    eq(r.header("Content-Type"), "application/json", "error content type")
    j = r.json()
    eq(sorted(j), ["errorCode", "message"], "error body keys")
    eq(j["errorCode"], code, "errorCode (%s)" % j["message"])
    check(msg_part in j["message"], "message %r lacks %r" % (j["message"], msg_part))
    return j


def check_envelope(e, topic, ct, source="ringcast", pubsub="pubsub"):
    check(UUID4.match(e["id"]), "id %r is a UUID v4" % e["id"])
    eq(e["specversion"], "1.0", "specversion")
    eq(e["source"], source, "source")
    eq(e["type"], "com.dapr.event.sent", "type")
    eq(e["topic"], topic, "topic")
    eq(e["pubsubname"], pubsub, "pubsubname")
    eq(e["datacontenttype"], ct, "datacontenttype")
    check(TIME_SEC.match(e["time"]), "time %r is RFC 3339 in seconds" % e["time"])
    now = time.time()
    t = calendar.timegm(time.strptime(e["time"], "%Y-%m-%dT%H:%M:%SZ"))
    check(now - 30 < t <= now + 1, "time %r is now" % e["time"])
    eq(e["traceid"], e["traceparent"], "traceid = traceparent")
    eq(e["knativebrokerttl"], 255, "ttl stamped by the store")


# ---- envelopes --------------------------------------------------------------------------------

def test_publish_json():
    n0 = SINK.count()
    body = b'{"total": 1.10, "n": 12345678901234567890, "s": "\\u00e9"}\n'
    r = publish("/v1.0/publish/pubsub/orders", body,
                {"Content-Type": "application/json", "dapr-app-id": "checkout",
                 "traceparent": TP, "tracestate": "congo=t61rcWkgMzE"})
    ok(r, "publish json")
    evs = events("orders")
    e = evs[-1]
    check_envelope(e, "orders", "application/json", source="checkout")
    eq(e["traceparent"], TP, "traceparent from the header")
    eq(e["tracestate"], "congo=t61rcWkgMzE", "tracestate from the header")
    eq(e["data"], {"total": 1.10, "n": 12345678901234567890, "s": "\u00e9"}, "data is the JSON")
    raw = [line for line in tail_raw() if e["id"] in line][0]
    check('"data":{"total": 1.10, "n": 12345678901234567890, "s": "\\u00e9"}' in raw,
          "data kept byte for byte: %s" % raw)
    # The Knative Trigger filtered on topic orders gets the same event (fan-out with Dapr).
    reqs = SINK.wait_for(n0 + 1)
    eq(len(reqs), n0 + 1, "trigger delivery")
    d = reqs[-1]
    eq(d.ce("id"), e["id"], "same event")
    eq(d.ce("topic"), "orders", "ce-topic")
    eq(d.ce("pubsubname"), "pubsub", "ce-pubsubname")
    eq(d.ce("source"), "checkout", "ce-source")
    eq(d.ce("type"), "com.dapr.event.sent", "ce-type")
    eq(d.headers.get("content-type"), "application/json", "content type")
    eq(d.body, body.strip(), "body: the JSON text")
    # Invalid JSON under a JSON content type: a string, as in Dapr.
    ok(publish("/v1.0/publish/pubsub/json-bad", b'{"a": ', {"Content-Type": "application/json"}),
       "invalid json")
    e = events("json-bad")[-1]
    check_envelope(e, "json-bad", "application/json")
    eq(e["data"], '{"a": ', "invalid JSON stored as a string")
    # No traceparent header: one is made up.
    check(TRACEPARENT.match(e["traceparent"]), "generated traceparent %r" % e["traceparent"])
    check("tracestate" not in e, "no tracestate without the header")


def test_publish_text_and_binary():
    ok(publish("/v1.0/publish/pubsub/text", "h\u00e9llo {", {"Content-Type": "text/plain"}),
       "text")
    ok(publish("/v1.0/publish/pubsub/text", "no type"), "no content type")
    ok(publish("/v1.0/publish/pubsub/text", "put", {"Content-Type": "text/csv"}, method="PUT"),
       "PUT")
    evs = events("text")
    eq([e["data"] for e in evs[-3:]], ["h\u00e9llo {", "no type", "put"], "text data")
    eq([e["datacontenttype"] for e in evs[-3:]], ["text/plain", "text/plain", "text/csv"],
       "content types (text/plain by default)")
    for e in evs[-3:]:
        check_envelope(e, "text", e["datacontenttype"])
    ok(publish("/v1.0/publish/pubsub/bin", b"\x00\x01\xff\xfe",
               {"Content-Type": "application/octet-stream"}), "binary")
    e = events("bin")[-1]
    check_envelope(e, "bin", "application/octet-stream")
    eq(base64.b64decode(e["data_base64"]), b"\x00\x01\xff\xfe", "binary data")
    check("data" not in e, "binary data is not a string")
    # Topics: '/' inside, URL-decoded segments; the other pubsub goes to its own broker.
    ok(publish("/v1.0/publish/pubsub/a%2Fb/c%20d", "x"), "encoded topic")
    eq(events("a/b/c d")[-1]["data"], "x", "topic decoded, '/' kept")
    ok(publish("/v1.0/publish/shop-pubsub/orders", "to the shop"), "second pubsub")
    e = events("orders", "shop/orders")[-1]
    check_envelope(e, "orders", "text/plain", pubsub="shop-pubsub")
    eq(e["data"], "to the shop", "stored in shop/orders")
    check(all(x.get("data") != "to the shop" for x in events("orders")),
          "not in the default broker")


def test_publish_cloudevent():
    ce = {"specversion": "1.0", "id": "ce-1", "source": "/my/app", "type": "order.placed",
          "subject": "o-1", "myext": "v", "topic": "other", "pubsubname": "other",
          "datacontenttype": "application/json", "data": {"n": 1}}
    text = json.dumps(ce).replace('{"n": 1}', '{"n": 1.50}')
    ok(publish("/v1.0/publish/pubsub/ce", text, {"Content-Type": "application/cloudevents+json",
                                                  "traceparent": TP}), "cloudevent")
    e = events("ce")[-1]
    for k in ("specversion", "id", "source", "type", "subject", "myext", "datacontenttype"):
        eq(e[k], ce[k], k + " kept")
    eq(e["topic"], "ce", "topic overwritten")
    eq(e["pubsubname"], "pubsub", "pubsubname overwritten")
    eq(e["traceparent"], TP, "traceparent added from the header")
    eq(e["traceid"], TP, "traceid added")
    check(TIME_SEC.match(e["time"]), "time added")
    raw = [line for line in tail_raw() if '"ce-1"' in line][0]
    check('"data":{"n": 1.50}' in raw, "data kept byte for byte: " + raw)
    # Dapr's defaults for what is missing (or null); ringcast adds an id.
    ok(publish("/v1.0/publish/pubsub/ce-defaults", '{"source": null, "data": "x", "t2": 1}',
               {"Content-Type": "application/cloudevents+json"}), "defaults")
    e = events("ce-defaults")[-1]
    eq((e["specversion"], e["source"], e["type"]), ("1.0", "Dapr", "com.dapr.event.sent"),
       "defaults")
    check(UUID4.match(e["id"]), "id made up")
    eq((e["data"], e["t2"]), ("x", 1), "members kept")
    check(TRACEPARENT.match(e["traceparent"]) and e["traceid"] == e["traceparent"], "trace")
    # Invalid CloudEvents: 500 ERR_PUBSUB_CLOUD_EVENTS_SER, nothing stored.
    before = len(events("ce-bad"))
    for body, part in [("not json", "malformed JSON"), ("[1]", "must be a JSON object"),
                       ('{"specversion": "0.3"}', "specversion"),
                       ('{"id": "1", "source": "a b"}', "source"),
                       ('{"time": "yesterday"}', "time")]:
        r = publish("/v1.0/publish/pubsub/ce-bad", body,
                    {"Content-Type": "application/cloudevents+json"})
        dapr_error(r, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER", part)
    eq(len(events("ce-bad")), before, "nothing stored")


def test_metadata_params():
    q = ("metadata.ttlInSeconds=60&metadata.cloudevent.id=my-id&metadata.cloudevent.source=%2Fsrc"
         "&metadata.cloudevent.type=my.type&metadata.cloudevent.subject=subj"
         "&metadata.cloudevent.traceid=tid&metadata.cloudevent.traceparent=" + TP +
         "&metadata.cloudevent.tracestate=a%3Db&metadata.partitionKey=customer-7"
         "&metadata.rawPayload=false&metadata.unknownKey=x&other=1")
    t0 = time.time()
    ok(publish("/v1.0/publish/pubsub/meta?" + q, '{"a":1}', {"Content-Type": "application/json"}),
       "metadata")
    e = events("meta")[-1]
    eq((e["id"], e["source"], e["type"], e["subject"]), ("my-id", "/src", "my.type", "subj"),
       "cloudevent.* overrides")
    eq((e["traceid"], e["traceparent"], e["tracestate"]), ("tid", TP, "a=b"), "trace overrides")
    eq(e["partitionkey"], "customer-7", "partitionKey")
    check("unknownkey" not in e and "rawpayload" not in e, "unknown metadata ignored")
    exp = calendar.timegm(time.strptime(e["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    check(t0 + 60 - 2 <= exp <= time.time() + 60 + 1, "expiration %s is now + 60 s" % e["expiration"])
    # rawPayload: the body byte for byte, even when it is no JSON.
    ok(publish("/v1.0/publish/pubsub/raw?metadata.rawPayload=true", b"not json {"), "raw")
    e = events("raw")[-1]
    check_envelope(e, "raw", "application/octet-stream")
    eq(e["rawpayload"], True, "rawpayload marks it")
    eq(base64.b64decode(e["data_base64"]) if "data_base64" in e else e["data"].encode(),
       b"not json {", "raw bytes")
    ok(publish("/v1.0/publish/pubsub/raw?metadata.rawPayload=true", b"[1, 2.50]",
               {"Content-Type": "application/json"}), "raw json")
    raw = tail_raw()[-1]
    check('"data":[1, 2.50]' in raw, "raw JSON kept: " + raw)
    # Bad values: 400 ERR_PUBSUB_REQUEST_METADATA naming the parameter, nothing stored.
    before = len(events("meta-bad"))
    for query, part in [("metadata.rawPayload=maybe", "metadata.rawPayload: 'maybe'"),
                        ("metadata.ttlInSeconds=0", "metadata.ttlInSeconds: '0'"),
                        ("metadata.ttlInSeconds=-3", "metadata.ttlInSeconds: '-3'"),
                        ("metadata.ttlInSeconds=soon", "metadata.ttlInSeconds: 'soon'"),
                        ("metadata.cloudevent.source=a%20b", "metadata.cloudevent.source: 'a b'")]:
        r = publish("/v1.0/publish/pubsub/meta-bad?" + query, "x")
        dapr_error(r, 400, "ERR_PUBSUB_REQUEST_METADATA", part)
    eq(len(events("meta-bad")), before, "nothing stored")


# ---- bulk -------------------------------------------------------------------------------------

def bulk(entries, query="", path="/v1.0/publish/bulk/pubsub/bulk", raw=None):
    body = raw if raw is not None else json.dumps(entries)
    return publish(path + ("?" + query if query else ""), body,
                   {"Content-Type": "application/json"})


def test_bulk():
    entries = [
        {"entryId": "1", "event": {"n": 1}, "contentType": "application/json"},
        {"entryId": "2", "event": "plain text", "contentType": "text/plain",
         "metadata": {"cloudevent.id": "bulk-2", "ttlInSeconds": "5"}},
        {"entryId": "3", "event": base64.b64encode(b"\x00\xff").decode(),
         "contentType": "application/octet-stream"},
        {"entryId": "4", "contentType": "application/cloudevents+json",
         "event": {"specversion": "1.0", "id": "bulk-4", "source": "/b", "type": "t",
                   "data": [1]}},
    ]
    ok(bulk(entries, "metadata.ttlInSeconds=3600&metadata.partitionKey=p"), "bulk")
    evs = events("bulk")[-4:]
    eq(evs[0]["data"], {"n": 1}, "json entry")
    eq(evs[0]["datacontenttype"], "application/json", "json type")
    eq((evs[1]["id"], evs[1]["data"], evs[1]["datacontenttype"]),
       ("bulk-2", "plain text", "text/plain"), "text entry with its own metadata")
    e1 = calendar.timegm(time.strptime(evs[0]["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    e2 = calendar.timegm(time.strptime(evs[1]["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    check(3500 < e1 - time.time() <= 3601, "request ttl")
    check(0 < e2 - time.time() <= 6, "entry ttl overrides the request's")
    eq(base64.b64decode(evs[2]["data_base64"]), b"\x00\xff", "binary entry")
    eq((evs[3]["id"], evs[3]["source"], evs[3]["data"]), ("bulk-4", "/b", [1]), "cloudevent entry")
    for e in evs:
        eq((e["topic"], e["pubsubname"], e["partitionkey"]), ("bulk", "pubsub", "p"), "envelope")
    for e in (evs[0], evs[2]):
        check_envelope(e, "bulk", e["datacontenttype"])
    # The alpha1 path, PUT, an empty array.
    ok(publish("/v1.0-alpha1/publish/bulk/pubsub/bulk",
               json.dumps([{"entryId": "a", "event": "alpha", "contentType": "text/plain"}]),
               {"Content-Type": "application/json"}, method="PUT"), "alpha1")
    eq(events("bulk")[-1]["data"], "alpha", "alpha1 stored")
    ok(bulk([]), "empty bulk")
    # Refusals: nothing of the request is stored.
    before = len(events("bulk"))
    two = [{"entryId": "x", "event": 1}, {"entryId": "y", "event": 2}]
    dapr_error(bulk(two + [{"entryId": "x", "event": 3}]), 400, "ERR_PUBSUB_EVENTS_SER",
               "entryId 'x' is duplicated")
    dapr_error(bulk(two + [{"event": 3}]), 400, "ERR_PUBSUB_EVENTS_SER", "entry 2: entryId")
    dapr_error(bulk(None, raw='[{"entryId": "x", "event": '), 400, "ERR_PUBSUB_EVENTS_SER",
               "JSON array")
    dapr_error(bulk(None, raw='{"entryId": "x"}'), 400, "ERR_PUBSUB_EVENTS_SER", "JSON array")
    dapr_error(bulk([{"entryId": "t", "event": {"a": 1}, "contentType": "text/plain"}]), 400,
               "ERR_PUBSUB_EVENTS_SER", "entry 't': event must be a JSON string")
    dapr_error(bulk(two, "metadata.rawPayload=perhaps"), 400, "ERR_PUBSUB_REQUEST_METADATA",
               "entry 'x': metadata.rawPayload: 'perhaps'")
    dapr_error(bulk([{"entryId": "m", "event": 1, "metadata": {"ttlInSeconds": "-1"}}]), 400,
               "ERR_PUBSUB_REQUEST_METADATA", "entry 'm': ttlInSeconds: '-1'")
    dapr_error(bulk(two + [{"entryId": "c", "event": {"specversion": "9"},
                            "contentType": "application/cloudevents+json"}]),
               500, "ERR_PUBSUB_CLOUD_EVENTS_SER", "entry 'c'")
    dapr_error(bulk([{"entryId": str(i), "event": i} for i in range(6)]), 413,
               "ERR_BODY_TOO_LARGE", "more than 5 entries")
    eq(len(events("bulk")), before, "nothing stored")


# ---- probes, errors, listeners ----------------------------------------------------------------

def test_probes_and_metadata():
    for path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
        r = publish(path, method="GET")
        eq(r.status, 204, path)
        eq(r.body, b"", path + " body")
    r = publish("/v1.0/metadata", method="GET")
    eq(r.status, 200, "metadata")
    eq(r.header("Content-Type"), "application/json", "metadata type")
    m = r.json()
    eq(m["id"], "ringcast", "id without a dapr-app-id header")
    check(m["runtimeVersion"].startswith("ringcast-"), m["runtimeVersion"])
    eq(sorted((c["name"], c["type"], c["version"]) for c in m["components"]),
       [("pubsub", "pubsub.ringcast", "v1"), ("shop-pubsub", "pubsub.ringcast", "v1")],
       "components")
    subs = [s for s in m["subscriptions"] if s["topic"] == "routed"]
    eq(len(subs), 1, "the declarative subscription: %r" % m["subscriptions"])
    s = subs[0]
    eq(s["pubsubname"], "pubsub", "pubsubname")
    eq(s["rules"], {"rules": [{"match": 'event.type == "order.priority"', "path": "/priority"},
                              {"match": "", "path": "/orders"}]}, "rules, default last")
    eq(s["deadLetterTopic"], "orders-dead", "deadLetterTopic")
    r = publish("/v1.0/metadata", method="GET", headers={"dapr-app-id": "checkout"})
    eq(r.json()["id"], "checkout", "id from the header")
    eq(len(r.json()["subscriptions"]), 1, "the app's subscriptions")
    r = publish("/v1.0/metadata", method="GET", headers={"dapr-app-id": "someone-else"})
    eq(r.json()["subscriptions"], [], "another app has none")


def test_errors():
    dapr_error(publish("/v1.0/publish/nope/orders", "x"), 404, "ERR_PUBSUB_NOT_FOUND",
               "pubsub 'nope' not found")
    dapr_error(publish("/v1.0/publish//orders", "x"), 404, "ERR_PUBSUB_EMPTY")
    dapr_error(publish("/v1.0/publish/", "x"), 404, "ERR_PUBSUB_EMPTY")
    dapr_error(publish("/v1.0/publish/pubsub/", "x"), 404, "ERR_TOPIC_NAME_EMPTY", "'pubsub'")
    dapr_error(publish("/v1.0/publish/pubsub", "x"), 404, "ERR_TOPIC_NAME_EMPTY")
    dapr_error(publish("/v1.0/publish/bulk/pubsub/", "[]"), 404, "ERR_TOPIC_NAME_EMPTY")
    dapr_error(publish("/v1.0/publish/pub%zzsub/t", "x"), 400, "ERR_MALFORMED_REQUEST",
               "%-escape")
    dapr_error(publish("/v1.0/invoke/app/method/x", "x"), 404, "ERR_NOT_FOUND", "/v1.0/invoke")
    dapr_error(publish("/v1.0-alpha1/publish/pubsub/t", "x"), 404, "ERR_NOT_FOUND")
    dapr_error(publish("/v1.0/healthz/", method="GET"), 404, "ERR_NOT_FOUND")
    r = publish("/v1.0/publish/pubsub/orders", method="GET")
    dapr_error(r, 405, "ERR_METHOD_NOT_ALLOWED", "GET")
    eq(r.header("Allow"), "POST, PUT", "Allow on publish")
    r = publish("/v1.0/publish/bulk/pubsub/orders", method="DELETE")
    eq((r.status, r.header("Allow")), (405, "POST, PUT"), "Allow on bulk")
    r = publish("/v1.0/healthz", "x", method="POST")
    dapr_error(r, 405, "ERR_METHOD_NOT_ALLOWED")
    eq(r.header("Allow"), "GET, HEAD", "Allow on healthz")
    dapr_error(publish("/v1.0/publish/pubsub/big", "x" * (8 * 1024 + 1)), 413,
               "ERR_BODY_TOO_LARGE", "8192")
    dapr_error(publish("/v1.0/publish/pubsub/big", "x", {"Content-Type": "nonsense"}), 400,
               "ERR_MALFORMED_REQUEST", "Content-Type 'nonsense'")
    dapr_error(publish("/v1.0/publish/pubsub/big", "x", {"dapr-app-id": "a b"}), 400,
               "ERR_MALFORMED_REQUEST", "dapr-app-id 'a b'")
    eq(events("big"), [], "nothing stored")
    # A chunked body over the limit is refused by the HTTP server as it arrives.
    c = Conn(B.host, B.port)
    c.send("POST /v1.0/publish/pubsub/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           "\r\n2001\r\n" + "x" * 0x2001 + "\r\n0\r\n\r\n")
    eq(c.response().status, 413, "chunked body over the limit")
    c.close()
    # Knative paths still work beside the Dapr API on the same port.
    r = B.request("POST", "/default/default", {"ce-specversion": "1.0", "ce-id": "k-1",
                                               "ce-type": "t", "ce-source": "/s"}, b"")
    eq(r.status, 202, "Knative ingress")


def test_own_listener():
    port = DAPR_PORT
    ok(publish("/v1.0/publish/pubsub/own", "via the dapr port", port=port), "publish")
    eq(events("own")[-1]["data"], "via the dapr port", "stored")
    eq(publish("/v1.0/healthz", method="GET", port=port).status, 204, "healthz")
    eq(publish("/v1.0/healthz/outbound", method="GET", port=port).status, 204, "outbound")
    eq(publish("/v1.0/metadata", method="GET", port=port).json()["id"], "ringcast", "metadata")
    ok(publish("/v1.0/publish/bulk/pubsub/own", json.dumps([{"entryId": "1", "event": "b"}]),
               port=port), "bulk")
    dapr_error(publish("/v1.0/publish/nope/x", "x", port=port), 404, "ERR_PUBSUB_NOT_FOUND")
    dapr_error(publish("/default/default", "x", port=port), 404, "ERR_NOT_FOUND", "Dapr API only")
    # Keep-alive: several requests on one connection.
    c = Conn(B.host, port)
    for i in range(3):
        c.send_request("POST", "/v1.0/publish/pubsub/own", {}, "ka-%d" % i)
        eq(c.response().status, 204, "keep-alive %d" % i)
    c.close()
    eq([e["data"] for e in events("own")[-3:]], ["ka-0", "ka-1", "ka-2"], "all stored in order")
    m = B.metrics()
    check(m["ringcast_ingress_events_accepted_total"] >= 10, "Dapr events counted")


def test_no_components():
    cfg = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
"""
    with Broker(cfg) as b:
        r = b.request("POST", "/v1.0/publish/pubsub/orders", {}, b"x")
        dapr_error(r, 400, "ERR_PUBSUB_NOT_CONFIGURED")
        r = b.request("POST", "/v1.0/publish//orders", {}, b"x")
        dapr_error(r, 400, "ERR_PUBSUB_NOT_CONFIGURED")
        eq(b.request("GET", "/v1.0/healthz").status, 204, "healthz without components")
        m = b.request("GET", "/v1.0/metadata").json()
        eq((m["components"], m["subscriptions"]), ([], []), "empty metadata")
        eq(b.stop(), 0, "the broker stops cleanly")


def test_ring_full():
    port = free_port()
    with Subscriber() as app, Subscriber() as sink:
        cfg = config(port, app.url, sink.url, limits=SMALL_RING)
        with Broker(cfg) as b:
            holder = subprocess.Popen([RING_HOLDER, b.ring_name("default", "default")],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                eq(holder.stdout.readline().strip(), "ready", "lossless reader attached")
                c = Conn(b.host, b.port)
                full = None
                for i in range(200):
                    c.send_request("POST", "/v1.0/publish/pubsub/fill", {}, "x" * 2000)
                    r = c.response()
                    if r.status != 204:
                        full = r
                        break
                c.close()
                check(full is not None, "ring never filled")
                j = dapr_error(full, 429, "ERR_PUBSUB_PUBLISH_MESSAGE", "full")
                eq(full.header("Retry-After"), "2", "Retry-After")
                c = Conn(b.host, port)
                c.send_request("POST", "/v1.0/publish/bulk/pubsub/fill", {},
                               json.dumps([{"entryId": "e%d" % i, "event": "y" * 2000}
                                           for i in range(3)]))
                r = c.response()
                c.close()
                eq(r.status, 429, "bulk on a full ring: %r" % r)
                eq(r.header("Retry-After"), "2", "bulk Retry-After")
                j = r.json()
                eq(j["errorCode"], "ERR_PUBSUB_PUBLISH_MESSAGE", "bulk errorCode")
                eq([f["entryId"] for f in j["failedEntries"]], ["e0", "e1", "e2"],
                   "every entry failed")
                check(all("full" in f["error"] for f in j["failedEntries"]), j)
                holder.stdin.write("drain\n")
                holder.stdin.flush()
                holder.stdout.readline()
                r = b.request("POST", "/v1.0/publish/pubsub/fill", {}, b"after")
                eq(r.status, 204, "accepted after the reader caught up")
                eq(b.stop(), 0, "the broker stops cleanly")
            finally:
                holder.stdin.close()
                holder.wait(10)


def main():
    global B, SINK, DAPR_PORT
    with Subscriber() as app, Subscriber() as sink:
        for attempt in range(3):
            DAPR_PORT = free_port()
            try:
                broker = Broker(config(DAPR_PORT, app.url, sink.url))
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        with broker as b:
            B, SINK = b, sink
            Runner().run([test_publish_json, test_publish_text_and_binary,
                          test_publish_cloudevent, test_metadata_params, test_bulk,
                          test_probes_and_metadata, test_errors, test_own_listener])
            eq(b.stop(), 0, "the broker stops cleanly")
    Runner().run([test_no_components, test_ring_full])


if __name__ == "__main__":
    main()
