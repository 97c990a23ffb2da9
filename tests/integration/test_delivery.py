#!/usr/bin/env python3
"""Delivery end to end: the real `ringcast serve` with Trigger manifests, worker processes and
real HTTP subscribers on loopback (tests/integration/subscriber.py). Fan-out, filters, retries,
dead letters, replies and TTL, the in-flight window, timeouts, kill -9 of a worker, SIGHUP, and
the admin listener answering while workers take their time to stop (reload, SIGTERM)."""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import children, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber, b64  # noqa: E402

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: %d
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def trigger(name, uri, filt="", delivery="", annotations="", extra=""):
    doc = "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n" % name
    if annotations:
        doc += "  annotations:\n" + "".join("    %s: \"%s\"\n" % kv for kv in annotations)
    doc += "spec:\n  broker: default\n  subscriber: {uri: %s}\n" % uri
    if filt:
        doc += filt
    if delivery:
        doc += "  delivery:\n" + "".join("    %s\n" % line for line in delivery)
    return doc + extra


def config(*triggers, workers=1):
    return HEAD % workers + "".join(triggers)


def publish(b, i, etype="a", headers=None, body=b"data", path="/default/default"):
    h = {"ce-id": str(i), "ce-source": "/test", "ce-type": etype, "ce-specversion": "1.0",
         "Content-Type": "text/plain"}
    h.update(headers or {})
    r = b.request("POST", path, h, body)
    eq(r.status, 202, "publish status (%r)" % r.body)


def metric(b, name, trig):
    key = '%s{namespace="default",trigger="%s",broker="default"}' % (name, trig)
    return b.metrics().get(key)


def wait_metric(b, name, trig, value, timeout=10.0):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = metric(b, name, trig)
        if v == value:
            return
        time.sleep(0.05)
    raise AssertionError("%s{%s} = %r, expected %r" % (name, trig, v, value))


def status_seq(*statuses, headers=None, body=b""):
    """Answers the i-th request with statuses[i] (the last one repeats)."""
    def f(i, _req):
        return statuses[min(i, len(statuses) - 1)], headers or {}, body, 0.0
    return f


# ---- tests ----------------------------------------------------------------------------------

def test_fanout_and_filters():
    with Subscriber() as s_all, Subscriber() as s_a, Subscriber() as s_or, \
            Subscriber() as s_sql, Subscriber() as s_not:
        cfg = config(
            trigger("all", s_all.url),
            trigger("only-a", s_a.url, "  filter: {attributes: {type: a}}\n"),
            trigger("pfx", s_or.url, "  filters: [{prefix: {type: order.}}]\n"),
            trigger("sql", s_sql.url, "  filters: [{cesql: \"type = 'b' AND source LIKE '/t%'\"}]\n"),
            trigger("not", s_not.url,
                    "  filters: [{not: {any: [{exact: {type: a}}, {suffix: {type: .x}}]}}]\n"),
            workers=2)
        with Broker(cfg) as b:
            publish(b, 1, "a")
            publish(b, 2, "b")
            publish(b, 3, "order.x")
            publish(b, 4, "order.y")
            eq(sorted(r.ce("id") for r in s_all.wait_for(4)), ["1", "2", "3", "4"], "all")
            eq([r.ce("id") for r in s_a.wait_for(1)], ["1"], "only-a")
            eq(sorted(r.ce("id") for r in s_or.wait_for(2)), ["3", "4"], "prefix")
            eq([r.ce("id") for r in s_sql.wait_for(1)], ["2"], "cesql")
            eq(sorted(r.ce("id") for r in s_not.wait_for(2)), ["2", "4"], "not/any/suffix")
            time.sleep(0.3)
            eq((s_all.count(), s_a.count(), s_or.count(), s_sql.count(), s_not.count()),
               (4, 1, 2, 1, 2), "no extra deliveries")
            wait_metric(b, "ringcast_trigger_delivered_total", "all", 4)
            wait_metric(b, "ringcast_trigger_lag_events", "all", 0)


