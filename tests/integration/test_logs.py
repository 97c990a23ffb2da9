#!/usr/bin/env python3
"""The broker's log (docs/operations.md, "Logs"): `--log-format json` makes every line of a
serve run (supervisor, ingress, forked workers) one JSON object; every event dropped or
dead-lettered logs one line with its trigger, id, source, type, status and reason (a 4xx not
retried, retries exhausted, dead-lettered, the dead-letter sink failing too); the lines of one
trigger are rate limited and the summary lines add up to the counters; bad values exit 2.
Real `ringcast serve`, real subscribers on loopback, bounded waits."""

import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 2
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def trigger(name, uri, etype, retry=0, dls=None):
    doc = ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n"
           "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
           "  filter: {attributes: {type: %s}}\n"
           "  delivery:\n    retry: %d\n    backoffPolicy: linear\n    backoffDelay: PT0.02S\n"
           "    backoffMax: PT0.02S\n    timeout: PT2S\n" % (name, uri, etype, retry))
    if dls:
        doc += "    deadLetterSink: {uri: %s}\n" % dls
    return doc


def answer(status):
    return lambda _i, _req: (status, {}, b"", 0.0)


def publish(b, eid, etype, source="/logs/test"):
    r = b.request("POST", "/default/default",
                  {"ce-id": eid, "ce-source": source, "ce-type": etype, "ce-specversion": "1.0",
                   "Content-Type": "text/plain"}, b"x")
    eq(r.status, 202, "publish %s (%r)" % (eid, r.body))


def publish_batch(b, etype, first, n):
    events = [{"specversion": "1.0", "id": "%s-%d" % (etype, first + i), "source": "/logs/batch",
               "type": etype, "data": "x"} for i in range(n)]
    r = b.request("POST", "/default/default",
                  {"Content-Type": "application/cloudevents-batch+json"},
                  json.dumps(events).encode())
    eq(r.status, 202, "batch publish (%r)" % r.body)


def stat(b, name, trig):
    key = ('ringcast_trigger_%s_total{namespace="default",trigger="%s",broker="default"}'
           % (name, trig))
    return b.metrics().get(key)


def wait_stat(b, name, trig, value, timeout=15.0):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = stat(b, name, trig)
        if v == value:
            return
        time.sleep(0.05)
    raise AssertionError("%s{%s} = %r, expected %r; log:\n%s" % (name, trig, v, value,
                                                               b.log()[-3000:]))


def stop_clean(b):
    eq(b.stop(), 0, "serve exit code (log: %s)" % b.log()[-2000:])


