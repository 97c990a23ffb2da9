"""Config checks of issue 11 (defects 5 and 9b) through the real `ringcast serve`: a subscriber or
dead-letter URI with a password, an empty port or a host that does not resolve, and a ring too
small for the largest event or batch the limits allow, are refused when serve starts (exit 2, one
line naming file, line and problem, never the password) and when a SIGHUP reload would apply
them (the running config stays and keeps delivering). Hosts that never resolve are under
.invalid (RFC 2606); serve gives lookups at most 5 s, so every case here ends within seconds
whether DNS answers, refuses or is unreachable. Every wait is bounded; brokers are stopped by
pid."""

import glob
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import RINGCAST, Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

SECRET = "hunter2-s3cret"
RESOLVE_TIMEOUT_S = 5.0  # RC_HTTP_RESOLVE_TIMEOUT_MS

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
%s"""


def config(*triggers, settings="", broker_spec=""):
    return HEAD % (settings, broker_spec) + "".join(triggers)


def trigger(name, uri, delivery=""):
    doc = ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: %s}\n"
           "spec:\n  broker: default\n  subscriber:\n    uri: \"%s\"\n" % (name, uri))
    return doc + delivery


def line_of(text, needle):
    """1-based line of the first line of `text` that contains `needle`."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in config" % needle)


_seq = [0]


