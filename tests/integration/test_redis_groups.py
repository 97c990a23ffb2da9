#!/usr/bin/env python3
"""Once per trigger across ringcast nodes sharing a broker's Redis streams (issue 16;
docs/scaleout.md, "Once per trigger across nodes"): each trigger (and each Dapr subscription's
trigger) is a Redis consumer group, and every node reads it as its own consumer. With real
redis-server and `ringcast serve` processes on free loopback ports:

- 3 nodes on one Redis (each its own config, ports, ring), producers on all of them, 3 Knative
  triggers and one Dapr subscription: every accepted (202) event is delivered once per trigger
  (duplicates counted: none; none lost), and every node did part of the work;
- kill -9 of one node under load (slow subscribers, so it holds pending entries): the other
  nodes take its pending entries over after spec.redis.claimIdle and deliver them; nothing
  accepted is lost;
- a node killed with pending entries and started again with the same nodeId reads its own
  pending entries again first: delivered (at least once), nothing lost; likewise a worker
  killed and restarted by its node;
- a delivery slower than claimIdle stays with its node (no duplicates, nothing claimed);
- a partition stream deleted under a running node (the group with it): the node makes the group
  again and goes on delivering;
- a key that is no stream where a trigger's group must be made (at a reload): refused with a
  message naming the key, the group and what to do; serve runs on, and a reload after the fix
  applies;
- bad spec.redis.claimIdle and nodeId values: FILE:LINE errors.

Skips (exit 77) only when redis-server is not installed. Every wait is bounded; processes are
stopped by pid; only 127.0.0.1."""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc_harness  # noqa: E402
from rc_harness import Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402
from test_redis import KEY0, REDIS_SERVER, Redis, wait_until  # noqa: E402

TRIGGERS = ("t1", "t2", "t3")


def config(redis_port, subs, dapr_app, node_id, claim_idle="2s", workers=2):
    cfg = ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
           "  workers: %d\n  shutdownTimeout: 2s\n  redis:\n"
           "    addresses: [\"127.0.0.1:%d\"]\n    partitions: 2\n    claimIdle: %s\n"
           "    nodeId: %s\n"
           "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
           "metadata:\n  name: default\n  annotations: {ringcast.dev/storage-type: redis}\n"
           "spec:\n  delivery: {retry: 50, backoffPolicy: linear, backoffDelay: PT0.05S}\n"
           % (workers, redis_port, claim_idle, node_id))
    for name, sub in zip(TRIGGERS, subs):
        cfg += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                "metadata: {name: %s}\nspec:\n  broker: default\n  subscriber: {uri: %s}\n"
                % (name, sub.url))
    if dapr_app is not None:
        cfg += ("---\napiVersion: dapr.io/v1alpha1\nkind: Component\n"
                "metadata: {name: pubsub, namespace: default}\nspec:\n  type: pubsub.ringcast\n"
                "  version: v1\n  metadata:\n  - {name: broker, value: default}\n"
                "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\n"
                "metadata: {name: orderapp, namespace: default}\n"
                "spec:\n  endpoints: [\"%s\"]\n"
                "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\n"
                "metadata: {name: orders, namespace: default}\nspec:\n  pubsubname: pubsub\n"
                "  topic: orders\n  routes:\n    default: /orders\nscopes: [orderapp]\n"
                % dapr_app.url)
    return cfg


def post(b, eid):
    h = {"ce-id": eid, "ce-source": "/groups-test", "ce-type": "t", "ce-specversion": "1.0",
         "ce-topic": "orders", "Content-Type": "application/json"}
    return b.request("POST", "/default/default", h, b'{"n":1}')


def ids_of(sub, structured=False):
    """The event ids a subscriber got (a Dapr app gets structured JSON)."""
    with sub.lock:
        reqs = list(sub.requests)
    if not structured:
        return [r.ce("id") for r in reqs]
    out = []
    for r in reqs:
        try:
            out.append(json.loads(r.body)["id"])
        except (ValueError, KeyError):
            out.append(None)
    return out