def json_lines(text):
    """Every line parsed; fails naming the first line that is not one JSON object with the
    fields every line has."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError("log line %d is not JSON (%s): %r" % (n, e, line))
        check(isinstance(obj, dict), "line %d is not an object: %r" % (n, line))
        for key in ("time", "level", "component", "pid", "msg"):
            check(key in obj, "line %d has no %s: %r" % (n, key, line))
        check(TIME_RE.match(obj["time"]), "line %d time %r" % (n, obj["time"]))
        check(obj["level"] in ("error", "warn", "info", "debug"), "line %d level" % n)
        out.append(obj)
    return out


def drop_lines(objs, trig):
    return [o for o in objs if o.get("trigger") == "default/" + trig and "event_id" in o]


def test_bad_format():
    """--log-format and spec.logFormat take text or json; anything else exits 2 naming it,
    before anything starts."""
    rc, out, err = run_cli(["serve", "--log-format", "xml", "--listen", "127.0.0.1:0",
                            "--admin", "127.0.0.1:0", "--ring-prefix", "rclogbad"])
    eq(rc, 2, "exit code of --log-format xml (%s)" % err)
    check("--log-format must be text or json, not 'xml'" in err, "message: %r" % err)
    eq(out, "", "nothing started")
    rc, _, err = run_cli(["serve", "--log-format"])
    eq(rc, 2, "exit code without a value")
    check("--log-format" in err, "message: %r" % err)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write(HEAD % "  logFormat: yaml\n")
        rc, _, err = run_cli(["serve", "--check", "--config", path])
        eq(rc, 2, "exit code of logFormat: yaml")
        check("c.yaml:5:" in err and "'spec.logFormat' must be text or json, not 'yaml'" in err,
              "message: %r" % err)
        with open(path, "w") as f:
            f.write(HEAD % "  logFormat: json\n")
        rc, out, err = run_cli(["serve", "--check", "--config", path])
        eq(rc, 0, "logFormat: json is valid (%s)" % err)


def test_json_lines_and_drops():
    """Traffic through good and failing triggers with --log-format json: every line of the
    run parses, and each failing trigger logs the right line for each event."""
    with Subscriber(answer(200)) as good, Subscriber(answer(400)) as bad4, \
            Subscriber(answer(503)) as down, Subscriber(answer(200)) as dls, \
            Subscriber(answer(500)) as dls_down:
        cfg = (HEAD % "" + trigger("good", good.url, "t.good")
               + trigger("client-error", bad4.url, "t.400", retry=3)
               + trigger("exhausted", down.url, "t.503", retry=2)
               + trigger("to-sink", down.url, "t.dl", retry=1, dls=dls.url)
               + trigger("sink-fails", bad4.url, "t.dlfail", dls=dls_down.url))
        with Broker(cfg, args=["--log-format", "json"]) as b:
            for i in range(3):
                publish(b, "g%d" % i, "t.good")
            publish(b, "e400", "t.400", source="/src/400")
            publish(b, "e503", "t.503", source="/src/503")
            publish(b, "edl", "t.dl", source="/src/dl")
            publish(b, "edlf", "t.dlfail", source="/src/dlf")
            # A request the ingress refuses logs nothing per request, but must not break lines.
            r = b.request("POST", "/default/default", {"Content-Type": "text/plain"}, b"no ce")
            eq(r.status, 400, "an event without attributes")
            wait_stat(b, "delivered", "good", 3)
            wait_stat(b, "dropped", "client-error", 1)
            wait_stat(b, "dropped", "exhausted", 1)
            wait_stat(b, "dead_lettered", "to-sink", 1)
            wait_stat(b, "dropped", "sink-fails", 1)
            b.signal(signal.SIGHUP)  # a reload restarts the workers: their lines too
            time.sleep(0.5)
            stop_clean(b)
            objs = json_lines(b.log())
        comps = {o["component"] for o in objs}
        check({"serve", "worker"} <= comps, "lines of serve and of the workers: %r" % comps)
        check(len({o["pid"] for o in objs}) >= 2, "several processes logged")
        eq(drop_lines(objs, "good"), [], "no drop line for the delivered trigger")

        (l400,) = drop_lines(objs, "client-error")
        eq((l400["event_id"], l400["source"], l400["type"]), ("e400", "/src/400", "t.400"),
           "event of the 400 line")
        eq((l400["outcome"], l400["reason"], l400["status"], l400["retries"]),
           ("dropped", "4xx not retried", 400, 0), "400 line")
        eq(l400["level"], "warn", "level of a drop line")
        eq(bad4.ids().count("e400"), 1, "a 400 is not retried")

        (l503,) = drop_lines(objs, "exhausted")
        eq((l503["event_id"], l503["source"], l503["type"]), ("e503", "/src/503", "t.503"),
           "event of the exhausted line")
        eq((l503["outcome"], l503["reason"], l503["status"], l503["retries"]),
           ("dropped", "retries exhausted", 503, 2), "exhausted line")
        check("event e503 dropped: retries exhausted (HTTP 503 after 2 retries)" in l503["msg"],
              "msg: %r" % l503["msg"])

        (ldl,) = drop_lines(objs, "to-sink")
        eq((ldl["event_id"], ldl["outcome"], ldl["reason"], ldl["status"], ldl["retries"],
            ldl["dead_letter_status"]),
           ("edl", "dead-lettered", "retries exhausted", 503, 1, 200), "dead-lettered line")
        eq(dls.ids(), ["edl"], "the sink got it")

        (ldf,) = drop_lines(objs, "sink-fails")
        eq((ldf["event_id"], ldf["outcome"], ldf["reason"], ldf["status"],
            ldf["dead_letter_status"]),
           ("edlf", "dropped", "4xx not retried; the dead-letter sink failed too", 400, 500),
           "sink failed line")


def test_text_drop_line():
    """The text format keeps today's line and adds the fields as key=value pairs."""
    with Subscriber(answer(410)) as gone:
        cfg = HEAD % "" + trigger("gone", gone.url, "t.gone")
        with Broker(cfg) as b:
            publish(b, "tx1", "t.gone", source="/a")
            wait_stat(b, "dropped", "gone", 1)
            stop_clean(b)
            log = b.log()
        lines = [ln for ln in log.splitlines() if "event tx1" in ln]
        eq(len(lines), 1, "one line for the event (log: %s)" % log)
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn worker: trigger default/gone:"
                       r" event tx1 dropped: 4xx not retried \(HTTP 410 after 0 retries\) "
                       r"trigger=default/gone event_id=tx1 source=/a type=t\.gone "
                       r"outcome=dropped reason=\"4xx not retried\" status=410 retries=0$",
                       lines[0]), "text line: %r" % lines[0])
        check(not any(ln.startswith("{") for ln in log.splitlines()), "text stays text")


