#!/usr/bin/env python3
"""The Redis Streams store (issue 16, first increment; docs/scaleout.md) with the real broker and
real redis-server processes this test starts on free loopback ports (own directories, AOF with
appendfsync always, so a Redis restart keeps what it acknowledged):

- publish -> the entries are in the partition streams (XLEN, XRANGE: one field "r" holding the
  ring record) -> a Trigger delivers each event once; `ringcast tail` reads them from the ring;
- Redis killed (-9) and down for 5 s while four producers keep publishing: 503 with Retry-After while it is down,
  202 again after it is back without a restart of the broker; every event that got 202 is in
  Redis and delivered, none twice;
- what serve refuses at start, with a clear message and no crash: a wrong address, a wrong or
  missing password, a key of the broker's name that is not a stream; and the config errors of
  spec.redis and storage type redis (FILE:LINE);
- a broker restarted on its ring (after a clean stop, and after kill -9 while idle) resumes
  mirroring where it left: the events another node published meanwhile arrive, none twice;
  two nodes mirroring one broker log the warning.

Skips (exit 77) only when redis-server is not installed (scripts/setup.sh installs it). Every
wait is bounded; processes are stopped by pid; only 127.0.0.1."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc_harness  # noqa: E402
from rc_harness import RINGCAST, Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")
KEY0 = "ringcast:{default/default/0}"
KEY1 = "ringcast:{default/default/1}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- a minimal RESP client (exact bytes, no dependency) -----------------------------------


class Resp:
    def __init__(self, port, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        if password:
            self.cmd("AUTH", password)

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad RESP %r" % line)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()


class Redis:
    """A redis-server of this test: own port and directory, AOF fsynced on every write."""

    def __init__(self, password=None, replicaof=None):
        self.dir = tempfile.TemporaryDirectory(prefix="rc-redis-")
        self.port = free_port()
        self.password = password
        self.replicaof = replicaof
        self.proc = None
        self.start()

    def start(self):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                self.dir.name, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--daemonize", "no", "--logfile", os.path.join(self.dir.name, "redis.log"),
                "--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s
        if self.password:
            args += ["--requirepass", self.password]
        if self.replicaof:
            args += ["--replicaof", "127.0.0.1", str(self.replicaof)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c = self.client()
                c.cmd("PING")
                c.close()
                return
            except (OSError, RuntimeError, ConnectionError):
                time.sleep(0.05)
        raise AssertionError("redis-server did not start on port %d" % self.port)

    def client(self):
        return Resp(self.port, self.password)

    def cmd(self, *args):
        c = self.client()
        try:
            return c.cmd(*args)
        finally:
            c.close()

    def stop(self, sig=signal.SIGTERM):
        """SIGTERM (Redis writes its AOF and exits) or `sig`, SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def close(self):
        self.stop()
        self.dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def records(self, key):
        """The "r" field of every entry of `key`, oldest first."""
        out = []
        for _id, fields in self.cmd("XRANGE", key, "-", "+") or []:
            d = dict(zip(fields[::2], fields[1::2]))
            out.append(d.get(b"r"))
        return out


# ---- configs ---------------------------------------------------------------------------------

