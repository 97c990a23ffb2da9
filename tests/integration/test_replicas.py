#!/usr/bin/env python3
"""HTTP replicas of a Knative trigger's subscriber (issue 15, item 1; docs/delivery.md, "HTTP
replicas"): the real `ringcast serve` with a Trigger whose subscriber is a Service with the
annotation ringcast.dev/endpoints. Each event goes to one replica (the path of the trigger's
uri on each), the work spreads over them, a replica that refuses connections is skipped and its
events go to the others without counting as retries, a replica killed in the middle of the
stream loses nothing, the status API lists the endpoints and /metrics counts per replica.
Every wait is bounded; the sinks are real processes stopped by pid."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq  # noqa: E402
from rc_sink import Sink  # noqa: E402
from subscriber import Subscriber  # noqa: E402

KN = "/apis/eventing.knative.dev/v1"


def config(endpoints, inflight=8, retry=3):
    return """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec: {workers: 1, shutdownTimeout: 1s}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata:
  name: orders
  annotations:
    ringcast.dev/endpoints: "%s"
spec:
  ports: [{port: 80}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: t
  annotations: {ringcast.dev/max-inflight: "%d"}
spec:
  broker: default
  subscriber:
    ref: {apiVersion: v1, kind: Service, name: orders}
    uri: /in?x=1
  delivery: {retry: %d, backoffDelay: PT0.05S}
""" % (", ".join(endpoints), inflight, retry)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def publish(b, n, prefix="e"):
    c = b.conn()
    for i in range(n):
        c.send_request("POST", "/default/default",
                       {"ce-id": "%s%d" % (prefix, i), "ce-source": "/r", "ce-type": "t",
                        "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
        eq(c.response().status, 202, "publish")
    c.close()


def wait_until(cond, what, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def stat(b, name):
    return b.request("GET", KN + "/namespaces/default/triggers/" + name,
                     admin=True).json()["status"]


def test_spread_over_replicas():
    slow = lambda i, req: (200, {}, b"", 0.01)  # noqa: E731
    with Subscriber(slow) as a, Subscriber(slow) as b_, Subscriber(slow) as c:
        eps = ["127.0.0.1:%d" % s.port for s in (a, b_, c)]
        with Broker(config(eps)) as b:
            publish(b, 300)
            wait_until(lambda: a.count() + b_.count() + c.count() >= 300, "300 deliveries")
            time.sleep(0.2)
            ids = a.ids() + b_.ids() + c.ids()
            eq(len(ids), 300, "each event once")
            eq(sorted(ids), sorted("e%d" % i for i in range(300)), "every event")
            for s in (a, b_, c):
                check(s.count() >= 50, "work spread: %r" % [x.count() for x in (a, b_, c)])
                check(all(r.path == "/in?x=1" for r in s.requests), "the trigger's path")
            st = stat(b, "t")
            eq(st["subscriberEndpoints"], ["http://" + e for e in eps], "status lists them")
            eq(st["stats"]["delivered"], 300, "delivered")
            m = b.metrics()
            for e in eps:
                key = ('ringcast_trigger_replica_delivered_total{namespace="default",'
                       'trigger="t",broker="default",replica="http://%s"}' % e)
                check(m.get(key, 0) >= 50, "per-replica counter %s: %r" % (key, m.get(key)))


def test_refusing_replica_skipped():
    dead = closed_port()
    with Subscriber() as a, Subscriber() as c:
        eps = ["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % dead, "127.0.0.1:%d" % c.port]
        with Broker(config(eps, retry=0)) as b:
            publish(b, 200)
            wait_until(lambda: a.count() + c.count() >= 200, "200 deliveries")
            time.sleep(0.2)
            eq(sorted(a.ids() + c.ids()), sorted("e%d" % i for i in range(200)),
               "every event once, with retry 0: a refusal is no failed attempt")
            st = stat(b, "t")["stats"]
            eq((st["failed"], st["retried"], st["deadLettered"]), (0, 0, 0), "no retries")
            check("replica http://127.0.0.1:%d: Connection refused; skipped" % dead in b.log(),
                  b.log())


def test_replica_killed_mid_stream():
    sinks = [Sink("--delay", "5", "--quiet"), Sink("--delay", "5", "--quiet"),
             Sink("--delay", "5", "--quiet")]
    try:
        eps = ["127.0.0.1:%d" % s.port for s in sinks]
        with Broker(config(eps, retry=10)) as b:
            publish(b, 150, "a")
            wait_until(lambda: sum(len(s.events()) for s in sinks) >= 60, "the first events")
            sinks[1].proc.kill()  # SIGKILL: connections reset, in-flight attempts fail
            sinks[1].proc.wait(5)
            publish(b, 150, "b")
            want = {"a%d" % i for i in range(150)} | {"b%d" % i for i in range(150)}
            wait_until(lambda: want <= {e["id"] for s in sinks for e in s.events()},
                       "every event at a replica")
            got = [e["id"] for s in sinks for e in s.events()]
            dups = len(got) - len(set(got))
            check(dups <= 8, "duplicates %d within the window (max-inflight 8)" % dups)
            late = [e["id"] for e in sinks[1].events() if e["id"].startswith("b")]
            eq(late, [], "nothing went to the dead replica after it died")
    finally:
        for s in sinks:
            s.stop()


def test_bad_endpoints_refused():
    import subprocess
    import tempfile
    from rc_harness import RINGCAST
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(config(["127.0.0.1:9001", "127.0.0.1"]))
        f.flush()
        p = subprocess.run([RINGCAST, "serve", "--check", "--config", f.name],
                           capture_output=True, text=True, timeout=20)
        eq(p.returncode, 2, "exit")
        check("ringcast.dev/endpoints: '127.0.0.1' is not HOST:PORT" in p.stderr + p.stdout,
              p.stderr + p.stdout)


if __name__ == "__main__":
    Runner().run([
        test_spread_over_replicas,
        test_refusing_replica_skipped,
        test_replica_killed_mid_stream,
        test_bad_endpoints_refused,
    ])
