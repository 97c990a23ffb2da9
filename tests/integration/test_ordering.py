#!/usr/bin/env python3
"""Ordered delivery per partition key (issue 15, item 2; docs/delivery.md, "Ordered delivery"):
the real `ringcast serve` with a Trigger annotated ringcast.dev/ordering: partitionkey and a
real HTTP subscriber on loopback (subscriber.py) that fails attempts at random with 500.

- 1,000 keys x 50 events, randomly interleaved, with unordered events (no partitionkey) mixed
  in: per key, the attempts reach the subscriber in ingest order and one at a time (retries of
  an event, then the next one), every event is delivered once or, after its retries, dead-
  lettered once, and the key goes on after its dead-lettered event, not before the dead-letter
  sink has it; the subscriber saw several keys at once.
- Throughput with 100 keys against the same stream unordered, in the same run (two triggers on
  one broker, a subscriber that takes 10 ms per event): measured and printed; asserted >= 0.5x.
- With HTTP replicas (a Service with ringcast.dev/endpoints), a key is still one at a time.
- Events given up for lag (policy dead-letter) go to the sink and their keys go on, still one
  at a time and in order at the subscriber.
- Bad annotation values are refused by `ringcast serve --check` with FILE:LINE.

Every wait is bounded; the broker is stopped by pid."""

import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

KEYS = 1000
PER_KEY = 50
UNORDERED = 2000
FAIL_P = 0.1
RETRY = 2  # attempts per event: 1 + RETRY; P(dead letter) = FAIL_P ** 3 = 0.001


def config(triggers, settings="workers: 1, shutdownTimeout: 1s"):
    return """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec: {%s}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
""" % settings + "".join(triggers)


def trigger(name, url, ordering=None, inflight=32, typ=None, dls=None, retry=RETRY):
    # block: producers wait rather than the trigger giving up events for lag (a different path
    # to the dead-letter sink, whose abandoned requests may still be delivered).
    ann = {"ringcast.dev/max-inflight": str(inflight), "ringcast.dev/lag-policy": "block"}
    if ordering is not None:
        ann["ringcast.dev/ordering"] = ordering
    delivery = {"retry": retry, "backoffPolicy": "linear", "backoffDelay": "PT0.01S"}
    if dls is not None:
        delivery["deadLetterSink"] = {"uri": dls}
    spec = {"broker": "default", "subscriber": {"uri": url}, "delivery": delivery}
    if typ is not None:
        spec["filter"] = {"attributes": {"type": typ}}
    return "---\n" + json.dumps({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
                                 "metadata": {"name": name, "annotations": ann},
                                 "spec": spec}) + "\n"


def publish(b, events, batch=500):
    """Structured batches of `events` (dicts), in order; a batch refused for a full ring is sent
    again (bounded)."""
    c = b.conn()
    for i in range(0, len(events), batch):
        body = json.dumps(events[i:i + batch]).encode()
        for _ in range(200):
            c.send_request("POST", "/default/default",
                           {"Content-Type": "application/cloudevents-batch+json"}, body)
            r = c.response()
            if r.status == 202:
                break
            check(r.status in (429, 503), "publish: %d %r" % (r.status, r.body))
            time.sleep(0.05)
        else:
            raise AssertionError("publish: the ring stayed full")
    c.close()


def event(eid, typ="t", key=None):
    ev = {"specversion": "1.0", "id": eid, "source": "/o", "type": typ, "data": "x"}
    if key is not None:
        ev["partitionkey"] = key
    return ev