SETTINGS = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 2s
  redis:
    addresses: ["127.0.0.1:%d"]
    partitions: %d
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  annotations: {ringcast.dev/storage-type: redis}
"""


def config(redis_port, partitions=2, extra="", sub=None):
    cfg = SETTINGS % (redis_port, partitions, extra)
    if sub is not None:
        cfg += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: all}\n"
                "spec:\n  broker: default\n  subscriber: {uri: %s}\n"
                "  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}\n"
                % sub.url)
    return cfg


def post(b, eid, key=None):
    h = {"ce-id": eid, "ce-source": "/redis-test", "ce-type": "t", "ce-specversion": "1.0",
         "Content-Type": "text/plain"}
    if key is not None:
        h["ce-partitionkey"] = key
    return b.request("POST", "/default/default", h, ("data-" + eid).encode())


def wait_until(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def ids_in(records):
    """Event ids found in ring records ("ev-NNNNNN" ids are fixed-width, so no id is a prefix
    of another)."""
    out = []
    for r in records:
        m = re.search(rb"ev-\d{6}", r or b"")
        if m:
            out.append(m.group(0).decode())
    return out


# ---- publish, streams, trigger ---------------------------------------------------------------


def test_publish_stream_trigger():
    with Redis() as rd, Subscriber() as sub, Broker(config(rd.port, sub=sub)) as b:
        ids = ["ev-%06d" % i for i in range(40)]
        for i, eid in enumerate(ids):
            r = post(b, eid, key=("k%d" % (i % 5)) if i % 2 else None)
            eq(r.status, 202, "publish %s: %r" % (eid, r))
        n0, n1 = rd.cmd("XLEN", KEY0), rd.cmd("XLEN", KEY1)
        eq(n0 + n1, len(ids), "entries in the two partition streams")
        check(n0 > 0 and n1 > 0, "both partitions used: %d %d" % (n0, n1))
        in_redis = ids_in(rd.records(KEY0) + rd.records(KEY1))
        eq(sorted(in_redis), ids, "the events in the streams")
        # The same partitionkey always lands in the same stream.
        for k in range(5):
            same = [eid for i, eid in enumerate(ids) if i % 2 and i % 5 == k]
            in0 = set(ids_in(rd.records(KEY0)))
            check(all(e in in0 for e in same) or not any(e in in0 for e in same),
                  "partitionkey k%d split over partitions" % k)
        sub.wait_for(len(ids), timeout=15)
        time.sleep(0.3)  # a duplicate would arrive now
        eq(sorted(sub.ids()), ids, "delivered once each")
        tailed = [e["id"] for e in b.tail("default/default")]
        eq(sorted(tailed), ids, "ringcast tail reads the mirrored ring")
        m = b.metrics()
        check(any("type=\"redis\"" in k for k in m), "storage_info type redis in /metrics")
        lb = 'namespace="default",broker="default",result='
        eq(m.get('ringcast_storage_redis_appends_total{%s"acknowledged"}' % lb), 40.0, "acked")
        eq(m.get('ringcast_storage_redis_appends_total{%s"refused"}' % lb), 0.0, "refused")
        eq(m.get('ringcast_storage_redis_mirrored_total{%s"copied"}' % lb), 40.0, "mirrored")
        eq(m.get('ringcast_storage_redis_mirrored_total{%s"skipped"}' % lb), 0.0, "skipped")
        # An entry another writer left that is no ringcast record: skipped and counted.
        rd.cmd("XADD", KEY0, "*", "other", "field")
        check(wait_until(lambda: b.metrics().get(
            'ringcast_storage_redis_mirrored_total{%s"skipped"}' % lb) == 1.0, 5),
            "a foreign entry is skipped and counted")
        check("no ringcast record" in b.log(), b.log())
        # The mirror position beside the ring is not listed as a ring of its own.
        rc, out, err = run_cli(["rings", "ls", "--ring-prefix", b.prefix])
        eq(rc, 0, "rings ls: %s" % err)
        eq([ln.split()[0] for ln in out.splitlines()[1:]], ["default/default"], "rings: %r" % out)


# ---- replies: a worker's own connection -------------------------------------------------------


def test_replies_go_through_redis():
    """A subscriber's reply is stored by the worker process (its own blocking connection, not the
    broker's writer thread): it is in the stream, and a second trigger gets it."""
    def reply(_i, req):
        if req.ce("type") != "t":
            return 200, {}, b"", 0.0
        return 200, {"ce-id": "re-" + req.ce("id"), "ce-source": "/replier",
                     "ce-type": "reply", "ce-specversion": "1.0",
                     "Content-Type": "text/plain"}, b"r", 0.0

    with Redis() as rd, Subscriber(reply) as replier, Subscriber() as sink:
        cfg = config(rd.port, partitions=1, sub=replier, extra="    maxLen: 0\n")
        cfg += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                "metadata: {name: replies}\nspec:\n  broker: default\n"
                "  filter: {attributes: {type: reply}}\n  subscriber: {uri: %s}\n" % sink.url)
        with Broker(cfg) as b:
            ids = ["ev-%06d" % i for i in range(10)]
            for eid in ids:
                eq(post(b, eid).status, 202, "publish")
            sink.wait_for(10, timeout=15)
            eq(sorted(sink.ids()), ["re-" + e for e in ids], "replies delivered")
            recs = rd.records(KEY0)
            eq(len(recs), 20, "events and replies in the stream")
            eq(sum(1 for r in recs if b"/replier" in r), 10, "the replies are Redis entries")