def test_binary_and_structured_headers():
    with Subscriber() as sb, Subscriber() as sj:
        cfg = config(trigger("bin", sb.url + "/in?x=1"),
                     trigger("json", sj.url, delivery=["format: json"]))
        with Broker(cfg) as b:
            publish(b, 7, "a", {"ce-knativebrokerttl": "17", "ce-myext": "v"}, b"hello")
            r = sb.wait_for(1)[0]
            eq(r.path, "/in?x=1", "path")
            eq(r.headers.get("prefer"), "reply", "Prefer")
            eq(r.headers.get("kn-namespace"), "default", "Kn-Namespace")
            eq(r.ce("knativebrokerttl"), None, "ttl not sent")
            eq(r.ce("myext"), "v", "extension")
            eq(r.headers.get("content-type"), "text/plain", "content type")
            eq(r.body, b"hello", "data untouched")
            j = sj.wait_for(1)[0]
            eq(j.headers.get("content-type"), "application/cloudevents+json", "structured")
            ev = json.loads(j.body)
            eq((ev["id"], ev["type"], ev["data"], ev["myext"]), ("7", "a", "hello", "v"), "json")
            check("knativebrokerttl" not in ev, "ttl not in structured event")


def test_retries_then_success():
    with Subscriber(status_seq(500, 503, 200)) as s:
        cfg = config(trigger("t", s.url, delivery=["retry: 3", "backoffDelay: PT0.1S"]))
        with Broker(cfg) as b:
            publish(b, 1)
            reqs = s.wait_for(3)
            eq(len(reqs), 3, "attempts")
            d1, d2 = reqs[1].t - reqs[0].t, reqs[2].t - reqs[1].t
            check(0.09 <= d1 < 0.6, "first backoff %.3f" % d1)
            check(0.19 <= d2 < 0.8, "second backoff (exponential) %.3f" % d2)
            wait_metric(b, "ringcast_trigger_delivered_total", "t", 1)
            wait_metric(b, "ringcast_trigger_retried_total", "t", 2)
            eq(metric(b, "ringcast_trigger_failed_total", "t"), 0, "failed")


def test_retry_after_and_exhaustion_without_sink():
    with Subscriber(status_seq(429, 500, headers={"Retry-After": "1"})) as s:
        cfg = config(trigger("t", s.url, delivery=["retry: 1", "backoffDelay: PT0.01S"]))
        with Broker(cfg) as b:
            publish(b, 1)
            reqs = s.wait_for(2)
            check(reqs[1].t - reqs[0].t >= 0.95, "Retry-After honoured")
            wait_metric(b, "ringcast_trigger_dropped_total", "t", 1)
            eq(metric(b, "ringcast_trigger_failed_total", "t"), 1, "failed")
            time.sleep(0.2)
            eq(s.count(), 2, "retry: 1 means two attempts")


def test_4xx_goes_to_dead_letter():
    with Subscriber(status_seq(400, body=b"bad thing")) as s, Subscriber() as dlq:
        cfg = config(trigger("t", s.url, delivery=["retry: 5", "backoffDelay: PT0.01S",
                                                   "deadLetterSink: {uri: %s/dlq}" % dlq.url]))
        with Broker(cfg) as b:
            publish(b, 9, "a", body=b"payload")
            d = dlq.wait_for(1)[0]
            eq(d.path, "/dlq", "dlq path")
            eq(d.ce("id"), "9", "same event")
            eq(d.ce("knativeerrordest"), s.url, "knativeerrordest")
            eq(d.ce("knativeerrorcode"), "400", "knativeerrorcode")
            eq(d.ce("knativeerrordata"), b64(b"bad thing"), "knativeerrordata")
            eq(d.body, b"payload", "data")
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "t", 1)
            eq(s.count(), 1, "400 is not retried")


def test_dead_letter_retried_then_succeeds():
    with Subscriber(status_seq(500)) as s, Subscriber(status_seq(503, 200)) as dlq:
        cfg = config(trigger("t", s.url, delivery=["retry: 1", "backoffDelay: PT0.05S",
                                                   "deadLetterSink: {uri: %s}" % dlq.url]))
        with Broker(cfg) as b:
            publish(b, 1)
            reqs = dlq.wait_for(2)
            eq(len(reqs), 2, "dead-letter attempts")
            eq(reqs[1].ce("knativeerrorcode"), "500", "code")
            wait_metric(b, "ringcast_trigger_dead_lettered_total", "t", 1)
            eq(s.count(), 2, "subscriber attempts")
            eq(metric(b, "ringcast_trigger_dropped_total", "t"), 0, "nothing dropped")


