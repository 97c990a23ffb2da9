"""Apps written with the official Dapr JS SDK (@dapr/dapr, pinned in tests/dapr/package.json and
installed by scripts/setup.sh) against the real `ringcast serve`, unchanged except for the sidecar
port (DAPR_HTTP_PORT = the RingcastConfig's spec.dapr.listen). Issue 12, "Tests"; the wire
contract is ../shared/CONTRACTS.md, "Dapr". Each test writes a config (a Broker, a pubsub
Component, DaprApps whose endpoints are the node apps' ports, Subscriptions and Knative Triggers
where it needs them), starts ringcast, then the node programs of tests/dapr/, and stops every
process it started by its process group.

What the SDK (3.18.0, communicationProtocol HTTP, its default) needs from ringcast, read from its
sources:
- DaprClient finds the sidecar at daprHost/daprPort, else 127.0.0.1 and DAPR_HTTP_PORT (3500),
  else DAPR_HTTP_ENDPOINT. Before its first call it polls GET /v1.0/metadata (not /healthz)
  every 500 ms, and wants a 2xx with a non-empty body; after 60 polls it throws
  DAPR_SIDECAR_COULD_NOT_BE_STARTED. health.isHealthy() is the same GET. gRPC (50001) is not
  served by ringcast.
- publish(): POST /v1.0/publish/{pubsub}/{topic}?metadata.k=v (the `?` is there even with no
  metadata; an empty pubsub or topic leaves an empty path segment), Content-Type from the data:
  application/json for objects and arrays, application/cloudevents+json for an object with id,
  source, type and specversion, text/plain for strings, numbers and booleans,
  application/octet-stream for buffers. Any 2xx or 3xx is success (ringcast: 204, empty). A
  failure does not throw: publish() returns {error}, an Error whose message is
  JSON {"error": statusText, "error_msg": body, "status"}.
- publishBulk(): POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}, a JSON array of
  {"entryID", "event", "contentType", "metadata"}: the key is `entryID` (Dapr's Go decoder
  matches `entryId` case-insensitively, so ringcast must too), always filled (a random UUID when
  the caller gives none).
- DaprServer listens on serverPort (all interfaces, express), registers a POST route per
  subscription at /{pubsub}--{topic}--{route} (route "default" unless given), answers
  GET /dapr/subscribe with [{"pubsubname", "topic", "route"}] or, with rules,
  {"routes": {"rules": [{"match", "path"}], "default"}}, plus "deadLetterTopic", "metadata",
  "bulkSubscribe" when set, and [] with no subscription; then start() polls the sidecar as above.
- A delivery must be application/cloudevents+json (express parses only JSON types to an object);
  the handler gets event.data (or data_base64 decoded) and answers 200 {"status": SUCCESS |
  RETRY | DROP}; a handler that throws still answers SUCCESS. Express answers 404 to a path
  no subscription made.
- subscribeBulk() answers 200 {"statuses": [{"entryId", "status"}]} to a bulk body, reading
  entries[].event.data when contentType is application/cloudevents+json; a single event on
  that route is answered 200 {"statuses": []} and never reaches the handler.
- DaprClient.metadata.get() returns GET /v1.0/metadata as it is; Dapr lists there the
  subscriptions the app declared (programmatic) beside the declarative ones.

Before a test publishes, the driver publishes warm-up events ({"warmup": true}) on each topic
until each app has one, and counts only the rest; test_metadata_lists_subscriptions checks that
GET /v1.0/metadata shows what the apps subscribed to, as Dapr's sidecar does."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Conn, Runner, check, eq  # noqa: E402
from rc_sink import Sink  # noqa: E402

SRC = os.environ.get("RC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "../..")
DAPR_DIR = os.path.join(SRC, "tests", "dapr")
NODE = shutil.which("node")

# Retries of Dapr subscriptions follow the broker's delivery (CONTRACTS.md): short, so that
# exhausting them takes well under a second.
BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
spec:
  delivery: {retry: 3, backoffPolicy: linear, backoffDelay: PT0.05S, timeout: PT5S}
"""

COMPONENT = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namespace: default}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: default}
"""

# A declarative subscription of app `checkout` whose path the app does not serve (express: 404).
LOST_SUBSCRIPTION = """
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: lost, namespace: default}
spec:
  pubsubname: pubsub
  topic: lost
  routes: {default: /nowhere}
  deadLetterTopic: orders-dead
