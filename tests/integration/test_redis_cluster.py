#!/usr/bin/env python3
"""The redis store on a Redis Cluster (issue 16; docs/scaleout.md "Redis Cluster"), with real
redis-server processes in cluster mode that this test starts on free loopback ports, each in its
own temp directory (cluster-config-file there, cluster-node-timeout 1 s), joined by
`redis-cli --cluster create` (3 masters, and 1 replica each where a failover is tested):

- publish with partitions spread over all three masters -> every 202 event is in its stream on
  the master that owns the stream's slot (XRANGE there) and a Trigger delivers it once;
- a slot moved under the broker: the stream MIGRATEd while its slot is MIGRATING/IMPORTING (the
  old master answers ASK: the writer and the mirror send ASKING to the new one), then the slot
  given to the new master (MOVED: the map is updated) -> every event stored and delivered once;
- failover of one master under load (kill -9; its replica is promoted): 503s meanwhile, 202s
  again without a restart; with `replicas: 1` (WAIT) no acknowledged event is lost; with
  `replicas: 0` the acknowledged events that are lost, if any, are counted and must all be of
  the killed master's partitions and acknowledged shortly before the kill (what docs/scaleout.md
  says asynchronous replication can lose);
- refused at start with a clear message: no seed answers, a wrong password, several addresses
  of a server that is not a cluster; a right password works.

Skips (exit 77) only when redis-server or redis-cli is missing (scripts/setup.sh installs
redis-server, which brings redis-tools). Every wait is bounded; processes are stopped by pid;
only 127.0.0.1."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402
from test_redis import (Holder, Producers, Redis, Resp, free_port, ids_in,  # noqa: E402
                        mirror_metric, post, post_big, serve_fails, small_ring, wait_until)

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def cluster_port():
    """A free port whose cluster bus port (+10000) is free too, both below 65536."""
    for _ in range(200):
        port = random.randint(20000, 50000)
        socks = []
        try:
            for p in (port, port + 10000):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port pair for a cluster node")


class Node:
    """One redis-server in cluster mode: own port and directory."""

    def __init__(self, password=None):
        self.dir = tempfile.TemporaryDirectory(prefix="rc-rcl-")
        self.password = password
        # Another test may take the port or its bus port (+10000) between cluster_port's check
        # and the server's bind (seen once in CI): then another pair.
        for attempt in range(5):
            self.port = cluster_port()
            try:
                self.start()
                return
            except AssertionError as e:
                if attempt == 4 or "Address already in use" not in str(e):
                    raise
                conf = os.path.join(self.dir.name, "nodes.conf")
                if os.path.exists(conf):
                    os.unlink(conf)  # made for the port it could not have

    def start(self):
        """Starts (or restarts, on its nodes.conf: it rejoins as it left) the server."""
        password = self.password
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir.name, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", os.path.join(self.dir.name, "redis.log"),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        if password:
            args += ["--requirepass", password, "--masterauth", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.alive():
            try:
                self.cmd("PING")
                return
            except (OSError, RuntimeError, ConnectionError):
                time.sleep(0.05)
        self.kill()  # not left running when it did not come up
        raise AssertionError("redis-server did not start on port %d: %s" % (
            self.port, open(os.path.join(self.dir.name, "redis.log")).read()[-500:]
            if os.path.exists(os.path.join(self.dir.name, "redis.log")) else "no log"))

    def cmd(self, *args):
        c = Resp(self.port, self.password)
        try:
            return c.cmd(*args)
        finally:
            c.close()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def close(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.dir.cleanup()


class Cluster:
    """3 masters (and `replicas` replicas each) joined by redis-cli --cluster create."""

    def __init__(self, replicas=0, password=None, masters=3):
        self.password = password
        self.nodes = []
        try:
            for _ in range(masters * (1 + replicas)):
                self.nodes.append(Node(password))  # one by one: close() stops those started
            cmd = [REDIS_CLI, "--cluster", "create"]
            cmd += ["127.0.0.1:%d" % n.port for n in self.nodes]
            cmd += ["--cluster-replicas", str(replicas), "--cluster-yes"]
            if password:
                cmd += ["-a", password, "--no-auth-warning"]
            if masters == 1:  # redis-cli wants 3 masters: one node takes every slot itself
                self.nodes[0].cmd("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            else:
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, timeout=60)
                check(p.returncode == 0, "redis-cli --cluster create: %s" % p.stdout[-2000:])
            check(wait_until(self.ready, 20, 0.1), "the cluster did not become ready: %s" %
                  self.any().cmd("CLUSTER", "NODES"))
        except BaseException:
            self.close()
            raise

    def ready(self):
        """Every live node says cluster_state:ok and knows every master and replica in sync."""
        try:
            for n in self.nodes:
                if n.alive() and b"cluster_state:ok" not in n.cmd("CLUSTER", "INFO"):
                    return False
            for n in self.nodes:
                if n.alive():
                    info = n.cmd("INFO", "replication")
                    if b"role:slave" in info and b"master_link_status:up" not in info:
                        return False
            return True
        except (OSError, RuntimeError, ConnectionError):
            return False

    def any(self):
        return next(n for n in self.nodes if n.alive())

    def by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def table(self):
        """CLUSTER NODES as {port: (id, flags, master id, [slot ranges])}, live nodes only."""
        out = {}
        for line in self.any().cmd("CLUSTER", "NODES").decode().splitlines():
            f = line.split()
            port = int(f[1].split("@")[0].rsplit(":", 1)[1])
            if "fail" in f[2] or "noaddr" in f[2]:
                continue
            out[port] = (f[0], f[2], f[3], f[8:])
        return out

    def owner(self, key):
        """The master node owning `key`'s slot."""
        slot = self.any().cmd("CLUSTER", "KEYSLOT", key)
        for port, (_id, flags, _m, ranges) in self.table().items():
            if "master" not in flags:
                continue
            for r in ranges:
                if r.startswith("["):
                    continue  # a slot being migrated: listed by its owner too
                a, _, b = r.partition("-")
                if int(a) <= slot <= int(b or a):
                    return self.by_port(port)
        raise AssertionError("no master owns %s (slot %d)" % (key, slot))

    def records(self, key):
        out = []
        for _id, fields in self.owner(key).cmd("XRANGE", key, "-", "+") or []:
            d = dict(zip(fields[::2], fields[1::2]))
            out.append(d.get(b"r"))
        return out

    def seeds(self):
        return ", ".join('"127.0.0.1:%d"' % n.port for n in self.nodes[:3])

    def close(self):
        for n in self.nodes:
            n.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