def test_rate_limit():
    """500 events refused by one subscriber: at most 10 lines a second for the trigger, and
    the suppressed counts of the summary lines add up to the 500 dropped."""
    n = 500
    with Subscriber(answer(400)) as bad:
        cfg = HEAD % "  logFormat: json\n" + trigger("flood", bad.url, "t.flood")
        with Broker(cfg) as b:
            start = time.monotonic()
            # Spread over about 2.5 s, so that several windows close while events flow.
            for k in range(0, n, 100):
                publish_batch(b, "t.flood", k, 100)
                time.sleep(0.6)
            wait_stat(b, "dropped", "flood", n, timeout=30.0)
            elapsed = time.monotonic() - start
            stop_clean(b)
            objs = json_lines(b.log())
            if os.environ.get("RC_LOGS_SHOW"):
                print(b.log()[-3000:])
        lines = drop_lines(objs, "flood")
        summaries = [o for o in objs if o.get("trigger") == "default/flood" and "suppressed" in o]
        suppressed = sum(o["suppressed"] for o in summaries)
        eq(len(lines) + suppressed, n, "lines + suppressed = dropped (%d lines, %d summaries)"
           % (len(lines), len(summaries)))
        check(len(lines) <= 10 * (int(elapsed) + 2),
              "%d lines in %.1f s: over 10 a second" % (len(lines), elapsed))
        check(len(lines) >= 10, "the first 10 are logged one by one")
        check(len(summaries) >= 2 and all("suppressed %d similar line" % o["suppressed"]
                                          in o["msg"] for o in summaries),
              "summary lines: %r" % summaries[:2])
        # Per second (of the log's own clock) no more than 10 lines for the trigger.
        per_sec = {}
        for o in lines:
            per_sec[o["time"][:19]] = per_sec.get(o["time"][:19], 0) + 1
        check(max(per_sec.values()) <= 20, "lines per wall second: %r" % per_sec)


def test_json_reply_not_stored():
    """A reply the broker cannot store (60 KB, more than a 64 KiB ring takes) logs one JSON line
    with the trigger, reply and event ids, the reason and the outcome as fields."""
    def big_reply(_i, _req):
        return (200, {"ce-id": "r-1", "ce-source": "/reply", "ce-type": "t.reply",
                      "ce-specversion": "1.0", "Content-Type": "text/plain"}, b"y" * 60000, 0.0)
    with Subscriber(big_reply) as sub:
        small = ("  ring: {size: 64Ki}\n  limits: {maxEventBytes: 4Ki, maxHeaderBytes: 4Ki, "
                 "maxBatchBytes: 8Ki, maxBatchEvents: 2}\n")
        cfg = HEAD % small + trigger("replies", sub.url, "t.ask")
        with Broker(cfg, args=["--log-format", "json"]) as b:
            publish(b, "ask-1", "t.ask")
            wait_stat(b, "replies_failed", "replies", 1)
            deadline = time.monotonic() + 5
            lines = []
            while time.monotonic() < deadline and not lines:
                lines = [o for o in json_lines(b.log()) if o.get("reply_id") == "r-1"]
                time.sleep(0.05)
            stop_clean(b)
    eq(len(lines), 1, "one line for the reply")
    o = lines[0]
    eq((o["level"], o["trigger"], o["kind"], o["event_id"], o["reason"], o["outcome"]),
       ("warn", "default/replies", "reply", "ask-1", "too_large", "dropped"), "fields: %r" % o)
    check(o.get("error"), "the reason's text: %r" % o)


def main():
    Runner().run([test_bad_format, test_json_lines_and_drops, test_text_drop_line,
                  test_rate_limit, test_json_reply_not_stored])


if __name__ == "__main__":
    main()
