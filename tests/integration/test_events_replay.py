#!/usr/bin/env python3
"""The admin API's sample of recent events, replay of a dead letter, the recent latency window
and a Dapr subscription's pause (issue 18; docs/dashboard.md), on a real `ringcast serve` on
free loopback ports:
- GET .../namespaces/NS/brokers/NAME/events: the latest events newest first as CloudEvents,
  `limit` (default 20, at most 50; 400 past it), `trigger=T` keeps what T's filter matches,
  data cut at 4096 bytes (JSON as JSON, text, data_base64), data only for a request that could
  write (loopback without a token; with a token only with it), 404/405/400 with messages; a
  sampler never holds producers back: publishing into a small ring that wraps goes on at full
  speed (all 202) while samples are taken, and the ring shows no lossless reader for them; on
  a ring held full (429) a sample answers at once and changes nothing.
- POST .../triggers/NAME/replay {"id"}: an event dead-lettered by t1 (subscriber 500) is listed
  in status.deadLetters, replayed once t1's subscriber answers 200: t1's subscriber gets it
  once, t2 (which had it) not again; an unknown id or trigger is 404, an overwritten event 404
  naming it, a bad body 400, GET 405, with a token 401/403; `ringcast replay trigger`.
- status.recentLatency next to deliveryLatency.
- POST .../subscriptions/NAME/pause|resume for a Dapr subscription.
Every wait is bounded."""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import RINGCAST, Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

KN = "/apis/eventing.knative.dev/v1"
RC = "/apis/ringcast.dev/v1alpha1/namespaces/%s/%s/%s/%s"
TOKEN = "replay-token-0123456789abcdef"

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 2s
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t1, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: t.one}}
  subscriber: {uri: "%s"}
  delivery:
    retry: 0
    deadLetterSink: {uri: "%s"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t2, namespace: default}
spec:
  broker: default
  subscriber: {uri: "%s"}