SETTINGS = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 2s
  redis:
    addresses: [%s]
    partitions: %d
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  annotations: {ringcast.dev/storage-type: redis}
"""


def config(seeds, partitions, extra="", sub=None):
    cfg = SETTINGS % (seeds, partitions, extra)
    if sub is not None:
        cfg += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: all}\n"
                "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
                "  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}\n"
                % sub.url)
    return cfg


def key(p):
    return "ringcast:{default/default/%d}" % p


def all_records(cl, partitions):
    out = []
    for p in range(partitions):
        out += cl.records(key(p))
    return out


def delivered_once(sub, want, timeout=30, max_dups=0):
    """Every event of `want` reached the subscriber; at most `max_dups` arrived twice (0 but
    after a failover, where delivery is at least once: docs/scaleout.md)."""
    check(wait_until(lambda: set(want) <= set(sub.ids()), timeout),
          "every event delivered (missing %d: %r)" %
          (len(set(want) - set(sub.ids())), sorted(set(want) - set(sub.ids()))[:5]))
    time.sleep(0.3)  # a duplicate would arrive now
    got = sub.ids()
    dups = len(got) - len(set(got))
    if max_dups == 0:
        eq(dups, 0, "no event delivered twice")
    else:
        check(dups <= max_dups, "%d events delivered twice (at most %d)" % (dups, max_dups))
    return dups


# ---- publish over three masters -------------------------------------------------------------


def test_publish_over_three_masters():
    """Events from the ingress (the broker's writer thread) and replies from a worker process
    (its own connections to the cluster) land on the masters owning their streams."""
    def reply(_i, req):
        if req.ce("type") != "t":
            return 200, {}, b"", 0.0
        return 200, {"ce-id": "re-" + req.ce("id"), "ce-source": "/replier",
                     "ce-type": "reply", "ce-specversion": "1.0",
                     "Content-Type": "text/plain"}, b"r", 0.0

    parts = 6
    with Cluster() as cl, Subscriber(reply) as sub, Subscriber() as sink:
        cfg = config(cl.seeds(), parts, sub=sub)
        cfg += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                "metadata: {name: replies}\nspec:\n  broker: default\n"
                "  filter: {attributes: {type: reply}}\n  subscriber: {uri: %s}\n" % sink.url)
        with Broker(cfg) as b:
            publish_over_three_masters(cl, b, sub, sink, parts)


def publish_over_three_masters(cl, b, sub, sink, parts):
    owners = {cl.owner(key(p)).port for p in range(parts)}
    eq(len(owners), 3, "the %d partition streams are spread over the 3 masters" % parts)
    ids = ["ev-%06d" % i for i in range(90)]
    for i, eid in enumerate(ids):
        r = post(b, eid, key=("k%d" % (i % 7)) if i % 2 else None)
        eq(r.status, 202, "publish %s: %r" % (eid, r))
    check("is a Redis Cluster of 3 masters" in b.log(), b.log())
    delivered_once(sub, ids)
    sink.wait_for(len(ids), timeout=20)
    eq(sorted(sink.ids()), ["re-" + e for e in ids], "replies delivered once each")
    per_master = {}
    for p in range(parts):
        o = cl.owner(key(p))
        per_master[o.port] = per_master.get(o.port, 0) + len(cl.records(key(p)))
    check(all(v > 0 for v in per_master.values()), "entries on every master: %r" % per_master)
    recs = all_records(cl, parts)
    events = [r for r in recs if b"/replier" not in r]
    replies = [r for r in recs if b"/replier" in r]
    eq(sorted(ids_in(events)), ids, "every 202 event in its stream, on its master")
    eq(sorted(ids_in(replies)), ids, "the worker's replies are entries of the streams")
    tailed = [e["id"] for e in b.tail("default/default")]
    eq(sorted(tailed), sorted(ids + ["re-" + e for e in ids]), "ringcast tail reads the ring")


# ---- a slot moved: ASK, then MOVED ------------------------------------------------------------


def test_slot_moved_ask_and_moved():
    with Cluster() as cl, Subscriber() as sub, Broker(config(cl.seeds(), 1, sub=sub)) as b:
        k = key(0)
        slot = cl.any().cmd("CLUSTER", "KEYSLOT", k)
        src = cl.owner(k)
        dst = next(n for n in cl.nodes if n.port != src.port)
        src_id, dst_id = src.cmd("CLUSTER", "MYID").decode(), dst.cmd("CLUSTER", "MYID").decode()
        ids = ["ev-%06d" % i for i in range(30)]
        for eid in ids[:10]:
            eq(post(b, eid).status, 202, "publish before the move")
        # The slot is migrating and the stream has moved: the old master answers ASK.
        eq(dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id), "OK", "IMPORTING")
        eq(src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id), "OK", "MIGRATING")
        eq(src.cmd("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", k), "OK", "MIGRATE")
        for eid in ids[10:20]:
            r = post(b, eid)
            eq(r.status, 202, "publish while the slot migrates (ASK): %r" % r)
        asking = dst.cmd("INFO", "commandstats")
        check(b"cmdstat_asking:calls=" in asking, "ASKING was sent to the importing master")
        # The slot is the new master's: the old one answers MOVED.
        for n in cl.nodes:
            eq(n.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id), "OK", "SETSLOT NODE")
        for eid in ids[20:]:
            r = post(b, eid)
            eq(r.status, 202, "publish after the move (MOVED): %r" % r)
        try:
            src.cmd("EXISTS", k)
            check(False, "the old master still serves the slot")
        except RuntimeError as e:
            check(str(e).startswith("MOVED") and str(e).endswith(":%d" % dst.port), str(e))
        eq(sorted(ids_in(cl.records(k))), ids, "every 202 event on the new master")
        delivered_once(sub, ids)


# ---- failover of one master under load ------------------------------------------------------


def failover_under_load(replicas, cut=False):
    """Publishes from 4 threads, kills the master of partition 0, waits for its replica's
    promotion and for 202s on every partition again. With `cut`, the master's replica is cut
    off 0.7 s before the kill (the master takes a password its replica does not know, and drops
    it), so what the master acknowledged meanwhile never reaches the replica: replication lag
    made long enough to see. Returns what it measured."""
    parts = 6
    extra = "    replicas: %d\n    waitTimeout: 1s\n" % replicas
    with Cluster(replicas=1) as cl, Subscriber() as sub, \
            Broker(config(cl.seeds(), parts, extra, sub=sub)) as b:
        victim = cl.owner(key(0))
        victim_id = victim.cmd("CLUSTER", "MYID").decode()
        killed_parts = [p for p in range(parts) if cl.owner(key(p)).port == victim.port]
        load = Producers(lambda eid, i: post(b, eid, key="pk-%d" % (i % 24)))
        accepted, refused, other = load.accepted, load.refused, load.other
        try:
            time.sleep(1.5)
            before = len(accepted)
            cut_at = time.monotonic()
            if cut:
                eq(victim.cmd("CONFIG", "SET", "requirepass", "cut-pw"), "OK", "cut")
                victim.password = "cut-pw"
                check(victim.cmd("CLIENT", "KILL", "TYPE", "replica") >= 1, "replica dropped")
                time.sleep(0.7)
            killed_at = time.monotonic()
            victim.kill()
            victim.password = None
            promoted = wait_until(lambda: cl.ready() and cl.owner(key(0)).port != victim.port,
                                  20, 0.1)
            check(promoted, "the replica was not promoted: %s" % cl.any().cmd("CLUSTER", "NODES"))
            promoted_at = time.monotonic()
            if replicas > 0:
                # The promoted replica has no replica of its own: WAIT 1 counts 0 and its
                # partitions answer 503 until the old master comes back as its replica.
                victim.start()
                check(wait_until(cl.ready, 20, 0.1), "the old master rejoined as a replica")
            at_promotion = len(accepted)
            check(wait_until(lambda: len(accepted) > at_promotion + 300, 20),
                  "202s again after the promotion (no broker restart)")
        finally:
            load.stop(30)
        eq(other, [], "answers other than 202 and 503")
        check(before > 0, "202s before the kill")
        in_redis = set(ids_in(all_records(cl, parts)))
        lost = sorted(e for e in accepted if e not in in_redis)
        # The killed master's partitions take 202 writes again, on the promoted replica.
        after = [e for e in ids_in(sum((cl.records(key(p)) for p in killed_parts), []))
                 if accepted.get(e, 0) > promoted_at]
        check(len(after) > 0, "202 writes to the killed master's partitions after the promotion")
        # Every accepted event that Redis still has is delivered; lost ones may have been
        # mirrored before the kill, so they are not required. Across a failover delivery is at
        # least once: a promoted replica may hand out again what its master had acknowledged
        # (seen: 1 of 6,854 once in CI), bounded here by 1% of the load.
        dups = delivered_once(sub, [e for e in accepted if e in in_redis], timeout=40,
                              max_dups=max(10, len(accepted) // 100))
        if dups:
            print("     %d delivered twice across the failover" % dups)
        outage = promoted_at - killed_at
        print("     replicas %d%s: accepted %d, refused %d (503), failover %.1f s, lost %d "
              "acknowledged (killed master's partitions %r)"
              % (replicas, ", replica cut off 0.7 s before" if cut else "", len(accepted),
                 len(refused), outage, len(lost), killed_parts), flush=True)
        return {"accepted": accepted, "lost": lost, "killed_at": killed_at, "cut_at": cut_at,
                "killed_parts": killed_parts, "refused": len(refused), "cl_parts": parts}


def test_failover_without_wait():
    r = failover_under_load(replicas=0)
    # docs/scaleout.md: without WAIT, a 202'd XADD that had not reached the replica when the
    # master died is lost; on loopback the replica is milliseconds behind: only events
    # acknowledged in the last second before the kill may be.
    early = [e for e in r["lost"] if r["accepted"][e] < r["killed_at"] - 1.0]
    eq(early, [], "lost events acknowledged more than 1 s before the kill")
    check(r["refused"] > 0, "503s while the master was down")


def test_failover_lagging_replica_without_wait_loses_the_lag():
    r = failover_under_load(replicas=0, cut=True)
    # What the master acknowledged after its replica was cut off is lost with it, and only that.
    check(len(r["lost"]) > 0, "acknowledged events lost (the replica never had them)")
    early = [e for e in r["lost"] if r["accepted"][e] < r["cut_at"]]
    eq(early, [], "lost events acknowledged before the replica was cut off")


def test_failover_lagging_replica_with_wait_loses_nothing():
    r = failover_under_load(replicas=1, cut=True)
    # WAIT 1 counted 0 replicas after the cut: those events got 503, none was acknowledged.
    eq(r["lost"], [], "acknowledged events lost although each 202 waited for WAIT 1")
    check(r["refused"] > 0, "503s while the replica was cut off and the master down")


# ---- refused at start, and a password ----------------------------------------------------------


def test_start_refusals_and_password():
    dead = [free_port(), free_port()]
    rc, err, _ = serve_fails(config('"127.0.0.1:%d", "127.0.0.1:%d"' % tuple(dead), 2))
    check("none of the 2 Redis addresses answered; the last: cannot connect to Redis at "
          "127.0.0.1:%d" % dead[1] in err, err)
    with Cluster(masters=1, password="s3cret-pw") as cl:
        seeds = '"127.0.0.1:%d"' % cl.nodes[0].port
        rc, err, _ = serve_fails(config(seeds, 2, "    password: wrong\n"))
        check("refused the password" in err, err)
        check("wrong" not in err, "the password is not printed: %r" % err)
        with Subscriber() as sub, \
                Broker(config(seeds, 2, "    password: s3cret-pw\n", sub=sub)) as b:
            ids = ["ev-%06d" % i for i in range(10)]
            for eid in ids:
                eq(post(b, eid).status, 202, "publish with the password")
            delivered_once(sub, ids)
            check("is a Redis Cluster of 1 master" in b.log(), b.log())
    # Two addresses of a server that is not a cluster: refused, not reduced to the first.
    with Redis() as rd:
        rc, err, _ = serve_fails(config('"127.0.0.1:%d", "127.0.0.1:%d"' %
                                        (rd.port, free_port()), 2))
        check("is not a Redis Cluster (cluster_enabled:0)" in err, err)


# ---- the mirror's lag on a cluster ------------------------------------------------------------


def test_mirror_lag_on_a_cluster():
    """The lag is sampled on connections of its own (the poll's may have replies pending while
    the mirror waits for room): it grows while a lossless reader holds the ring full, over the
    partitions of all 3 masters, and is 0 again once the mirror copied everything."""
    with Cluster() as cl, Broker(small_ring(config(cl.seeds(), 6))) as b:
        holder = Holder(b)
        copied = ('ringcast_storage_redis_mirrored_total{namespace="default",broker="default",'
                  'result="copied"}')
        try:
            for i in range(120):
                eq(post_big(b, "ev-%06d" % i).status, 202, "publish")
            check(wait_until(lambda: mirror_metric(b, "mirror_lag_entries") >= 60
                             and mirror_metric(b, "mirror_lag_entries")
                             + b.metrics()[copied] == 120, 5),
                  "lag %r + copied %r == 120" % (mirror_metric(b, "mirror_lag_entries"),
                                                 b.metrics()[copied]))
            check(mirror_metric(b, "mirror_lag_seconds") > 0, "seconds behind")
        finally:
            holder.quit()
        check(wait_until(lambda: mirror_metric(b, "mirror_lag_entries") == 0
                         and b.metrics()[copied] == 120, 5), "caught up")
        eq(mirror_metric(b, "mirror_trimmed_total"), 0, "nothing trimmed")


if __name__ == "__main__":
    if REDIS_SERVER is None or REDIS_CLI is None:
        print("SKIP: redis-server or redis-cli is not installed (scripts/setup.sh installs "
              "redis-server, which brings redis-tools with redis-cli)")
        sys.exit(77)
    Runner().run([test_publish_over_three_masters, test_slot_moved_ask_and_moved,
                  test_failover_without_wait,
                  test_failover_lagging_replica_without_wait_loses_the_lag,
                  test_failover_lagging_replica_with_wait_loses_nothing,
                  test_start_refusals_and_password, test_mirror_lag_on_a_cluster])