# ---- retention and replicas ------------------------------------------------------------------


def test_maxlen_trims_and_wait_for_replicas():
    with Redis() as rd, Broker(config(rd.port, partitions=1, extra="    maxLen: 50\n")) as b:
        for i in range(400):
            eq(post(b, "ev-%06d" % i).status, 202, "publish")
        n = rd.cmd("XLEN", KEY0)
        check(50 <= n <= 200, "MAXLEN ~ 50 keeps about 50 entries (whole nodes), not %d" % n)
    with Redis() as primary, Redis(replicaof=primary.port) as replica:
        # Online on the primary's side too: WAIT counts only replicas the primary sees online.
        check(wait_until(lambda: b"master_link_status:up" in replica.cmd("INFO", "replication")
                         and b"state=online" in primary.cmd("INFO", "replication"), 10),
              "the replica is in sync")
        extra = "    replicas: 1\n    waitTimeout: 1s\n"
        with Broker(config(primary.port, partitions=1, extra=extra)) as b:
            eq(post(b, "ev-000001").status, 202, "WAIT 1 with a replica attached")
            eq(replica.cmd("XLEN", KEY0), 1, "on the replica when the 202 came")
            replica.stop(signal.SIGKILL)  # a replica's SIGTERM may wait 10 s (shutdown-timeout)
            check(wait_until(lambda: "connected_slaves:0" in
                             str(primary.cmd("INFO", "replication")), 10), "replica gone")
            r = post(b, "ev-000002")
            eq(r.status, 503, "WAIT 1 without a replica: %r" % r)
            check(b"not enough replicas" in r.body, r.body)
            eq(r.header("Retry-After"), "1", "Retry-After")


# ---- Redis down under load ---------------------------------------------------------------------


def test_redis_down_under_load():
    with Redis() as rd, Subscriber() as sub, Broker(config(rd.port, sub=sub)) as b:
        # Four producers: XADDs are in flight (pipelined) when Redis goes away.
        load = Producers(lambda eid, i: post(b, eid))
        accepted, refused, retry_after, other = (load.accepted, load.refused, load.retry_after,
                                                 load.other)
        try:
            time.sleep(1.0)
            before = len(accepted)
            rd.stop(signal.SIGKILL)  # AOF fsynced on every write: what it acknowledged stays
            t_down = time.monotonic()
            up = 'ringcast_storage_redis_up{namespace="default",broker="default"}'
            check(wait_until(lambda: b.request("GET", "/readyz", admin=True).status == 503, 2.5),
                  "/readyz 503 while Redis is down")
            r = b.request("GET", "/readyz", admin=True)
            check(b"broker default/default" in r.body and b"Redis" in r.body, r.body)
            eq(b.metrics().get(up), 0.0, "ringcast_storage_redis_up while down")
            kb = b.request("GET", "/apis/eventing.knative.dev/v1/namespaces/default/brokers/"
                           "default", admin=True).json()
            ready = [c for c in kb["status"]["conditions"] if c["type"] == "Ready"][0]
            eq((ready["status"], ready["reason"]), ("False", "StoreUnavailable"), "Broker status")
            time.sleep(max(0.0, 5.0 - (time.monotonic() - t_down)))
            during = len(accepted)
            rd.start()
            check(wait_until(lambda: len(accepted) > during + 50, 15),
                  "202s again after Redis came back (no broker restart)")
            check(wait_until(lambda: b.request("GET", "/readyz", admin=True).status == 200, 5),
                  "/readyz 200 again")
            eq(b.metrics().get(up), 1.0, "ringcast_storage_redis_up again")
        finally:
            load.stop()
        eq(other, [], "answers other than 202 and 503")
        m = b.metrics()
        lb = 'namespace="default",broker="default",result='
        check(m.get('ringcast_storage_redis_appends_total{%s"refused"}' % lb, 0) > 0,
              "refused appends counted")
        check(before > 0, "202s before the stop")
        check(len(refused) > 0, "503s while Redis was down")
        check(all(ra == "1" for ra in retry_after), "Retry-After on every 503: %r" % retry_after[:3])
        check(len(accepted) - during > 50, "accepted after the restart")
        in_redis = set(ids_in(rd.records("ringcast:{default/default/0}") +
                              rd.records("ringcast:{default/default/1}")))
        lost = [e for e in accepted if e not in in_redis]
        eq(lost, [], "accepted events missing from Redis")
        sub.wait_for(len(accepted), timeout=30)
        check(wait_until(lambda: set(accepted) <= set(sub.ids()), 15),
              "every accepted event delivered (missing %d)" %
              len(set(accepted) - set(sub.ids())))
        got = sub.ids()
        eq(len(got), len(set(got)), "no event delivered twice")
        print("     accepted %d, refused %d (503) while Redis was down 5 s" %
              (len(accepted), len(refused)), flush=True)


