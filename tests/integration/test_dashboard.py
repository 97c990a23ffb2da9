#!/usr/bin/env python3
"""The dashboard over HTTP (issue 18): the real `ringcast serve` on free loopback ports. `/` and
every file the page loads come from the binary, byte for byte the files of net/dashboard/, with
their content types, a Content-Security-Policy that allows nothing outside the admin listener,
an ETag that answers 304; an unknown /ui/ file is 404, a write method 405. The Overview
(/apis/ringcast.dev/v1alpha1/overview) holds the same objects as the status API, and its
numbers (ring events, trigger counters, the p50/p99 delivery latency computed from the
histogram) match /metrics once the traffic has stopped; a consumer group and a local reader
attached with `ringcast tail` show in it. Every wait is bounded."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import RINGCAST, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402

OVERVIEW = "/apis/ringcast.dev/v1alpha1/overview"
KN = "/apis/eventing.knative.dev/v1"
DAPR = "/apis/dapr.io/v2alpha1"
SRC = os.environ.get("RC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "../..")
ASSETS = os.path.join(SRC, "net", "dashboard")

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 500ms
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: b2, namespace: team}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: slow, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: t.ok}}
  subscriber: {uri: "%(ok)s/in"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: failing, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: t.bad}}
  subscriber: {uri: "%(bad)s/in"}
  delivery: {retry: 2, backoffDelay: PT0.01S}
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
metadata: {name: orders-app, namespace: default}
spec:
  endpoints: ["%(ok)s"]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-sub, namespace: default}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {default: /orders}
scopes: [orders-app]
"""

# The slow subscriber answers after 30 ms, so no latency falls below the (25 ms, 50 ms] bucket.
DELAY = 0.03


def publish(b, path, eid, etype):
    r = b.request("POST", path, {"ce-id": str(eid), "ce-source": "/dash", "ce-type": etype,
                                 "ce-specversion": "1.0"}, b"x")
    eq(r.status, 202, "publish %s" % etype)


def wait(cond, what, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


B = None  # the broker the tests share


def get(b, path, headers=None, method="GET"):
    return b.request(method, path, headers, admin=True)


def items_by_key(lst):
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in lst}


def quantile(buckets, q):
    """histogram_quantile over [(le, cumulative count)] as /metrics gives them, +Inf last."""
    total = buckets[-1][1]
    rank, prev_le, prev_cum = q * total, 0.0, 0
    for le, cum in buckets[:-1]:
        n = cum - prev_cum
        if n > 0 and cum >= rank:
            return prev_le + (le - prev_le) * (rank - prev_cum) / n
        prev_le, prev_cum = le, cum
    return buckets[-2][0]


def latency_buckets(metrics, ns, name, broker):
    out = []
    pat = re.compile(r'ringcast_trigger_delivery_seconds_bucket\{namespace="%s",trigger="%s",'
                     r'broker="%s",le="([^"]+)"\}' % (ns, name, broker))
    for k, v in metrics.items():
        m = pat.fullmatch(k)
        if m:
            out.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(v)))
    return sorted(out)


# ---- the files -----------------------------------------------------------------------------

