#!/usr/bin/env python3
"""The status API and `ringcast get` / `ringcast describe` (issue 14, item 1): the real
`ringcast serve` on free loopback ports with brokers in two namespaces, triggers whose
subscribers accept, fail (500) or cannot be reached, one whose filter matches nothing, and a
Dapr subscription; the objects' shapes over HTTP, their Ready conditions and counters, the 404
Status body, the CLI's tables, -o json|yaml (parsed back), -n/-A, describe, bad arguments and an
admin address nobody listens on. Every wait is bounded."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import RINGCAST, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402

try:
    import yaml
except ImportError:  # the YAML output is then checked for shape only
    yaml = None

KN = "/apis/eventing.knative.dev/v1"
DAPR = "/apis/dapr.io/v2alpha1"

HEAD = """apiVersion: ringcast.dev/v1alpha1
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
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namespace: default}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: default}
"""


def trigger(name, uri, etype, ns="default", broker="default", extra=""):
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
            "metadata: {name: %s, namespace: %s}\nspec:\n  broker: %s\n"
            "  filter: {attributes: {type: %s}}\n  subscriber: {uri: \"%s\"}\n"
            "  delivery: {retry: 1, backoffDelay: PT0.01S}\n%s" % (name, ns, broker, etype, uri,
                                                                   extra))


def dapr_docs(app_url):
    return ("---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\n"
            "metadata: {name: orders-app, namespace: default}\nspec:\n  endpoints: [\"%s\"]\n"
            "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\n"
            "metadata: {name: orders-sub, namespace: default}\nspec:\n  pubsubname: pubsub\n"
            "  topic: orders\n  routes:\n    rules:\n    - {match: 'event.type == \"big\"', "
            "path: /big}\n    default: /orders\n  deadLetterTopic: poison\n"
            "scopes: [orders-app]\n" % app_url)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fail_500(_i, _req):
    return 500, {}, b"nope", 0.0


class World:
    """One broker with every kind of trigger, shared by the tests (started once)."""

    def __init__(self):
        self.ok = Subscriber()
        self.bad = Subscriber(fail_500)
        self.app = Subscriber()
        self.dead = closed_port()
        cfg = (HEAD + trigger("good", self.ok.url + "/in", "t.ok") +
               trigger("failing", self.bad.url, "t.bad") +
               trigger("unreachable", "http://127.0.0.1:%d/" % self.dead, "t.dead") +
               trigger("idle", self.ok.url, "t.never") +
               trigger("other", self.ok.url, "t.ok", ns="team", broker="b2") +
               dapr_docs(self.app.url))
        self.cfg = cfg
        self.b = Broker(cfg)
        self.admin = "127.0.0.1:%d" % self.b.admin_port
        for i, t in enumerate(["t.ok", "t.ok", "t.bad", "t.bad", "t.dead"]):
            self.publish("/default/default", i, t)
        self.publish("/team/b2", 10, "t.ok")
        self.wait(lambda: self.trig("failing")["status"]["stats"]["failed"] >= 2 and
                  self.trig("good")["status"]["stats"]["delivered"] >= 2 and
                  self.trig("unreachable")["status"]["stats"]["failed"] >= 1 and
                  self.get(KN + "/namespaces/team/triggers/other").json()["status"]["stats"]
                  ["delivered"] >= 1, "deliveries done")

    def publish(self, path, eid, etype):
        r = self.b.request("POST", path, {"ce-id": str(eid), "ce-source": "/t", "ce-type": etype,
                                          "ce-specversion": "1.0"}, b"x")
        eq(r.status, 202, "publish")

    def get(self, path):
        return self.b.request("GET", path, admin=True)

    def trig(self, name, ns="default"):
        r = self.get(KN + "/namespaces/%s/triggers/%s" % (ns, name))
        eq(r.status, 200, "GET trigger %s (%r)" % (name, r.body))
        return r.json()

    def cli(self, *args, env=None):
        e = dict(os.environ)
        e.pop("RINGCAST_ADMIN", None)
        e.update(env or {})
        p = subprocess.run([RINGCAST] + list(args), capture_output=True, text=True, timeout=20,
                           env=e)
        return p.returncode, p.stdout, p.stderr

    def wait(self, cond, what, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if cond():
                    return
            except (KeyError, AssertionError):
                pass
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def close(self):
        self.b.__exit__(None, None, None)
        for s in (self.ok, self.bad, self.app):
            s.close()


W = None


def ready(o):
    conds = [c for c in o["status"]["conditions"] if c["type"] == "Ready"]
    eq(len(conds), 1, "one Ready condition")
    for k in ("status", "reason", "message"):
        check(isinstance(conds[0][k], str), "condition %s is a string" % k)
    return conds[0]


def test_brokers_over_http():
    r = W.get(KN + "/brokers")
    eq(r.status, 200, "list status")
    eq(r.header("Content-Type"), "application/json", "content type")
    lst = r.json()
    eq((lst["apiVersion"], lst["kind"]), ("eventing.knative.dev/v1", "BrokerList"), "list kind")
    eq(sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in lst["items"]),
       [("default", "default"), ("team", "b2")], "all brokers")
    only = W.get(KN + "/namespaces/team/brokers").json()["items"]
    eq([o["metadata"]["name"] for o in only], ["b2"], "-n team")
    o = W.get(KN + "/namespaces/default/brokers/default").json()
    eq((o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]),
       ("Broker", "default", "default"), "item")
    c = ready(o)
    eq((c["status"], c["reason"]), ("True", "Ready"), "broker ready")
    eq(o["status"]["address"]["url"], "http://127.0.0.1:%d/default/default" % W.b.port, "URL")
    ring = o["status"]["ring"]
    check(ring["capacityBytes"] > 0 and 0 <= ring["fill"] <= 1, "ring %r" % ring)
    eq(ring["events"], 5, "events in default/default")
    check(ring["readers"] >= 1, "the worker's feed reads it")
    check(o["metadata"]["creationTimestamp"].endswith("Z"), "creationTimestamp")


def test_triggers_over_http():
    lst = W.get(KN + "/namespaces/default/triggers").json()
    eq(lst["kind"], "TriggerList", "kind")
    eq(sorted(o["metadata"]["name"] for o in lst["items"]),
       ["failing", "good", "idle", "unreachable"], "default's triggers (no Dapr ones)")
    eq(len(W.get(KN + "/triggers").json()["items"]), 5, "all namespaces")
    good = W.trig("good")
    eq(good["spec"], {"broker": "default", "subscriber": {"uri": W.ok.url + "/in"}}, "spec")
    c = ready(good)
    eq((c["status"], c["reason"]), ("True", "Delivering"), "good is ready")
    st = good["status"]
    eq((st["stats"]["delivered"], st["stats"]["failed"]), (2, 0), "good's counters")
    eq(st["lastAttempt"]["status"], 200, "last attempt")
    check("lastError" not in st, "no error yet")
    eq(st["filter"], 'attributes(type="t.ok")', "filter")
    eq(st["deliveryPolicy"]["retry"], 1, "policy retry")
    eq(st["deliveryPolicy"]["backoffDelay"], "PT0.01S", "policy backoff")
    check(st["workerPid"] > 0, "worker pid")
    idle = W.trig("idle")
    eq((ready(idle)["status"], ready(idle)["reason"]), ("Unknown", "NoAttempt"), "idle")


def test_failing_trigger():
    f = W.trig("failing")
    c = ready(f)
    eq((c["status"], c["reason"]), ("False", "DeliveryFailed"), "failing is not ready")
    check("HTTP 500" in c["message"], "message names the status: %r" % c["message"])
    st = f["status"]
    eq(st["lastError"]["status"], 500, "last error status")
    eq(st["lastError"]["message"], "HTTP 500", "last error message")
    check(st["lastError"]["time"].endswith("Z"), "last error time")
    # 2 events, retry 1: 2 attempts each; both failed for good, no sink: dropped.
    eq((st["stats"]["failed"], st["stats"]["retried"], st["stats"]["dropped"],
        st["stats"]["delivered"]), (2, 2, 2, 0), "failing's counters")
    eq(W.bad.count(), 4, "attempts the subscriber saw")
    u = W.trig("unreachable")
    c = ready(u)
    eq((c["status"], c["reason"]), ("False", "SubscriberUnreachable"), "unreachable")
    check(u["status"]["lastError"]["code"] < 0, "a transport error has a code")
    check("refused" in u["status"]["lastError"]["message"].lower(), "the error's text")
    # The same counters as /metrics (one source).
    m = W.b.metrics()
    key = [k for k in m
           if k.startswith("ringcast_trigger_failed_total{") and 'trigger="failing"' in k]
    eq(len(key), 1, "failing in /metrics")
    eq(m[key[0]], 2.0, "/metrics agrees")


def test_dapr_subscriptions():
    lst = W.get(DAPR + "/namespaces/default/subscriptions").json()
    eq((lst["apiVersion"], lst["kind"]), ("dapr.io/v2alpha1", "SubscriptionList"), "kind")
    eq(len(lst["items"]), 1, "one subscription (one app)")
    s = lst["items"][0]
    eq(s["kind"], "Subscription", "item kind")
    eq(s["spec"]["pubsubname"], "pubsub", "pubsubname")
    eq(s["spec"]["topic"], "orders", "topic")
    eq(s["spec"]["routes"], {"rules": [{"match": 'event.type == "big"', "path": "/big"}],
                             "default": "/orders"}, "routes")
    eq(s["spec"]["deadLetterTopic"], "poison", "dead-letter topic")
    eq(s["scopes"], ["orders-app"], "scopes")
    eq(s["metadata"]["labels"]["dapr.io/app-id"], "orders-app", "app label")
    eq(s["metadata"]["labels"]["ringcast.dev/subscription"], "orders-sub", "subscription label")
    eq(ready(s)["status"], "Unknown", "nothing published on the topic yet")
    one = W.get(DAPR + "/namespaces/default/subscriptions/" + s["metadata"]["name"])
    eq(one.status, 200, "item")
    eq(one.json()["metadata"], s["metadata"], "the same object")
    eq(W.get(DAPR + "/namespaces/team/subscriptions").json()["items"], [], "none in team")
    # One event on the topic: delivered to the app, and the subscription is Ready.
    r = W.b.request("POST", "/default/default", {"ce-id": "d1", "ce-source": "/t",
                                                 "ce-type": "order", "ce-specversion": "1.0",
                                                 "ce-topic": "orders"}, b"x")
    eq(r.status, 202, "publish on the topic")
    path = DAPR + "/namespaces/default/subscriptions/" + s["metadata"]["name"]
    W.wait(lambda: W.get(path).json()["status"]["stats"]["delivered"] == 1, "the Dapr delivery")
    c = ready(W.get(path).json())
    eq((c["status"], c["reason"]), ("True", "Delivering"), "the subscription is ready")
    eq(W.app.requests[0].path, "/orders", "the default route")


def test_not_found_and_bad_paths():
    for path, what in ((KN + "/namespaces/default/triggers/nope", "triggers"),
                       (KN + "/namespaces/default/brokers/nope", "brokers"),
                       (DAPR + "/namespaces/default/subscriptions/nope", "subscriptions"),
                       (KN + "/namespaces/team/triggers/good", "triggers")):
        r = W.get(path)
        eq(r.status, 404, path)
        b = r.json()
        eq((b["apiVersion"], b["kind"], b["status"], b["reason"], b["code"]),
           ("v1", "Status", "Failure", "NotFound", 404), "Status body")
        eq(b["details"]["kind"], what, "details.kind")
        check('"%s" not found' % path.rsplit("/", 1)[1] in b["message"], b["message"])
    for path in (KN + "/foos", KN + "/namespaces/default/triggers/good/extra",
                 "/apis/dapr.io/v2alpha1/triggers", KN + "/namespaces//triggers"):
        eq(W.get(path).status, 404, path)
    r = W.b.request("POST", KN + "/triggers", body=b"{}", admin=True)
    eq(r.status, 405, "POST")


def test_get_tables():
    rc, out, err = W.cli("get", "triggers", "--admin", W.admin)
    eq(rc, 0, "exit (%s)" % err)
    lines = out.splitlines()
    eq(lines[0].split(), ["NAME", "READY", "SUBSCRIBER", "DELIVERED", "FAILED", "LAG",
                          "INFLIGHT", "AGE"], "header")
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    eq(sorted(rows), ["failing", "good", "idle", "unreachable"], "rows")
    eq(rows["good"][1:5], ["True", W.ok.url + "/in", "2", "0"], "good's row")
    eq(rows["failing"][1:5], ["False", W.bad.url, "0", "2"], "failing's row")
    eq(rows["idle"][1], "Unknown", "idle's row")
    check(rows["good"][7].endswith("s"), "age in seconds")
    rc, out, _ = W.cli("get", "trigger", "failing", "-o", "wide", "--admin", W.admin)
    eq(rc, 0, "wide")
    head = out.splitlines()[0].split()
    row = out.splitlines()[1].split()
    eq(head[8:], ["BROKER", "RETRIED", "DEAD-LETTERED", "DROPPED", "LAG-BYTES", "REASON",
                  "LAST-ERROR"], "wide header")
    eq(row[8:13], ["default", "2", "0", "2", "0"], "wide counters")
    eq(row[13:], ["DeliveryFailed", "HTTP", "500"], "reason and last error")
    rc, out, _ = W.cli("get", "-A", "triggers", "--admin", W.admin)
    eq(rc, 0, "-A before the resource")
    eq(out.splitlines()[0].split()[0], "NAMESPACE", "-A adds NAMESPACE")
    eq(sorted(ln.split()[0] for ln in out.splitlines()[1:]), ["default"] * 4 + ["team"], "ns col")
    rc, out, _ = W.cli("get", "triggers", "-n", "team", env={"RINGCAST_ADMIN": W.admin})
    eq(rc, 0, "RINGCAST_ADMIN")
    eq([ln.split()[0] for ln in out.splitlines()[1:]], ["other"], "-n team")
    rc, out, _ = W.cli("get", "brokers", "--admin", W.admin)
    eq(out.splitlines()[0].split(), ["NAME", "READY", "URL", "FILL", "READERS", "AGE"], "brokers")
    eq(out.splitlines()[1].split()[:3],
       ["default", "True", "http://127.0.0.1:%d/default/default" % W.b.port], "broker row")
    rc, out, _ = W.cli("get", "subscriptions", "--admin", W.admin)
    eq(rc, 0, "subscriptions")
    eq(out.splitlines()[0].split()[:5], ["NAME", "READY", "PUBSUB", "TOPIC", "APP"], "sub header")
    eq(out.splitlines()[1].split()[1:6], ["True", "pubsub", "orders", "orders-app", "1"],
       "sub row")
    rc, out, err = W.cli("get", "subscriptions", "-n", "team", "--admin", W.admin)
    eq((rc, out), (0, ""), "nothing to list")
    check("No subscriptions found in namespace team" in err, err)


def test_get_json_yaml():
    for res, path in (("triggers", KN + "/namespaces/default/triggers"),
                      ("brokers", KN + "/brokers"),
                      ("subscriptions", DAPR + "/namespaces/default/subscriptions")):
        args = ["get", res, "--admin", W.admin]
        if res == "brokers":
            args.append("-A")
        rc, out, err = W.cli(*(args + ["-o", "json"]))
        eq(rc, 0, "json (%s)" % err)
        j = json.loads(out)
        api = W.get(path).json()
        eq(j["kind"], api["kind"], "json kind")
        eq([o["metadata"] for o in j["items"]], [o["metadata"] for o in api["items"]], "json")
        rc, out, err = W.cli(*(args + ["-o", "yaml"]))
        eq(rc, 0, "yaml (%s)" % err)
        if yaml is not None:
            y = yaml.safe_load(out)
            eq(y["kind"], api["kind"], "yaml kind")
            eq([o["metadata"] for o in y["items"]], [o["metadata"] for o in api["items"]],
               "yaml items")
            eq([o.get("spec") for o in y["items"]], [o.get("spec") for o in j["items"]], "yaml spec")
        else:
            check(out.startswith("apiVersion: "), "yaml text")
    rc, out, _ = W.cli("get", "trigger", "failing", "-o", "yaml", "--admin", W.admin)
    if yaml is not None:
        y = yaml.safe_load(out)
        eq(y["status"]["lastError"]["status"], 500, "one object as yaml")
        eq(y["status"]["conditions"][0]["status"], "False", "condition as yaml")


def test_describe():
    rc, out, err = W.cli("describe", "trigger", "failing", "--admin", W.admin)
    eq(rc, 0, "describe (%s)" % err)
    fields = {}
    for ln in out.splitlines():
        k, _, v = ln.partition(":")
        fields.setdefault(k.strip(), v.strip())
    eq(fields["Name"], "failing", "name")
    eq(fields["Filter"], 'attributes(type="t.bad")', "filter")
    eq(fields["Ready"], "False", "ready")
    eq(fields["Reason"], "DeliveryFailed", "reason")
    eq(fields["Retry"], "1", "policy")
    eq(fields["Backoff"], "exponential, delay PT0.01S, max PT60S", "backoff")
    eq(fields["Dead-letter sink"], "<none>", "no sink")
    eq((fields["Failed"], fields["Retried"], fields["Dropped"]), ("2", "2", "2"), "counters")
    check(fields["Last error"].startswith("HTTP 500 ("), "last error: %r" % fields["Last error"])
    rc, out, _ = W.cli("describe", "subscription", W.get(DAPR + "/subscriptions").json()
                       ["items"][0]["metadata"]["name"], "--admin", W.admin)
    eq(rc, 0, "describe subscription")
    check("Topic:              orders" in out and "Dead-letter topic:  poison" in out, out)
    rc, out, _ = W.cli("describe", "broker", "b2", "-n", "team", "--admin", W.admin)
    eq(rc, 0, "describe broker")
    check("URL:                http://127.0.0.1:%d/team/b2" % W.b.port in out, out)
    rc, out, err = W.cli("describe", "trigger", "nope", "--admin", W.admin)
    eq((rc, out), (1, ""), "not found")
    check('triggers.eventing.knative.dev "nope" not found in namespace default' in err, err)


def test_bad_arguments():
    a = ["--admin", W.admin]
    for args, needle in ((["get"], "missing RESOURCE"),
                         (["get", "pods"], "unknown resource 'pods' (known: brokers, triggers, "
                                           "subscriptions"),
                         (["get", "triggers", "-n", "x", "-A"], "exclude each other"),
                         (["get", "triggers", "good", "-A"], "drop -A"),
                         (["get", "triggers", "-o", "xml"], "xml"),
                         (["get", "triggers", "a", "b"], "more than one NAME"),
                         (["get", "triggers", "-n", "a/b"], "not a namespace name"),
                         (["get", "triggers", "--bogus"], "unknown option '--bogus'"),
                         (["describe", "trigger"], "missing NAME"),
                         (["describe", "trigger", "x", "-A"], "unknown option '-A'")):
        rc, out, err = W.cli(*(args + a))
        eq(rc, 2, "exit of %r (%s)" % (args, err))
        check(needle in err, "%r: %r not in %r" % (args, needle, err))
    rc, out, _ = W.cli("get", "--help")
    eq(rc, 0, "--help")
    check("usage: ringcast get RESOURCE" in out and "--all-namespaces" in out, out)
    rc, out, _ = W.cli("describe", "--help")
    eq(rc, 0, "describe --help")
    rc, out, _ = W.cli("--help")
    check("  get " in out and "  describe " in out, "listed in ringcast --help")


def test_admin_unreachable():
    port = closed_port()
    rc, out, err = W.cli("get", "triggers", "--admin", "127.0.0.1:%d" % port)
    eq((rc, out), (1, ""), "unreachable exit (%s)" % err)
    check("127.0.0.1:%d" % port in err and "--admin HOST:PORT" in err and
          "RINGCAST_ADMIN" in err, err)
    rc, _, err = W.cli("get", "triggers", env={"RINGCAST_ADMIN": "127.0.0.1:%d" % port})
    eq(rc, 1, "env address")
    check("127.0.0.1:%d" % port in err, err)
    rc, _, err = W.cli("get", "triggers", "--admin", "nonsense")
    eq(rc, 1, "bad address")
    check("HOST:PORT, not 'nonsense'" in err, err)


def test_age_after_reload():
    """A trigger added by a reload is younger than the ones kept (their age goes on)."""
    before = W.trig("good")["metadata"]["creationTimestamp"]
    time.sleep(1.1)
    path = os.path.join(W.b.tmp.name, "ringcast.yaml")
    with open(path, "w") as f:
        f.write(W.cfg + trigger("late", W.ok.url, "t.late"))
    W.b.signal(signal.SIGHUP)
    W.wait(lambda: W.get(KN + "/namespaces/default/triggers/late").status == 200, "the reload")
    W.wait(lambda: ready(W.trig("good"))["status"] != "False", "workers back")
    eq(W.trig("good")["metadata"]["creationTimestamp"], before, "kept trigger keeps its age")
    check(W.trig("late")["metadata"]["creationTimestamp"] > before, "added one is younger")
    eq(W.trig("good")["status"]["stats"]["delivered"], 2, "counters kept")


def test_get_rings_groups():
    """`get rings|groups` from the brokers' status.ring: a consumer group with one member and a
    plain local reader (two `ringcast tail`, stopped by pid)."""
    base = [RINGCAST, "tail", "default/default", "--ring-prefix", W.b.prefix, "--from", "latest",
            "--timeout", "20s"]
    procs = [subprocess.Popen(base + ["--group", "g1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL),
             subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        W.wait(lambda: [g["members"] for g in W.get(KN + "/namespaces/default/brokers/default")
                        .json()["status"]["ring"]["groups"]] == [1], "the group member")
        W.wait(lambda: len(W.get(KN + "/namespaces/default/brokers/default")
                           .json()["status"]["ring"]["localReaders"]) == 1, "the local reader")
        ring = W.get(KN + "/namespaces/default/brokers/default").json()["status"]["ring"]
        eq(ring["storage"], {"type": "memory", "durability": "none"}, "storage")
        lr = ring["localReaders"][0]
        eq((lr["name"], lr["pid"], lr["mode"]), ("ringcast-tail", procs[1].pid, "lossy"),
           "local reader")
        rc, out, err = W.cli("get", "rings", "-A", "--admin", W.admin)
        eq(rc, 0, "get rings (%s)" % err)
        lines = [ln.split() for ln in out.splitlines()]
        eq(lines[0], ["NAMESPACE", "NAME", "STORAGE", "SIZE", "FILL", "EVENTS", "READERS",
                      "HELD-BACK-BY"], "rings header")
        rows = {(r[0], r[1]): r for r in lines[1:]}
        eq(sorted(rows), [("default", "default"), ("team", "b2")], "one row per broker")
        eq(rows[("default", "default")][2], "memory", "storage column")
        check(int(rows[("default", "default")][5]) >= 5, "events column: %r" % lines)
        rc, out, _ = W.cli("get", "ring", "default", "-o", "wide", "--admin", W.admin)
        eq(rc, 0, "get ring NAME -o wide")
        head, row = out.splitlines()[0].split(), out.splitlines()[1].split()
        eq(head[7:], ["DURABILITY", "REFUSED", "GROUPS", "LOCAL-READERS"], "wide columns")
        eq(row[7:], ["none", "0", "1", "ringcast-tail(0)"], "wide row")
        rc, out, err = W.cli("get", "groups", "--admin", W.admin)
        eq(rc, 0, "get groups (%s)" % err)
        lines = [ln.split() for ln in out.splitlines()]
        eq(lines[0], ["NAME", "BROKER", "MEMBERS", "LAG-BYTES", "LAG-LIMIT", "SKIPPED"],
           "groups header")
        eq(lines[1][:3] + lines[1][5:], ["g1", "default", "1", "0"], "group row")
        rc, out, _ = W.cli("get", "group", "g1", "-o", "json", "--admin", W.admin)
        eq(rc, 0, "get group NAME -o json")
        j = json.loads(out)
        eq((j["metadata"], j["broker"], j["members"]),
           ({"namespace": "default", "name": "g1"}, "default", 1), "group object")
        rc, out, _ = W.cli("get", "groups", "-o", "json", "--admin", W.admin)
        eq(json.loads(out)["kind"], "GroupList", "list kind")
        rc, _, err = W.cli("get", "group", "nope", "--admin", W.admin)
        eq(rc, 1, "unknown group")
        check("group nope not found in namespace default" in err, err)
        rc, out, err = W.cli("get", "groups", "-n", "team", "--admin", W.admin)
        eq((rc, out), (0, ""), "no groups in team")
        check("No groups found in namespace team" in err, err)
        rc, _, err = W.cli("describe", "ring", "default", "--admin", W.admin)
        eq(rc, 2, "describe ring")
        check("get rings -o yaml" in err, err)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


def main():
    global W
    W = World()
    try:
        Runner().run([test_brokers_over_http, test_triggers_over_http, test_failing_trigger,
                      test_dapr_subscriptions, test_not_found_and_bad_paths, test_get_tables,
                      test_get_json_yaml, test_describe, test_bad_arguments,
                      test_admin_unreachable, test_get_rings_groups, test_age_after_reload])
    finally:
        W.close()


if __name__ == "__main__":
    main()