def test_dapr_publish_held_and_refused():
    """The Dapr publish API on a redis broker: 204 once Redis acknowledged (the entry is there),
    503 with Retry-After while Redis is down."""
    comp = ("---\napiVersion: dapr.io/v1alpha1\nkind: Component\n"
            "metadata: {name: pubsub, namespace: default}\nspec:\n  type: pubsub.ringcast\n"
            "  version: v1\n  metadata:\n  - {name: broker, value: default}\n")
    with Redis() as rd, Broker(config(rd.port, partitions=1) + comp) as b:
        h = {"Content-Type": "text/plain"}
        r = b.request("POST", "/v1.0/publish/pubsub/orders", h, b"dapr-ev-000001")
        eq(r.status, 204, "Dapr publish: %r" % r)
        eq(sum(1 for x in rd.records(KEY0) if b"dapr-ev-000001" in x), 1, "in the stream")
        rd.stop()
        r = b.request("POST", "/v1.0/publish/pubsub/orders", h, b"dapr-ev-000002")
        eq(r.status, 503, "Dapr publish with Redis down: %r" % r)
        eq(r.header("Retry-After"), "1", "Retry-After")
        check(b"Redis is unreachable" in r.body, r.body)
        rd.start()
        check(wait_until(lambda: b.request("POST", "/v1.0/publish/pubsub/orders", h,
                                           b"dapr-ev-000003").status == 204, 10),
              "Dapr publish again after Redis came back")


# ---- what serve refuses at start -------------------------------------------------------------