"""


def wait(cond, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Env:
    def __init__(self, admin_block="", behaviour=None, spec=""):
        self.sub1 = Subscriber(behaviour) if behaviour else Subscriber()
        self.sub2 = Subscriber()
        self.dls = Subscriber()
        self.broker = Broker(CONFIG % (spec + admin_block, self.sub1.url + "/t1",
                                       self.dls.url + "/dead", self.sub2.url + "/t2"))
        self.admin = "127.0.0.1:%d" % self.broker.admin_port
        self.n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.broker.__exit__(None, None, None)
        for s in (self.sub1, self.sub2, self.dls):
            s.close()

    def events(self, query="", headers=None, broker="default", method="GET"):
        path = RC % ("default", "brokers", broker, "events") + query
        return self.broker.request(method, path, headers or {}, b"", admin=True)

    def replay(self, eid, name="t1", headers=None, method="POST", body=None):
        b = body if body is not None else json.dumps({"id": eid}).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.broker.request(method, RC % ("default", "triggers", name, "replay"), h, b,
                                   admin=True)

    def trigger(self, name="t1"):
        r = self.broker.request("GET", KN + "/namespaces/default/triggers/" + name, admin=True)
        eq(r.status, 200, "GET trigger")
        return r.json()

    def publish(self, typ="t.one", data=b"x", ct=None, eid=None, full_ok=False):
        """full_ok: a 429 (a trigger behind on a tiny ring, as on a loaded machine) is retried
        for up to 10 s, as a producer would; the tests that lap the ring bound the total time."""
        self.n += 1
        h = {"ce-id": eid or "e%d" % self.n, "ce-source": "/t", "ce-type": typ,
             "ce-specversion": "1.0"}
        if ct:
            h["Content-Type"] = ct
        end = time.monotonic() + 10
        while True:
            r = self.broker.request("POST", "/default/default", h, data)
            if r.status != 429 or not full_ok or time.monotonic() > end:
                break
            time.sleep(0.01)
        eq(r.status, 202, "publish: %r" % r.body)
        return h["ce-id"]


def ids(sample):
    return [it["event"]["id"] for it in sample["items"]]


def test_sample_shape_caps_and_filter():
    with Env() as e:
        wait(lambda: e.trigger()["status"].get("workerPid", 0) > 0, "the worker")
        r = e.events()
        eq(r.status, 200, "empty ring: %r" % r.body)
        o = r.json()
        eq((o["kind"], o["apiVersion"], o["items"], o["limit"], o["dataMaxBytes"]),
           ("EventSample", "ringcast.dev/v1alpha1", [], 20, 4096), "empty sample")
        check(o["complete"] and o["dataIncluded"], "loopback without a token sees data: %r" % o)
        eq(r.header("Cache-Control") or "no-store", "no-store", "not cached")
        sent = []
        for i in range(60):
            sent.append(e.publish("t.one" if i % 3 == 0 else "t.two",
                                  data=json.dumps({"i": i}).encode(), ct="application/json"))
        big = "B" * 5000
        sent.append(e.publish("t.two", data=big.encode(), ct="text/plain"))
        sent.append(e.publish("t.two", data=b"\xff\x00\x01" * 2000, ct="application/octet-stream"))
        o = e.events().json()
        eq(ids(o), list(reversed(sent))[:20], "the latest 20, newest first")
        bin_item, text_item, json_item = o["items"][0], o["items"][1], o["items"][2]
        eq((bin_item["dataBytes"], bin_item["dataTruncated"]), (6000, True), "binary size")
        eq(len(bin_item["event"]["data_base64"]), (4096 + 2) // 3 * 4, "base64 of 4096 bytes")
        check("data" not in bin_item["event"], "binary has no data")
        eq((text_item["event"]["data"], text_item["dataTruncated"]), (big[:4096], True), "text")
        eq((json_item["event"]["data"], json_item["dataTruncated"], json_item["dataBytes"]),
           ({"i": 59}, False, len(json.dumps({"i": 59}))), "JSON data as JSON")
        eq((json_item["event"]["type"], json_item["event"]["source"],
            json_item["event"]["specversion"]), ("t.two", "/t", "1.0"), "attributes")
        check("knativearrivaltime" in json_item["event"], "extensions are there")
        check(json_item["sequence"] > 0 and json_item["position"] > 0, "where: %r" % json_item)
        o = e.events("?limit=50").json()
        eq(ids(o), list(reversed(sent))[:50], "limit 50")
        o = e.events("?limit=3&trigger=t1").json()
        want = [x for i, x in enumerate(sent[:60]) if i % 3 == 0]
        eq((ids(o), o["trigger"], o["filter"]), (list(reversed(want))[:3], "t1",
                                                 'attributes(type="t.one")'), "t1's filter")
        o = e.events("?limit=50&trigger=t1").json()
        eq(ids(o), list(reversed(want)), "all 20 of t1 (fewer than the limit)")
        check(o["complete"], "the whole ring was looked at")
        for q, want_msg in (("?limit=0", "limit must be a number from 1 to 50"),
                            ("?limit=51", "limit must be a number from 1 to 50"),
                            ("?limit=x", "limit must be a number from 1 to 50"),
                            ("?limit=", "limit must be a number"),
                            ("?trigger=", "trigger must name a trigger"),
                            ("?bogus=1", "unknown parameter 'bogus'")):
            r = e.events(q)
            check(r.status == 400 and want_msg in r.json()["message"], "%s: %r" % (q, r.body))
        r = e.events("?trigger=nope")
        check(r.status == 404 and '"nope" not found' in r.json()["message"], r.body)
        r = e.events(broker="nope")
        check(r.status == 404 and '"nope" not found' in r.json()["message"], r.body)
        for m in ("POST", "PUT", "DELETE"):
            r = e.events(method=m)
            eq((r.status, r.header("Allow")), (405, "GET, HEAD"), m)
        c = e.broker.conn(admin=True)
        c.send_request("HEAD", RC % ("default", "brokers", "default", "events"))
        h = c.response(head_only=True)
        c.close()
        eq((h.status, h.body), (200, b""), "HEAD")


def test_sample_data_needs_the_token():
    block = "  admin: {token: %s}\n" % TOKEN
    with Env(block) as e:
        e.publish(data=b'{"secret": 1}', ct="application/json")
        o = e.events().json()
        eq((o["dataIncluded"], len(o["items"])), (False, 1), "without the token")
        check("needs the admin token" in o["dataOmitted"], o)
        it = o["items"][0]
        check("data" not in it["event"] and it["dataBytes"] == 13, "no data: %r" % it)
        eq(it["event"]["id"], "e1", "attributes still shown")
        o = e.events(headers={"Authorization": "Bearer wrong"}).json()
        eq(o["dataIncluded"], False, "a wrong token")
        o = e.events(headers={"Authorization": "Bearer " + TOKEN}).json()
        eq((o["dataIncluded"], o["items"][0]["event"]["data"]), (True, {"secret": 1}),
           "with the token")


def test_sampler_never_holds_producers():
    # No trigger holds this ring (t1, t2 are paused-free but the ring is small and the
    # subscribers fast): the producer laps the ring many times while samples are taken.
    spec = "  ring: {size: 64Ki}\n  limits: {maxEventBytes: 4Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki, maxBatchEvents: 2}\n"
    with Env(spec=spec) as e:
        wait(lambda: e.trigger()["status"].get("workerPid", 0) > 0, "the worker")
        stop = threading.Event()
        seen = []
        errors = []

        def sampler():
            from rc_harness import Conn
            c = Conn("127.0.0.1", e.broker.admin_port)
            while not stop.is_set():
                try:
                    c.send_request("GET", RC % ("default", "brokers", "default", "events") +
                                   "?limit=50")
                    r = c.response()
                    if r.status != 200:
                        errors.append(r.status)
                    else:
                        seen.append(len(r.json()["items"]))
                except Exception as ex:  # noqa: BLE001
                    errors.append(repr(ex))
                    return
            c.close()

        th = threading.Thread(target=sampler)
        th.start()
        t0 = time.monotonic()
        pad = b"p" * 900
        try:
            for i in range(600):  # ~600 KB through a 64 KiB ring: it wraps about 9 times
                e.publish("t.two", data=pad, full_ok=True)
        finally:
            stop.set()
            th.join(10)
        took = time.monotonic() - t0
        eq(errors, [], "every sample answered")
        check(len(seen) >= 3 and max(seen) > 0, "samples taken meanwhile: %r" % seen[:10])
        check(took < 30, "publishing went on (%.1f s)" % took)
        b = e.broker.request("GET", KN + "/namespaces/default/brokers/default",
                             admin=True).json()
        names = [r["name"] for r in b["status"]["ring"]["localReaders"]]
        check("ringcast-sample" not in names and "ringcast-read" not in names,
              "the sampler's readers are gone: %r" % names)
        o = e.events("?limit=50").json()
        eq(len(o["items"]), 50, "a full sample of a wrapped ring")
        eq(ids(o)[0], "e600", "the newest first")


def test_sampler_on_a_full_ring():
    """A ring held full (t2 paused, lag policy block: the ingress answers 429): a sample still
    answers at once with the latest events, and leaves the ring as it was: the same lossless
    readers, producers still refused until t2 resumes, then accepted."""
    spec = ("  ring: {size: 64Ki}\n  lag: {policy: block}\n"
            "  limits: {maxEventBytes: 4Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki, "
            "maxBatchEvents: 2}\n")
    with Env(spec=spec) as e:
        wait(lambda: e.trigger("t2")["status"].get("workerPid", 0) > 0, "the worker")
        pause = RC % ("default", "triggers", "t2", "pause")
        eq(e.broker.request("POST", pause, {}, b"", admin=True).status, 200, "pause t2")
        h = {"ce-source": "/t", "ce-type": "t.two", "ce-specversion": "1.0"}
        last, n = None, 0
        for i in range(400):
            h["ce-id"] = "f%d" % i
            r = e.broker.request("POST", "/default/default", h, b"p" * 900)
            if r.status == 429:
                break
            eq(r.status, 202, "publish")
            last, n = h["ce-id"], n + 1
        eq(r.status, 429, "the ring is full (%d stored)" % n)
        kn = KN + "/namespaces/default/brokers/default"
        ring = e.broker.request("GET", kn, admin=True).json()["status"]["ring"]
        t0 = time.monotonic()
        o = e.events("?limit=50").json()
        took = time.monotonic() - t0
        check(took < 2.0, "answered at once (%.2f s)" % took)
        eq((len(o["items"]), ids(o)[0]), (min(50, n), last), "the latest, newest first")
        after = e.broker.request("GET", kn, admin=True).json()["status"]["ring"]
        eq((after["losslessReaders"], after["usedBytes"]),
           (ring["losslessReaders"], ring["usedBytes"]), "the ring as it was")
        h["ce-id"] = "still-full"
        eq(e.broker.request("POST", "/default/default", h, b"p" * 900).status, 429, "still full")
        eq(e.broker.request("POST", pause.replace("/pause", "/resume"), {}, b"",
                            admin=True).status, 200, "resume t2")
        wait(lambda: e.sub2.count() >= n, "t2 drains")
        h["ce-id"] = "after"
        wait(lambda: e.broker.request("POST", "/default/default", h, b"p").status == 202,
             "accepted again")


def fail_first(n_fail):
    state = {"n": 0, "lock": threading.Lock()}

    def behaviour(_i, _req):
        with state["lock"]:
            state["n"] += 1
            k = state["n"]
        return (500 if k <= n_fail else 200), {}, b"", 0.0
    return behaviour


def test_replay():
    with Env(behaviour=fail_first(1)) as e:
        wait(lambda: e.trigger()["status"].get("workerPid", 0) > 0, "the worker")
        eid = e.publish("t.one", data=b"replay me")
        wait(lambda: e.dls.count() == 1, "the dead letter")
        wait(lambda: e.sub2.count() == 1, "t2 has it")
        st = wait(lambda: e.trigger()["status"].get("deadLetters") and e.trigger()["status"],
                  "status.deadLetters")
        dl = st["deadLetters"]
        eq((len(dl), dl[0]["eventId"], dl[0]["lastError"]), (1, eid, "HTTP 500"), "listed")
        check(dl[0]["position"] >= 0 and dl[0]["sequence"] == 0, "where: %r" % dl[0])
        r = e.replay(eid)
        eq(r.status, 202, "replay: %r" % r.body)
        o = r.json()
        eq((o["kind"], o["status"], o["reason"], o["details"]["id"]),
           ("Status", "Success", "Accepted", eid), "answer")
        check("t1 alone" in o["message"], o["message"])
        got = e.sub1.wait_for(2)
        eq([q.ce("id") for q in got], [eid, eid], "the subscriber got it again")
        eq(got[1].body, b"replay me", "same data")
        time.sleep(0.5)
        eq((e.sub1.count(), e.sub2.count(), e.dls.count()), (2, 1, 1),
           "once more to t1 only; t2 and the sink not again")
        st = wait(lambda: e.trigger()["status"]["stats"]["delivered"] == 1 and
                  e.trigger()["status"], "delivered counted")
        eq((st["replay"]["state"], st["replay"]["replayed"]), ("Queued", 1), "status.replay")
        eq(e.trigger("t2")["status"]["stats"]["delivered"], 1, "t2 delivered once")
        m = e.broker.metrics()
        eq(m['ringcast_trigger_replays_total{namespace="default",trigger="t1",broker="default"}'],
           1.0, "the replay in /metrics")
        eq(m['ringcast_trigger_replays_total{namespace="default",trigger="t2",broker="default"}'],
           0.0, "none for t2")
        lab = '{namespace="default",trigger="t1",broker="default"}'
        eq((m["ringcast_trigger_delivery_seconds_count" + lab],
            m["ringcast_trigger_e2e_latency_seconds_count" + lab]), (1.0, 0.0),
           "the replay's attempt is timed; its end to end (from long ago) is not")
        # errors
        r = e.replay("nope")
        check(r.status == 404 and 'no dead letter with id "nope"' in r.json()["message"], r.body)
        r = e.replay(eid, name="nope")
        check(r.status == 404 and '"nope" not found' in r.json()["message"], r.body)
        for body in (b"", b"{", b"[]", b'{"id": 3}', b'{"id": ""}'):
            r = e.replay(eid, body=body)
            check(r.status == 400 and "JSON object with the dead-lettered event's id" in
                  r.json()["message"], "%r: %r" % (body, r.body))
        r = e.replay(eid, method="GET")
        eq((r.status, r.header("Allow")), (405, "POST"), "GET")
        # the CLI, while t1 is paused: the replay waits for the resume
        pause = RC % ("default", "triggers", "t1", "pause")
        eq(e.broker.request("POST", pause, {}, b"", admin=True).status, 200, "pause")
        rc, out, err = run_cli(["replay", "trigger", "t1", "--id", eid, "--admin", e.admin])
        eq((rc, out), (0, "trigger.eventing.knative.dev/t1: event %s queued for replay to it "
                          "alone\n" % eid), "CLI: %r" % err)
        time.sleep(0.6)
        eq(e.sub1.count(), 2, "nothing sent while paused")
        eq(e.broker.request("POST", pause.replace("/pause", "/resume"), {}, b"",
                            admin=True).status, 200, "resume")
        eq([q.ce("id") for q in e.sub1.wait_for(3)][2], eid, "the CLI's replay delivered")
        rc, out, err = run_cli(["describe", "trigger", "t1", "--admin", e.admin])
        check(rc == 0 and "Dead letters (newest first;" in out and " " + eid + "\n" in out and
              "HTTP 500" in out and "Last replay:" in out and "Queued" in out and
              "Latency, last 60 s:" in out, "describe: %r %r" % (out, err))
        rc, out, err = run_cli(["replay", "trigger", "t1", "--id", "nope", "--admin", e.admin])
        check(rc == 1 and "HTTP 404" in err and "nope" in err, "CLI 404: %r" % err)


def test_replay_overwritten():
    spec = "  ring: {size: 64Ki}\n  limits: {maxEventBytes: 4Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 8Ki, maxBatchEvents: 2}\n"
    with Env(behaviour=fail_first(1), spec=spec) as e:
        wait(lambda: e.trigger()["status"].get("workerPid", 0) > 0, "the worker")
        eid = e.publish("t.one", data=b"gone soon")
        wait(lambda: e.trigger()["status"].get("deadLetters"), "the dead letter")
        pad = b"p" * 2000
        for _ in range(100):  # 200 KB through a 64 KiB ring (t2 keeps up)
            e.publish("t.two", data=pad, full_ok=True)  # t2 may fall behind: 429, retried
        r = e.replay(eid)
        eq(r.status, 404, "overwritten: %r" % r.body)
        check("no longer in broker default/default's ring" in r.json()["message"], r.body)
        eq(r.json()["reason"], "Gone", "reason")


def test_replay_token():
    block = "  admin: {token: %s}\n" % TOKEN
    with Env(block, behaviour=fail_first(1)) as e:
        eid = e.publish("t.one")
        wait(lambda: e.trigger()["status"].get("deadLetters"), "the dead letter")
        eq(e.replay(eid).status, 401, "no token")
        eq(e.replay(eid, headers={"Authorization": "Bearer wrong"}).status, 403, "wrong")
        eq(e.replay(eid, headers={"Authorization": "Bearer " + TOKEN}).status, 202, "right")
        eq([q.ce("id") for q in e.sub1.wait_for(2)], [eid, eid], "replayed")


def test_replay_conflict():
    """One replay at a time per trigger: while its worker has not taken the last one (the
    worker stopped with SIGSTOP for a moment), another is refused with 409."""
    with Env(behaviour=fail_first(1)) as e:
        pid = wait(lambda: e.trigger()["status"].get("workerPid", 0), "the worker")
        eid = e.publish("t.one")
        wait(lambda: e.trigger()["status"].get("deadLetters"), "the dead letter")
        os.kill(pid, signal.SIGSTOP)
        try:
            eq(e.replay(eid).status, 202, "the first")
            eq(e.trigger()["status"]["replay"]["state"], "Pending", "status.replay")
            r = e.replay(eid)
            check(r.status == 409 and "a replay is under way" in r.json()["message"], r.body)
        finally:
            os.kill(pid, signal.SIGCONT)
        eq([q.ce("id") for q in e.sub1.wait_for(2)], [eid, eid], "the first went")
        wait(lambda: e.trigger()["status"]["replay"]["state"] == "Queued", "taken")
        eq(e.replay(eid).status, 202, "then another is accepted")


def test_recent_latency():
    with Env() as e:
        for _ in range(5):
            e.publish("t.one")
        st = wait(lambda: (e.trigger()["status"].get("recentLatency") or {}).get("count", 0) >= 5
                  and e.trigger()["status"], "recentLatency counting 5 deliveries")
        rl, dl = st["recentLatency"], st["deliveryLatency"]
        eq((rl["count"], rl["windowSeconds"]), (5, 60), "the recent window counts the 5")
        check(0 < rl["p50Seconds"] <= rl["p99Seconds"] <= 10, "quantiles: %r" % rl)
        eq((rl["p50Seconds"], rl["p99Seconds"]), (dl["p50Seconds"], dl["p99Seconds"]),
           "the same as since start while all 5 are recent")
        o = e.broker.request("GET", "/apis/ringcast.dev/v1alpha1/overview", admin=True).json()
        t1 = [t for t in o["triggers"] if t["metadata"]["name"] == "t1"][0]
        eq(t1["status"]["recentLatency"]["count"], 5, "in the Overview too")


DAPR = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 2s
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
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
apiVersion: ringcast.dev/v1alpha1
kind: DaprApp
metadata: {name: orders, namespace: default}
spec:
  endpoints: ["%s"]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-sub, namespace: default}
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    default: /orders
scopes: [orders]
"""