def test_transport_error_to_dead_letter_code_500():
    with Subscriber() as dlq:
        cfg = config(trigger("t", "http://127.0.0.1:1/", delivery=[
            "retry: 1", "backoffDelay: PT0.01S", "deadLetterSink: {uri: %s}" % dlq.url]))
        with Broker(cfg) as b:
            publish(b, 1)
            d = dlq.wait_for(1)[0]
            eq(d.ce("knativeerrorcode"), "500", "transport error code")
            eq(d.ce("knativeerrordata"), None, "no body, no data")


def reply_with(etype):
    def f(_i, req):
        return 200, {"ce-id": "r-" + (req.ce("id") or ""), "ce-source": "/replier",
                     "ce-type": etype, "ce-specversion": "1.0",
                     "Content-Type": "text/plain"}, b"reply", 0.0
    return f


def test_replies_reenter_and_ttl():
    with Subscriber(reply_with("reply.x")) as s1, Subscriber() as s2:
        cfg = config(trigger("first", s1.url, "  filter: {attributes: {type: a}}\n"),
                     trigger("second", s2.url, "  filter: {attributes: {type: reply.x}}\n"))
        with Broker(cfg) as b:
            publish(b, 1, "a")
            r = s2.wait_for(1)[0]
            eq((r.ce("id"), r.ce("source"), r.body), ("r-1", "/replier", b"reply"), "reply")
            wait_metric(b, "ringcast_trigger_replies_total", "first", 1)
            ring = b.tail("default/default", "--from", "oldest")
            ttls = {e["id"]: e.get("knativebrokerttl") for e in ring}
            eq(ttls.get("r-1"), 254, "reply TTL decremented")
            # TTL 1: the reply would have 0 and is dropped.
            publish(b, 2, "a", {"ce-knativebrokerttl": "1"})
            wait_metric(b, "ringcast_trigger_replies_expired_total", "first", 1)
            time.sleep(0.2)
            eq(s2.count(), 1, "expired reply not delivered")


def test_reply_loop_ends_by_ttl():
    with Subscriber(reply_with("a")) as s:
        cfg = config(trigger("loop", s.url, "  filter: {attributes: {type: a}}\n"))
        with Broker(cfg) as b:
            publish(b, 1, "a", {"ce-knativebrokerttl": "4"})
            wait_metric(b, "ringcast_trigger_replies_expired_total", "loop", 1)
            eq(s.count(), 4, "ttl 4: the event and three replies")
            eq(metric(b, "ringcast_trigger_replies_total", "loop"), 3, "stored replies")


def test_202_and_non_event_body_are_not_replies():
    def f(i, _req):
        if i == 0:
            return 202, {"ce-id": "x", "ce-source": "/s", "ce-type": "a",
                         "ce-specversion": "1.0"}, b"", 0.0
        return 200, {"Content-Type": "application/json"}, b'{"not":"an event"}', 0.0
    with Subscriber(f) as s:
        cfg = config(trigger("t", s.url))
        with Broker(cfg) as b:
            publish(b, 1)
            publish(b, 2)
            wait_metric(b, "ringcast_trigger_delivered_total", "t", 2)
            time.sleep(0.2)
            eq(s.count(), 2, "no reply re-entered")
            eq(metric(b, "ringcast_trigger_replies_total", "t"), 0, "replies")


def test_inflight_limit():
    def slow(_i, _req):
        return 200, {}, b"", 0.3
    with Subscriber(slow) as s:
        cfg = config(trigger("t", s.url, annotations=[("ringcast.dev/max-inflight", 2)]))
        with Broker(cfg) as b:
            for i in range(8):
                publish(b, i)
            s.wait_for(8, timeout=15)
            wait_metric(b, "ringcast_trigger_delivered_total", "t", 8, timeout=15)
            eq(s.max_active, 2, "at most 2 requests in flight")