def serve_fails(cfg):
    """Runs serve on `cfg`, expects it to exit before listening; returns (exit code, stderr)."""
    with tempfile.TemporaryDirectory(prefix="rc-rd-") as tmp:
        path = os.path.join(tmp, "ringcast.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        prefix = "rcrd%dx%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        p = subprocess.Popen([RINGCAST, "serve", "--config", path, "--listen", "127.0.0.1:0",
                              "--admin", "127.0.0.1:0", "--ring-prefix", prefix],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            raise AssertionError("serve did not exit: %r" % err)
        finally:
            for f in os.listdir("/dev/shm"):
                if f.startswith(prefix + "."):
                    os.unlink(os.path.join("/dev/shm", f))
        check("listening" not in out, "serve started: %r" % out)
        check(p.returncode not in (0, -11, -6, 134, 139), "exit code %d" % p.returncode)
        return p.returncode, err, path


def test_start_refusals():
    port = free_port()  # nothing listens there
    rc, err, _ = serve_fails(config(port))
    check("cannot connect to Redis at 127.0.0.1:%d" % port in err, err)
    with Redis(password="s3cret-pw") as rd:
        rc, err, _ = serve_fails(config(rd.port, extra="    password: wrong\n"))
        check("refused the password" in err, err)
        check("wrong" not in err, "the password is not printed: %r" % err)
        rc, err, _ = serve_fails(config(rd.port))
        check("NOAUTH" in err and "spec.redis.password" in err, err)
        with tempfile.NamedTemporaryFile("w", suffix=".pw") as pf:
            pf.write("s3cret-pw\n")
            pf.flush()
            with Broker(config(rd.port, extra="    passwordFile: %s\n" % pf.name)) as b:
                eq(post(b, "ev-000001").status, 202, "publish with the password from a file")
        rd.cmd("DEL", KEY0, KEY1)
        rd.cmd("SET", KEY1, "not a stream")
        rc, err, _ = serve_fails(config(rd.port, extra="    password: s3cret-pw\n"))
        check("Redis key '%s' holds a string, not a stream" % KEY1 in err, err)


def test_config_errors():
    cases = [
        # (config, text of the error, the line's needle)
        (SETTINGS.replace('    addresses: ["127.0.0.1:%d"]\n', "") % (2, ""),
         "'spec.redis' needs 'addresses'", "partitions"),  # a mapping's line: its first key
        ((SETTINGS % (1, 2, "")).replace('["127.0.0.1:1"]', '["127.0.0.1:1", "127.0.0.1:1"]'),
         "lists '127.0.0.1:1' twice", "addresses"),
        ((SETTINGS % (1, 2, "")).replace("127.0.0.1:1", "127.0.0.1"),
         "must be host:port", "addresses"),
        ((SETTINGS % (1, 2, "")).replace("127.0.0.1:1", "127.0.0.1:70000"),
         "must be host:port", "addresses"),
        (SETTINGS % (1, 0, ""), "spec.redis.partitions", "partitions"),
        (SETTINGS % (1, 65, ""), "spec.redis.partitions", "partitions"),
        (SETTINGS % (1, 1, "    maxLen: -1\n"), "spec.redis.maxLen", "maxLen"),
        (SETTINGS % (1, 1, "    replicas: 17\n"), "spec.redis.replicas", "replicas"),
        (SETTINGS % (1, 1, "    maxAge: 500ms\n"), "'spec.redis.maxAge' must be a duration from 1s",
         "maxAge"),
        (SETTINGS % (1, 1, "    maxAge: 9000h\n"), "to 8760h (a year)", "maxAge"),
        (SETTINGS % (1, 1, "    maxAge: soon\n"), "not 'soon'", "maxAge"),
        (SETTINGS % (1, 1, "    maxAge: [1h]\n"), "not '(not a scalar)'", "maxAge"),
        (SETTINGS % (1, 1, "    waitTimeout: soon\n"), "spec.redis.waitTimeout", "waitTimeout"),
        (SETTINGS % (1, 1, "    password: a\n    passwordFile: /nonexistent\n"),
         "not both", "passwordFile"),
        (SETTINGS % (1, 1, "    passwordFile: /nonexistent/pw\n"),
         "/nonexistent/pw: No such file", "passwordFile"),
        (SETTINGS % (1, 1, "    pasword: x\n"), "unknown field 'spec.redis.pasword'", "pasword"),
        (SETTINGS.split("  redis:")[0] + "---\n" + SETTINGS.split("---\n", 1)[1],
         "storage type redis needs 'spec.redis.addresses'", "storage-type"),
        ((SETTINGS % (1, 1, "")).replace("{ringcast.dev/storage-type: redis}",
                                          "{ringcast.dev/storage-type: memory}"),
         "'spec.redis' is given, but no broker keeps its events in Redis", "addresses"),
        ((SETTINGS % (1, 1, "")).replace(
            "{ringcast.dev/storage-type: redis}",
            "{ringcast.dev/storage-type: redis, ringcast.dev/storage-durability: sync}"),
         "durability sync applies to storage type file", "storage-durability"),
        ((SETTINGS % (1, 1, "")).replace(
            "{ringcast.dev/storage-type: redis}",
            "{ringcast.dev/storage-type: redis, ringcast.dev/dedup-window: 1m}"),
         "dedup-window is not supported with storage type redis", "dedup-window"),
        ((SETTINGS % (1, 1, "")).replace("ringcast.dev/storage-type: redis",
                                         "ringcast.dev/storage-type: redys"),
         "must be memory, file or redis", "storage-type"),
    ]
    for cfg, text, needle in cases:
        rc, err, path = serve_fails(cfg)
        eq(rc, 2, "exit code for %r (stderr %r)" % (text, err))
        check(text in err, "%r not in %r" % (text, err))
        line = next(i for i, ln in enumerate(cfg.splitlines(), 1) if needle in ln)
        check(err.startswith("ringcast serve: %s:%d: " % (path, line)),
              "FILE:LINE %d of %r in %r" % (line, needle, err))


# ---- restart: mirroring resumes where it left -------------------------------------------------


def test_restart_resumes_without_duplicates():
    with Redis() as rd:
        cfg = config(rd.port)
        a = Broker(cfg)
        seq_a = rc_harness._seq[0]  # A's ring prefix comes from it: node A again later
        try:
            for i in range(10):
                eq(post(a, "ev-%06d" % i).status, 202, "publish to node A")
            check(wait_until(lambda: len(a.tail("default/default")) == 10, 5), "A mirrored 10")
            # Node B on the same broker while A runs: B warns that A mirrors it too.
            with Broker(cfg) as nb:
                check(wait_until(lambda: "other ringcast node(s) mirror" in nb.log(), 5),
                      "the two-node warning: %r" % nb.log())
        finally:
            eq(a.stop(), 0, "A stops cleanly")
            a.proc.stdout.close()
            a.stderr.close()
            a.tmp.cleanup()  # its ring stays in /dev/shm for the restart
        # While A is down, node B (a ring of its own) takes events for the same broker.
        with Broker(cfg) as nb:
            for i in range(10, 20):
                eq(post(nb, "ev-%06d" % i).status, 202, "publish to node B")
        # A again, on the ring it had: it copies what it missed, and nothing twice.
        rc_harness._seq[0] = seq_a - 1
        a2 = Broker(cfg)
        try:
            eq(a2.prefix, a.prefix, "node A's ring")
            want = ["ev-%06d" % i for i in range(20)]
            check(wait_until(lambda: len(a2.tail("default/default")) >= 20, 10),
                  "A caught up: %d" % len(a2.tail("default/default")))
            time.sleep(0.3)
            got = [e["id"] for e in a2.tail("default/default")]
            # Two partitions: order holds within each stream, not across them.
            eq(sorted(got), want, "A's ring after the restart: every event once")
            check("from where this ring left" in a2.log(), a2.log())
        finally:
            a2.signal(signal.SIGKILL)  # kill -9 while idle: nothing is being copied
            a2.wait(10)
            a2.proc.stdout.close()
            a2.stderr.close()
            a2.tmp.cleanup()
        with Broker(cfg) as nb:
            for i in range(20, 25):
                eq(post(nb, "ev-%06d" % i).status, 202, "publish to node B")
        rc_harness._seq[0] = seq_a - 1
        with Broker(cfg) as a3:
            want = ["ev-%06d" % i for i in range(25)]
            check(wait_until(lambda: len(a3.tail("default/default")) >= 25, 10),
                  "A caught up after kill -9: %d" % len(a3.tail("default/default")))
            time.sleep(0.3)
            got = [e["id"] for e in a3.tail("default/default")]
            eq(sorted(got), want, "A's ring after kill -9 and a restart: every event once")
        rc_harness._seq[0] += 10


# ---- mirror lag, entries trimmed before the mirror copied them, maxAge ----------------------

RING_HOLDER = os.path.join(os.environ.get("RC_TEST_HELPER_DIR")
                           or os.path.join(os.path.dirname(RINGCAST), "../tests"), "ring_holder")
SMALL_RING = ("  ring:\n    size: 64Ki\n  limits:\n    maxEventBytes: 8Ki\n"
              "    maxBatchBytes: 12Ki\n    maxHeaderBytes: 4Ki\n    maxBatchEvents: 5\n")
KN = "/apis/eventing.knative.dev/v1"


def small_ring(cfg):
    return cfg.replace("spec:\n", "spec:\n" + SMALL_RING, 1)


class Producers:
    """Threads that post unique ids ("ev-%06d", thread t from t * 100000 on) through
    post_one(eid, i), i counting from 1 per thread, until stop(): the ids answered 202 in
    `accepted` (id -> time of the answer), 503 in `refused` (each Retry-After in `retry_after`),
    anything else or a connection error in `other`. A thread waits 10 ms after a 503."""

    def __init__(self, post_one, threads=4):
        self.accepted, self.refused, self.retry_after, self.other = {}, [], [], []
        self._post = post_one
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, t):
        i = 0
        while not self._stop.is_set() and i < 100000:
            eid = "ev-%06d" % (t * 100000 + i)
            i += 1
            try:
                r = self._post(eid, i)
            except OSError as e:
                with self._lock:
                    self.other.append((eid, str(e)))
                continue
            with self._lock:
                if r.status == 202:
                    self.accepted[eid] = time.monotonic()
                elif r.status == 503:
                    self.refused.append(eid)
                    self.retry_after.append(r.header("Retry-After"))
                else:
                    self.other.append((eid, r.status))
            if r.status == 503:
                time.sleep(0.01)

    def stop(self, timeout=20):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)