def test_dapr_subscription_pause():
    sub = Subscriber()
    try:
        with Broker(DAPR % sub.url) as b:
            path = RC % ("default", "subscriptions", "orders-sub", "%s")
            r = b.request("POST", path % "pause", {}, b"", admin=True)
            eq(r.status, 200, "pause: %r" % r.body)
            o = r.json()
            eq((o["kind"], o["status"]["paused"], o["status"]["conditions"][0]["reason"]),
               ("Subscription", True, "Paused"), "paused")
            h = {"ce-id": "o1", "ce-source": "/test", "ce-type": "order", "ce-specversion": "1.0",
                 "ce-topic": "orders", "Content-Type": "application/json"}
            r = b.request("POST", "/default/default", h, b'{"n": 1}')
            eq(r.status, 202, "publish: %r" % r.body)
            time.sleep(0.6)
            eq(sub.count(), 0, "nothing sent while paused")
            r = b.request("POST", path % "resume", {}, b"", admin=True)
            eq((r.status, r.json()["status"]["paused"]), (200, False), "resumed")
            sub.wait_for(1)
            r = b.request("POST", RC % ("default", "subscriptions", "nope", "pause"), {}, b"",
                          admin=True)
            check(r.status == 404 and '"nope" not found' in r.json()["message"], r.body)
            r = b.request("GET", path % "pause", {}, b"", admin=True)
            eq((r.status, r.header("Allow")), (405, "POST"), "GET")
            admin = "127.0.0.1:%d" % b.admin_port
            rc, out, err = run_cli(["pause", "subscription", "orders-sub", "--admin", admin])
            check(rc == 0 and out.startswith("subscription.dapr.io/orders-sub paused (lag "),
                  "CLI pause: %d %r %r" % (rc, out, err))
            rc, out, err = run_cli(["resume", "subscription", "orders:orders-sub", "--admin",
                                    admin])
            check(rc == 0 and out.startswith("subscription.dapr.io/orders:orders-sub resumed"),
                  "CLI resume by the pair's name: %d %r %r" % (rc, out, err))
            rc, _, err = run_cli(["replay", "subscription", "orders-sub", "--id", "x"])
            check(rc == 2 and "only a trigger's dead letter can be replayed" in err, err)
            rc, _, err = run_cli(["replay", "trigger", "t1"])
            check(rc == 2 and "--id ID names the dead-lettered event" in err, err)
    finally:
        sub.close()


if __name__ == "__main__":
    Runner().run([test_sample_shape_caps_and_filter, test_sample_data_needs_the_token,
                  test_sampler_never_holds_producers, test_sampler_on_a_full_ring, test_replay, test_replay_overwritten,
                  test_replay_token, test_replay_conflict, test_recent_latency, test_dapr_subscription_pause])