def wait_until(cond, what, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Flaky:
    """Answers 500 with probability FAIL_P (seeded), else 200; counts the attempts of each key
    that are in its hands at once (the broker sends the next one only after the answer)."""

    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.active = {}
        self.overlaps = []
        self.log = []  # (key, id, status, arrival) in the order the attempts came

    def __call__(self, _i, req):
        key = req.ce("partitionkey")
        with self.lock:
            status = 500 if self.rnd.random() < FAIL_P else 200
            if key is not None:
                n = self.active.get(key, 0) + 1
                self.active[key] = n
                if n > 1:
                    self.overlaps.append((key, req.ce("id")))
            self.log.append((key, req.ce("id"), status, req.t))
        time.sleep(0.001)  # long enough for a second attempt of the key to be seen here
        if key is not None:
            with self.lock:
                self.active[key] -= 1
        return status, {}, b"", 0.0


def test_order_with_failures():
    rnd = random.Random(15)
    seq = [k for k in range(KEYS) for _ in range(PER_KEY)]
    rnd.shuffle(seq)
    nxt = [0] * KEYS
    events = []
    for k in seq:
        events.append(event("k%d-%d" % (k, nxt[k]), key="k%d" % k))
        nxt[k] += 1
    for i in range(UNORDERED):  # no partitionkey: unordered, mixed in
        events.insert(rnd.randrange(len(events) + 1), event("u%d" % i))
    flaky = Flaky(7)
    with Subscriber(flaky) as sub, Subscriber() as dls:
        cfg = config([trigger("ord", sub.url, "partitionkey", dls=dls.url)])
        with Broker(cfg) as b:
            t0 = time.monotonic()
            publish(b, events)
            total = len(events)

            def done():
                with flaky.lock:
                    ok = sum(1 for x in flaky.log if x[2] == 200)
                return ok + dls.count() >= total
            wait_until(done, "every event delivered or dead-lettered", 240)
            took = time.monotonic() - t0
            time.sleep(0.3)  # nothing more may come
            st = b.request("GET", "/apis/eventing.knative.dev/v1/namespaces/default/triggers/ord",
                           admin=True).json()["status"]["stats"]
        attempts = list(flaky.log)
        dead = dls.ids()
        dead_t = {r.ce("id"): r.t for r in dls.requests}
    print("  %d events (%d keys x %d + %d unordered), %d attempts, %d dead-lettered, %.1f s"
          % (total, KEYS, PER_KEY, UNORDERED, len(attempts), len(dead), took))
    eq(flaky.overlaps, [], "one attempt at a time per key")
    check(sub.max_active > 1, "keys in parallel: at most %d at once" % sub.max_active)
    delivered = [i for _k, i, s, _t in attempts if s == 200]
    eq(len(delivered), len(set(delivered)), "each event delivered at most once")
    eq(len(dead), len(set(dead)), "each event dead-lettered at most once")
    eq(set(delivered) & set(dead), set(), "delivered or dead-lettered, not both")
    eq(set(delivered) | set(dead), {e["id"] for e in events}, "every event, one way or the other")
    check(len(dead) > 0, "some events ran out of retries (P = %g each)" % FAIL_P ** (RETRY + 1))
    fails = {}
    for _k, i, s, _t in attempts:
        if s != 200:
            fails[i] = fails.get(i, 0) + 1
    for i in dead:
        eq(fails.get(i), RETRY + 1, "attempts of dead-lettered %s" % i)
    eq((st["delivered"], st["deadLettered"]), (len(delivered), len(dead)), "trigger stats")
    # Per key: the attempts in ingest order (an event's retries, then the next event), every
    # event present, and the next event only after the dead-letter sink took a failed one.
    per_key = {}
    first_t = {}
    for k, i, _s, t in attempts:  # one at a time per key: the log's order is theirs
        if k is not None:
            per_key.setdefault(k, []).append(int(i.split("-")[1]))
            first_t.setdefault(i, t)
    eq(len(per_key), KEYS, "every key")
    for k, seqs in per_key.items():
        check(all(a <= b_ for a, b_ in zip(seqs, seqs[1:])), "order of key %s: %r" % (k, seqs))
        eq(sorted(set(seqs)), list(range(PER_KEY)), "events of key %s" % k)
    for i in dead:
        if i.startswith("k"):
            k, n = i[1:].split("-")
            after = "k%s-%d" % (k, int(n) + 1)
            if after in first_t:
                check(dead_t[i] < first_t[after], "key k%s went on before %s was dead-lettered"
                      % (k, i))


def test_replicas_one_at_a_time():
    """With HTTP replicas (a Service with ringcast.dev/endpoints) a key is still one at a time
    and in order: its events go to either replica, never to both at once."""
    keys, per_key = 40, 25
    flaky = Flaky(11)
    with Subscriber(flaky) as a, Subscriber(flaky) as c, Subscriber() as dls:
        svc = ("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: subs\n  annotations:\n"
               "    ringcast.dev/endpoints: \"127.0.0.1:%d, 127.0.0.1:%d\"\n"
               "spec:\n  ports: [{port: 80}]\n" % (a.port, c.port))
        trig = json.loads(trigger("t", "x", "partitionkey", dls=dls.url)[4:])
        trig["spec"]["subscriber"] = {"ref": {"apiVersion": "v1", "kind": "Service",
                                              "name": "subs"}}
        rnd = random.Random(5)
        seq = [k for k in range(keys) for _ in range(per_key)]
        rnd.shuffle(seq)
        nxt = [0] * keys
        events = []
        for k in seq:
            events.append(event("k%d-%d" % (k, nxt[k]), key="k%d" % k))
            nxt[k] += 1
        with Broker(config([svc, "---\n" + json.dumps(trig) + "\n"])) as b:
            publish(b, events)

            def done():
                with flaky.lock:
                    ok = sum(1 for x in flaky.log if x[2] == 200)
                return ok + dls.count() >= len(events)
            wait_until(done, "every event delivered or dead-lettered", 60)
        eq(flaky.overlaps, [], "one attempt at a time per key over both replicas")
        check(a.count() > 100 and c.count() > 100, "both replicas: %d, %d"
              % (a.count(), c.count()))
        per_key_seqs = {}
        for k, i, _s, _t in list(flaky.log):
            per_key_seqs.setdefault(k, []).append(int(i.split("-")[1]))
        for k, seqs in per_key_seqs.items():
            check(all(x <= y for x, y in zip(seqs, seqs[1:])), "order of key %s: %r" % (k, seqs))
            eq(sorted(set(seqs)), list(range(per_key)), "events of key %s" % k)


def test_lag_given_up_keeps_keys():
    """Policy dead-letter with a small lag limit: a slow ordered trigger gives up its oldest
    events for lag (to the dead-letter sink, out of band) and its keys go on; what reaches the
    subscriber is still one at a time and in order per key, and every event arrives at the
    subscriber or the sink."""
    keys, n = 20, 2000
    flaky = Flaky(3)
    slow = lambda i, req: (flaky(i, req)[0], {}, b"", 0.005)  # noqa: E731
    with Subscriber(slow) as sub, Subscriber() as dls:
        trig = json.loads(trigger("t", sub.url, "partitionkey", inflight=4, dls=dls.url)[4:])
        trig["metadata"]["annotations"]["ringcast.dev/lag-policy"] = "dead-letter"
        trig["metadata"]["annotations"]["ringcast.dev/lag-limit"] = "128Ki"
        cfg = config(["---\n" + json.dumps(trig) + "\n"],
                     "workers: 1, shutdownTimeout: 1s, ring: {size: 1Mi}, "
                     "limits: {maxEventBytes: 128Ki, maxBatchBytes: 256Ki, maxBatchEvents: 50}")
        rnd = random.Random(9)
        nxt = [0] * keys
        events = []
        for _ in range(n):
            k = rnd.randrange(keys)
            ev = event("k%d-%d" % (k, nxt[k]), key="k%d" % k)
            ev["data"] = "y" * 400
            events.append(ev)
            nxt[k] += 1
        with Broker(cfg) as b:
            publish(b, events, batch=50)

            def settled():
                with flaky.lock:
                    got = {x[1] for x in flaky.log if x[2] == 200}
                return len(got | set(dls.ids())) >= n
            wait_until(settled, "every event at the subscriber or the sink", 120)
            m = b.metrics()
            check(b.proc.poll() is None, "the broker runs")
    lagged = m.get('ringcast_trigger_lagged_total{namespace="default",trigger="t",'
                   'broker="default"}', 0)
    print("  %d events: %d given up for lag, %d at the sink" % (n, lagged, dls.count()))
    check(lagged > 0, "events were given up for lag")
    eq(flaky.overlaps, [], "one attempt at a time per key, lag or not")
    per_key = {}
    for k, i, status, _t in list(flaky.log):
        if status == 200:
            per_key.setdefault(k, []).append(int(i.split("-")[1]))
    for k, seqs in per_key.items():
        check(all(x < y for x, y in zip(seqs, seqs[1:])), "order of key %s: %r" % (k, seqs))


def test_throughput_100_keys():
    """The same stream of events with 100 keys to an unordered and an ordered trigger of one
    broker, one after the other and twice each (each subscriber takes 10 ms per event, so the
    rate is the concurrency the trigger keeps up: at most max-inflight 16)."""
    n = 1500
    slow = lambda i, req: (200, {}, b"", 0.01)  # noqa: E731
    rnd = random.Random(3)
    with Subscriber(slow) as su, Subscriber(slow) as so:
        cfg = config([trigger("un", su.url, inflight=16, typ="u"),
                      trigger("or", so.url, "partitionkey", inflight=16, typ="o")])
        rates = {"u": [], "o": []}
        with Broker(cfg) as b:
            for rnd_i in range(2):
                for typ, sub in (("u", su), ("o", so)):
                    base = sub.count()
                    evs = [event("%s%d-%d" % (typ, rnd_i, j), typ, "k%d" % rnd.randrange(100))
                           for j in range(n)]
                    t0 = time.monotonic()
                    publish(b, evs)
                    wait_until(lambda: sub.count() >= base + n, "%d deliveries" % n, 60)
                    rates[typ].append(n / (time.monotonic() - t0))
            eq(so.max_active <= 16, True, "max-inflight holds: %d" % so.max_active)
    ru, ro = max(rates["u"]), max(rates["o"])
    print("  unordered %s ev/s, ordered (100 keys) %s ev/s: ratio %.2f"
          % ([round(x) for x in rates["u"]], [round(x) for x in rates["o"]], ro / ru))
    check(ro >= 0.5 * ru, "ordered %.0f ev/s < 0.5 x unordered %.0f ev/s" % (ro, ru))


def test_inflight_gauge_leaves_out_held():
    """ringcast_trigger_inflight counts what is sent or waits for a retry: two keys x 10 events
    to a subscriber that answers after 1 s leave 2 requests out and 18 events held behind them,
    and the gauge says 2 (it said 20, the whole window, before)."""
    slow = lambda i, req: (200, {}, b"", 1.0)  # noqa: E731
    with Subscriber(slow) as sub:
        with Broker(config([trigger("t", sub.url, "partitionkey", inflight=8)])) as b:
            publish(b, [event("%s%d" % (k, j), key=k) for j in range(10) for k in "ab"])
            name = ('ringcast_trigger_inflight{namespace="default",trigger="t",'
                    'broker="default"}')
            wait_until(lambda: sub.count() >= 2, "the first two attempts", 10)
            seen = [b.metrics().get(name) for _ in range(3)]
            eq(max(seen), 2.0, "in flight while 18 are held: %r" % seen)
            wait_until(lambda: sub.count() >= 20, "every event", 30)


def test_bad_annotation():
    with tempfile.TemporaryDirectory(prefix="rc-ord-") as tmp:
        path = os.path.join(tmp, "bad.yaml")
        for value, shown in (("partitionKey", "partitionKey"), ("'true'", "true"),
                             ("[partitionkey]", "(not a scalar)")):
            cfg = config([]) + ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                                "metadata:\n  name: t\n  annotations:\n"
                                "    ringcast.dev/ordering: %s\n"
                                "spec: {broker: default, subscriber: {uri: "
                                "\"http://127.0.0.1:9/\"}}\n" % value)
            with open(path, "w") as f:
                f.write(cfg)
            line = cfg.split("\n").index("    ringcast.dev/ordering: %s" % value) + 1
            code, out, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix",
                                      "rcord%d" % os.getpid()])
            eq((code, out), (2, ""), "exit code and stdout")
            eq(err, "%s:%d: Trigger default/t: 'metadata.annotations.ringcast.dev/ordering' "
               "must be partitionkey or none, not '%s'\n" % (path, line, shown), "message")
        with open(path, "w") as f:
            f.write(config([trigger("t", "http://127.0.0.1:9/", "partitionkey"),
                            trigger("n", "http://127.0.0.1:9/", "none")]))
        code, out, err = run_cli(["serve", "--check", "--config", path, "--ring-prefix",
                                  "rcord%d" % os.getpid()])
        eq(code, 0, "partitionkey and none are accepted: %s" % err)