def test_page_and_assets():
    b = B
    r = get(b, "/")
    eq(r.status, 200, "GET /")
    eq(r.header("Content-Type"), "text/html; charset=utf-8", "page type")
    with open(os.path.join(ASSETS, "index.html"), "rb") as f:
        eq(r.body, f.read(), "the page is index.html, byte for byte")
    csp = r.header("Content-Security-Policy") or ""
    for d in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
              "connect-src 'self'", "base-uri 'none'", "form-action 'none'",
              "frame-ancestors 'none'"):
        check(d in csp, "CSP has %s: %r" % (d, csp))
    check("http" not in csp and "*" not in csp and "unsafe" not in csp, "no source outside: %r"
          % csp)
    eq(r.header("X-Content-Type-Options"), "nosniff", "nosniff")
    eq(r.header("Cache-Control"), "no-cache", "revalidated on every load")
    etag = r.header("ETag")
    check(etag and re.fullmatch(r'"[0-9a-f]{16}"', etag), "ETag %r" % etag)
    # every file the page names is served, with its type, and is the file in the tree
    refs = re.findall(r'(?:src|href)="(/ui/[^"]+)"', r.body.decode())
    eq(sorted(refs), ["/ui/app.js", "/ui/favicon.svg", "/ui/style.css"], "the page's files")
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
             ".svg": "image/svg+xml"}
    for ref in refs:
        a = get(b, ref)
        eq(a.status, 200, ref)
        eq(a.header("Content-Type"), types[os.path.splitext(ref)[1]], ref + " type")
        check(a.header("Content-Security-Policy") == csp, ref + " has the CSP")
        with open(os.path.join(ASSETS, ref[4:]), "rb") as f:
            eq(a.body, f.read(), ref + " byte for byte")
        check(a.header("ETag") not in (None, etag), ref + " has its own ETag")
    # a query string does not change what is served (the page's links may carry one)
    eq(get(b, "/?x=1").body, r.body, "/?x=1")


def test_no_external_references():
    # the only URLs in the page's files: its own paths and the SVG namespace (a name, not a
    # request)
    for name in os.listdir(ASSETS):
        if name.endswith(".cmake"):
            continue
        with open(os.path.join(ASSETS, name)) as f:
            text = f.read()
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+[^\s\"'`)]*", text))
        urls = {u for u in urls if not u.startswith("//") or "." in u.split("/")[2]}
        eq(urls - {"http://www.w3.org/2000/svg"}, set(), "URLs in %s" % name)


def test_etag_and_methods():
    b = B
    r = get(b, "/ui/app.js")
    etag = r.header("ETag")
    nm = get(b, "/ui/app.js", {"If-None-Match": etag})
    eq((nm.status, nm.body), (304, b""), "If-None-Match answers 304")
    eq(nm.header("ETag"), etag, "the 304 names the ETag")
    eq(get(b, "/ui/app.js", {"If-None-Match": '"0000000000000000"'}).status, 200, "other ETag")
    eq(get(b, "/ui/app.js", {"If-None-Match": "W/%s, \"x\"" % etag}).status, 304, "in a list")
    c = b.conn(admin=True)
    try:
        c.send_request("HEAD", "/")
        h = c.response(head_only=True)
    finally:
        c.close()
    eq(h.status, 200, "HEAD /")
    eq(h.header("Content-Type"), "text/html; charset=utf-8", "HEAD type")
    for path in ("/", "/ui/app.js", OVERVIEW):
        for m in ("POST", "PUT", "DELETE"):
            r = get(b, path, method=m)
            eq(r.status, 405, "%s %s" % (m, path))
            eq(r.header("Allow"), "GET, HEAD", "Allow")
            check(b"read-only" in r.body, "405 says why: %r" % r.body)


def test_unknown_ui_path_is_404():
    b = B
    for path in ("/ui/", "/ui/nope.js", "/ui/index.html", "/ui/app.js/x", "/ui/../metrics",
                 "/ui/%2e%2e/metrics"):
        r = get(b, path)
        eq(r.status, 404, path)
        eq(r.header("Content-Type"), "application/json", path + " type")
        check(b"no dashboard file at" in r.body and b"the dashboard is at /" in r.body,
              "%s: %r" % (path, r.body))
    # paths beside the dashboard's are the admin API's, as before
    eq(get(b, "/uix").status, 404, "/uix")
    eq(get(b, "/metrics").status, 200, "/metrics still served")
    eq(get(b, "/apis/ringcast.dev/v1alpha1/overviews").status, 404, "overviews")


# ---- the Overview ------------------------------------------------------------------------------