def test_hanging_subscriber_does_not_block_others():
    def hang(_i, _req):
        return 200, {}, b"", 3.0
    with Subscriber(hang) as slow, Subscriber() as fast:
        cfg = config(trigger("slow", slow.url, delivery=["retry: 0", "timeout: PT0.5S"]),
                     trigger("fast", fast.url))
        with Broker(cfg) as b:
            t0 = time.monotonic()
            for i in range(20):
                publish(b, i)
            fast.wait_for(20, timeout=5)
            check(time.monotonic() - t0 < 2.0, "fast trigger delivered while slow hangs")
            eq(fast.count(), 20, "fast got everything")
            wait_metric(b, "ringcast_trigger_dropped_total", "slow", 20, timeout=20)


def worker_pids(b):
    return children(b.proc.pid)


def test_kill_worker_no_loss():
    with Subscriber() as s:
        cfg = config(trigger("t", s.url), workers=1)
        with Broker(cfg) as b:
            pids = worker_pids(b)
            eq(len(pids), 1, "one worker")
            n = 0
            for i in range(200):
                publish(b, i)
                n += 1
                if i == 100:
                    os.kill(pids[0], signal.SIGKILL)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(set(s.ids())) < n:
                time.sleep(0.05)
            eq(len(set(s.ids())), n, "every accepted event delivered at least once")
            m = b.metrics()
            eq(m.get("ringcast_worker_restarts_total"), 1.0, "restarts")
            check(worker_pids(b) != pids, "a new worker")
            check("killed by signal 9" in b.log(), "crash logged")


def test_sighup_add_remove_change():
    with Subscriber() as s1, Subscriber() as s2, Subscriber() as s3, Subscriber() as s1b:
        v1 = config(trigger("keep", s1.url, "  filter: {attributes: {type: a}}\n"),
                    trigger("gone", s2.url))
        v2 = config(trigger("keep", s1b.url, "  filter: {attributes: {type: a}}\n",
                            delivery=["retry: 2"]),
                    trigger("new", s3.url))
        with Broker(v1) as b:
            path = [a for a in b.proc.args if a.endswith(".yaml")][0]
            publish(b, 1, "a")
            s1.wait_for(1)
            s2.wait_for(1)
            publish(b, 2, "b")  # before the reload: the new trigger must not see it
            s2.wait_for(2)
            with open(path, "w") as f:
                f.write(v2)
            b.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and b.metrics().get(
                    "ringcast_config_reloads_total") != 1.0:
                time.sleep(0.05)
            eq(b.metrics().get("ringcast_config_reloads_total"), 1.0, "reloaded")
            publish(b, 3, "a")
            publish(b, 4, "b")
            eq([r.ce("id") for r in s1b.wait_for(1)], ["3"], "changed trigger's new subscriber")
            eq(sorted(r.ce("id") for r in s3.wait_for(2)), ["3", "4"], "added trigger from latest")
            time.sleep(0.3)
            eq(s2.count(), 2, "removed trigger gets nothing more")
            eq(s1.count(), 1, "old subscriber of the changed trigger")
            eq(metric(b, "ringcast_trigger_delivered_total", "keep"), 2, "counters kept")
            eq(metric(b, "ringcast_trigger_delivered_total", "gone"), None, "removed from metrics")


def test_sighup_bad_config_keeps_running():
    with Subscriber() as s:
        with Broker(config(trigger("t", s.url))) as b:
            path = [a for a in b.proc.args if a.endswith(".yaml")][0]
            with open(path, "w") as f:
                f.write(config(trigger("t", "http://127.0.0.1:1/",
                                       "  filters: [{prefx: {type: a}}]\n")))
            b.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "reload rejected" not in b.log():
                time.sleep(0.05)
            check("reload rejected" in b.log() and "prefx" in b.log(), "reason logged")
            publish(b, 1)
            eq([r.ce("id") for r in s.wait_for(1)], ["1"], "old config still delivers")
            eq(b.metrics().get("ringcast_config_reload_errors_total"), 1.0, "counted")


# ---- the admin listener while workers stop -----------------------------------------------------

def with_drain(cfg, drain):
    """`cfg` (from config()) with spec.shutdownTimeout = `drain` (such as "3s")."""
    return cfg.replace("spec:\n  workers:", "spec:\n  shutdownTimeout: %s\n  workers:" % drain, 1)


