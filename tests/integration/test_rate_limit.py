#!/usr/bin/env python3
"""ringcast.dev/rate-limit (docs/delivery.md, "Rate limit") on a real `ringcast serve` with real
HTTP subscribers on loopback:
- a trigger limited to 200 events/s with 1300 events queued at once: the subscriber, on its own
  clock, sees 200/s +-10% over 5 s (after the first half second, which holds the burst); every
  event arrives, none is dropped; ringcast_trigger_throttled_seconds_total grows while it
  drains and its queue wait histogram counts every event; a trigger without the annotation on
  the same broker and worker delivers its events meanwhile at well over the limit and is never
  throttled;
- retries take tokens: a subscriber that fails every first attempt sees requests (first
  attempts and retries together) at the limit, events at half of it;
- bad values are refused by `serve --check` with FILE:LINE messages.
Every wait is bounded."""

import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

LIMIT = 200  # events/s
EVENTS = 1300  # > 5.5 s at the limit: the measuring window is full

BROKER = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
spec:
  delivery: {retry: 3, backoffDelay: PT0.001S, backoffPolicy: linear, timeout: PT5S}
"""

TRIGGER = """---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: %(name)s
  namespace: default
  annotations: {%(ann)s}
spec:
  broker: default
  filter: {attributes: {type: %(type)s}}
  subscriber: {uri: "%(uri)s"}
"""


def trigger(name, etype, uri, rate=None):
    ann = 'ringcast.dev/rate-limit: "%s"' % rate if rate is not None else ""
    return TRIGGER % {"name": name, "type": etype, "uri": uri, "ann": ann}


def publish(b, etype, first, n):
    """Publishes events `first`..`first + n - 1` of `etype` in batches of at most 500."""
    for start in range(first, first + n, 500):
        batch = [{"specversion": "1.0", "id": "%s-%d" % (etype, i), "source": "/rl",
                  "type": etype, "data": {"n": i}}
                 for i in range(start, min(start + 500, first + n))]
        r = b.request("POST", "/default/default",
                      {"Content-Type": "application/cloudevents-batch+json"},
                      json.dumps(batch).encode())
        eq(r.status, 202, "batch publish (%r)" % r.body)


def metric(m, name, trig, suffix=""):
    key = '%s%s{namespace="default",trigger="%s",broker="default"}' % (name, suffix, trig)
    check(key in m, "%s missing from /metrics" % key)
    return m[key]


def worker_cpu(b):
    """CPU seconds (user + system) of the broker's worker processes."""
    with open("/proc/%d/task/%d/children" % (b.proc.pid, b.proc.pid)) as f:
        pids = [int(p) for p in f.read().split()]
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rate_over(times, start, seconds):
    """Requests per second among `times` (monotonic) in [start, start + seconds)."""
    return sum(1 for t in times if start <= t < start + seconds) / seconds


def test_limit_holds():
    with Subscriber() as limited, Subscriber() as free:
        cfg = BROKER + trigger("limited", "slow", limited.url, LIMIT) + \
            trigger("free", "fast", free.url)
        with Broker(cfg) as b:
            m = b.metrics()
            eq(metric(m, "ringcast_trigger_rate_limit", "limited"), float(LIMIT), "rate gauge")
            check('ringcast_trigger_rate_limit{namespace="default",trigger="free",'
                  'broker="default"}' not in m, "no rate gauge without a limit")
            eq(metric(m, "ringcast_trigger_max_inflight", "free"), 100.0, "window gauge")
            kn = "/apis/eventing.knative.dev/v1/namespaces/default/triggers/"
            pol = lambda n: b.request("GET", kn + n, admin=True).json()[  # noqa: E731
                "status"]["deliveryPolicy"]
            eq(pol("limited").get("rateLimit"), float(LIMIT), "the status shows the limit")
            check("rateLimit" not in pol("free"), "no rateLimit without the annotation")
            publish(b, "slow", 0, EVENTS)
            limited.wait_for(1, timeout=10)
            # The other trigger of the same worker is not held back by its neighbour's limit.
            time.sleep(0.5)
            t0 = time.monotonic()
            publish(b, "fast", 0, 500)
            got = free.wait_for(500, timeout=20)
            eq(len(got), 500, "events of the trigger without a limit")
            free_rate = 500 / (got[-1].t - t0)
            check(free_rate > 2 * LIMIT, "the trigger without a limit was slowed: %.0f/s"
                  % free_rate)
            mid = metric(b.metrics(), "ringcast_trigger_throttled_seconds_total", "limited")
            check(mid > 0, "throttled seconds while the limited trigger drains: %r" % mid)
            # Throttled, the worker sleeps until the next token instead of polling for it.
            cpu0, w0 = worker_cpu(b), time.monotonic()
            time.sleep(2.0)
            cpu = (worker_cpu(b) - cpu0) / (time.monotonic() - w0)
            print("worker CPU while throttled at %d/s: %.1f%% of a core" % (LIMIT, 100 * cpu))
            check(cpu < 0.25, "the worker spins while throttled: %.0f%% of a core" % (100 * cpu))
            reqs = limited.wait_for(EVENTS, timeout=30)
            eq(len(reqs), EVENTS, "every event delivered (none dropped)")
            eq(sorted(r.ce("id") for r in reqs), sorted("slow-%d" % i for i in range(EVENTS)),
               "the ids delivered")
            times = [r.t for r in reqs]
            # The burst (a tenth of a second's worth) goes at once: measure after it.
            rate = rate_over(times, times[0] + 0.5, 5.0)
            print("limited: %.1f events/s over 5 s at the subscriber (limit %d); free %.0f/s"
                  % (rate, LIMIT, free_rate))
            check(abs(rate - LIMIT) <= 0.1 * LIMIT, "rate %.1f/s, limit %d/s" % (rate, LIMIT))
            whole = (EVENTS - 1) / (times[-1] - times[0])
            check(abs(whole - LIMIT) <= 0.1 * LIMIT, "rate over the whole run %.1f/s" % whole)
            time.sleep(0.2)
            m = b.metrics()
            end = metric(m, "ringcast_trigger_throttled_seconds_total", "limited")
            check(end > mid, "throttled seconds grow: %r then %r" % (mid, end))
            drain = times[-1] - times[0]
            # Throttled nearly all the drain: an event was due whenever no token was there.
            check(0.6 * drain <= end <= drain + 1.0, "throttled %.2f s of a %.2f s drain"
                  % (end, drain))
            eq(metric(m, "ringcast_trigger_throttled_seconds_total", "free"), 0.0,
               "the trigger without a limit is never throttled")
            eq(metric(m, "ringcast_trigger_delivered_total", "limited"), float(EVENTS),
               "delivered")
            eq(metric(m, "ringcast_trigger_dropped_total", "limited"), 0.0, "dropped")
            eq(metric(m, "ringcast_trigger_queue_wait_seconds", "limited", "_count"),
               float(EVENTS), "queue waits observed")
            eq(metric(m, "ringcast_trigger_queue_wait_seconds", "free", "_count"), 500.0,
               "queue waits observed (free)")
            # Events queued at once behind a limit of 200/s wait ~3 s on average.
            avg = metric(m, "ringcast_trigger_queue_wait_seconds", "limited", "_sum") / EVENTS
            check(1.5 < avg < 6.0, "average queue wait %.2f s" % avg)