def test_overview_shape():
    b = B
    r = get(b, OVERVIEW)
    eq(r.status, 200, "overview")
    eq(r.header("Content-Type"), "application/json", "type")
    eq(r.header("Cache-Control"), "no-store", "never cached")
    o = r.json()
    # loopback without spec.admin.token: writes (pause/resume) are allowed without a token
    eq((o["apiVersion"], o["kind"], o["readOnly"], o["writable"], o["tokenRequired"]),
       ("ringcast.dev/v1alpha1", "Overview", False, True, False), "kind")
    for t in o["triggers"]:
        eq(t["status"]["paused"], False, "paused in every trigger's status")
    check(abs(o["timeMs"] / 1000 - time.time()) < 5, "timeMs is now: %r" % o["timeMs"])
    check(0 < o["startedMs"] <= o["timeMs"], "startedMs")
    o2 = get(b, OVERVIEW).json()
    check(o2["sampleSeconds"] > o["sampleSeconds"], "the sample time moves on")
    # the same objects as the status API (counters may have moved between the requests)
    for field, path in (("brokers", KN + "/brokers"), ("triggers", KN + "/triggers"),
                        ("subscriptions", DAPR + "/subscriptions")):
        mine, theirs = items_by_key(o[field]), items_by_key(get(b, path).json()["items"])
        eq(sorted(mine), sorted(theirs), field)
        for k in mine:
            eq(mine[k]["kind"], theirs[k]["kind"], "kind of %s" % (k,))
            eq(mine[k]["spec"] if "spec" in mine[k] else None,
               theirs[k]["spec"] if "spec" in theirs[k] else None, "spec of %s" % (k,))
    eq(sorted(items_by_key(o["brokers"])), [("default", "default"), ("team", "b2")], "brokers")
    eq(sorted(items_by_key(o["triggers"])), [("default", "failing"), ("default", "slow")],
       "triggers")
    eq([s["kind"] for s in o["subscriptions"]], ["Subscription"], "the Dapr subscription")
    for br in o["brokers"]:
        ring = br["status"]["ring"]
        for k in ("events", "fill", "readers", "usedBytes", "capacityBytes", "storage",
                  "groups", "localReaders"):
            check(k in ring, "broker ring has %s" % k)