def measure_hot_key(shares=(0.0, 0.05, 0.2), n=3000):
    """Not a test: the rates docs/delivery.md quotes ("Head-of-line blocking"), printed. One hot
    key with each share of the events, the rest over 100 keys, to an unordered and an ordered
    trigger (max-inflight 16, subscriber 10 ms per event). Run with --hot-key."""
    slow = lambda i, req: (200, {}, b"", 0.01)  # noqa: E731
    for frac in shares:
        rnd = random.Random(1)
        res = {}
        with Subscriber(slow) as su, Subscriber(slow) as so:
            cfg = config([trigger("un", su.url, inflight=16, typ="u"),
                          trigger("or", so.url, "partitionkey", inflight=16, typ="o")])
            with Broker(cfg) as b:
                for typ, sub in (("u", su), ("o", so)):
                    evs = [event("%s%d" % (typ, j), typ, "hot" if rnd.random() < frac
                                 else "k%d" % rnd.randrange(100)) for j in range(n)]
                    t0 = time.monotonic()
                    publish(b, evs)
                    wait_until(lambda: sub.count() >= n, "%d deliveries" % n, 120)
                    res[typ] = n / (time.monotonic() - t0)
        print("hot key share %.2f: unordered %.0f ev/s, ordered %.0f ev/s"
              % (frac, res["u"], res["o"]))


if __name__ == "__main__":
    if sys.argv[1:] == ["--hot-key"]:
        measure_hot_key()
        sys.exit(0)
    Runner().run([test_bad_annotation, test_inflight_gauge_leaves_out_held, test_replicas_one_at_a_time, test_lag_given_up_keeps_keys,
                  test_throughput_100_keys, test_order_with_failures])