class Gate:
    """A subscriber behaviour that holds every request until open() (at most 60 s), so that a
    node is sure to hold entries it read and has not acknowledged when the test kills it."""

    def __init__(self):
        self.event = threading.Event()

    def __call__(self, _i, _req):
        self.event.wait(60)
        return 200, {}, b"", 0.0

    def open(self):
        self.event.set()


def slow(delay):
    def behaviour(_i, _req):
        return 200, {}, b"", delay
    return behaviour


def produce(nodes, prefix, n, threads=3):
    """`threads` producers, each posting to every node in turn; returns the ids accepted (202)
    and the other statuses seen."""
    accepted, other = [], []
    lock = threading.Lock()

    def run(k):
        for i in range(k, n, threads):
            eid = "%s-%06d" % (prefix, i)
            node = nodes[i % len(nodes)]
            try:
                st = post(node, eid).status
            except OSError:
                st = -1  # a node killed meanwhile
            with lock:
                (accepted if st == 202 else other).append(eid if st == 202 else st)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return accepted, other


def group_metric(b, name, trigger):
    key = ('ringcast_storage_redis_group_%s{namespace="default",trigger="%s",broker="default"}'
           % (name, trigger))
    return b.metrics().get(key, 0.0)


def all_delivered(subs, dapr, want, timeout):
    def done():
        return (all(set(want) <= set(ids_of(s)) for s in subs)
                and set(want) <= set(ids_of(dapr, True)))
    return wait_until(done, timeout, 0.1)


def kill9(b):
    """kill -9 of a node's serve process (its workers die with it: PR_SET_PDEATHSIG)."""
    b.signal(signal.SIGKILL)
    b.wait(10)
    b.proc.stdout.close()
    b.stderr.close()
    b.tmp.cleanup()
    b.remove_rings()


def pending_of(rd, group, consumer):
    """Entries of `group` pending at `consumer`, over both partition streams."""
    n = 0
    for p in range(2):
        summary = rd.cmd("XPENDING", "ringcast:{default/default/%d}" % p, group)
        for name, count in (summary[3] or []) if summary else []:
            if name.decode() == consumer:
                n += int(count)
    return n


# ---- 3 nodes: once per trigger, spread over the nodes -----------------------------------------


def test_three_nodes_once_per_trigger():
    with Redis() as rd, Subscriber() as s1, Subscriber() as s2, Subscriber() as s3, \
            Subscriber() as dapr:
        subs = [s1, s2, s3]
        nodes = []
        try:
            for i in range(3):  # no claims here: a loaded machine must not look like a death
                nodes.append(Broker(config(rd.port, subs, dapr, "node-%d" % i,
                                           claim_idle="30s")))
            accepted, other = produce(nodes, "ev", 600)
            eq(other, [], "every publish accepted")
            eq(len(accepted), 600, "accepted")
            check(all_delivered(subs, dapr, accepted, 60),
                  "every trigger got every event: %s dapr %d" %
                  ([len(set(ids_of(s))) for s in subs], len(set(ids_of(dapr, True)))))
            time.sleep(1.0)  # a duplicate would arrive now
            for name, s in zip(TRIGGERS, subs):
                got = ids_of(s)
                eq(len(got) - len(set(got)), 0, "duplicates at trigger %s" % name)
                eq(sorted(got), sorted(accepted), "trigger %s: once each" % name)
            got = ids_of(dapr, True)
            eq(len(got) - len(set(got)), 0, "duplicates at the Dapr subscription")
            eq(sorted(got), sorted(accepted), "Dapr subscription: once each")
            # The work spread: every node read part of every trigger's group.
            dapr_trigger = next(k.split('trigger="')[1].split('"')[0]
                                for k in nodes[0].metrics()
                                if "group_read_total" in k and 'trigger="orderapp:' in k)
            for name in TRIGGERS + (dapr_trigger,):
                per_node = [group_metric(b, "read_total", name) for b in nodes]
                eq(sum(per_node), 600.0, "%s: entries read over the nodes %r" % (name, per_node))
                check(all(n > 0 for n in per_node), "%s: every node took some %r"
                      % (name, per_node))
            # Acknowledged: nothing pending in any group once delivered.
            check(wait_until(lambda: all(group_metric(b, "pending", t) == 0 for b in nodes
                                         for t in TRIGGERS), 5), "no pending entries left")
            acked = sum(group_metric(b, "acked_total", "t1") for b in nodes)
            eq(acked, 600.0, "t1's entries acknowledged over the nodes")
            check("each trigger's events are shared" in nodes[2].log(), nodes[2].log())
        finally:
            for b in nodes:
                b.__exit__(None, None, None)