def test_overview_matches_metrics():
    b = B
    n_ok, n_bad = 20, 3
    for i in range(n_ok):
        publish(b, "/default/default", i, "t.ok")
    for i in range(n_bad):
        publish(b, "/default/default", 100 + i, "t.bad")
    publish(b, "/team/b2", 1, "t.none")

    def settled():
        t = items_by_key(get(b, OVERVIEW).json()["triggers"])
        return (t[("default", "slow")]["status"]["stats"]["delivered"] >= n_ok and
                t[("default", "failing")]["status"]["stats"]["dropped"] >= n_bad and
                all(x["status"]["stats"]["inflight"] == 0 for x in t.values()))
    wait(settled, "deliveries done")
    o = get(b, OVERVIEW).json()
    m = b.metrics()
    for br in o["brokers"]:
        ns, name = br["metadata"]["namespace"], br["metadata"]["name"]
        lab = '{namespace="%s",broker="%s"}' % (ns, name)
        ring = br["status"]["ring"]
        eq(ring["events"], m["ringcast_ring_events_total" + lab], "events of %s" % name)
        eq(ring["capacityBytes"], m["ringcast_ring_capacity_bytes" + lab], "capacity")
        eq(ring["usedBytes"], m["ringcast_ring_used_bytes" + lab], "used")
    eq(items_by_key(o["brokers"])[("default", "default")]["status"]["ring"]["events"],
       n_ok + n_bad, "events published")
    names = {"delivered": "delivered", "failed": "failed", "retried": "retried",
             "deadLettered": "dead_lettered", "dropped": "dropped"}
    for t in o["triggers"]:
        ns, name = t["metadata"]["namespace"], t["metadata"]["name"]
        lab = '{namespace="%s",trigger="%s",broker="default"}' % (ns, name)
        st = t["status"]["stats"]
        for k, metric in names.items():
            eq(st[k], m["ringcast_trigger_%s_total%s" % (metric, lab)], "%s %s" % (name, k))
        eq(st["inflight"], m["ringcast_trigger_inflight" + lab], "%s inflight" % name)
    slow = items_by_key(o["triggers"])[("default", "slow")]["status"]
    eq(slow["stats"]["delivered"], n_ok, "slow delivered")
    lat = slow["deliveryLatency"]
    buckets = latency_buckets(m, "default", "slow", "default")
    eq(lat["count"], buckets[-1][1], "latency count = the histogram's")
    eq(lat["count"], n_ok, "one latency per delivery")
    for q, key in ((0.5, "p50Seconds"), (0.99, "p99Seconds")):
        want = quantile(buckets, q)
        check(abs(lat[key] - want) < 1e-9, "%s %r = histogram_quantile %r" % (key, lat[key], want))
    # every latency is at least DELAY (30 ms: the bucket (25 ms, 50 ms] or above); the upper
    # bound leaves room for a loaded machine
    check(0.025 < lat["p50Seconds"] <= 0.25, "p50 of a %g s subscriber: %r" % (DELAY, lat))
    check(lat["p50Seconds"] <= lat["p99Seconds"], "p50 <= p99")
    failing = items_by_key(o["triggers"])[("default", "failing")]["status"]
    check("deliveryLatency" not in failing, "no latency without a success: %r" % failing)
    eq(failing["stats"]["failed"], n_bad, "failing failed")
    eq(failing["stats"]["retried"], 2 * n_bad, "two retries each")
    eq(failing["lastError"]["status"], 500, "last error")
    ready = [c for c in items_by_key(o["triggers"])[("default", "failing")]["status"]
             ["conditions"] if c["type"] == "Ready"][0]
    eq((ready["status"], ready["reason"]), ("False", "DeliveryFailed"), "failing is not Ready")
    # the status API's trigger has the same latency object
    one = get(b, KN + "/namespaces/default/triggers/slow").json()["status"]
    eq(one["deliveryLatency"], lat, "the trigger's own status")


def test_overview_readers():
    b = B
    prefix = ["--ring-prefix", b.prefix]
    group = subprocess.Popen([RINGCAST, "tail", "default/default", "--group", "dash-g",
                              "--timeout", "20s"] + prefix, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    local = subprocess.Popen([RINGCAST, "tail", "default/default", "--from", "latest",
                              "--timeout", "20s"] + prefix, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        def ring():
            o = get(b, OVERVIEW).json()
            return items_by_key(o["brokers"])[("default", "default")]["status"]["ring"]

        def attached():
            r = ring()
            return (any(g["name"] == "dash-g" for g in r["groups"]) and
                    any(x["pid"] == local.pid for x in r["localReaders"]))
        wait(attached, "the group and the local reader in the overview")
        r = ring()
        g = [g for g in r["groups"] if g["name"] == "dash-g"][0]
        eq(g["members"], 1, "one member")
        for k in ("lagBytes", "skipped"):
            check(isinstance(g[k], (int, float)), "group %s" % k)
        rd = [x for x in r["localReaders"] if x["pid"] == local.pid][0]
        eq(rd["mode"], "lossy", "a plain tail reads lossy")
        for k in ("lagBytes", "lagEvents", "slot", "name"):
            check(k in rd, "local reader %s" % k)
    finally:
        for p in (group, local):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def main():
    global B
    ok = Subscriber(lambda _i, _r: (200, {}, b"", DELAY))
    bad = Subscriber(lambda _i, _r: (500, {}, b"nope", 0.0))
    try:
        with Broker(CONFIG % {"ok": ok.url, "bad": bad.url}) as B:
            Runner().run([test_page_and_assets, test_no_external_references,
                          test_etag_and_methods, test_unknown_ui_path_is_404,
                          test_overview_shape, test_overview_matches_metrics,
                          test_overview_readers])
    finally:
        ok.close()
        bad.close()


if __name__ == "__main__":
    main()