scopes: [checkout]
"""


def need_node():
    """The SDK tests fail (not skip) without their tools: scripts/setup.sh installs them."""
    if NODE is None:
        raise AssertionError("node not found: scripts/setup.sh installs nodejs and npm")
    if not os.path.isfile(os.path.join(DAPR_DIR, "node_modules", "@dapr", "dapr", "package.json")):
        raise AssertionError("tests/dapr/node_modules has no @dapr/dapr: run scripts/setup.sh "
                             "(npm ci in tests/dapr)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout, interval=0.05):
    """Calls fn until it returns something true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class NodeProc:
    """One node program of tests/dapr/ in a process group of its own, output to a file."""

    def __init__(self, tmp, name, script, spec, env):
        self.name = name
        self.log_path = os.path.join(tmp, name + ".log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen([NODE, os.path.join(DAPR_DIR, script), json.dumps(spec)],
                                     cwd=DAPR_DIR, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def output(self):
        self.log_file.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_line(self, text, timeout):
        ok = wait_for(lambda: text in self.output().splitlines() or self.proc.poll() is not None,
                      timeout)
        if not ok or text not in self.output().splitlines():
            raise AssertionError("%s did not print %s within %.0fs (exit %s): %s"
                                 % (self.name, text, timeout, self.proc.poll(),
                                    self.output()[-3000:]))

    def finish(self, timeout):
        """Waits for the program to end; its output. Fails on a non-zero exit or a timeout."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("%s still running after %.0fs: %s"
                                 % (self.name, timeout, self.output()[-3000:]))
        if rc != 0:
            raise AssertionError("%s exited %d: %s" % (self.name, rc, self.output()[-4000:]))
        return self.output()

    def stop(self):
        # The group exists while its leader (our child, pgid = its pid) is not reaped.
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log_file.close()


class App:
    """A Dapr app id: one DaprApp with one endpoint per replica, each replica a node app.js."""

    def __init__(self, scene, app_id, subs=(), routes=None, replicas=1, warm=None):
        self.scene, self.id, self.subs, self.routes = scene, app_id, list(subs), routes
        self.ports = [free_port() for _ in range(replicas)]
        self.outs = [os.path.join(scene.tmp, "%s-%d.jsonl" % (app_id, i))
                     for i in range(replicas)]
        # Topics whose delivery the warm-up confirms: the app's own subscriptions by default.
        self.warm = list(warm) if warm is not None else [s["topic"] for s in self.subs]
        self.procs = []

    def yaml(self):
        eps = ", ".join('"http://127.0.0.1:%d"' % p for p in self.ports)
        return ("apiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\n"
                "metadata: {name: %s, namespace: default}\nspec:\n  endpoints: [%s]\n"
                % (self.id, eps))

    def start(self):
        for i, port in enumerate(self.ports):
            spec = {"port": port, "appId": self.id, "replica": i, "out": self.outs[i],
                    "subs": self.subs}
            if self.routes:
                spec["routes"] = self.routes
            self.procs.append(self.scene.node("%s-%d" % (self.id, i), "app.js", spec))

    def records(self, warmups=False):
        out = []
        for path in self.outs:
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            out += [json.loads(l) for l in text.split("\n")[:-1] if l]
        return [r for r in out if warmups or not is_warmup(r)]


def data_of(r):
    """The event data of an app record: the SDK handler's, or the whole event's `data`."""
    if "event" in r:
        ev = r["event"]
        return ev.get("data") if isinstance(ev, dict) else None
    return r.get("data")


def is_warmup(r):
    d = data_of(r)
    return isinstance(d, dict) and d.get("warmup") is True


def ids(records):
    return [data_of(r).get("id") if isinstance(data_of(r), dict) else data_of(r)
            for r in records]


class Scene:
    """One ringcast with a config written here, its Dapr apps, Knative sinks and node programs.
    Every process is stopped on exit; a failing test prints what each of them said."""

    def __init__(self):
        need_node()
        self.tmpdir = tempfile.TemporaryDirectory(prefix="rc-dapr-")
        self.tmp = self.tmpdir.name
        self.dapr_port = free_port()
        self.apps, self.docs, self.sinks, self.procs = [], [], [], []
        self.broker = None
        self.component = True
        self.env = dict(os.environ, DAPR_HTTP_PORT=str(self.dapr_port))
        self.env.pop("DAPR_HTTP_ENDPOINT", None)
        self.env.pop("DAPR_API_TOKEN", None)
        self.warm_seq = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            print(self.diagnostics(), flush=True)
        for p in self.procs:
            p.stop()
        problem = None
        if self.broker is not None:
            # A broker that served the SDK must still stop cleanly (sanitizer builds report
            # leaks and UB on stderr at exit).
            rc = self.broker.stop()
            log = self.broker.log()
            if rc != 0 or "Sanitizer" in log or "runtime error:" in log:
                problem = "ringcast's stop: exit %s, stderr tail:\n%s" % (rc, log[-3000:])
            self.broker.__exit__(None, None, None)
        # After the broker: a sink holding its keep-alive connections would wait for them.
        for s in self.sinks:
            s.__exit__(None, None, None)
        self.tmpdir.cleanup()
        if problem and exc_type is None:
            raise AssertionError(problem)

    def diagnostics(self):
        parts = []
        if self.broker is not None:
            try:
                parts.append("metadata: %s" % self.metadata())
            except Exception as e:  # noqa: BLE001 - diagnostics only
                parts.append("metadata: %s" % e)
            parts.append("ringcast stderr (tail):\n" + self.broker.log()[-3000:])
        for p in self.procs:
            parts.append("%s output (tail):\n%s" % (p.name, p.output()[-1500:]))
        return "\n".join(parts)

    # -- building the scene ----------------------------------------------------------------

    def app(self, app_id, subs=(), routes=None, replicas=1, warm=None):
        a = App(self, app_id, subs, routes, replicas, warm)
        self.apps.append(a)
        return a

    def sink(self, name, topic=None):
        """A `ringcast sink` behind a Knative Trigger (filter.attributes.topic when given)."""
        s = Sink("--quiet")
        self.sinks.append(s)
        filt = "  filter: {attributes: {topic: %s}}\n" % topic if topic else ""
        self.docs.append("apiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                         "metadata: {name: %s, namespace: default}\nspec:\n  broker: default\n%s"
                         "  subscriber: {uri: \"%s\"}\n" % (name, filt, s.url))
        return s

    def config(self):
        docs = ["apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
                "  dapr: {listen: \"127.0.0.1:%d\"}\n" % self.dapr_port, BROKER]
        if self.component:
            docs.append(COMPONENT)
        docs += [a.yaml() for a in self.apps] + self.docs
        return "---\n".join(d.strip("\n") + "\n" for d in docs)

    def node(self, name, script, spec):
        p = NodeProc(self.tmp, name, script, spec, self.env)
        self.procs.append(p)
        return p

    def start(self):
        """Starts ringcast, then the apps (ringcast must keep asking them for their
        subscriptions until they answer), and waits until every app got a warm-up event on each
        of its topics."""
        self.broker = Broker(self.config())
        # The SDK would poll for 30 s before giving up; say at once when it has no chance.
        try:
            md = self.metadata()
        except (OSError, ValueError, AssertionError) as e:
            raise AssertionError("the SDK's first call, GET /v1.0/metadata on spec.dapr.listen "
                                 "(port %d), must answer 200 with a JSON body: %s"
                                 % (self.dapr_port, e))
        check(isinstance(md, dict) and md, "GET /v1.0/metadata answered %r" % md)
        for a in self.apps:
            a.start()
        for a in self.apps:
            for p in a.procs:
                p.wait_line("READY", 40)
        self.warm_up()

    def metadata(self):
        r = self.request("GET", "/v1.0/metadata")
        if r.status != 200:
            raise AssertionError("GET /v1.0/metadata: %d %r" % (r.status, r.body[:300]))
        return r.json()

    def warm_up(self, timeout=10.0):
        pending = {(a.id, t) for a in self.apps for t in a.warm}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for topic in sorted({t for _, t in pending}):
                self.warm_seq += 1
                self.publish_raw(topic, {"warmup": True, "id": "warm-%d" % self.warm_seq})
            wait_for(lambda: self._warm_done(pending), 0.3, 0.02)
        if pending:
            raise AssertionError("no warm-up event delivered within %.0fs to %s"
                                 % (timeout, sorted(pending)))

    def _warm_done(self, pending):
        for a in self.apps:
            seen = {r.get("topic") for r in a.records(warmups=True) if is_warmup(r)}
            if a.routes:
                seen |= {r["event"].get("topic") for r in a.records(warmups=True)
                         if is_warmup(r)}
            pending -= {(a.id, t) for t in seen}
        return not pending

    # -- talking to ringcast -----------------------------------------------------------------

    def request(self, method, path, headers=None, body=b""):
        c = Conn("127.0.0.1", self.dapr_port)
        try:
            c.send_request(method, path, headers, body)
            return c.response()
        finally:
            c.close()

    def publish_raw(self, topic, data):
        r = self.request("POST", "/v1.0/publish/pubsub/" + topic,
                         {"Content-Type": "application/json"}, json.dumps(data))
        if r.status != 204:
            raise AssertionError("POST /v1.0/publish/pubsub/%s: %d %r"
                                 % (topic, r.status, r.body[:300]))

    def run(self, script, spec, timeout=30.0, name=None):
        """Runs a node program to its end; its output (fails on a non-zero exit)."""
        p = self.node(name or script.replace(".js", ""), script, spec)
        return p.finish(timeout)

    def publish(self, topic, timeout=30.0, **spec):
        spec.setdefault("mode", "publish")
        spec.setdefault("pubsub", "pubsub")
        spec["topic"] = topic
        if spec["mode"].startswith("ce-"):
            spec.setdefault("ingress", "http://127.0.0.1:%d/default/default" % self.broker.port)
        return self.run("publish.js", spec, timeout, name="publish-%s" % spec["mode"])


def settle(seconds=0.5):
    """After everything expected arrived: time for a duplicate or a stray delivery to show."""
    time.sleep(seconds)


def sink_events(sink):
    return [e for e in sink.events() if not (isinstance(e.get("data"), dict)
                                             and e["data"].get("warmup") is True)]


def counts(values):
    out = {}
    for v in values:
        k = json.dumps(v, sort_keys=True)
        out[k] = out.get(k, 0) + 1
    return out


# ---- tests ------------------------------------------------------------------------------------

def test_sidecar_probes():
    """DaprClient.start() passes on its first GET /v1.0/metadata (options and DAPR_HTTP_PORT),
    metadata names our component, healthz answers 204; the ingress port serves them too."""
    with Scene() as sc:
        sc.start()
        out = sc.run("probe.js", {"port": sc.dapr_port, "pubsub": "pubsub"}, 20)
        check("probe ok" in out, out)
        ingress = Conn("127.0.0.1", sc.broker.port)
        try:
            for path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
                ingress.send_request("GET", path)
                eq(ingress.response().status, 204, "GET %s on the ingress port" % path)
            ingress.send_request("GET", "/v1.0/metadata")
            r = ingress.response()
            eq(r.status, 200, "GET /v1.0/metadata on the ingress port")
            check(any(c.get("name") == "pubsub" for c in r.json().get("components", [])),
                  r.body)
        finally:
            ingress.close()


def test_metadata_lists_subscriptions():
    """GET /v1.0/metadata (what DaprClient.metadata.get() returns) lists the subscriptions a
    DaprServer declared, with their routes and dead-letter topic, and the declarative ones."""
    with Scene() as sc:
        sc.app("checkout", [
            {"how": "options", "topic": "orders", "deadLetterTopic": "orders-dead"},
            {"how": "rules", "topic": "routed", "default": "normal",
             "rules": [{"match": 'event.type == "order.priority"', "path": "priority"}]}],
            warm=[])  # listing does not wait for delivery
        sc.docs.append(LOST_SUBSCRIPTION)
        sc.start()

        def listed():
            return {(s.get("pubsubname"), s.get("topic")): s
                    for s in sc.metadata().get("subscriptions") or []}
        want = {("pubsub", "orders"), ("pubsub", "routed"), ("pubsub", "lost")}
        got = wait_for(lambda: want <= set(listed()) and listed(), 10, 0.1)
        check(got, "GET /v1.0/metadata lists %s, want %s" % (sorted(listed()), sorted(want)))

        def paths(sub):
            return {r.get("path") for r in (sub.get("rules") or {}).get("rules") or []}
        eq(got[("pubsub", "orders")].get("deadLetterTopic"), "orders-dead", "deadLetterTopic")
        check("/pubsub--orders--default" in paths(got[("pubsub", "orders")]),
              got[("pubsub", "orders")])
        eq(paths(got[("pubsub", "routed")]), {"/pubsub--routed--priority",
                                               "/pubsub--routed--normal"}, "routed paths")
        check(any(r.get("match") == 'event.type == "order.priority"'
                  for r in got[("pubsub", "routed")]["rules"]["rules"]), got[("pubsub", "routed")])
        eq(paths(got[("pubsub", "lost")]), {"/nowhere"}, "declarative path")


def test_publish_and_subscribe():
    """DaprClient publish (JSON, string, number, a CloudEvent, metadata overrides) and
    publishBulk reach a DaprServer subscriber exactly once, and a Knative Trigger on the topic
    sees Dapr's envelope."""
    with Scene() as sc:
        app = sc.app("checkout", [{"how": "subscribe", "topic": "orders"}])
        tap = sc.sink("orders-tap", topic="orders")
        sc.start()
        ce = {"specversion": "1.0", "id": "ce-1", "source": "/mine", "type": "order.custom",
              "datacontenttype": "application/json", "data": {"id": "ce-1"}}
        sc.publish("orders", items=[{"id": "j-1", "kind": "json"}, "plain text 1", 42, ce,
                                    {"id": "m-1"}],
                   itemOptions=[None, None, None, None,
                                {"metadata": {"cloudevent.type": "order.meta",
                                              "ttlInSeconds": "60"}}])
        bulk_ce = dict(ce, id="bce-1", data={"id": "bce-1"})
        sc.publish("orders", mode="bulk",
                   items=[{"id": "b-%d" % i} for i in range(8)] + ["bulk text", bulk_ce])
        want = ([{"id": "j-1", "kind": "json"}, "plain text 1", "42", {"id": "ce-1"},
                 {"id": "m-1"}] + [{"id": "b-%d" % i} for i in range(8)]
                + ["bulk text", {"id": "bce-1"}])
        wait_for(lambda: len(app.records()) >= len(want), 10)
        settle()
        got = [data_of(r) for r in app.records()]
        eq(counts(got), counts(want), "data the subscriber got (each exactly once)")
        check(all(r["topic"] == "orders" and r["status"] == "SUCCESS" for r in app.records()),
              app.records())
        wait_for(lambda: len(sink_events(tap)) >= len(want), 10)
        evs = sink_events(tap)
        eq(len(evs), len(want), "events the Knative Trigger got")
        by = {}
        for e in evs:
            d = e.get("data")
            by[d.get("id") if isinstance(d, dict) else d] = e
        for e in evs:
            eq((e.get("topic"), e.get("pubsubname"), e.get("specversion")),
               ("orders", "pubsub", "1.0"), "envelope of %r" % e)
        j = by["j-1"]
        eq((j["type"], j["source"], j["datacontenttype"]),
           ("com.dapr.event.sent", "ringcast", "application/json"), "envelope of a JSON publish")
        check(j["id"] not in ("", "j-1") and "traceparent" in j and "time" in j, j)
        eq((by["plain text 1"]["datacontenttype"], by["plain text 1"]["data"]),
           ("text/plain", "plain text 1"), "a string publish")
        eq((by["ce-1"]["id"], by["ce-1"]["source"], by["ce-1"]["type"]),
           ("ce-1", "/mine", "order.custom"), "a CloudEvent published as is")
        eq(by["m-1"]["type"], "order.meta", "metadata.cloudevent.type")
        check("expiration" in by["m-1"], "metadata.ttlInSeconds sets expiration: %r" % by["m-1"])
        eq((by["bce-1"]["id"], by["bce-1"]["type"]), ("bce-1", "order.custom"),
           "a CloudEvent entry of a bulk publish")
        eq(by["bulk text"]["datacontenttype"], "text/plain", "a string entry of a bulk publish")


def test_knative_ingress_to_dapr():
    """Events published with the CloudEvents SDK (binary and structured) to the Knative ingress
    with a `topic` extension reach the Dapr subscriber of that topic, and only those."""
    with Scene() as sc:
        app = sc.app("checkout", [{"how": "subscribe", "topic": "orders"}])
        sc.start()
        sc.publish("orders", mode="ce-binary", prefix="kb",
                   items=[{"id": "kb-%d" % i} for i in range(5)])
        sc.publish("orders", mode="ce-structured", prefix="ks",
                   items=[{"id": "ks-%d" % i} for i in range(5)])
        sc.publish("other", mode="ce-structured", prefix="ko", items=[{"id": "ko-0"}])
        want = ["kb-%d" % i for i in range(5)] + ["ks-%d" % i for i in range(5)]
        wait_for(lambda: len(app.records()) >= len(want), 10)
        settle()
        eq(sorted(ids(app.records())), sorted(want), "Knative-published events delivered")


def test_replicas_share_exactly_once():
    """Two DaprServer processes of one app id share 1,000 events: each event once, both some."""
    with Scene() as sc:
        app = sc.app("worker", [{"how": "subscribe", "topic": "jobs"}], replicas=2)
        sc.start()
        sc.publish("jobs", count=1000, prefix="job", concurrency=16, timeout=40)
        wait_for(lambda: len(set(ids(app.records()))) >= 1000, 25, 0.1)
        settle(1.0)
        recs = app.records()
        got = ids(recs)
        dups = len(got) - len(set(got))
        per = [sum(1 for r in recs if r["replica"] == i) for i in range(2)]
        print("     replicas got %s, %d duplicates" % (per, dups))
        eq(set(got), {"job-%d" % i for i in range(1000)}, "events delivered")
        eq(dups, 0, "duplicate deliveries")
        check(per[0] > 0 and per[1] > 0, "both replicas got events: %s" % per)


def test_retry_then_success():
    """A handler answering RETRY twice and then SUCCESS gets each event three times, no more."""
    with Scene() as sc:
        app = sc.app("payments", [{"how": "subscribe", "topic": "payments"}])
        sc.start()
        sc.publish("payments", items=[{"id": "p-%d" % i, "action": "retry:2"} for i in range(3)])
        wait_for(lambda: len(app.records()) >= 9, 10)
        settle(1.0)
        for i in range(3):
            st = [r["status"] for r in app.records() if data_of(r).get("id") == "p-%d" % i]
            eq(st, ["RETRY", "RETRY", "SUCCESS"], "answers to p-%d" % i)


def test_dead_letter_topic():
    """DROP, a 404 (a declarative route the app does not serve) and exhausted RETRYs each put
    the event, unchanged, on the dead-letter topic, where a DaprServer subscriber gets it once."""
    with Scene() as sc:
        app = sc.app("checkout", [
            {"how": "options", "topic": "orders", "deadLetterTopic": "orders-dead"},
            {"how": "subscribe", "topic": "orders-dead"}])
        sc.docs.append(LOST_SUBSCRIPTION)
        sc.start()
        dropped = {"id": "d-1", "action": "drop", "on": "orders"}
        poison = {"id": "r-1", "action": "retry", "on": "orders"}
        fine = {"id": "ok-1"}
        sc.publish("orders", items=[dropped, poison, fine])
        sc.publish("lost", items=[{"id": "l-1"}])

        def dead():
            return [data_of(r) for r in app.records() if r["topic"] == "orders-dead"]
        wait_for(lambda: len(dead()) >= 3, 10)
        settle(1.0)
        eq(counts(dead()), counts([dropped, poison, {"id": "l-1"}]),
           "dead letters (original data, each once)")
        orders = [r for r in app.records() if r["topic"] == "orders"]
        eq([r["status"] for r in orders if data_of(r)["id"] == "d-1"], ["DROP"], "d-1 answers")
        eq([r["status"] for r in orders if data_of(r)["id"] == "r-1"], ["RETRY"] * 4,
           "r-1 answers (1 + broker retry 3)")
        eq([r["status"] for r in orders if data_of(r)["id"] == "ok-1"], ["SUCCESS"],
           "ok-1 answers")


def test_knative_trigger_gets_every_event():
    """A Knative Trigger with filter.attributes.topic gets every Dapr-published event of the
    topic while the two replicas of a Dapr app share them."""
    with Scene() as sc:
        app = sc.app("worker", [{"how": "subscribe", "topic": "orders"}], replicas=2)
        tap = sc.sink("orders-tap", topic="orders")
        sc.start()
        sc.publish("orders", count=200, prefix="o", concurrency=8)
        sc.publish("other", count=5, prefix="x")
        want = {"o-%d" % i for i in range(200)}
        wait_for(lambda: len(app.records()) >= 200 and len(sink_events(tap)) >= 200, 15, 0.1)
        settle()
        got = ids(app.records())
        eq((len(got), set(got)), (200, want), "the app's replicas together, once each")
        tapped = [e["data"]["id"] for e in sink_events(tap)]
        eq((len(tapped), set(tapped)), (200, want), "the Trigger, every event once")


def test_two_apps_each_get_all():
    """Two app ids subscribed to one topic each get every event once."""
    with Scene() as sc:
        billing = sc.app("billing", [{"how": "subscribe", "topic": "orders"}])
        shipping = sc.app("shipping", [{"how": "subscribe", "topic": "orders"}])
        sc.start()
        sc.publish("orders", count=200, prefix="o", concurrency=8)
        want = {"o-%d" % i for i in range(200)}
        wait_for(lambda: len(billing.records()) >= 200 and len(shipping.records()) >= 200, 15,
                 0.1)
        settle()
        for a in (billing, shipping):
            got = ids(a.records())
            eq((len(got), set(got)), (200, want), "app %s: every event once" % a.id)


def test_declarative_routes():
    """A declarative v2alpha1 Subscription with routes.rules (CEL on event.type and
    event.data) sends each event to the first matching path of the app, else to the default;
    the app gets the whole envelope as application/cloudevents+json."""
    with Scene() as sc:
        app = sc.app("router", routes=["/priority", "/big", "/orders"], warm=["orders"])
        sc.docs.append("""apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-routes, namespace: default}
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules:
    - {match: 'event.type == "order.priority"', path: /priority}
    - {match: 'event.data.amount > 100.0', path: /big}
    default: /orders
scopes: [router]
""")
        sc.start()
        prio = {"specversion": "1.0", "id": "c-prio", "source": "/shop", "type": "order.priority",
                "datacontenttype": "application/json", "data": {"id": "c-prio", "amount": 1}}
        sc.publish("orders", items=[prio, {"id": "big", "amount": 250}, {"id": "small",
                                                                         "amount": 5},
                                    {"id": "meta-prio", "amount": 250}],
                   itemOptions=[None, None, None,
                                {"metadata": {"cloudevent.type": "order.priority"}}])
        wait_for(lambda: len(app.records()) >= 4, 10)
        settle()
        got = {data_of(r)["id"]: r["route"] for r in app.records()}
        eq(got, {"c-prio": "/priority", "big": "/big", "small": "/orders",
                 "meta-prio": "/priority"}, "paths chosen")
        eq(len(app.records()), 4, "one delivery each: %r" % app.records())
        for r in app.records():
            check((r["contentType"] or "").startswith("application/cloudevents+json"), r)
            eq((r["event"].get("topic"), r["event"].get("pubsubname")), ("orders", "pubsub"),
               "envelope")


# Every CEL form of issue 12's subset, one rule each; each event of CEL_EVENTS matches exactly
# the rule of its path (and, first match winning, nothing earlier).
CEL_RULES = [
    ('event.type == "order.priority"', "/type"),
    ('event.source == "/special"', "/source"),
    ('event.data.id.startsWith("sw-")', "/startswith"),
    ('event.data.id.endsWith("-ew")', "/endswith"),
    ('event.data.id.contains("cont")', "/contains"),
    ('event.data.id in ["in-1", "in-2"]', "/in"),
    ('event.data.id == "or-1" || event.data.id == "or-2"', "/or"),
    ('has(event.data.kind) && event.data.kind == "neg" && !event.data.ok', "/not"),
    ('has(event.data.n) && event.data.n > 1.5 && event.data.n >= 2.0 && event.data.n < 5.0 '
     '&& event.data.n <= 4.0 && event.data.n != 3.0', "/compare"),
    ('has(event.data.n) && int(event.data.n) == 7', "/int"),
    ('has(event.data.s) && double(event.data.s) > 2.5', "/double"),
    ('has(event.data.flag) && string(event.data.flag) == "true"', "/string"),
    ('has(event.data.deep) && event.data.deep.inner.level == "x"', "/path"),
]
CEL_EVENTS = [  # (data, metadata, the path it must take)
    ({"id": "t-1"}, {"cloudevent.type": "order.priority"}, "/type"),
    ({"id": "src-1"}, {"cloudevent.source": "/special"}, "/source"),
    ({"id": "sw-1"}, None, "/startswith"),
    ({"id": "x-ew"}, None, "/endswith"),
    ({"id": "a-cont-b"}, None, "/contains"),
    ({"id": "in-2"}, None, "/in"),
    ({"id": "or-1"}, None, "/or"),
    ({"id": "neg-1", "kind": "neg", "ok": False}, None, "/not"),
    ({"id": "pos-1", "kind": "neg", "ok": True}, None, "/default"),
    ({"id": "cmp-4", "n": 4}, None, "/compare"),
    ({"id": "cmp-3", "n": 3}, None, "/default"),
    ({"id": "int-7", "n": 7.4}, None, "/int"),
    ({"id": "dbl-1", "s": "3.5"}, None, "/double"),
    ({"id": "str-1", "flag": True}, None, "/string"),
    ({"id": "path-1", "deep": {"inner": {"level": "x"}}}, None, "/path"),
    ({"id": "none-1"}, None, "/default"),
]


def test_cel_forms():
    """Each CEL form of the subset the issue lists routes one event to its own path of a
    declarative Subscription; events no rule matches take the default."""
    with Scene() as sc:
        paths = sorted({p for _, p in CEL_RULES} | {"/default"})
        app = sc.app("celapp", routes=paths, warm=["cel"])
        rules = "".join("    - {match: '%s', path: %s}\n" % (m, p) for m, p in CEL_RULES)
        sc.docs.append("apiVersion: dapr.io/v2alpha1\nkind: Subscription\n"
                       "metadata: {name: cel, namespace: default}\nspec:\n  pubsubname: pubsub\n"
                       "  topic: cel\n  routes:\n    rules:\n%s    default: /default\n"
                       "scopes: [celapp]\n" % rules)
        sc.start()
        sc.publish("cel", items=[d for d, _, _ in CEL_EVENTS],
                   itemOptions=[{"metadata": m} if m else None for _, m, _ in CEL_EVENTS])
        wait_for(lambda: len(app.records()) >= len(CEL_EVENTS), 10)
        settle()
        got = {}
        for r in app.records():
            got.setdefault(data_of(r)["id"], []).append(r["route"])
        eq(got, {d["id"]: [p] for d, _, p in CEL_EVENTS}, "paths taken (one delivery each)")


def test_rejected_rule():
    """An app whose GET /dapr/subscribe has a rule outside the CEL subset is refused with a log
    line naming it; the broker goes on and another app on the topic gets its events."""
    with Scene() as sc:
        sc.app("badcel", [{"how": "rules", "topic": "orders", "default": "normal",
                           "rules": [{"match": 'event.data.id.matches("^a")', "path": "x"}]}],
               warm=[])
        good = sc.app("goodcel", [{"how": "subscribe", "topic": "orders"}])
        sc.start()
        sc.publish("orders", items=[{"id": "g-1"}])
        wait_for(lambda: good.records(), 10)
        eq(ids(good.records()), ["g-1"], "the other app's events")
        check(wait_for(lambda: any("badcel" in l and "matches" in l
                                   for l in sc.broker.log().splitlines()), 5),
              "no log line names app badcel and its rule: " + sc.broker.log()[-2000:])
        check(sc.broker.proc.poll() is None, "ringcast still running")


def test_programmatic_routes():
    """Routing rules a DaprServer declares (subscribeWithOptions route.rules, answered on
    GET /dapr/subscribe) pick the route as declarative ones do."""
    with Scene() as sc:
        app = sc.app("ruler", [{"how": "rules", "topic": "routed", "default": "normal",
                                "rules": [{"match": 'event.type == "order.priority"',
                                           "path": "priority"},
                                          {"match": 'has(event.data.vip) && event.data.vip',
                                           "path": "priority"}]}])
        sc.start()
        sc.publish("routed", items=[{"id": "n-1"}, {"id": "v-1", "vip": True}, {"id": "t-1"}],
                   itemOptions=[None, None, {"metadata": {"cloudevent.type": "order.priority"}}])
        wait_for(lambda: len(app.records()) >= 3, 10)
        settle()
        got = {data_of(r)["id"]: r["route"] for r in app.records()}
        eq(got, {"n-1": "normal", "v-1": "priority", "t-1": "priority"}, "routes chosen")
        eq(len(app.records()), 3, "one delivery each: %r" % app.records())


def test_bulk_subscribe():
    """subscribeBulk: events come in bulk bodies and each entry's status counts (a RETRY entry
    comes again, alone)."""
    with Scene() as sc:
        app = sc.app("bulky", [{"how": "bulk", "topic": "bulk", "maxMessagesCount": 10,
                                "maxAwaitDurationMs": 100}])
        try:
            sc.start()
        except AssertionError as e:
            raise AssertionError("%s: the SDK's bulk route reads only bulk bodies (entries[]); "
                                 "it answers a single event 200 {\"statuses\": []} without "
                                 "calling the handler, so the event is lost" % e)
        items = [{"id": "k-%d" % i} for i in range(49)] + [{"id": "k-49", "action": "retry:1"}]
        sc.publish("bulk", mode="bulk", items=items, batch=25)
        wait_for(lambda: len(app.records()) >= 51, 10)
        settle()
        got = ids(app.records())
        want = ["k-%d" % i for i in range(50)] + ["k-49"]
        eq(sorted(got), sorted(want), "entries delivered (k-49 twice)")


def test_sdk_errors():
    """Bad input gets Dapr's status and errorCode through the SDK's error surface, and nothing
    of it is stored; without any pubsub Component, ERR_PUBSUB_NOT_CONFIGURED."""
    with Scene() as sc:
        tap = sc.sink("everything")
        sc.start()
        out = sc.run("errors.js", {}, 30)
        check("errors ok" in out, out)
        wait_for(lambda: len(tap.events()) >= 3, 5)
        settle()
        eq(counts(e.get("data") for e in tap.events()), counts([{"good": 1}, {"bulk": 1},
                                                               {"bulk": 2}]),
           "stored: the good publish and the good bulk only")
    with Scene() as sc:
        sc.component = False
        sc.start()
        out = sc.run("errors.js", {"configured": False}, 20)
        check("errors ok" in out, out)


if __name__ == "__main__":
    Runner().run([test_sidecar_probes, test_metadata_lists_subscriptions,
                  test_publish_and_subscribe, test_knative_ingress_to_dapr,
                  test_replicas_share_exactly_once, test_retry_then_success,
                  test_dead_letter_topic, test_knative_trigger_gets_every_event,
                  test_two_apps_each_get_all, test_declarative_routes, test_cel_forms,
                  test_rejected_rule, test_programmatic_routes, test_bulk_subscribe,
                  test_sdk_errors])