# ---- kill -9 of a node under load: the others take its pending entries over ------------------


def test_killed_node_pending_taken_over():
    gate = Gate()
    with Redis() as rd, Subscriber(gate) as s1, Subscriber(gate) as s2, Subscriber(gate) as s3, \
            Subscriber(gate) as dapr:
        subs = [s1, s2, s3]
        nodes = []
        try:
            # claimIdle 2 s: the nodes left touch what they hold every second, a margin that
            # a loaded test machine keeps (with less, a live node's slow entries may be taken).
            for i in range(3):
                nodes.append(Broker(config(rd.port, subs, dapr, "node-%d" % i, claim_idle="2s")))
            accepted, other = produce(nodes, "ev", 150)
            eq(other, [], "every publish accepted before the kill")
            # The subscribers hold every request: node-0 holds what it read, unacknowledged.
            check(wait_until(lambda: all(pending_of(rd, "default/" + t, "node-0") > 0
                                         for t in TRIGGERS), 10),
                  "node-0 has pending entries of every trigger")
            kill9(nodes[0])
            held_by = {t: pending_of(rd, "default/" + t, "node-0") for t in TRIGGERS}
            held = held_by["t1"]
            gate.open()
            nodes.pop(0)
            more, other = produce(nodes, "after", 60)
            eq(other, [], "publishes to the nodes left accepted")
            want = accepted + more
            check(all_delivered(subs, dapr, want, 90),
                  "every accepted event delivered after the kill: %s dapr %d of %d" %
                  ([len(set(ids_of(s)) & set(want)) for s in subs],
                   len(set(ids_of(dapr, True)) & set(want)), len(want)))
            # The subscriber saw node-0's requests arrive; what counts is that the entries it
            # held are taken over once idle for claimIdle (2 s), delivered and acknowledged.
            for t in TRIGGERS:
                check(wait_until(lambda: pending_of(rd, "default/" + t, "node-0") == 0, 20),
                      "nothing of %s left pending at node-0" % t)
            claimed = sum(group_metric(b, "claimed_total", "t1") for b in nodes)
            check(claimed >= held, "the nodes left claimed node-0's %d entries of t1: %d"
                  % (held, claimed))
            check(all_delivered(subs, dapr, want, 30), "still every event")
            dups = [len(ids_of(s)) - len(set(ids_of(s))) for s in subs]
            # At least once: only entries node-0 held (read, not acknowledged) may come twice:
            # those whose request it had sent before it died (on a loaded machine it may not
            # have sent all it read).
            for t, d in zip(TRIGGERS, dups):
                check(d <= held_by[t], "%s: %d duplicates, node-0 held %d" % (t, d, held_by[t]))
            print("    kill -9: node-0 held %r entries, t1's claimed %d, duplicates %r"
                  % (held_by, claimed, dups))
        finally:
            gate.open()
            for b in nodes:
                b.__exit__(None, None, None)


# ---- restart: a node reads its own pending entries again -------------------------------------


