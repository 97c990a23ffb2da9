#!/usr/bin/env python3
"""Runtime changes (issue 14, item 2): `ringcast apply` and `ringcast delete` through the admin
API of the real `ringcast serve` on free loopback ports. A trigger applied at run time gets
events without a restart and is still there after one (the state file) and after SIGHUP; apply
twice is unchanged; an invalid document changes nothing (4xx, the old triggers still deliver);
delete by name and by file; an object of the config file is overridden by apply and refused by
delete; the bearer token (401 without or malformed, 403 wrong, 200 right; reads need none); 413,
405; the CLI's --help, usage errors and a broker that is not running. Every wait is bounded."""

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

KN = "/apis/eventing.knative.dev/v1"
APPLY = "/apis/ringcast.dev/v1alpha1/apply"
DELETE = "/apis/ringcast.dev/v1alpha1/delete"
TOKEN = "s3cret-token-0123456789abcdef"

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 500ms
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
"""


def trigger(name, uri, etype, ns="default", broker="default"):
    return ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
            "metadata: {name: %s, namespace: %s}\nspec:\n  broker: %s\n"
            "  filter: {attributes: {type: %s}}\n  subscriber: {uri: \"%s\"}\n"
            % (name, ns, broker, etype, uri))


def config(base_uri, admin=""):
    return HEAD % admin + trigger("base", base_uri, "t.base")


def cli(*args, env=None, input_text=None):
    e = dict(os.environ)
    e.pop("RINGCAST_ADMIN", None)
    e.pop("RINGCAST_ADMIN_TOKEN", None)
    e.update(env or {})
    p = subprocess.run([RINGCAST] + list(args), capture_output=True, text=True, timeout=30,
                       env=e, input=input_text)
    return p.returncode, p.stdout, p.stderr


def wait(cond, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Env:
    """A broker with trigger `base` (type t.base) to subscriber A, a second subscriber B, and a
    directory for manifests."""

    def __init__(self, admin_block="", config_text=None):
        self.a = Subscriber()
        self.b = Subscriber()
        self.broker = Broker(config_text or config(self.a.url + "/a", admin_block))
        self.admin = "127.0.0.1:%d" % self.broker.admin_port
        self.dir = self.broker.tmp.name
        self.config = os.path.join(self.dir, "ringcast.yaml")
        self.state = os.path.join(self.dir, "ringcast.state.yaml")
        self.n = 0

    def close(self):
        self.broker.__exit__(None, None, None)
        self.a.close()
        self.b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def cli(self, *args, **kw):
        return cli(*(list(args) + ["--admin", self.admin]), **kw)

    def post(self, path, body, headers=None):
        h = {"Content-Type": "application/yaml"}
        h.update(headers or {})
        return self.broker.request("POST", path, h, body.encode(), admin=True)

    def get_trigger(self, name, ns="default"):
        return self.broker.request("GET", KN + "/namespaces/%s/triggers/%s" % (ns, name),
                                   admin=True)

    def wait_trigger(self, name, uri=None, gone=False):
        def ok():
            r = self.get_trigger(name)
            if gone:
                return r.status == 404
            if r.status != 200:
                return False
            st = r.json()
            return uri is None or st["status"]["subscriberUri"] == uri and \
                st["status"].get("workerPid", 0) > 0
        wait(ok, "trigger %s %s" % (name, "gone" if gone else "running"))

    def publish(self, etype, broker=None):
        self.n += 1
        r = (broker or self.broker).request(
            "POST", "/default/default", {"ce-id": "e%d" % self.n, "ce-source": "/t",
                                         "ce-type": etype, "ce-specversion": "1.0"}, b"x")
        eq(r.status, 202, "publish")
        return "e%d" % self.n


def delivered(sub, eid, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if eid in sub.ids():
            return True
        time.sleep(0.02)
    return False


# ---- apply ------------------------------------------------------------------------------------

def test_apply_delivers_without_restart():
    with Env() as e:
        f = e.file("new.yaml", trigger("new", e.b.url + "/b", "t.new"))
        rc, out, err = e.cli("apply", "-f", f)
        eq((rc, out, err), (0, "trigger.eventing.knative.dev/new created\n", ""), "apply")
        e.wait_trigger("new", e.b.url + "/b")
        check(delivered(e.b, e.publish("t.new")), "the applied trigger delivers")
        check(delivered(e.a, e.publish("t.base")), "the config file's trigger still delivers")
        check(os.path.exists(e.state), "the state file is written next to the config file")
        check("name: new" in open(e.state).read(), "the state file holds the trigger")
        check("apply: " in e.broker.log() and "written, reloading" in e.broker.log(),
              "the broker logs the apply")


def test_apply_twice_unchanged():
    with Env() as e:
        f = e.file("new.yaml", trigger("new", e.b.url + "/b", "t.new"))
        eq(e.cli("apply", "-f", f)[0], 0, "first apply")
        e.wait_trigger("new", e.b.url + "/b")
        before = os.stat(e.state).st_mtime_ns, open(e.state).read()
        reloads = e.broker.metrics()["ringcast_config_reloads_total"]
        # the same object written differently (flow style, a comment) is the same object
        again = e.file("again.yaml", "# the same\n" + trigger("new", e.b.url + "/b", "t.new"))
        rc, out, err = e.cli("apply", "-f", again)
        eq((rc, out), (0, "trigger.eventing.knative.dev/new unchanged\n"), "apply twice")
        eq((os.stat(e.state).st_mtime_ns, open(e.state).read()), before, "state untouched")
        time.sleep(0.3)
        eq(e.broker.metrics()["ringcast_config_reloads_total"], reloads, "no reload")
        # a config file object applied as it is written there is unchanged too
        rc, out, _ = e.cli("apply", "-f", e.file("base.yaml", trigger("base", e.a.url + "/a",
                                                                        "t.base")))
        eq((rc, out), (0, "trigger.eventing.knative.dev/base unchanged\n"), "config object")


def test_invalid_changes_nothing():
    with Env() as e:
        good = e.file("good.yaml", trigger("keep", e.b.url + "/keep", "t.keep"))
        eq(e.cli("apply", "-f", good)[0], 0, "apply keep")
        e.wait_trigger("keep", e.b.url + "/keep")
        state = open(e.state).read()
        reloads = e.broker.metrics()["ringcast_config_reloads_total"]
        # two documents, the second one bad: all or nothing
        bad = e.file("bad.yaml", trigger("first", e.b.url, "t.x") +
                     trigger("second", e.b.url, "t.y", broker="nope"))
        rc, out, err = e.cli("apply", "-f", bad)
        eq((rc, out), (1, ""), "refused")
        check(bad + ":10: Trigger default/second: 'spec.broker' names broker 'nope'" in err and
              "HTTP 422" in err, "the loader's message with the file's line: %r" % err)
        # several files go as one request: the CLI names the file and its own line
        pre = e.file("pre.yaml", "# first file\n" + trigger("pre", e.b.url, "t.pre"))
        rc, out, err = e.cli("apply", "-f", pre, "-f", bad)
        check(rc == 1 and bad + ":10: " in err, "second file's line: %r" % err)
        r = e.post(APPLY, open(bad).read())
        eq(r.status, 422, "422 over HTTP")
        check(r.json()["message"].startswith("(request):10: "), "the body's line over HTTP")
        eq((r.json()["kind"], r.json()["reason"], r.json()["code"]), ("Status", "Invalid", 422),
           "a Kubernetes Status")
        r = e.post(APPLY, "kind: Trigger\n  bad: [\n")
        eq(r.status, 400, "YAML syntax error: %r" % r.body)
        check("(request):" in r.json()["message"], "names the line")
        r = e.post(APPLY, "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec: {}\n")
        eq(r.status, 400, "RingcastConfig")
        check("restart" in r.json()["message"], "says why: %r" % r.json()["message"])
        r = e.post(APPLY, trigger("dup", e.b.url, "t") + trigger("dup", e.b.url, "u"))
        eq(r.status, 400, "a document twice")
        r = e.post(APPLY, "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nspec: {}\n")
        eq(r.status, 400, "no name")
        r = e.post(APPLY, "")
        eq(r.status, 400, "no documents")
        r = e.post(APPLY, "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                          "metadata: {name: extra}\n")
        eq(r.status, 422, "a new broker needs a restart: %r" % r.body)
        check("restart" in r.json()["message"], "says so")
        eq(open(e.state).read(), state, "state file unchanged")
        time.sleep(0.3)
        eq(e.broker.metrics()["ringcast_config_reloads_total"], reloads, "no reload")
        eq(e.get_trigger("first").status, 404, "nothing of the bad request applied")
        check(delivered(e.a, e.publish("t.base")), "the old triggers still deliver")
        check(delivered(e.b, e.publish("t.keep")), "the applied one too")


def test_override_config_object():
    with Env() as e:
        f = e.file("base.yaml", trigger("base", e.b.url + "/moved", "t.base"))
        rc, out, _ = e.cli("apply", "-f", f)
        eq((rc, out), (0, "trigger.eventing.knative.dev/base configured (overrides the config "
                          "file's)\n"), "override")
        e.wait_trigger("base", e.b.url + "/moved")
        check(delivered(e.b, e.publish("t.base")), "the applied version delivers")
        rc, out, _ = e.cli("delete", "trigger", "base")
        eq((rc, out), (0, "trigger.eventing.knative.dev/base deleted (the config file's "
                          "definition applies again)\n"), "delete the override")
        e.wait_trigger("base", e.a.url + "/a")
        check(delivered(e.a, e.publish("t.base")), "the config file's version is back")
        rc, out, err = e.cli("delete", "trigger", "base")
        eq(rc, 1, "a config file object cannot be deleted")
        check("HTTP 409" in err and e.config + ":" in err and "SIGHUP" in err,
              "409 names the file: %r" % err)
        e.wait_trigger("base", e.a.url + "/a")


# ---- delete -----------------------------------------------------------------------------------

def test_delete_by_name_and_by_file():
    with Env() as e:
        one = e.file("one.yaml", trigger("one", e.b.url + "/1", "t.one"))
        two = e.file("two.yaml", trigger("two", e.b.url + "/2", "t.two", ns="default"))
        rc, out, _ = e.cli("apply", "-f", one, "-f", two)
        eq((rc, out), (0, "trigger.eventing.knative.dev/one created\n"
                          "trigger.eventing.knative.dev/two created\n"), "apply two files")
        e.wait_trigger("one", e.b.url + "/1")
        e.wait_trigger("two", e.b.url + "/2")
        rc, out, _ = e.cli("delete", "trigger", "one", "-n", "default")
        eq((rc, out), (0, "trigger.eventing.knative.dev/one deleted\n"), "delete by name")
        e.wait_trigger("one", gone=True)
        rc, out, _ = e.cli("delete", "-f", two)
        eq((rc, out), (0, "trigger.eventing.knative.dev/two deleted\n"), "delete by file")
        e.wait_trigger("two", gone=True)
        check(delivered(e.a, e.publish("t.base")), "base still delivers")
        rc, _, err = e.cli("delete", "trigger", "one")
        eq(rc, 1, "not there")
        check("not found" in err and "HTTP 404" in err, err)
        rc, _, err = e.cli("delete", "triggers", "two", "-n", "other")
        check(rc == 1 and "namespace other" in err, "another namespace: %r" % err)
        check("name: one" not in open(e.state).read(), "the state file no longer holds them")


def test_delete_refuses_a_dangling_ref():
    cfg = (HEAD % "") + trigger("base", "http://127.0.0.1:9/", "t.base")
    with Env(config_text=cfg) as e:
        port = e.b.port
        docs = ("---\napiVersion: v1\nkind: Service\nmetadata: {name: svc}\n"
                "spec: {ports: [{port: %d}]}\n"
                "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: r}\n"
                "spec:\n  broker: default\n  subscriber: {ref: {apiVersion: v1, kind: Service, "
                "name: svc}}\n" % port)
        rc, out, err = e.cli("apply", "-f", e.file("svc.yaml", docs))
        eq((rc, out), (0, "service/svc created\ntrigger.eventing.knative.dev/r created\n"),
           "a Service and a trigger to it: %r" % err)
        rc, out, err = e.cli("delete", "service", "svc")
        eq(rc, 1, "the trigger still refers to it")
        check("HTTP 422" in err and "svc" in err, err)
        rc, out, _ = e.cli("delete", "-f", e.file("svc.yaml", docs))
        eq((rc, out), (0, "service/svc deleted\ntrigger.eventing.knative.dev/r deleted\n"),
           "both at once")


# ---- restarts -----------------------------------------------------------------------------------

def test_applied_survives_restart_and_sighup():
    a, b = Subscriber(), Subscriber()
    first = Broker(config(a.url + "/a"))
    try:
        cfg = os.path.join(first.tmp.name, "ringcast.yaml")
        f = os.path.join(first.tmp.name, "new.yaml")
        with open(f, "w") as fh:
            fh.write(trigger("new", b.url + "/b", "t.new"))
        eq(cli("apply", "-f", f, "--admin", "127.0.0.1:%d" % first.admin_port)[0], 0, "apply")
        wait(lambda: first.request("GET", KN + "/namespaces/default/triggers/new",
                                   admin=True).status == 200, "applied")
        # SIGHUP reads the config file and the state file again: the trigger stays
        r0 = first.metrics()["ringcast_config_reloads_total"]
        first.signal(signal.SIGHUP)
        wait(lambda: first.metrics()["ringcast_config_reloads_total"] > r0, "SIGHUP reload")
        eq(first.request("GET", KN + "/namespaces/default/triggers/new", admin=True).status, 200,
           "kept by SIGHUP")
        eq(first.stop(), 0, "clean stop")
        # a new process on the same config file loads the state file after it
        with Broker(None, args=["--config", cfg]) as second:
            r = second.request("GET", KN + "/namespaces/default/triggers/new", admin=True)
            eq(r.status, 200, "the applied trigger is there after a restart")
            eid = "restart-1"
            r = second.request("POST", "/default/default", {
                "ce-id": eid, "ce-source": "/t", "ce-type": "t.new", "ce-specversion": "1.0"},
                b"x")
            eq(r.status, 202, "publish")
            check(delivered(b, eid), "and delivers")
            rc, out, err = cli("serve", "--check", "--config", cfg)
            eq(rc, 0, "serve --check loads the state file too: %r" % err)
            check("2 triggers" in out, out)
    finally:
        first.__exit__(None, None, None)
        a.close()
        b.close()


def test_state_file_option_and_without_config():
    with Subscriber() as s:
        block = "  admin:\n    stateFile: applied/objects.yaml\n"
        with Env(admin_block=block) as e:
            os.mkdir(os.path.join(e.dir, "applied"))
            f = e.file("new.yaml", trigger("new", s.url, "t.new"))
            eq(e.cli("apply", "-f", f)[0], 0, "apply")
            check(os.path.exists(os.path.join(e.dir, "applied", "objects.yaml")),
                  "spec.admin.stateFile, relative to the config file's directory")
            check(not os.path.exists(e.state), "not the default")
    with Broker() as b:
        rc, _, err = cli("apply", "-f", "-", "--admin", "127.0.0.1:%d" % b.admin_port,
                         input_text=trigger("x", "http://127.0.0.1:9/", "t"))
        eq(rc, 1, "no config file")
        check("HTTP 409" in err and "--config" in err, err)


# ---- the token ----------------------------------------------------------------------------------

def test_token():
    block = "  admin:\n    token: %s\n" % TOKEN
    with Env(admin_block=block) as e:
        doc = trigger("tok", e.b.url + "/tok", "t.tok")
        r = e.post(APPLY, doc)
        eq(r.status, 401, "no Authorization")
        eq(r.header("WWW-Authenticate"), 'Bearer realm="ringcast"', "challenge")
        eq(r.json()["reason"], "Unauthorized", "Status")
        for bad in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", TOKEN):
            eq(e.post(APPLY, doc, {"Authorization": bad}).status, 401, "malformed %r" % bad)
        eq(e.post(APPLY, doc, {"Authorization": "Bearer " + TOKEN + "x"}).status, 403, "wrong")
        eq(e.post(DELETE, doc, {"Authorization": "Bearer wrong-token"}).status, 403, "wrong")
        r = e.post(APPLY, doc, {"Authorization": "Bearer " + TOKEN})
        eq(r.status, 200, "right token: %r" % r.body)
        eq(r.json()["items"][0]["action"], "created", "created")
        e.wait_trigger("tok", e.b.url + "/tok")
        # reads need none
        eq(e.get_trigger("tok").status, 200, "GET without a token")
        eq(e.broker.request("GET", "/metrics", admin=True).status, 200, "/metrics")
        # the CLI: --token, $RINGCAST_ADMIN_TOKEN, or a clear refusal
        f = e.file("t2.yaml", trigger("t2", e.b.url, "t.t2"))
        rc, _, err = e.cli("apply", "-f", f)
        check(rc == 1 and "HTTP 401" in err and "token" in err, "CLI without token: %r" % err)
        rc, _, err = e.cli("apply", "-f", f, "--token", "not-the-token-at-all")
        check(rc == 1 and "HTTP 403" in err, "CLI wrong token: %r" % err)
        eq(e.cli("apply", "-f", f, "--token", TOKEN)[:2],
           (0, "trigger.eventing.knative.dev/t2 created\n"), "CLI --token")
        eq(e.cli("delete", "trigger", "t2", env={"RINGCAST_ADMIN_TOKEN": TOKEN})[:2],
           (0, "trigger.eventing.knative.dev/t2 deleted\n"), "CLI $RINGCAST_ADMIN_TOKEN")


def test_token_must_be_long():
    bad = HEAD % "  admin:\n    token: short\n"
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "rc-apply-%d.yaml" % os.getpid())
    with open(path, "w") as f:
        f.write(bad)
    try:
        rc, _, err = cli("serve", "--check", "--config", path)
        check(rc == 2 and "spec.admin.token" in err and ":7:" in err, err)
    finally:
        os.unlink(path)


# ---- HTTP -------------------------------------------------------------------------------------

def test_http_limits_and_methods():
    with Env() as e:
        big = "# " + "x" * (1 << 20) + "\n" + trigger("big", e.b.url, "t")
        r = e.post(APPLY, big)
        eq(r.status, 413, "body too large")
        for m in ("GET", "PUT", "DELETE"):
            r = e.broker.request(m, APPLY, admin=True)
            eq(r.status, 405, "%s /apply" % m)
            eq(r.header("Allow"), "POST", "Allow")
        r = e.broker.request("POST", KN + "/triggers", {"Content-Type": "application/yaml"},
                             b"x", admin=True)
        eq(r.status, 405, "the status API stays read-only")
        eq(e.broker.request("POST", "/apis/ringcast.dev/v1alpha1/other", admin=True).status, 404,
           "unknown write path")


# ---- the CLI ----------------------------------------------------------------------------------

def test_cli_help_and_usage():
    rc, out, _ = cli("apply", "--help")
    check(rc == 0 and "-f, --filename FILE" in out and "--token" in out and
          "state file" in out and "docs/operations.md" in out, out)
    rc, out, _ = cli("delete", "--help")
    check(rc == 0 and "RESOURCE NAME" in out and "409" in out and "-n, --namespace" in out, out)
    rc, out, _ = cli("--help")
    check("apply" in out and "delete" in out, "listed in ringcast --help")
    rc, _, err = cli("apply")
    check(rc == 2 and "missing -f FILE" in err, err)
    rc, _, err = cli("delete", "gadget", "x")
    check(rc == 2 and "unknown resource 'gadget'" in err, err)
    rc, _, err = cli("delete", "trigger")
    check(rc == 2 and "missing" in err, err)
    rc, _, err = cli("delete", "trigger", "Bad_Name")
    check(rc == 2 and "not a name" in err, err)
    rc, _, err = cli("apply", "-f", "/nonexistent/x.yaml")
    check(rc == 1 and "cannot open /nonexistent/x.yaml" in err, err)


def test_cli_namespace_check():
    with Env() as e:
        f = e.file("ns.yaml", trigger("x", e.b.url, "t"))
        rc, _, err = e.cli("apply", "-f", f, "-n", "team")
        check(rc == 2 and "not team" in err, err)


def test_cli_broker_not_running():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for args in (["apply", "-f", "-"], ["delete", "trigger", "x"]):
        rc, out, err = cli(*(args + ["--admin", "127.0.0.1:%d" % port, "--timeout", "2"]),
                           input_text=trigger("x", "http://127.0.0.1:9/", "t"))
        eq((rc, out), (1, ""), "exit 1")
        check("cannot reach the broker's admin API at 127.0.0.1:%d" % port in err and
              "ringcast serve" in err, err)


if __name__ == "__main__":
    Runner().run([
        test_apply_delivers_without_restart,
        test_apply_twice_unchanged,
        test_invalid_changes_nothing,
        test_override_config_object,
        test_delete_by_name_and_by_file,
        test_delete_refuses_a_dangling_ref,
        test_applied_survives_restart_and_sighup,
        test_state_file_option_and_without_config,
        test_token,
        test_token_must_be_long,
        test_http_limits_and_methods,
        test_cli_help_and_usage,
        test_cli_namespace_check,
        test_cli_broker_not_running,
    ])