def serve_refuses(cfg, timeout=20.0):
    """Runs `ringcast serve --config` on `cfg` and expects it to refuse the file: exit 2 before
    it listens. Returns (stderr, config path, seconds taken). A serve that starts instead is
    stopped by its pid and its rings removed."""
    _seq[0] += 1
    prefix = "rcck%dx%d" % (os.getpid(), _seq[0])
    with tempfile.TemporaryDirectory(prefix="rc-ck-") as tmp:
        path = os.path.join(tmp, "ringcast.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        t0 = time.monotonic()
        p = subprocess.Popen([RINGCAST, "serve", "--config", path, "--listen", "127.0.0.1:0",
                              "--admin", "127.0.0.1:0", "--ring-prefix", prefix],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The first line on stdout is "listening ..." once serve runs, or nothing when it exits.
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        first = p.stdout.readline() if sel.select(timeout) else None
        sel.close()
        if first is None or first:
            os.kill(p.pid, signal.SIGTERM)  # it runs: stop it (by pid) and report
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            out, err = p.communicate()
        out = (first or "") + out
        took = time.monotonic() - t0
        for shm in glob.glob("/dev/shm/%s.*" % prefix):
            os.unlink(shm)
        check("listening" not in out, "serve started with this config: %r %r" % (out, err))
        eq(p.returncode, 2, "exit code (stderr %r)" % err)
        eq(err.count("\n"), 1, "one line on stderr: %r" % err)
        return err.strip(), path, took


# ---- defect 5: URIs ---------------------------------------------------------------------------


def test_password_in_subscriber_uri_refused():
    cfg = config(trigger("t", "http://alice:%s@127.0.0.1:9/events" % SECRET))
    err, path, _ = serve_refuses(cfg)
    eq(err, "ringcast serve: %s:%d: Trigger default/t: 'spec.subscriber.uri' "
       "\"http://***@127.0.0.1:9/events\": user information (user:password@) is not "
       "supported: ringcast sends no credentials (use an address that needs none, or a local "
       "proxy that adds them)" % (path, line_of(cfg, SECRET)), "message")
    check(SECRET not in err and "alice" not in err, "no credentials in %r" % err)


def test_password_in_dead_letter_uri_refused():
    dls = "  delivery:\n    deadLetterSink:\n      uri: http://bob:%s@127.0.0.1:9/dead\n" % SECRET
    for cfg, who in ((config(trigger("t", "http://127.0.0.1:9/"), broker_spec="spec:\n" + dls),
                      ""),
                     (config(trigger("t", "http://127.0.0.1:9/", delivery=dls)),
                      "Trigger default/t: ")):
        err, path, _ = serve_refuses(cfg)
        eq(err, "ringcast serve: %s:%d: %sspec.delivery.deadLetterSink.uri: "
           "\"http://***@127.0.0.1:9/dead\": user information (user:password@) is not supported: "
           "ringcast sends no credentials (use an address that needs none, or a local proxy that "
           "adds them)" % (path, line_of(cfg, SECRET), who), "message")
        check(SECRET not in err, "no password in %r" % err)


def test_empty_port_refused():
    for uri in ("http://127.0.0.1:/", "http://[::1]:/x", "http://sink.example:/"):
        cfg = config(trigger("t", uri))
        err, path, _ = serve_refuses(cfg)
        eq(err, "ringcast serve: %s:%d: Trigger default/t: 'spec.subscriber.uri' \"%s\": empty "
           "port after ':' (write a port, or leave out the ':' for 80)"
           % (path, line_of(cfg, uri), uri), "message")


def test_unresolvable_host_refused():
    """The host is named with file and line; serve waits at most 5 s for the lookups, so this
    ends quickly whether DNS says no at once or never answers."""
    cfg = config(trigger("ok", "http://127.0.0.1:9/"),
                 trigger("t", "http://subscriber.invalid:8080/events"))
    err, path, took = serve_refuses(cfg)
    prefix = ("ringcast serve: %s:%d: Trigger default/t: host \"subscriber.invalid\" in "
              "'spec.subscriber.uri' " % (path, line_of(cfg, "subscriber.invalid")))
    check(err.startswith(prefix), "%r does not start with %r" % (err, prefix))
    rest = err[len(prefix):]
    check(rest.startswith("does not resolve (") or rest == "did not resolve within 5000 ms", rest)
    check(took < RESOLVE_TIMEOUT_S + 3, "serve took %.1f s to refuse" % took)
    # A dead-letter sink of the broker, likewise.
    dls = "spec:\n  delivery:\n    deadLetterSink: {uri: \"http://dls.invalid/\"}\n"
    err, path, took = serve_refuses(config(trigger("ok", "http://127.0.0.1:9/"),
                                           broker_spec=dls))
    check(("Broker default/default: host \"dls.invalid\" in "
           "'spec.delivery.deadLetterSink.uri' ") in err, err)
    check(took < RESOLVE_TIMEOUT_S + 3, "serve took %.1f s to refuse" % took)


def test_resolvable_names_start():
    """A name that resolves (localhost, from /etc/hosts) is accepted and delivered to."""
    with Subscriber() as s:
        port = s.url.rsplit(":", 1)[1]
        with Broker(config(trigger("t", "http://localhost:%s" % port))) as b:
            r = b.request("POST", "/default/default",
                          {"ce-id": "1", "ce-source": "/t", "ce-type": "a",
                           "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
            eq(r.status, 202, "publish")
            eq([q.ce("id") for q in s.wait_for(1)], ["1"], "delivered via localhost")


def wait_log(b, needle, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and b.log().count(needle) < count:
        time.sleep(0.05)
    eq(b.log().count(needle), count, "%r in the log" % needle)


def test_reload_refuses_and_keeps_running():
    """SIGHUP with each bad URI in turn: the reload is rejected with the reason in the log
    (never the password), counted, and the running trigger keeps delivering."""
    with Subscriber() as s:
        good = config(trigger("t", s.url + "/"))
        with Broker(good) as b:
            path = [a for a in b.proc.args if a.endswith(".yaml")][0]
            bad = [
                (trigger("t", "http://carol:%s@127.0.0.1:9/" % SECRET), "user information"),
                (trigger("t", "http://127.0.0.1:/"), "empty port after ':'"),
                (trigger("t", "http://reload.invalid/"), "host \"reload.invalid\" in "
                 "'spec.subscriber.uri' "),
            ]
            for i, (doc, reason) in enumerate(bad, 1):
                with open(path, "w") as f:
                    f.write(config(doc))
                t0 = time.monotonic()
                b.signal(signal.SIGHUP)
                wait_log(b, "reload rejected, the running config stays", i,
                         timeout=RESOLVE_TIMEOUT_S + 10)
                check(time.monotonic() - t0 < RESOLVE_TIMEOUT_S + 5, "reload answered in time")
                last = [ln for ln in b.log().splitlines() if "reload rejected" in ln][-1]
                check(reason in last, "reason %r in %r" % (reason, last))
                check("%s:%d:" % (path, line_of(config(doc), "uri:")) in last, last)
                eq(b.metrics().get("ringcast_config_reload_errors_total"), float(i), "counted")
                r = b.request("POST", "/default/default",
                              {"ce-id": str(i), "ce-source": "/t", "ce-type": "a",
                               "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
                eq(r.status, 202, "publish")
                eq([q.ce("id") for q in s.wait_for(i)][-1], str(i), "old config delivers")
            check(SECRET not in b.log(), "no password in the log")
            eq(b.metrics().get("ringcast_config_reloads_total"), 0.0, "nothing applied")


# ---- defect 9b: the ring against the limits ---------------------------------------------------


def test_ring_too_small_refused():
    """A 4 MiB ring with the default limits (1 MiB events, 16 KiB headers) used to start and
    answer 413 to events the limits allow; a 8 MiB one, to the largest batches."""
    cfg = config(settings="  ring:\n    size: 4Mi\n")
    err, path, _ = serve_refuses(cfg)
    eq(err, "ringcast serve: %s:%d: 'spec.ring.size' (4194304) is too small for "
       "'spec.limits.maxEventBytes' (1048576, the default) and 'spec.limits.maxHeaderBytes' "
       "(16384, the default): the largest event takes 1069056 bytes of ring (4096 of them record "
       "overhead) and one record may take at most 1048576 (a quarter of the ring, at most 16Mi); "
       "use a ring of at least 8Mi or lower those limits" % (path, line_of(cfg, "4Mi")),
       "message")
    cfg = config(settings="  ring:\n    size: 8Mi\n")
    err, path, _ = serve_refuses(cfg)
    check(err.startswith("ringcast serve: %s:%d: 'spec.ring.size' (8388608) is too small for "
                         "'spec.limits.maxBatchBytes' (4194304, the default) and "
                         "'spec.limits.maxBatchEvents' (1000, the default)"
                         % (path, line_of(cfg, "8Mi"))), err)


# The smallest limits rule's own boundary on a 1 MiB ring: one record takes at most 256 KiB, one
# batch 512 KiB. 248 KiB events + 4 KiB of headers + 4 KiB of overhead = 256 KiB; 248 KiB of
# batch + 64 events x 4 KiB = 504 KiB.
EDGE = """  ring: {size: 1Mi}
  limits: {maxEventBytes: 248Ki, maxHeaderBytes: 4Ki, maxBatchBytes: 248Ki, maxBatchEvents: 64}
"""


def test_ring_rule_is_enough():
    """At the boundary the rule allows, the worst events the ingress accepts are stored (202),
    not refused by the ring (413): a binary event of the largest body with 4 KiB of headers
    that are mostly extensions, a structured event whose many extensions grow when stored
    (1e9 is stored as 1000000000), and a full batch of such events."""
    with Broker(config(settings=EDGE)) as b:
        # Binary: the request line and headers just under 4 KiB, as many extensions as the
        # header count allows (100 headers).
        h = {"ce-id": "bin", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0",
             "Content-Type": "application/octet-stream"}
        for i in range(90):
            h["ce-x%d" % i] = "v"
        head = len("POST /default/default HTTP/1.1\r\n") + sum(
            len("%s: %s\r\n" % kv) for kv in h.items()) + len("Host: ringcast\r\n") + len(
            "Content-Length: 253952\r\n") + 2
        h["ce-pad"] = "p" * (4096 - head - len("ce-pad: \r\n") - 8)
        r = b.request("POST", "/default/default", h, b"\x00" * (248 * 1024))
        eq(r.status, 202, "largest binary event (%r)" % r.body)

        def structured(eid, size, ext):
            ev = {"specversion": "1.0", "id": eid, "source": "/s", "type": "t"}
            for i in range(ext):
                ev["x%d" % i] = 0  # placeholder, written as 1e9 below
            text = json.dumps(ev, separators=(",", ":")).replace(":0", ":1e9")
            pad = size - len(text) - len(',"data":""')
            check(pad >= 0, "room for data")
            return text[:-1] + ',"data":"' + "d" * pad + '"}'

        body = structured("json", 248 * 1024, 120)
        eq(len(body), 248 * 1024, "body size")
        r = b.request("POST", "/default/default",
                      {"Content-Type": "application/cloudevents+json"}, body)
        eq(r.status, 202, "largest structured event (%r)" % r.body)

        per = (248 * 1024 - 2) // 64 - 1
        events = [structured("b%d" % i, per, 16) for i in range(64)]
        batch = "[" + ",".join(events) + "]"
        check(len(batch) <= 248 * 1024, "batch size %d" % len(batch))
        r = b.request("POST", "/default/default",
                      {"Content-Type": "application/cloudevents-batch+json"}, batch)
        eq(r.status, 202, "largest batch (%r)" % r.body)
        # One byte over the event limit is the body limit's 413, not the ring's.
        r = b.request("POST", "/default/default",
                      {"ce-id": "big", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0",
                       "Content-Type": "application/octet-stream"}, b"\x00" * (248 * 1024 + 1))
        eq(r.status, 413, "over maxEventBytes")
        check(b"ring" not in r.body, "refused by the limit, not the ring: %r" % r.body)


# ---- issue 14, items 3 and 4: serve --check, manifests as users keep them --------------------

# A file as kept for a cluster: a Namespace and a Deployment beside, a Service whose port (80)
# is not where the consumer listens (its targetPort), a Broker with Knative's spec.config, and a
# dead-letter sink given as a ref to a second Service.
KEPT = """apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer, namespace: default}
spec:
  replicas: 1
  template: {spec: {containers: [{name: c, image: consumer:1}]}}
---
apiVersion: v1
kind: Service
metadata: {name: consumer}
spec:
  selector: {app: consumer}
  ports:
  - port: 80
    targetPort: %(port)s
---
apiVersion: v1
kind: Service
metadata: {name: dead}
spec:
  ports: [{port: 81, targetPort: %(dead)s}]
---
apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec: {workers: 1}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
spec:
  config: {apiVersion: v1, kind: ConfigMap, name: config-br-defaults}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t}
spec:
  broker: default
  subscriber:
    ref: {apiVersion: v1, kind: Service, name: consumer}
    uri: /in
  delivery:
    retry: 0
    deadLetterSink:
      ref: {apiVersion: v1, kind: Service, name: dead}
"""


def serve_check(path, *args):
    """`ringcast serve --check --config PATH` with a ring prefix of its own: returns (exit code,
    stdout, stderr) after checking that it left no ring behind."""
    _seq[0] += 1
    prefix = "rcck%dx%d" % (os.getpid(), _seq[0])
    code, out, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix", prefix]
                             + list(args))
    left = glob.glob("/dev/shm/%s.*" % prefix)
    for shm in left:
        os.unlink(shm)
    eq(left, [], "rings created by --check")
    return code, out, err


def test_check_valid():
    """--check on a valid file: exit 0, the summary on stdout, one line per skipped document
    and per warning on stderr (FILE:LINE), nothing listening on the file's ports."""
    with tempfile.TemporaryDirectory(prefix="rc-ck-") as tmp:
        path = os.path.join(tmp, "kept.yaml")
        cfg = KEPT % {"port": 9, "dead": 10}
        # The file's own listen port: a start would take it, --check must not.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with open(path, "w") as f:
            f.write("apiVersion: ringcast.dev/v1alpha1\n".join(
                cfg.rsplit("apiVersion: ringcast.dev/v1alpha1\n", 1)).replace(
                "spec: {workers: 1}", "spec: {workers: 1, listen: 127.0.0.1:%d}" % port))
        code, out, err = serve_check(path)
        eq(code, 0, "exit code (stderr %r)" % err)
        eq(out, "%s: valid: 1 broker, 1 trigger, 0 Dapr subscriptions (2 warnings, 2 documents "
           "skipped)\n" % path, "summary")
        eq(err.splitlines(), [
            "%s:1: skipping v1 Namespace default: not a ringcast kind" % path,
            "%s:5: skipping apps/v1 Deployment default/consumer: not a ringcast kind" % path,
            "%s:12: warning: Service default/consumer: spec.selector ignored: ringcast sends this "
            "Service's events to 127.0.0.1:9" % path,
            "%s:%d: warning: Broker default/default: 'spec.config' ignored: ringcast has one "
            "broker class, set up by the RingcastConfig document"
            % (path, line_of(cfg, "config: {apiVersion")),
        ], "notes")
        with socket.socket() as probe:  # still free: --check listened on nothing
            probe.bind(("127.0.0.1", port))


def test_check_invalid():
    """--check on invalid files: exit 2 and the problem as FILE:LINE: message, the password of
    a URI masked; an option checked as a start checks it."""
    with tempfile.TemporaryDirectory(prefix="rc-ck-") as tmp:
        path = os.path.join(tmp, "bad.yaml")
        cfg = KEPT % {"port": 9, "dead": 10} + (
            "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: u\n"
            "  annotations: {ringcast.dev/priority: \"100\"}\n"
            "spec: {broker: default, subscriber: {uri: \"http://127.0.0.1:9/\"}}\n")
        with open(path, "w") as f:
            f.write(cfg)
        code, out, err = serve_check(path)
        eq((code, out), (2, ""), "exit code and stdout")
        eq(err, "%s:%d: Trigger default/u: unknown annotation 'ringcast.dev/priority': ringcast "
           "reads ringcast.dev/max-inflight, ringcast.dev/rate-limit, ringcast.dev/lag-limit, "
           "ringcast.dev/lag-policy and ringcast.dev/start-from on a Trigger, "
           "ringcast.dev/storage-type, -directory, -durability, -flush-interval, "
           "ringcast.dev/dedup-window and -capacity on a Broker, ringcast.dev/endpoints on a "
           "Service\n" % (path, line_of(cfg, "priority")), "message")

        cfg = config(trigger("t", "http://alice:%s@127.0.0.1:9/events" % SECRET))
        with open(path, "w") as f:
            f.write(cfg)
        code, out, err = serve_check(path)
        eq(code, 2, "exit code")
        check(err.startswith("%s:%d: Trigger default/t: " % (path, line_of(cfg, SECRET))), err)
        check(SECRET not in err, "no password in %r" % err)

        cfg = config(trigger("t", "http://127.0.0.1:9/"))
        with open(path, "w") as f:
            f.write(cfg)
        eq(serve_check(path)[:2], (0, "%s: valid: 1 broker, 1 trigger, 0 Dapr subscriptions\n"
                                   % path), "valid")
        eq(serve_check(path, "--listen", "nowhere")[::2],
           (2, "ringcast serve: --listen must be IP:PORT, not 'nowhere'\n"), "bad --listen")
        eq(run_cli(["serve", "--check"]), (2, "", "ringcast serve: --check needs --config FILE\n"),
           "--check without a file")


def test_directory_and_missing_file():
    """A directory as --config is named as one (it was "read error"), by --check and by a start;
    a file that does not exist says why."""
    with tempfile.TemporaryDirectory(prefix="rc-ck-") as tmp:
        eq(serve_check(tmp), (2, "", "%s is a directory, not a config file\n" % tmp), "--check")
        code, out, err = run_cli(["serve", "--config", tmp, "--listen", "127.0.0.1:0",
                                  "--admin", "127.0.0.1:0"])
        eq((code, out, err), (2, "", "ringcast serve: %s is a directory, not a config file\n"
                              % tmp), "start")
        missing = os.path.join(tmp, "nope.yaml")
        eq(serve_check(missing),
           (2, "", "%s: cannot open: No such file or directory\n" % missing), "missing file")


def test_target_port_delivers():
    """An unchanged manifest with port: 80 and targetPort: P delivers to P (it went to :80),
    the uri of the ref as the path; a refused event goes to the dead-letter sink given as a ref
    to another Service (through its targetPort). The skip and warning lines are in the log."""
    def refuse(_i, req):
        return (400, {}, b"", 0.0) if req.ce("id") == "bad" else (200, {}, b"", 0.0)

    with Subscriber(refuse) as s, Subscriber() as dead:
        port = s.url.rsplit(":", 1)[1]
        dport = dead.url.rsplit(":", 1)[1]
        with Broker(KEPT % {"port": port, "dead": dport}) as b:
            for eid in ("1", "bad"):
                r = b.request("POST", "/default/default",
                              {"ce-id": eid, "ce-source": "/t", "ce-type": "a",
                               "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x")
                eq(r.status, 202, "publish %s" % eid)
            got = s.wait_for(2)
            eq(sorted(q.ce("id") for q in got), ["1", "bad"], "delivered to the targetPort")
            eq({q.path for q in got}, {"/in"}, "path from the ref's uri")
            eq([q.ce("id") for q in dead.wait_for(1)], ["bad"], "dead-lettered via the ref")
            log = b.log()
            check("skipping apps/v1 Deployment default/consumer: not a ringcast kind" in log, log)
            check("Service default/consumer: spec.selector ignored" in log, log)


if __name__ == "__main__":
    Runner().run([
        test_password_in_subscriber_uri_refused,
        test_password_in_dead_letter_uri_refused,
        test_empty_port_refused,
        test_unresolvable_host_refused,
        test_resolvable_names_start,
        test_reload_refuses_and_keeps_running,
        test_ring_too_small_refused,
        test_ring_rule_is_enough,
        test_check_valid,
        test_check_invalid,
        test_directory_and_missing_file,
        test_target_port_delivers,
    ])