def test_restart_rereads_own_pending():
    """t1's subscriber holds every request while node-a runs the first time, so node-a dies
    (kill -9) holding every event of t1 it read: after the restart with the same nodeId each of
    them arrives again, and the rest for the first time."""
    gate = Gate()
    with Redis() as rd, Subscriber(gate) as s1, Subscriber() as s2, Subscriber() as s3:
        subs = [s1, s2, s3]
        cfg = config(rd.port, subs, None, "node-a", claim_idle="60s", workers=1)
        a = Broker(cfg)
        try:
            accepted, other = produce([a], "ev", 100, threads=2)
            eq(other, [], "accepted")
            check(wait_until(lambda: pending_of(rd, "default/t1", "node-a") > 0, 10),
                  "node-a has pending entries of t1")
        finally:
            kill9(a)
        held = pending_of(rd, "default/t1", "node-a")
        check(held > 0, "pending at node-a after the kill: %d" % held)
        with s1.lock:
            first = len(s1.requests)
        gate.open()  # after the count: what node-a had in flight ends, and is not counted
        with Broker(cfg) as a2:
            def again():
                with s1.lock:
                    return {r.ce("id") for r in s1.requests[first:]}
            check(wait_until(lambda: set(accepted) <= again(), 60),
                  "t1 got every event after the restart: %d of 100 (%d were pending)"
                  % (len(again() & set(accepted)), held))
            check(wait_until(lambda: set(accepted) <= set(ids_of(s2))
                             and set(accepted) <= set(ids_of(s3)), 10), "t2, t3 complete")
            check("did not acknowledge are delivered again" in a2.log(), a2.log())
            check(wait_until(lambda: pending_of(rd, "default/t1", "node-a") == 0, 10),
                  "nothing pending at node-a once delivered")
            eq(group_metric(a2, "claimed_total", "t1"), 0.0, "its own entries, not claimed")
            print("    restart: node-a held %d entries of t1 at the kill; all delivered again"
                  % held)


# ---- a worker killed: the restarted worker reads the node's pending entries again ------------


def test_worker_killed_rereads_pending():
    """kill -9 of the worker (not the node) while t1's subscriber holds every request:
    the supervisor restarts the worker, which delivers the trigger's pending entries again."""
    from rc_harness import alive, children
    gate = Gate()
    with Redis() as rd, Subscriber(gate) as s1, Subscriber() as s2, Subscriber() as s3:
        with Broker(config(rd.port, [s1, s2, s3], None, "node-a", claim_idle="60s",
                           workers=1)) as b:
            accepted, other = produce([b], "ev", 50, threads=2)
            eq(other, [], "accepted")
            check(wait_until(lambda: len(set(ids_of(s1))) == 50, 10), "t1's requests arrived")
            workers = children(b.proc.pid)
            eq(len(workers), 1, "one worker")
            os.kill(workers[0], signal.SIGKILL)  # a child of the broker this test started
            check(wait_until(lambda: not alive(workers[0]), 5), "the worker died")
            held = pending_of(rd, "default/t1", "node-a")
            check(held > 0, "pending at node-a after the worker died: %d" % held)
            with s1.lock:
                first = len(s1.requests)
            gate.open()

            def again():
                with s1.lock:
                    return {r.ce("id") for r in s1.requests[first:]}
            check(wait_until(lambda: len(again()) >= held, 30),
                  "the restarted worker delivered the %d pending entries again: %d"
                  % (held, len(again())))
            check(wait_until(lambda: pending_of(rd, "default/t1", "node-a") == 0, 10),
                  "nothing pending once delivered")
            check("did not acknowledge are delivered again" in b.log(), b.log())


# ---- a slow delivery stays with its node ------------------------------------------------------