def test_retries_take_tokens():
    """Every first attempt fails (503, retried at once): requests, retries included, go at the
    limit, so events are delivered at half of it."""
    limit, events = 100, 220

    tried, lock = set(), threading.Lock()

    def fail_first(_i, req):
        with lock:
            again = req.ce("id") in tried
            tried.add(req.ce("id"))
        return (200 if again else 503), {}, b"", 0.0

    with Subscriber(fail_first) as sub:
        with Broker(BROKER + trigger("retrying", "r", sub.url, limit)) as b:
            publish(b, "r", 0, events)
            reqs = sub.wait_for(2 * events, timeout=30)
            eq(len(reqs), 2 * events, "each event tried twice")
            times = [r.t for r in reqs]
            rate = rate_over(times, times[0] + 0.5, 3.0)
            print("retrying: %.1f requests/s over 3 s (limit %d)" % (rate, limit))
            check(abs(rate - limit) <= 0.1 * limit, "requests %.1f/s, limit %d/s"
                  % (rate, limit))
            time.sleep(0.2)
            m = b.metrics()
            eq(metric(m, "ringcast_trigger_delivered_total", "retrying"), float(events),
               "delivered")
            eq(metric(m, "ringcast_trigger_retried_total", "retrying"), float(events), "retried")
            eq(metric(m, "ringcast_trigger_queue_wait_seconds", "retrying", "_count"),
               float(events), "one queue wait per event, not per attempt")


def test_bad_values_refused():
    bad = ["0", "-1", "abc", "1e3", "0.0001", "1000001", "5/s", ""]
    with tempfile.TemporaryDirectory(prefix="rc-rl-") as tmp:
        path = os.path.join(tmp, "bad.yaml")
        for v in bad:
            cfg = BROKER + trigger("t", "x", "http://127.0.0.1:9/", v)
            with open(path, "w") as f:
                f.write(cfg)
            code, out, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix",
                                      "rcrl%d" % os.getpid()])
            eq((code, out), (2, ""), "serve --check of rate-limit %r" % v)
            line = [i for i, l in enumerate(cfg.splitlines(), 1) if "rate-limit" in l][0]
            eq(err, "%s:%d: Trigger default/t: 'metadata.annotations.ringcast.dev/rate-limit' "
               "must be a number of events per second from 0.001 to 1000000 (at most 3 "
               "decimals), not '%s'\n" % (path, line, v), "message for %r" % v)
        cfg = BROKER + trigger("t", "x", "http://127.0.0.1:9/", "0.5")
        with open(path, "w") as f:
            f.write(cfg)
        code, out, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix",
                                  "rcrl%d" % os.getpid()])
        eq(code, 0, "a good value passes (%s)" % err)


if __name__ == "__main__":
    sys.exit(Runner().run([test_bad_values_refused, test_limit_holds, test_retries_take_tokens]))