def holding(release):
    """A subscriber behaviour that holds its first request until `release` is set (at most
    30 s), so a worker stopping with it in flight takes its whole drain time."""
    def f(i, _req):
        if i == 0:
            release.wait(30)
        return 200, {}, b"", 0.0
    return f


def probe_admin(b, seconds, limit, path="/healthz", status=200):
    """GETs `path` on the admin port (a new connection each time, as a probe does) every
    0.1 s for `seconds`; each answer must be `status` within `limit` seconds. Returns the
    number of probes. A loop held by a stopping worker answers after its drain: seconds."""
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        r = b.request("GET", path, admin=True)
        dt = time.monotonic() - t
        eq(r.status, status, "%s status" % path)
        check(dt < limit, "%s answered in %.0f ms (probe %d), limit %.0f ms"
              % (path, dt * 1000, n, limit * 1000))
        n += 1
        time.sleep(0.1)
    return n


def wait_reloads(b, value, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and b.metrics().get(
            "ringcast_config_reloads_total") != value:
        time.sleep(0.02)
    eq(b.metrics().get("ringcast_config_reloads_total"), value, "reloads")


def test_admin_answers_during_a_stuck_reload():
    """A reload whose old worker cannot stop at once (its subscriber holds the request in
    flight, drain 3 s): /healthz answers within 50 ms all along, /metrics shows the running
    table (no reload applied yet, the held event in flight), and the reload completes after
    the drain; the held event is sent again by the new worker."""
    release = threading.Event()
    with Subscriber(holding(release)) as s:
        cfg = with_drain(config(trigger("t", s.url)), "3s")
        with Broker(cfg) as b:
            try:
                publish(b, 1)
                s.wait_for(1)
                eq(s.count(), 1, "the event is held by the subscriber")
                t0 = time.monotonic()
                b.signal(signal.SIGHUP)
                time.sleep(0.05)
                n = probe_admin(b, 1.5, 0.05)
                check(n >= 10, "%d probes" % n)
                m = b.metrics()
                eq(m.get("ringcast_config_reloads_total"), 0.0, "mid-reload: not applied yet")
                eq(metric(b, "ringcast_trigger_inflight", "t"), 1, "mid-reload: still in flight")
                check("reloading " in b.log(), "reload start logged")
                wait_reloads(b, 1.0)
                took = time.monotonic() - t0
                check(took >= 2.5, "the old worker held the reload for its drain (%.2fs)" % took)
                check("reloaded " in b.log(), "reload logged")
                eq([r.ce("id") for r in s.wait_for(2)], ["1", "1"], "sent again after reload")
                publish(b, 2)
                eq([r.ce("id") for r in s.wait_for(3)][2:], ["2"], "new worker delivers")
            finally:
                release.set()


def test_sighup_during_a_reload_runs_after_it():
    """A SIGHUP while a reload waits for a stuck worker is remembered: once the first reload is
    applied, the file is read again (with what it says by then)."""
    release = threading.Event()
    with Subscriber(holding(release)) as s, Subscriber() as two, Subscriber() as three:
        cfg = with_drain(config(trigger("t", s.url)), "2s")
        with Broker(cfg) as b:
            try:
                path = [a for a in b.proc.args if a.endswith(".yaml")][0]
                publish(b, 1)
                s.wait_for(1)
                with open(path, "w") as f:
                    f.write(with_drain(config(trigger("t", s.url), trigger("two", two.url)),
                                       "2s"))
                b.signal(signal.SIGHUP)
                time.sleep(0.3)
                with open(path, "w") as f:
                    f.write(with_drain(config(trigger("t", s.url), trigger("two", two.url),
                                              trigger("three", three.url)), "2s"))
                b.signal(signal.SIGHUP)
                b.signal(signal.SIGHUP)
                probe_admin(b, 0.5, 0.25)
                eq(b.metrics().get("ringcast_config_reloads_total"), 0.0, "first still waiting")
                release.set()
                wait_reloads(b, 2.0)
                time.sleep(0.3)
                eq(b.metrics().get("ringcast_config_reloads_total"), 2.0, "two SIGHUPs, one more")
                eq(b.log().count("the file is read again"), 1, "queued once")
                publish(b, 2)
                eq([r.ce("id") for r in three.wait_for(1)], ["2"], "third version applied")
                eq([r.ce("id") for r in two.wait_for(1)], ["2"], "second trigger kept")
            finally:
                release.set()


def test_admin_answers_while_stopping():
    """SIGTERM with a delivery held in flight (drain 2 s): the workers get their drain while
    the admin listener still answers (/healthz 200, /readyz 503) at once; then the
    broker exits 0."""
    release = threading.Event()
    with Subscriber(holding(release)) as s:
        cfg = with_drain(config(trigger("t", s.url)), "2s")
        with Broker(cfg) as b:
            try:
                publish(b, 1)
                s.wait_for(1)
                t0 = time.monotonic()
                b.signal(signal.SIGTERM)
                time.sleep(0.1)
                probe_admin(b, 1.0, 0.25)
                probe_admin(b, 0.3, 0.25, "/readyz", 503)
                eq(b.wait(10), 0, "exit code")
                took = time.monotonic() - t0
                check(took >= 1.8, "the worker had its drain (%.2fs)" % took)
                check("stopped" in b.log(), "stop logged")
            finally:
                release.set()


def test_stop_during_a_reload():
    """SIGTERM while a reload waits for a stuck worker: the reload is dropped, the worker keeps
    the drain it was given, /healthz answers meanwhile, and the broker exits 0."""
    release = threading.Event()
    with Subscriber(holding(release)) as s:
        cfg = with_drain(config(trigger("t", s.url)), "2s")
        with Broker(cfg) as b:
            try:
                publish(b, 1)
                s.wait_for(1)
                t0 = time.monotonic()
                b.signal(signal.SIGHUP)
                time.sleep(0.3)
                b.signal(signal.SIGTERM)
                time.sleep(0.1)
                probe_admin(b, 0.8, 0.25)
                eq(b.wait(10), 0, "exit code")
                took = time.monotonic() - t0
                check(1.8 <= took < 3.5, "stopped with the reload's deadline (%.2fs)" % took)
                check("the reload in progress is not applied" in b.log(), "reload dropped")
                check("reloaded " not in b.log(), "nothing applied")
            finally:
                release.set()


def test_restart_resumes_saved_cursor():
    """A broker stopped with undelivered events resumes each trigger from its cursor."""
    def down(_i, _req):
        return 503, {}, b"", 0.0
    with Subscriber(down) as s:
        cfg = config(trigger("t", s.url, delivery=["retry: 100", "backoffDelay: PT0.05S",
                                                   "backoffMax: PT0.05S"]))
        b = Broker(cfg)
        try:
            publish(b, 1)
            s.wait_for(2)
            b.stop()
            s.behaviour = status_seq(200)
            prefix = b.prefix
            b2 = Broker(cfg, args=["--ring-prefix", prefix])
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and "1" not in [
                        r.ce("id") for r in s.requests[-1:]]:
                    time.sleep(0.05)
                wait_metric(b2, "ringcast_trigger_delivered_total", "t", 1)
                check("resuming from its saved cursor" in b2.log(), "resumed")
            finally:
                b2.stop()
                b2.remove_rings()
        finally:
            b.stop()
            b.remove_rings()


if __name__ == "__main__":
    Runner().run([
        test_fanout_and_filters,
        test_binary_and_structured_headers,
        test_retries_then_success,
        test_retry_after_and_exhaustion_without_sink,
        test_4xx_goes_to_dead_letter,
        test_dead_letter_retried_then_succeeds,
        test_transport_error_to_dead_letter_code_500,
        test_replies_reenter_and_ttl,
        test_reply_loop_ends_by_ttl,
        test_202_and_non_event_body_are_not_replies,
        test_inflight_limit,
        test_hanging_subscriber_does_not_block_others,
        test_kill_worker_no_loss,
        test_sighup_add_remove_change,
        test_sighup_bad_config_keeps_running,
        test_admin_answers_during_a_stuck_reload,
        test_sighup_during_a_reload_runs_after_it,
        test_admin_answers_while_stopping,
        test_stop_during_a_reload,
        test_restart_resumes_saved_cursor,
    ])