def post_big(b, eid):
    h = {"ce-id": eid, "ce-source": "/redis-test", "ce-type": "t", "ce-specversion": "1.0",
         "Content-Type": "text/plain"}
    return b.request("POST", "/default/default", h, b"x" * 2000)


def mirror_metric(b, name):
    return b.metrics().get('ringcast_storage_redis_%s{namespace="default",broker="default"}'
                           % name)


class Holder:
    """ring_holder: a lossless local reader that does not read, so the ring fills and the
    mirror waits (Redis keeps the events); quit() lets the mirror go on."""

    def __init__(self, b):
        self.proc = subprocess.Popen([RING_HOLDER, b.ring_name("default", "default")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        eq(self.proc.stdout.readline().strip(), "ready", "lossless reader attached")

    def quit(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc.stdin.close()
        self.proc.stdout.close()


def test_mirror_lag():
    """A ring held full by a lossless reader: the lag gauges (entries, seconds) and the
    Broker's status grow while the mirror waits, and go back to 0 once it has room."""
    with Redis() as rd, Broker(small_ring(config(rd.port))) as b:
        eq(mirror_metric(b, "mirror_lag_entries"), 0, "no lag at start")
        holder = Holder(b)
        try:
            for i in range(120):
                eq(post_big(b, "ev-%06d" % i).status, 202, "publish (Redis is the store)")
            check(wait_until(lambda: mirror_metric(b, "mirror_lag_entries") >= 60, 5),
                  "the lag grows while the ring is full: %r" % mirror_metric(
                      b, "mirror_lag_entries"))
            time.sleep(1.2)
            lag = mirror_metric(b, "mirror_lag_entries")
            copied = b.metrics()['ringcast_storage_redis_mirrored_total{namespace="default",'
                                 'broker="default",result="copied"}']
            eq(lag + copied, 120, "lag %r + copied %r: every entry" % (lag, copied))
            secs = mirror_metric(b, "mirror_lag_seconds")
            # Sampled every 0.5 s: at least 1.2 - 0.5 s old by now (0.5 leaves room for load).
            check(secs >= 0.5, "the oldest entry not mirrored waited >= 0.5 s: %r" % secs)
            st = b.request("GET", KN + "/namespaces/default/brokers/default",
                           admin=True).json()["status"]["redisMirror"]
            eq(st["lagEntries"], lag, "the Broker's status says the lag too: %r" % st)
            check(st["lagSeconds"] >= 0.5, "lagSeconds %r" % st)
        finally:
            holder.quit()
        check(wait_until(lambda: mirror_metric(b, "mirror_lag_entries") == 0
                         and mirror_metric(b, "mirror_lag_seconds") == 0, 5),
              "the lag back to 0: %r %r" % (mirror_metric(b, "mirror_lag_entries"),
                                            mirror_metric(b, "mirror_lag_seconds")))
        eq(b.metrics()['ringcast_storage_redis_mirrored_total{namespace="default",'
                       'broker="default",result="copied"}'], 120, "all mirrored")
        eq(mirror_metric(b, "mirror_trimmed_total"), 0, "nothing trimmed")


def test_trimmed_before_mirrored():
    """maxLen trims entries the mirror (held back by a full ring) has not copied: counted
    exactly (copied + trimmed = published), logged with the broker and stream."""
    cfg = small_ring(config(0, partitions=1, extra="    maxLen: 50\n"))
    with Redis() as rd, Broker(cfg.replace("127.0.0.1:0", "127.0.0.1:%d" % rd.port)) as b:
        holder = Holder(b)
        try:
            for i in range(600):
                eq(post_big(b, "ev-%06d" % i).status, 202, "publish")
            check(wait_until(lambda: mirror_metric(b, "mirror_trimmed_total") > 0, 5),
                  "trimmed entries detected while the mirror waits")
        finally:
            holder.quit()
        copied_key = ('ringcast_storage_redis_mirrored_total{namespace="default",'
                      'broker="default",result="copied"}')
        check(wait_until(lambda: mirror_metric(b, "mirror_lag_entries") == 0
                         and b.metrics()[copied_key] + mirror_metric(
                             b, "mirror_trimmed_total") == 600, 5),
              "copied %r + trimmed %r == 600" % (b.metrics()[copied_key],
                                                 mirror_metric(b, "mirror_trimmed_total")))
        trimmed = mirror_metric(b, "mirror_trimmed_total")
        check(trimmed >= 300, "most entries were trimmed (the ring holds ~30, maxLen ~ keeps "
              "50 to ~150): %r" % trimmed)
        log = b.log()
        check(re.search(r"warn serve: broker default/default: Redis trimmed \d+ entries of "
                        r"ringcast:\{default/default/0\} \(maxLen or maxAge\) before the mirror "
                        r"copied them", log), log)
        st = b.request("GET", KN + "/namespaces/default/brokers/default",
                       admin=True).json()["status"]["redisMirror"]
        eq(st["trimmedBeforeCopied"], trimmed, "the Broker's status: %r" % st)


def test_max_age():
    """maxAge trims entries older than it (XTRIM MINID each second) besides maxLen: entries
    added with old IDs by hand go within a few seconds, new ones stay."""
    with Redis() as rd, Broker(config(rd.port, partitions=1,
                                      extra="    maxLen: 1000\n    maxAge: 1h\n")) as b:
        now_ms = int(time.time() * 1000)
        old = now_ms - 2 * 3600 * 1000
        for i in range(5):  # two hours old, by ID: Redis' clock is its IDs' time
            rd.cmd("XADD", KEY0, "%d-%d" % (old, i), "r", "not-a-record")
        for i in range(3):
            eq(post(b, "ev-%06d" % i).status, 202, "publish")
        check(wait_until(lambda: rd.cmd("XLEN", KEY0) == 3, 5),
              "the old entries trimmed: XLEN %r" % rd.cmd("XLEN", KEY0))
        first = rd.cmd("XRANGE", KEY0, "-", "+", "COUNT", "1")[0][0]
        check(int(first.split(b"-")[0]) >= now_ms - 5000, "what is left is new: %r" % first)
        eq(mirror_metric(b, "max_age_trimmed_total"), 5, "counted")
        eq(mirror_metric(b, "mirror_trimmed_total"), 0,
           "the mirror had copied them (it reads as they come)")


if __name__ == "__main__":
    if REDIS_SERVER is None:
        print("SKIP: redis-server is not installed (scripts/setup.sh installs it)")
        sys.exit(77)
    Runner().run([test_publish_stream_trigger, test_replies_go_through_redis,
                  test_maxlen_trims_and_wait_for_replicas, test_redis_down_under_load,
                  test_dapr_publish_held_and_refused, test_start_refusals,
                  test_config_errors, test_restart_resumes_without_duplicates,
                  test_mirror_lag, test_trimmed_before_mirrored, test_max_age])