def test_slow_delivery_not_taken_over():
    """Deliveries that take longer than claimIdle (1 s here; 2.5 s each) are not taken over by
    the other node: the node that holds them resets their idle time while it works on them."""
    with Redis() as rd, Subscriber(slow(2.5)) as s1, Subscriber() as s2, Subscriber() as s3:
        subs = [s1, s2, s3]
        nodes = []
        try:
            for i in range(2):
                nodes.append(Broker(config(rd.port, subs, None, "node-%d" % i,
                                           claim_idle="1s", workers=1)))
            accepted, other = produce(nodes, "ev", 40, threads=2)
            eq(other, [], "accepted")
            check(wait_until(lambda: set(accepted) <= set(ids_of(s1)), 30),
                  "t1 got every event: %d" % len(set(ids_of(s1))))
            check(wait_until(lambda: pending_of(rd, "default/t1", "node-0")
                             + pending_of(rd, "default/t1", "node-1") == 0, 10),
                  "every entry of t1 acknowledged")
            got = ids_of(s1)
            eq(len(got) - len(set(got)), 0, "no duplicates at t1")
            eq(sum(group_metric(b, "claimed_total", "t1") for b in nodes), 0.0,
               "nothing taken over")
        finally:
            for b in nodes:
                b.__exit__(None, None, None)


# ---- a stream deleted under a running node ---------------------------------------------------


def test_stream_deleted_group_made_again():
    with Redis() as rd, Subscriber() as s1, Subscriber() as s2, Subscriber() as s3:
        subs = [s1, s2, s3]
        with Broker(config(rd.port, subs, None, "node-a", workers=1)) as b:
            eq(post(b, "ev-000000").status, 202, "publish")
            check(wait_until(lambda: "ev-000000" in ids_of(s1), 10), "delivered")
            eq(rd.cmd("DEL", KEY0, "ringcast:{default/default/1}"), 2, "streams deleted")
            ids = ["ev-%06d" % i for i in range(1, 21)]
            deadline = time.monotonic() + 10
            for eid in ids:
                eq(post(b, eid).status, 202, "publish after the DEL")
            while time.monotonic() < deadline and not set(ids) <= set(ids_of(s1)):
                time.sleep(0.1)
            eq(sorted(set(ids_of(s1)) - {"ev-000000"}), ids, "delivered after the group was "
               "made again: %s" % b.log()[-2000:])
            check("the group is gone from Redis" in b.log(), b.log())


# ---- start-from: where a new trigger's group starts ------------------------------------------


def test_start_from_places_a_new_group():
    """Triggers added by a reload: start-from oldest gets every entry the streams hold, the
    default only new ones; a group that exists keeps its position across a restart."""
    with Redis() as rd, Subscriber() as s1, Subscriber() as s2, Subscriber() as s3, \
            Subscriber() as old, Subscriber() as new:
        cfg = config(rd.port, [s1, s2, s3], None, "node-a", workers=1)
        with Broker(cfg) as b:
            first = ["ev-%06d" % i for i in range(5)]
            for eid in first:
                eq(post(b, eid).status, 202, "publish")
            check(wait_until(lambda: set(first) <= set(ids_of(s1)), 10), "t1 got them")
            more = ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
                    "  name: from-oldest\n  annotations: {ringcast.dev/start-from: oldest}\n"
                    "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
                    "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                    "metadata: {name: from-latest}\n"
                    "spec:\n  broker: default\n  subscriber: {uri: %s}\n" % (old.url, new.url))
            with open(os.path.join(b.tmp.name, "ringcast.yaml"), "w") as f:
                f.write(cfg + more)
            b.signal(signal.SIGHUP)
            check(wait_until(lambda: "reloaded" in b.log(), 15), b.log()[-3000:])
            later = ["ev-%06d" % i for i in range(5, 10)]
            for eid in later:
                eq(post(b, eid).status, 202, "publish after the reload")
            check(wait_until(lambda: set(first + later) <= set(ids_of(old)), 10),
                  "start-from oldest: every entry %r" % sorted(ids_of(old)))
            check(wait_until(lambda: set(later) <= set(ids_of(new)), 10), "latest: the new ones")
            time.sleep(0.3)
            eq(sorted(ids_of(new)), later, "start-from latest (the default): only new entries")
            eq(sorted(ids_of(old)), first + later, "start-from oldest: each once")


