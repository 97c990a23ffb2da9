#!/usr/bin/env python3
"""The broker's /metrics as a whole: a live `ringcast serve` with Knative triggers (delivered,
failing into a dead-letter sink, replying, unreachable), a Dapr app and subscription, a file
store and refused requests, so that (almost) every family has samples; then
- `promtool check metrics` (Debian's prometheus package, installed by scripts/setup.sh) is clean:
  no parse error and no lint problem beyond the ones listed in LINT_ALLOWED with their reasons;
- no two families are one family under OpenMetrics (a counter X_total is family X: a gauge X
  beside it collides, as ringcast_ingress_connections once did) and no family's name is another
  one's sample name (X_bucket, X_sum, X_count, X_created, X_info);
- every family declared has a sample, but the ones in NO_SAMPLES (with reasons);
- ringcast_build_info and the process_* metrics say true things about the serve process;
- ringcast_ingress_open_connections follows connections opened and closed.
The checks are shown to fail on bad input too (promtool and the collision check). Every wait is
bounded."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import RINGCAST, Broker, Runner, check, eq  # noqa: E402
from dapr_app import Replica, wait_until  # noqa: E402
from subscriber import Subscriber  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")

# promtool's lint problems we accept, each with why (none today: the list is for a conscious
# exception, never for silencing a new one).
LINT_ALLOWED = {}

# Families that may have no sample in this scenario, each with why.
NO_SAMPLES = {}

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  storage: {type: file, directory: %(dir)s, durability: batch}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
spec:
  delivery: {retry: 1, backoffDelay: PT0.05S, backoffPolicy: linear, timeout: PT2S}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: ok
  namespace: default
  annotations: {ringcast.dev/rate-limit: "1000"}  # for ringcast_trigger_rate_limit's sample
spec:
  broker: default
  filter: {attributes: {type: good}}
  subscriber: {uri: %(ok)s}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: failing, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: bad}}
  subscriber: {uri: %(fail)s}
  delivery: {retry: 1, backoffDelay: PT0.05S, backoffPolicy: linear,
             deadLetterSink: {uri: %(dls)s}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: replier, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: ask}}
  subscriber: {uri: %(reply)s}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: flaky, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: flaky}}
  subscriber: {uri: %(flaky)s}
  delivery: {retry: 1, backoffDelay: PT0.2S, backoffPolicy: linear}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: unreachable, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: lost}}
  subscriber: {uri: %(dead)s}
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
metadata: {name: checkout, namespace: default}
spec:
  endpoints: ["%(app)s"]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders, namespace: default}
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    default: /orders
scopes: [checkout]
"""


def dead_url():
    """A loopback URL where nothing listens: connections are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


def post(b, eid, etype, extra=None):
    h = {"ce-id": str(eid), "ce-source": "/test", "ce-type": etype, "ce-specversion": "1.0",
         "Content-Type": "application/json"}
    h.update(extra or {})
    r = b.request("POST", "/default/default", h, b'{"n":1}')
    eq(r.status, 202, "publish %s (%r)" % (etype, r.body))


def scrape(b):
    r = b.request("GET", "/metrics", admin=True)
    eq(r.status, 200, "GET /metrics")
    return r.body.decode()


def promtool(text):
    """(exit code, output) of `promtool check metrics` on `text`."""
    exe = shutil.which("promtool")
    check(exe is not None, "promtool not installed: run scripts/setup.sh (Debian's prometheus)")
    p = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode()


def families(text):
    """{family: type} from the # TYPE lines, and {family: [sample names]}."""
    types, samples = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)$", line)
        if m:
            types[m.group(1)] = m.group(2)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        fam = name
        if name not in types:
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
        check(fam in types, "sample %r has no # TYPE line" % line)
        samples.setdefault(fam, []).append(name)
    return types, samples


