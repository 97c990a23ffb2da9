#!/usr/bin/env python3
"""Consumer groups per trigger on a Redis Cluster (issue 16; docs/scaleout.md "Groups on a Redis
Cluster"): the group reader sends each command per partition key, so the streams may sit on
several masters. With real redis-server processes in cluster mode (test_redis_cluster.Cluster:
3 masters, `redis-cli --cluster create`) and two `ringcast serve` nodes on free loopback ports:

- 6 partitions over the 3 masters, 2 triggers, producers on both nodes: every accepted (202)
  event is delivered once per trigger across the nodes (no duplicates, none lost), each
  trigger's group exists on every partition stream (on its master), and both nodes did part of
  every trigger's work;
- kill -9 of the master of partition 0 under load (1 replica each, `replicas: 1`; once with
  the replica in sync, once cut off 0.7 s before the kill), its replica promoted: the readers follow the new map, nothing acknowledged is lost (every 202 event is in
  Redis and delivered to each trigger), and the duplicates are few (measured) and all of the
  killed master's partitions, where the promoted replica may not have had the last reads and
  acknowledgements;
- a string where a partition stream (on another master than partition 0's) must hold a
  trigger's group at a reload: refused with a message naming the key and the group; serve runs
  on, and a reload after the fix applies.

Skips (exit 77) only when redis-server or redis-cli is missing. Every wait is bounded;
processes are stopped by pid; only 127.0.0.1."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402
from test_redis import Producers, ids_in, post, wait_until  # noqa: E402
from test_redis_cluster import REDIS_CLI, REDIS_SERVER, Cluster, key  # noqa: E402
from test_redis_groups import group_metric  # noqa: E402

PARTS = 6
TRIGGERS = ("t1", "t2")


def config(cl, subs, node_id, extra=""):
    cfg = ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
           "  workers: 1\n  shutdownTimeout: 2s\n  redis:\n    addresses: [%s]\n"
           "    partitions: %d\n    claimIdle: 30s\n    nodeId: %s\n%s"
           "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
           "metadata:\n  name: default\n  annotations: {ringcast.dev/storage-type: redis}\n"
           "spec:\n  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}\n"
           % (cl.seeds(), PARTS, node_id, extra))
    for name, sub in zip(TRIGGERS, subs):
        cfg += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                "metadata: {name: %s}\nspec:\n  broker: default\n  subscriber: {uri: %s}\n"
                % (name, sub.url))
    return cfg


def dups(sub):
    got = sub.ids()
    return sorted({e for e in got if got.count(e) > 1})


def spread(nodes, want):
    """Every node read part of every trigger's group; the entries read add up to `want`
    (None: not checked, as after a failover where some are read twice)."""
    for t in TRIGGERS:
        per_node = [group_metric(b, "read_total", t) for b in nodes]
        if want is not None:
            eq(sum(per_node), float(want), "%s: entries read over the nodes %r" % (t, per_node))
        check(all(n > 0 for n in per_node), "%s: both nodes took some: %r" % (t, per_node))
    return [group_metric(b, "read_total", "t1") for b in nodes]


# ---- two nodes, three masters: once per trigger ----------------------------------------------


def test_two_nodes_once_per_trigger():
    with Cluster() as cl, Subscriber() as s1, Subscriber() as s2:
        subs = [s1, s2]
        owners = {cl.owner(key(p)).port for p in range(PARTS)}
        eq(len(owners), 3, "the %d partition streams are spread over the 3 masters" % PARTS)
        nodes = []
        try:
            for i in range(2):
                nodes.append(Broker(config(cl, subs, "node-%d" % i)))
            accepted, other = [], []
            lock = threading.Lock()

            def run(k):
                for i in range(k, 600, 3):
                    eid = "ev-%06d" % i
                    st = post(nodes[i % 2], eid, key="pk-%d" % (i % 17)).status
                    with lock:
                        (accepted if st == 202 else other).append(eid if st == 202 else st)

            ts = [threading.Thread(target=run, args=(k,)) for k in range(3)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(120)
            eq(other, [], "every publish accepted")
            eq(len(accepted), 600, "accepted")
            for t, s in zip(TRIGGERS, subs):
                check(wait_until(lambda: set(accepted) <= set(s.ids()), 60),
                      "trigger %s got every event: %d of 600" % (t, len(set(s.ids()))))
            time.sleep(1.0)  # a duplicate would arrive now
            for t, s in zip(TRIGGERS, subs):
                eq(dups(s), [], "duplicates at trigger %s" % t)
                eq(sorted(s.ids()), sorted(accepted), "trigger %s: once each" % t)
            # Each trigger's group is on every partition stream, on the master that owns it.
            for p in range(PARTS):
                groups = cl.owner(key(p)).cmd("XINFO", "GROUPS", key(p))
                names = sorted(dict(zip(g[::2], g[1::2]))[b"name"].decode() for g in groups)
                eq(names, ["default/t1", "default/t2"], "the groups of %s" % key(p))
            per_node = spread(nodes, 600)
            check(wait_until(lambda: all(group_metric(b, "pending", t) == 0 for b in nodes
                                         for t in TRIGGERS), 5), "no pending entries left")
            acked = sum(group_metric(b, "acked_total", "t1") for b in nodes)
            eq(acked, 600.0, "t1's entries acknowledged over the nodes")
            check("is a Redis Cluster of 3 masters" in nodes[0].log(), nodes[0].log())
            check("not routed over a Redis Cluster" not in nodes[0].log(), nodes[0].log())
            print("     2 nodes, 3 masters: t1 read per node %r" % per_node, flush=True)
        finally:
            for b in nodes:
                b.__exit__(None, None, None)


# ---- failover of a master under load ---------------------------------------------------------


def failover_under_load(cut):
    """With `cut`, the master's replica is cut off 0.7 s before the kill (as in
    test_redis_cluster.py: the master takes a password its replica does not know and drops
    it): the reads and acknowledgements of that time never reach the promoted replica, which
    hands those entries out again."""
    extra = "    replicas: 1\n    waitTimeout: 1s\n"
    with Cluster(replicas=1) as cl, Subscriber() as s1, Subscriber() as s2:
        subs = [s1, s2]
        victim = cl.owner(key(0))
        killed_parts = [p for p in range(PARTS) if cl.owner(key(p)).port == victim.port]
        nodes = []
        load = None
        try:
            for i in range(2):
                nodes.append(Broker(config(cl, subs, "node-%d" % i, extra)))

            load = Producers(lambda eid, i: post(nodes[i % 2], eid, key="pk-%d" % (i % 24)))
            accepted, refused, other = load.accepted, load.refused, load.other
            try:
                time.sleep(1.5)
                before = len(accepted)
                if cut:
                    eq(victim.cmd("CONFIG", "SET", "requirepass", "cut-pw"), "OK", "cut")
                    victim.password = "cut-pw"
                    check(victim.cmd("CLIENT", "KILL", "TYPE", "replica") >= 1, "replica dropped")
                    time.sleep(0.7)
                killed_at = time.monotonic()
                victim.kill()
                victim.password = None
                check(wait_until(lambda: cl.ready() and cl.owner(key(0)).port != victim.port,
                                 20, 0.1),
                      "the replica was not promoted: %s" % cl.any().cmd("CLUSTER", "NODES"))
                promoted_at = time.monotonic()
                # WAIT 1 needs a replica of the promoted master: the old one rejoins as it.
                victim.start()
                check(wait_until(cl.ready, 20, 0.1), "the old master rejoined as a replica")
                at = len(accepted)
                check(wait_until(lambda: len(accepted) > at + 300, 20),
                      "202s again after the promotion (no broker restart)")
            finally:
                load.stop(30)
            eq(other, [], "answers other than 202 and 503")
            check(before > 0, "202s before the kill")
            by_part = {p: set(ids_in(cl.records(key(p)))) for p in range(PARTS)}
            in_redis = set().union(*by_part.values())
            lost = sorted(e for e in accepted if e not in in_redis)
            eq(lost, [], "acknowledged events lost although each 202 waited for WAIT 1")
            for t, s in zip(TRIGGERS, subs):
                check(wait_until(lambda: set(accepted) <= set(s.ids()), 60),
                      "trigger %s got every accepted event: missing %d of %d" %
                      (t, len(set(accepted) - set(s.ids())), len(accepted)))
            time.sleep(1.0)
            killed = set().union(*(by_part[p] for p in killed_parts))
            counts = []
            for t, s in zip(TRIGGERS, subs):
                d = dups(s)
                counts.append(len(d))
                eq([e for e in d if e not in killed], [],
                   "%s: duplicates only of the killed master's partitions %r" % (t, killed_parts))
                # The promoted replica may lack the last reads and acknowledgements: at most
                # what the two nodes held or had just acknowledged then, far below the load.
                check(len(d) <= len(accepted) // 10, "%s: %d duplicates of %d accepted" %
                      (t, len(d), len(accepted)))
            per_node = spread(nodes, None)
            check(any("the Redis Cluster answers again" in b.log() or
                      "delivered again" in b.log() for b in nodes),
                  "a reader lost the dead master and came back: %s" % nodes[0].log()[-2000:])
            again = sum(b.log().count("were delivered here before") for b in nodes)
            print("     failover%s: accepted %d, refused %d (503), promotion %.1f s, lost 0, "
                  "duplicates %r (killed master's partitions %r), t1 read per node %r, "
                  "re-reads not delivered again (log lines) %d"
                  % (", replica cut off 0.7 s before" if cut else "", len(accepted),
                     len(refused), promoted_at - killed_at, counts,
                     killed_parts, per_node, again), flush=True)
        finally:
            if load is not None:
                load.stop(30)
            for b in nodes:
                b.__exit__(None, None, None)


# ---- a key that is no stream where a group must be made ---------------------------------------


def test_non_stream_key_at_reload():
    """The group is made per key on the key's master: a string there (on another master than
    partition 0's) refuses the reload with a message naming the key and the group."""
    with Cluster() as cl, Subscriber() as s1, Subscriber() as s2:
        with Broker(config(cl, [s1, s2], "node-a")) as b:
            p = next(q for q in range(1, PARTS)
                     if cl.owner(key(q)).port != cl.owner(key(0)).port)
            owner = cl.owner(key(p))
            eq(owner.cmd("SET", key(p), "not a stream"), "OK", "a string where a stream was")
            b.signal(signal.SIGHUP)  # the reload makes the triggers' groups again
            text = ("Redis key '%s' is not a stream, so it cannot hold the consumer group "
                    "'default/t1' of broker default/default (rename or delete the key)" % key(p))
            check(wait_until(lambda: "reload rejected" in b.log(), 15), b.log()[-3000:])
            check(text in b.log(), b.log()[-3000:])
            check(b.proc.poll() is None, "serve runs on")
            eq(owner.cmd("DEL", key(p)), 1, "the key removed")
            b.signal(signal.SIGHUP)
            check(wait_until(lambda: "reloaded" in b.log(), 15), b.log()[-3000:])
            ids = ["ev-%06d" % i for i in range(30)]
            for i, eid in enumerate(ids):
                eq(post(b, eid, key="pk-%d" % i).status, 202, "publish after the fix")
            for s in (s1, s2):
                check(wait_until(lambda: set(ids) <= set(s.ids()), 20),
                      "delivered after the fix: %d of 30" % len(set(s.ids()) & set(ids)))


def test_failover_under_load():
    failover_under_load(cut=False)


def test_failover_lagging_replica():
    failover_under_load(cut=True)


if __name__ == "__main__":
    if REDIS_SERVER is None or REDIS_CLI is None:
        print("SKIP: redis-server or redis-cli is not installed (scripts/setup.sh installs "
              "redis-server, which brings redis-tools with redis-cli)")
        sys.exit(77)
    Runner().run([test_two_nodes_once_per_trigger, test_non_stream_key_at_reload,
                  test_failover_under_load, test_failover_lagging_replica])