# ---- a key that is no stream where a group must go: a reload is refused, clearly ------------


def test_reload_refused_on_a_non_stream_key():
    with Redis() as rd, Subscriber() as s1, Subscriber() as s2, Subscriber() as s3:
        with Broker(config(rd.port, [s1, s2, s3], None, "node-a", workers=1)) as b:
            eq(post(b, "ev-000000").status, 202, "publish")
            check(wait_until(lambda: "ev-000000" in ids_of(s1), 10), "delivered")
            rd.cmd("DEL", KEY0, "ringcast:{default/default/1}")
            eq(rd.cmd("SET", KEY0, "not a stream"), "OK", "a string where a stream was")
            b.signal(signal.SIGHUP)  # the reload makes the triggers' groups again
            text = ("Redis key 'ringcast:{default/default/0}' is not a stream, so it cannot "
                    "hold the consumer group 'default/t1' of broker default/default (rename or "
                    "delete the key)")
            check(wait_until(lambda: "reload rejected" in b.log(), 15), b.log()[-3000:])
            check(text in b.log(), b.log()[-3000:])
            check(b.proc.poll() is None, "serve runs on")
            eq(rd.cmd("DEL", KEY0), 1, "the key removed")
            b.signal(signal.SIGHUP)
            check(wait_until(lambda: "reloaded" in b.log(), 15), b.log()[-3000:])
            eq(post(b, "ev-000001").status, 202, "publish after the fix")
            check(wait_until(lambda: "ev-000001" in ids_of(s1), 10), "delivered after the fix")


# ---- config errors ---------------------------------------------------------------------------


def test_config_errors():
    from rc_harness import run_cli
    cases = [
        ("    claimIdle: 50ms\n", "claimIdle: 50ms", "'spec.redis.claimIdle' must be at least"),
        ("    claimIdle: soon\n", "claimIdle: soon", "spec.redis.claimIdle"),
        ("    nodeId: \"a b\"\n", "nodeId:", "'spec.redis.nodeId' may hold letters"),
        ("    nodeId: \"%s\"\n" % ("n" * 65), "nodeId:", "'spec.redis.nodeId' must be 1 to 64"),
        ("    nodeId: \"\"\n", "nodeId:", "'spec.redis.nodeId' must be 1 to 64"),
    ]
    import tempfile
    for extra, needle, text in cases:
        cfg = ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  redis:\n"
               "    addresses: [\"127.0.0.1:1\"]\n%s---\napiVersion: eventing.knative.dev/v1\n"
               "kind: Broker\nmetadata:\n  name: default\n"
               "  annotations: {ringcast.dev/storage-type: redis}\n" % extra)
        with tempfile.TemporaryDirectory(prefix="rc-groups-") as d:
            path = os.path.join(d, "ringcast.yaml")
            with open(path, "w") as f:
                f.write(cfg)
            rc, _out, err = run_cli(["serve", "--config", path, "--listen", "127.0.0.1:0",
                                     "--admin", "127.0.0.1:0", "--ring-prefix", "rcgrpbad"])
            check(rc != 0, "serve refused %r" % extra)
            check(text in err, "%r not in %r" % (text, err))
            line = next(i for i, ln in enumerate(cfg.splitlines(), 1) if needle in ln)
            check(err.startswith("ringcast serve: %s:%d: " % (path, line)),
                  "FILE:LINE %d of %r in %r" % (line, needle, err))


if __name__ == "__main__":
    if REDIS_SERVER is None:
        print("SKIP: redis-server is not installed (scripts/setup.sh installs it)")
        sys.exit(77)
    Runner().run([test_config_errors, test_three_nodes_once_per_trigger,
                  test_killed_node_pending_taken_over, test_restart_rereads_own_pending,
                  test_worker_killed_rereads_pending, test_slow_delivery_not_taken_over,
                  test_stream_deleted_group_made_again, test_start_from_places_a_new_group,
                  test_reload_refused_on_a_non_stream_key])
