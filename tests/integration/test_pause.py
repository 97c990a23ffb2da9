#!/usr/bin/env python3
"""Pause and resume a trigger (issue 18): POST .../namespaces/NS/triggers/NAME/pause|resume on
the admin API of the real `ringcast serve` on free loopback ports, and `ringcast pause|resume
trigger NAME`. A paused trigger sends nothing (50 events published: none delivered within a
bounded wait, its lag is 50, ringcast_trigger_paused 1, Ready False/Paused), an attempt under
way when it is paused finishes, the pause outlasts a reload (SIGHUP), and after resume the 50
are delivered, each once. The bearer token (401/403/200), 404 for an unknown trigger, 405 for
another method, the CLI's round trip, --help and usage errors; the last 16 delivery outcomes in
a one-object GET and `ringcast describe`. Every wait is bounded."""

import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import RINGCAST, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402

KN = "/apis/eventing.knative.dev/v1"
API = "/apis/ringcast.dev/v1alpha1/namespaces/%s/triggers/%s/%s"
TOKEN = "p4use-token-0123456789abcdef"

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
  subscriber: {uri: "%s"}
"""


def cli(*args, env=None):
    e = dict(os.environ)
    e.pop("RINGCAST_ADMIN", None)
    e.pop("RINGCAST_ADMIN_TOKEN", None)
    e.update(env or {})
    p = subprocess.run([RINGCAST] + list(args), capture_output=True, text=True, timeout=30,
                       env=e)
    return p.returncode, p.stdout, p.stderr


def wait(cond, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Env:
    def __init__(self, behaviour=None, admin_block=""):
        self.sub = Subscriber(behaviour) if behaviour else Subscriber()
        self.broker = Broker(CONFIG % (admin_block, self.sub.url + "/t1"))
        self.admin = "127.0.0.1:%d" % self.broker.admin_port
        self.n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.broker.__exit__(None, None, None)
        self.sub.close()

    def post(self, verb, name="t1", ns="default", headers=None, method="POST"):
        return self.broker.request(method, API % (ns, name, verb), headers or {}, b"",
                                   admin=True)

    def trigger(self, name="t1"):
        r = self.broker.request("GET", KN + "/namespaces/default/triggers/" + name, admin=True)
        eq(r.status, 200, "GET trigger")
        return r.json()

    def publish(self):
        self.n += 1
        r = self.broker.request("POST", "/default/default",
                                {"ce-id": "e%d" % self.n, "ce-source": "/t", "ce-type": "t.x",
                                 "ce-specversion": "1.0"}, b"x")
        eq(r.status, 202, "publish")
        return "e%d" % self.n

    def paused_gauge(self):
        m = self.broker.metrics()
        k = 'ringcast_trigger_paused{namespace="default",trigger="t1",broker="default"}'
        check(k in m, "ringcast_trigger_paused in /metrics: %r" % [x for x in m if "paused" in x])
        return m[k]

    def cli(self, *args, **kw):
        return cli(*(list(args) + ["--admin", self.admin]), **kw)


def ready(o):
    c = o["status"]["conditions"][0]
    return c["status"], c["reason"]


def test_pause_holds_then_resume_delivers_all_once():
    release = threading.Event()

    def slow_first(i, _req):
        if i == 0:
            release.wait(10)  # in flight while the trigger is paused
        return 200, {}, b"", 0.0

    with Env(slow_first) as e:
        wait(lambda: e.trigger()["status"].get("workerPid", 0) > 0, "the worker")
        first = e.publish()
        wait(lambda: e.sub.count() == 1, "the first event in flight")
        r = e.post("pause")
        eq(r.status, 200, "pause: %r" % r.body)
        o = r.json()
        eq((o["kind"], o["status"]["paused"]), ("Trigger", True), "answer is the paused Trigger")
        check("pausedTime" in o["status"], "pausedTime")
        eq(ready(o), ("False", "Paused"), "Ready")
        check("ringcast resume trigger t1" in o["status"]["conditions"][0]["message"],
              o["status"]["conditions"][0]["message"])
        eq(e.post("pause").json()["status"]["pausedTime"], o["status"]["pausedTime"],
           "pausing again keeps the time")
        eq(e.paused_gauge(), 1.0, "gauge while paused")
        release.set()  # the attempt under way finishes while paused
        wait(lambda: e.trigger()["status"]["stats"]["delivered"] == 1, "the in-flight attempt")
        ids = [e.publish() for _ in range(50)]
        wait(lambda: e.trigger()["status"]["stats"]["lagEvents"] == 50, "lag 50")
        time.sleep(1.0)  # well past the worker's longest sleep (50 ms)
        eq(e.sub.count(), 1, "nothing delivered while paused")
        st = e.trigger()["status"]
        eq((st["stats"]["lagEvents"], st["stats"]["delivered"], st["stats"]["dropped"]),
           (50, 1, 0), "lag, delivered, dropped while paused")
        # a reload (workers restarted) keeps the pause: the slot is kept
        pid = st["workerPid"]
        e.broker.signal(signal.SIGHUP)
        wait(lambda: e.trigger()["status"].get("workerPid", pid) not in (0, pid),
             "a new worker after SIGHUP")
        time.sleep(0.5)
        eq(e.sub.count(), 1, "still nothing after the reload")
        eq(ready(e.trigger()), ("False", "Paused"), "still paused after the reload")
        r = e.post("resume")
        eq(r.status, 200, "resume")
        eq(r.json()["status"]["paused"], False, "resumed")
        check("pausedTime" not in r.json()["status"], "no pausedTime")
        reqs = e.sub.wait_for(51, timeout=15)
        got = [q.ce("id") for q in reqs]
        eq(len(got), 51, "all delivered after resume")
        eq(sorted(got), sorted([first] + ids), "each once")
        wait(lambda: e.trigger()["status"]["stats"]["lagEvents"] == 0, "lag 0")
        eq(e.paused_gauge(), 0.0, "gauge after resume")
        eq(ready(e.trigger()), ("True", "Delivering"), "Ready after resume")
        eq(e.post("resume").status, 200, "resume when not paused")
        # the last 16 outcomes, newest first, in a one-object GET (not in lists)
        rec = e.trigger()["status"]["recentOutcomes"]
        eq(len(rec), 16, "16 recent outcomes")
        check(all(x["status"] == 200 and x["message"] == "HTTP 200" and x["eventId"] in ids and
                  0 <= x["durationSeconds"] < 5 and x["time"].endswith("Z") for x in rec), rec)
        eq(len(set(x["eventId"] for x in rec)), 16, "distinct events")
        check([x["time"] for x in rec] == sorted((x["time"] for x in rec), reverse=True),
              "newest first")
        lst = e.broker.request("GET", KN + "/namespaces/default/triggers", admin=True).json()
        check("recentOutcomes" not in lst["items"][0]["status"], "lists stay small")
        check("trigger default/t1 paused" in e.broker.log() and
              "trigger default/t1 resumed" in e.broker.log(), "logged")


def test_token():
    with Env(admin_block="  admin:\n    token: %s\n" % TOKEN) as e:
        r = e.post("pause")
        eq(r.status, 401, "no Authorization")
        eq(r.header("WWW-Authenticate"), 'Bearer realm="ringcast"', "challenge")
        eq(e.post("pause", headers={"Authorization": "Basic eDp5"}).status, 401, "not Bearer")
        eq(e.post("pause", headers={"Authorization": "Bearer wrong-token"}).status, 403, "wrong")
        eq(e.paused_gauge(), 0.0, "a refused pause changes nothing")
        eq(e.post("pause", headers={"Authorization": "Bearer " + TOKEN}).status, 200, "right")
        eq(e.paused_gauge(), 1.0, "paused")
        rc, _, err = e.cli("resume", "trigger", "t1")
        check(rc == 1 and "HTTP 401" in err and "token" in err, "CLI without token: %r" % err)
        rc, out, err = e.cli("resume", "trigger", "t1", "--token", TOKEN)
        eq((rc, out), (0, "trigger.eventing.knative.dev/t1 resumed (lag 0 events)\n"), err)
        rc, out, err = e.cli("pause", "trigger", "t1", env={"RINGCAST_ADMIN_TOKEN": TOKEN})
        check(rc == 0 and "t1 paused" in out, "CLI $RINGCAST_ADMIN_TOKEN: %r %r" % (out, err))
        # the overview tells the page a token is needed
        o = e.broker.request("GET", "/apis/ringcast.dev/v1alpha1/overview", admin=True).json()
        eq((o["readOnly"], o["writable"], o["tokenRequired"]), (False, False, True), "overview")


def test_errors():
    with Env() as e:
        r = e.post("pause", name="nope")
        eq(r.status, 404, "unknown trigger")
        eq(r.json()["reason"], "NotFound", "Status")
        check('"nope" not found' in r.json()["message"], r.json()["message"])
        eq(e.post("pause", ns="other").status, 404, "unknown namespace")
        for m in ("GET", "PUT", "DELETE"):
            r = e.post("pause", method=m)
            eq(r.status, 405, "%s pause" % m)
            eq(r.header("Allow"), "POST", "Allow")
        eq(e.post("resume", method="GET").status, 405, "GET resume")
        eq(e.post("stop").status, 404, "unknown verb")
        eq(e.broker.request("POST", API % ("default", "t1", "pause") + "/", admin=True).status,
           404, "trailing slash")
        eq(e.paused_gauge(), 0.0, "nothing paused")
        o = e.broker.request("GET", "/apis/ringcast.dev/v1alpha1/overview", admin=True).json()
        eq((o["readOnly"], o["writable"], o["tokenRequired"]), (False, True, False),
           "loopback without token: writable")


def test_browser_needs_the_token():
    """Without a token, loopback writes are the operator's from the CLI or curl; a browser
    (Origin or Sec-Fetch-Site) may not write: the dashboard is read-only, and no web page the
    operator's browser opens, of this listener or of another site (a form POST needs no CORS
    preflight; DNS rebinding), can pause a trigger or read event data."""
    with Env() as e:
        here = "127.0.0.1:%d" % e.broker.admin_port
        browsers = (
            ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "cross-site"),
            ({"Origin": "null"}, "an opaque origin"),
            ({"Sec-Fetch-Site": "same-site", "Host": here}, "a sibling site"),
            ({"Origin": "http://evil.example:%d" % e.broker.admin_port,
              "Host": "evil.example:%d" % e.broker.admin_port}, "DNS rebinding"),
            ({"Origin": "http://" + here, "Host": here, "Sec-Fetch-Site": "same-origin"},
             "the dashboard's own page"),
        )
        for headers, what in browsers:
            r = e.post("pause", headers=headers)
            eq(r.status, 403, what)
            check("dashboard is read-only" in r.json()["message"], r.json()["message"])
            o = e.broker.request("GET", "/apis/ringcast.dev/v1alpha1/overview", headers,
                                 admin=True).json()
            eq((o["readOnly"], o["writable"]), (True, False), "the overview says read-only: " +
               what)
        eq(e.paused_gauge(), 0.0, "nothing paused by a browser")
        eq(e.post("pause", headers={"Host": "my-host.example:9090"}).status, 200,
           "a CLI or curl (no Origin, no Sec-Fetch-Site) with any Host")


def test_cli():
    rc, out, _ = cli("pause", "--help")
    check(rc == 0 and "pause trigger|subscription NAME" in out and "--token" in out and "-n, --namespace" in out
          and "lag limit" in out, out)
    rc, out, _ = cli("resume", "--help")
    check(rc == 0 and "resume trigger|subscription NAME" in out, out)
    rc, out, _ = cli("--help")
    check(" pause " in out and " resume " in out, "listed in ringcast --help")
    for args, want in ((["pause"], "missing RESOURCE NAME"),
                       (["pause", "trigger"], "missing RESOURCE NAME"),
                       (["pause", "broker", "b"], "unknown resource 'broker'"),
                       (["resume", "trigger", "Bad_Name"], "'Bad_Name' is not a name"),
                       (["pause", "trigger", "t", "--bogus", "x"], "--bogus")):
        rc, _, err = cli(*args)
        check(rc == 2 and want in err, "%r: %d %r" % (args, rc, err))
    rc, _, err = cli("pause", "trigger", "t1", "--admin", "127.0.0.1:1", "--timeout", "2")
    check(rc == 1 and "127.0.0.1:1" in err, "no broker: %r" % err)
    with Env() as e:
        rc, out, err = e.cli("pause", "trigger", "t1", "-n", "default")
        eq((rc, out), (0, "trigger.eventing.knative.dev/t1 paused (lag 0 events)\n"), err)
        eq(ready(e.trigger()), ("False", "Paused"), "paused by the CLI")
        rc, out, err = e.cli("describe", "trigger", "t1")
        check(rc == 0 and "Paused" in out and "Paused:" in out, "describe: %r %r" % (out, err))
        rc, _, err = e.cli("pause", "trigger", "nope")
        check(rc == 1 and "HTTP 404" in err and "nope" in err, err)
        eid = e.publish()
        time.sleep(0.3)
        eq(e.sub.count(), 0, "held")
        rc, out, err = e.cli("resume", "trigger", "t1")
        check(rc == 0 and out.startswith("trigger.eventing.knative.dev/t1 resumed"), out + err)
        eq([q.ce("id") for q in e.sub.wait_for(1)], [eid], "delivered after the CLI's resume")
        wait(lambda: e.trigger()["status"].get("recentOutcomes"), "an outcome")
        rc, out, err = e.cli("describe", "trigger", "t1")
        check(rc == 0 and "Recent outcomes (newest first):" in out and "HTTP 200" in out and
              " " + eid in out and "Paused:" not in out, "describe: %r %r" % (out, err))


if __name__ == "__main__":
    Runner().run([test_pause_holds_then_resume_delivers_all_once, test_token, test_errors,
                  test_browser_needs_the_token,
                  test_cli])