def collisions(types):
    """Pairs of families that OpenMetrics would read as one, or whose names clash with another
    family's sample names."""
    out = []
    om = {}
    for fam, t in types.items():
        name = fam[:-len("_total")] if t == "counter" and fam.endswith("_total") else fam
        if name in om:
            out.append((om[name], fam))
        om[name] = fam
    for fam, t in types.items():
        suffixes = {"counter": ["_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                    "summary": ["_sum", "_count", "_created"]}.get(t, [])
        base = fam[:-len("_total")] if t == "counter" and fam.endswith("_total") else fam
        for s in suffixes:
            if base + s in types:
                out.append((fam, base + s))
    return out


def test_checks_can_fail():
    """promtool and the collision check reject what they must (so a pass means something)."""
    bad = ("# HELP a_x A.\n# TYPE a_x gauge\na_x 1\n"
           "# HELP a_x A again.\n# TYPE a_x gauge\na_x 2\n")
    rc, out = promtool(bad)
    check(rc != 0 and out.strip(), "promtool accepted a duplicated family: %r" % out)
    rc, out = promtool("# HELP a_bytes_total A.\n# TYPE a_bytes_total gauge\na_bytes_total 1\n")
    check(rc != 0 and "total" in out, "promtool lint silent on a gauge named _total: %r" % out)
    eq(collisions({"x_connections": "gauge", "x_connections_total": "counter"}),
       [("x_connections", "x_connections_total")], "gauge X beside counter X_total")
    eq(collisions({"h_seconds": "histogram", "h_seconds_count": "gauge"}),
       [("h_seconds", "h_seconds_count")], "histogram X beside gauge X_count")
    eq(collisions({"a_total": "counter", "b": "gauge"}), [], "distinct families")


def reply(i, _req):
    """The replier's answer: a 2xx with an event in binary mode (a reply the broker stores)."""
    return 200, {"ce-id": "r-%d" % i, "ce-source": "/replier", "ce-type": "answer",
                 "ce-specversion": "1.0", "Content-Type": "application/json"}, b"{}", 0.0


def test_live_metrics_clean():
    store = tempfile.TemporaryDirectory(prefix="rc-metrics-")
    with store, Subscriber() as ok, Subscriber(lambda i, r: (500, {}, b"", 0.0)) as fail, \
            Subscriber() as dls, Subscriber(reply) as rep, Replica() as app, \
            Subscriber(lambda i, r: (500 if i == 0 else 200, {}, b"", 0.0)) as flaky:
        cfg = CONFIG % {"dir": store.name, "ok": ok.url, "fail": fail.url, "dls": dls.url,
                        "reply": rep.url, "dead": dead_url(), "app": app.url, "flaky": flaky.url}
        with Broker(cfg) as b:
            # A consumer-group member for the ringcast_group_* families (stopped below by pid).
            member = subprocess.Popen([RINGCAST, "tail", "default/default", "--group", "g1",
                                       "--from", "latest", "--ring-prefix", b.prefix,
                                       "--storage-dir", store.name, "--timeout", "20s"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            # A plain local reader for the ringcast_reader_lag_* families.
            reader = subprocess.Popen([RINGCAST, "tail", "default/default", "--from", "latest",
                                       "--ring-prefix", b.prefix, "--storage-dir", store.name,
                                       "--timeout", "20s"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                post(b, "f0", "flaky")
                flaky.wait_for(2)
                text = live_scrape(b, ok, dls, rep, app, member)
                check("ringcast_reader_lag_bytes{" in text, "no local reader series")
            finally:
                member.kill()
                member.communicate(timeout=10)
                reader.kill()
                reader.communicate(timeout=10)
    check_exposition(text)


def live_scrape(b, ok, dls, rep, app, member):
    """Traffic for every family, then /metrics once everything is counted."""
    for i in range(5):
        post(b, "g%d" % i, "good")
        post(b, "b%d" % i, "bad")
        post(b, "a%d" % i, "ask")
        post(b, "l%d" % i, "lost")
        post(b, "o%d" % i, "order", {"ce-topic": "orders"})
    eq(b.request("POST", "/default/nope", {"Content-Type": "text/plain"}, b"x").status, 404,
       "unknown broker")
    eq(b.request("POST", "/default/default", {"Content-Type": "application/json"}, b"{").status,
       400, "invalid event")
    ok.wait_for(5)
    dls.wait_for(5)
    rep.wait_for(5)
    app.wait_for(5)
    key = '%s{namespace="default",trigger="unreachable",broker="default"}'
    wait_until(lambda: b.metrics().get(key % "ringcast_trigger_failed_total") == 5, 20,
               "the unreachable trigger's 5 failures counted")
    group = 'ringcast_group_members{namespace="default",broker="default",group="g1"}'
    wait_until(lambda: member.poll() is not None or b.metrics().get(group) == 1, 10,
               "the group member counted")
    check(member.poll() is None, "ringcast tail --group exited early")
    for trig, n in (("ok", 5), ("replier", 5), ("checkout:orders", 5), ("flaky", 1)):
        wait_until(lambda: b.metrics().get(key.replace("unreachable", trig) %
                                           "ringcast_trigger_delivered_total") == n, 10,
                   "%s: %d delivered counted" % (trig, n))
    check_e2e(b.metrics())
    check_backpressure(b.metrics())
    return scrape(b)


def check_backpressure(m):
    """The back-pressure families (docs/delivery.md, "Which control holds a trigger back"): the
    window and rate limit as configured, one queue wait per event sent, no throttling of 5
    events under a burst of 100."""
    def get(name, trig):
        return m.get('%s{namespace="default",trigger="%s",broker="default"}' % (name, trig))
    eq(get("ringcast_trigger_rate_limit", "ok"), 1000, "rate limit gauge")
    eq(get("ringcast_trigger_rate_limit", "replier"), None, "no rate limit, no sample")
    eq(get("ringcast_trigger_max_inflight", "ok"), 100, "window gauge")
    eq(get("ringcast_trigger_throttled_seconds_total", "ok"), 0, "not throttled")
    for trig in ("ok", "replier", "checkout:orders"):
        eq(get("ringcast_trigger_queue_wait_seconds_count", trig), 5, "queue waits " + trig)


def check_e2e(m):
    """ringcast_trigger_e2e_latency_seconds: one observation per event delivered (Knative and
    Dapr), none for those that were not; arrival to 2xx holds the attempt that succeeded."""
    def get(name, trig):
        return m.get('%s{namespace="default",trigger="%s",broker="default"}' % (name, trig))
    for trig in ("ok", "replier", "checkout:orders"):
        eq(get("ringcast_trigger_e2e_latency_seconds_count", trig), 5, "e2e count " + trig)
        check(get("ringcast_trigger_e2e_latency_seconds_sum", trig) >=
              get("ringcast_trigger_delivery_seconds_sum", trig) * 0.999,
              "e2e time includes the successful attempt's (%s)" % trig)
    # Refused once, then delivered after the 0.2 s backoff: end to end holds the wait, the
    # successful attempt does not.
    eq(get("ringcast_trigger_e2e_latency_seconds_count", "flaky"), 1, "e2e count flaky")
    check(get("ringcast_trigger_e2e_latency_seconds_sum", "flaky") >= 0.2, "e2e holds the retry")
    check(get("ringcast_trigger_delivery_seconds_sum", "flaky") < 0.2, "attempt latency alone")
    for trig in ("failing", "unreachable"):
        eq(get("ringcast_trigger_e2e_latency_seconds_count", trig), 0, "no e2e for " + trig)


def check_exposition(text):
    """promtool, the OpenMetrics collisions and the families without samples; the exposition
    is printed when a check fails."""
    try:
        rc, out = promtool(text)
        problems = [ln for ln in out.splitlines() if ln.strip()
                    and not any(ln.startswith(k + " ") or ln.startswith(k + ":")
                                for k in LINT_ALLOWED)]
        check(rc == 0 or not problems, "promtool check metrics exit %d:\n%s" % (rc, out))
        eq(problems, [], "promtool problems")
        types, samples = families(text)
        eq(collisions(types), [], "families that collide under OpenMetrics")
        empty = sorted(f for f in types if f not in samples and f not in NO_SAMPLES)
        eq(empty, [], "families without a sample")
        check("ringcast_ingress_connections" not in types, "the old colliding gauge is gone")
        eq(types.get("ringcast_ingress_open_connections"), "gauge", "open connections gauge")
    except AssertionError:
        print(text, file=sys.stderr)
        raise


def version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(ringcast VERSION (\S+)", f.read()).group(1)


def test_build_and_process():
    """build_info carries the CMake version; the process_* values are serve's own (its start
    time, its memory from /proc/<pid>, CPU time that grows with work)."""
    with Broker() as b:
        t0 = time.time()
        m = b.metrics()
        eq(m.get('ringcast_build_info{version="%s"}' % version()), 1, "build_info")
        with open("/proc/%d/status" % b.proc.pid) as f:
            rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
        rss = m["process_resident_memory_bytes"]
        check(0.5 * rss_kb * 1024 < rss < 2 * rss_kb * 1024 + (8 << 20),
              "resident %d vs VmRSS %d kB" % (rss, rss_kb))
        check(m["process_virtual_memory_bytes"] >= rss, "virtual >= resident")
        start = m["process_start_time_seconds"]
        check(t0 - 30 < start <= t0 + 1, "start time %f (now %f)" % (start, t0))
        cpu0 = m["process_cpu_seconds_total"]
        check(cpu0 >= 0, "cpu seconds")
        # Work for serve's main loop: scrapes until its CPU time moves (bounded).
        deadline = time.monotonic() + 20
        cpu = cpu0
        while cpu <= cpu0 and time.monotonic() < deadline:
            for _ in range(50):
                scrape(b)
            cpu = b.metrics()["process_cpu_seconds_total"]
        check(cpu > cpu0, "process_cpu_seconds_total grew (%f -> %f)" % (cpu0, cpu))
        check(m["process_open_fds"] > 0 and m["process_max_fds"] >= m["process_open_fds"],
              "descriptors")


def test_open_connections_gauge():
    """ringcast_ingress_open_connections counts connections open now; _connections_total all."""
    with Broker() as b:
        base = b.metrics()
        conns = []
        for _ in range(4):
            c = socket.create_connection((b.host, b.port), timeout=5)
            conns.append(c)

        def opened():
            return b.metrics()["ringcast_ingress_open_connections"] >= \
                base["ringcast_ingress_open_connections"] + 4
        wait_until(opened, 10, "4 more open connections")
        check(b.metrics()["ringcast_ingress_connections_total"] >=
              base["ringcast_ingress_connections_total"] + 4, "accepted counted")
        for c in conns:
            c.close()
        wait_until(lambda: b.metrics()["ringcast_ingress_open_connections"] ==
                   base["ringcast_ingress_open_connections"], 10, "closed ones no longer open")


if __name__ == "__main__":
    sys.exit(Runner().run([test_checks_can_fail, test_live_metrics_clean, test_build_and_process,
                           test_open_connections_gauge]))
