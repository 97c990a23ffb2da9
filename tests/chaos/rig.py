"""The chaos run's processes and load: the broker (restartable on the same ring prefix), the
subscribers (`ringcast sink` processes, hostile ones replaceable by healthy ones on the same
port), the publisher that records every id it got 202 for, a metrics monitor and slowloris
connections. Every process started here is recorded in one Registry and stopped by its pid;
nothing is found by name. Python 3 standard library only; the integration tier's helpers are
imported, not copied."""

import glob
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from rc_harness import Broker, Conn  # noqa: E402
from rc_sink import Sink  # noqa: E402


# ---- processes ------------------------------------------------------------------------------

def proc_start_time(pid):
    """Start time of `pid` in clock ticks (field 22 of /proc/PID/stat), or None when it is
    gone or a zombie. With the pid it names one process: a pid reused by another program has
    another start time, so it is never signalled by mistake."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])


def proc_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """Pids of the children of `pid` (every thread's list: any thread may fork)."""
    out = set()
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path) as f:
                out.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return sorted(out)


class Registry:
    """Every process and ring the run created, so that the end of a scenario, an error or
    Ctrl-C stops exactly those: brokers and sinks by their Popen pid, workers (forked by serve,
    so never Popen objects of ours) by pid and start time, rings by our unique prefix."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.brokers = []
        self.sinks = []
        self.workers = {}  # pid -> start time, every worker seen
        self.stopped = {}  # pid -> start time, workers we sent SIGSTOP and not yet SIGCONT
        self.lock = threading.Lock()

    def note_workers(self, pids):
        with self.lock:
            for p in pids:
                t = proc_start_time(p)
                if t is not None:
                    self.workers.setdefault(p, t)

    def alive(self, pid, start):
        return proc_start_time(pid) == start

    def signal_worker(self, pid, sig):
        """Sends `sig` to a worker we saw, if it is still that process. Returns True if sent."""
        with self.lock:
            start = self.workers.get(pid)
        if start is None or not self.alive(pid, start):
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        if sig == signal.SIGSTOP:
            self.stopped[pid] = start
        elif sig in (signal.SIGCONT, signal.SIGKILL):
            self.stopped.pop(pid, None)
        return True

    def resume_stopped(self):
        for pid in list(self.stopped):
            self.signal_worker(pid, signal.SIGCONT)

    def stop_all(self):
        """Stops everything still running (SIGCONT first: a stopped worker would hold its
        broker's graceful stop). Idempotent; bounded by the brokers' and sinks' stop waits."""
        self.resume_stopped()
        for b in list(self.brokers):
            b.dispose()
        for s in list(self.sinks):
            stop_sink(self, s, kill=False)
        # Workers outlive a serve killed with SIGKILL until their parent-death signal has been
        # handled; give them a moment, then end the ones still there.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.live_workers():
            time.sleep(0.05)
        for pid in self.live_workers():
            self.signal_worker(pid, signal.SIGKILL)

    def live_workers(self):
        with self.lock:
            items = list(self.workers.items())
        return [p for p, t in items if self.alive(p, t)]

    def remove_rings(self, prefix=None):
        """Removes every shm object named with `prefix` (default: this run's, which starts
        every scenario's); returns how many."""
        n = 0
        for path in glob.glob("/dev/shm/%s*" % (prefix or self.prefix)):
            try:
                os.unlink(path)
                n += 1
            except FileNotFoundError:
                pass
        return n


# ---- the broker -----------------------------------------------------------------------------

class ChaosBroker(Broker):
    """rc_harness.Broker on a ring prefix of our choosing (the same one on every restart, so
    the ring and its cursors are found again), registered while it runs. dispose() stops it
    and keeps its log in the run directory but, unlike the context manager, leaves the ring:
    the next start must find it."""

    def __init__(self, reg, config, prefix, log_path):
        # A later --ring-prefix overrides the harness's own (the option parser keeps the last).
        super().__init__(config, args=["--ring-prefix", prefix])
        self.prefix = prefix
        self.reg = reg
        self.log_path = log_path
        self.disposed = False
        reg.brokers.append(self)
        self.config_path = [a for a in self.proc.args if a.endswith(".yaml")][0]

    def workers(self):
        pids = children(self.proc.pid) if self.proc.poll() is None else []
        self.reg.note_workers(pids)
        return pids

    def kill9(self):
        """SIGKILL to serve alone (its workers get their parent-death signal)."""
        self.workers()  # remember them: they are ours to stop should they linger
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def dispose(self):
        """Stops serve (SIGTERM, then SIGKILL after 10 s) and keeps its log; returns the exit
        code of the graceful stop (None when it had to be killed)."""
        if self.disposed:
            return self.proc.returncode
        self.workers()
        rc = self.stop()
        self.disposed = True
        try:
            # As bytes: a subscriber's garbage may be quoted in the log, not always UTF-8.
            self.stderr.flush()
            with open(self.stderr_path, "rb") as src, open(self.log_path, "wb") as dst:
                dst.write(src.read())
        except OSError:
            pass
        self.proc.stdout.close()
        self.stderr.close()
        self.tmp.cleanup()
        self.reg.brokers.remove(self)
        return rc

    def rss_kib(self):
        return proc_rss_kib(self.proc.pid) if self.proc.poll() is None else 0


def start_broker(reg, config, prefix, log_path, timeout=20.0, nofile=None):
    """Starts serve; retries while the ring is still held by the workers of a killed serve
    (the broker lock is released when the last of them exits). Raises after `timeout`.
    `nofile`: serve's soft limit on open files. A child inherits its limits at fork, and the
    harness starts serve itself, so the driver lowers its own soft limit around the start
    (before any load thread runs) and puts it back."""
    deadline = time.monotonic() + timeout
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, saved[1]), saved[1]))
    try:
        while True:
            try:
                return ChaosBroker(reg, config, prefix, log_path)
            except RuntimeError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)


# ---- subscribers ----------------------------------------------------------------------------

def start_sink(reg, *args, port=0, timeout=5.0):
    """A `ringcast sink --quiet` (extra args: --hang, --reset, --delay MS, ...), registered.
    With a port, retries while the port is still taken by the sink it replaces."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = Sink("--quiet", *args, listen="127.0.0.1:%d" % port)
            break
        except RuntimeError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
    s.reader = OutReader(s.out_path)
    reg.sinks.append(s)
    return s


def stop_sink(reg, s, kill):
    """SIGKILL (kill: a hostile sink must not answer what it holds on its way out) or the
    sink's graceful stop; reads what it wrote last and releases it."""
    if s not in reg.sinks:
        return
    if kill and s.proc.poll() is None:
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait(5)
    s.stop()
    s.reader.update()
    s.stdout.close()
    s.stderr.close()
    s.tmp.cleanup()
    reg.sinks.remove(s)


class OutReader:
    """Reads a sink's --out file (one structured JSON event a line) incrementally: each update
    parses only the complete lines written since the last one."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.ids = Counter()  # id -> times received, of events that are not replies
        self.replies = 0  # events carrying inreplyto: a subscriber's reply, routed again
        self.parents = {}  # reply id -> the id of the event it answers (inreplyto)
        self.records = 0

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in data[:end].split(b"\n"):
            if not line:
                continue
            ev = json.loads(line)
            self.records += 1
            if "inreplyto" in ev:
                self.replies += 1
                self.parents[ev.get("id")] = ev["inreplyto"]
            else:
                self.ids[ev.get("id")] += 1


# ---- load -----------------------------------------------------------------------------------

class Publisher:
    """Steady load: `threads` keep-alive connections posting binary-mode events at `rate`
    events/s in all (0: as fast as answers come). Each id is recorded by outcome: accepted
    (202), refused (status counted), or unknown (sent, but the connection broke before the
    answer: it may or may not be stored). Follows rig.broker across restarts."""

    def __init__(self, rig, threads, rate, types, body_size):
        self.rig = rig
        self.types = [t for t, w in types for _ in range(w)]
        self.body = b"x" * body_size
        self.accepted = []  # (id, type)
        self.unknown = set()
        self.status = Counter()
        self.sent = 0
        self.conn_errors = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.interval = threads / rate if rate > 0 else 0.0
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(threads)]
        for t in self.threads:
            t.start()

    def _headers(self, eid, etype):
        return {"ce-id": eid, "ce-source": "/chaos", "ce-type": etype, "ce-specversion": "1.0",
                "Content-Type": "text/plain"}

    def _run(self, k):
        c = None
        n = 0
        next_t = time.monotonic()
        while not self.stopping.is_set():
            if self.interval:
                now = time.monotonic()
                if next_t > now:
                    time.sleep(next_t - now)
                # No bursts to catch up after a stall: the load stays steady.
                next_t = max(next_t + self.interval, time.monotonic() - 0.5)
            etype = self.types[n % len(self.types)]
            eid = "%s-%d-%d" % (self.rig.name, k, n)
            n += 1
            if c is None:
                try:
                    b = self.rig.broker
                    c = Conn(b.host, b.port, timeout=5.0)
                except (OSError, AttributeError):
                    with self.lock:
                        self.conn_errors += 1
                    time.sleep(0.05)
                    continue
            try:
                c.send_request("POST", "/default/default", self._headers(eid, etype), self.body)
                with self.lock:
                    self.sent += 1
                r = c.response()
            except (OSError, EOFError, ValueError):
                with self.lock:
                    self.unknown.add(eid)
                    self.conn_errors += 1
                c.close()
                c = None
                time.sleep(0.02)
                continue
            with self.lock:
                self.status[r.status] += 1
                if r.status == 202:
                    self.accepted.append((eid, etype))
            if r.status != 202:
                time.sleep(0.02)  # refused (429, 503): back off a little, as a client would
            if (r.header("Connection") or "").lower() == "close":
                c.close()
                c = None
        if c is not None:
            c.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)

    def probe(self, timeout=5.0):
        """One event after the load: seconds until it got 202 (retrying 429/503 and broken
        connections), or None when it did not within `timeout`. The broker must take events
        again once the load stops."""
        t0 = time.monotonic()
        eid = "%s-probe" % self.rig.name
        etype = self.types[0]
        while time.monotonic() - t0 < timeout:
            try:
                b = self.rig.broker
                r = b.request("POST", "/default/default", self._headers(eid, etype), self.body)
            except (OSError, EOFError, ValueError):
                time.sleep(0.1)
                continue
            with self.lock:
                self.sent += 1
                self.status[r.status] += 1
                if r.status == 202:
                    self.accepted.append((eid, etype))
            if r.status == 202:
                return time.monotonic() - t0
            time.sleep(0.1)
        return None


class Monitor:
    """Samples /metrics and serve's RSS once a second: the worst ring use, each trigger's worst
    lag, and how often the admin listener did not answer (it must stay up)."""

    def __init__(self, rig, period=1.0):
        self.rig = rig
        self.period = period
        self.ring_used_max = 0.0
        self.ring_capacity = 0.0
        self.lag_max = Counter()
        self.admin_errors = 0
        self.samples = 0
        self.rss_base = 0
        self.rss_max = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            b = self.rig.broker
            rss = b.rss_kib() if b is not None else 0
            self.rss_base = self.rss_base or rss
            self.rss_max = max(self.rss_max, rss)
            try:
                m = b.metrics()
            except (OSError, EOFError, ValueError, AttributeError):
                self.admin_errors += 1
                self.stopping.wait(self.period)
                continue
            self.samples += 1
            for k, v in m.items():
                if k.startswith("ringcast_ring_used_bytes"):
                    self.ring_used_max = max(self.ring_used_max, v)
                elif k.startswith("ringcast_ring_capacity_bytes"):
                    self.ring_capacity = v
                elif k.startswith("ringcast_trigger_lag_events{"):
                    name = k.split('trigger="', 1)[1].split('"', 1)[0]
                    self.lag_max[name] = max(self.lag_max[name], v)
            self.stopping.wait(self.period)

    def stop(self):
        self.stopping.set()
        self.thread.join(10)


class Slowloris:
    """Connections that hold the ingress without finishing a request: `idle` that send
    nothing, `trickle` that send a request head one byte every 2 s, `big` that send a batch
    body of 4 MiB - 1 of its declared 4 MiB and stall. Counts the ones the broker closed (or
    answered) while they stalled."""

    def __init__(self, host, port, idle, trickle, big):
        self.host, self.port = host, port
        self.socks = {"idle": [], "trickle": [], "big": []}
        self.open_errors = 0
        self.answers = Counter()
        self.stopping = threading.Event()
        self.plan = {"idle": idle, "trickle": trickle, "big": big}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _open(self, kind):
        try:
            s = socket.create_connection((self.host, self.port), timeout=5.0)
        except OSError:
            self.open_errors += 1
            return None
        self.socks[kind].append(s)
        return s

    def _run(self):
        # Each open may wait up to its 5 s timeout when the broker accepts no more: the loops
        # look at `stopping` so that they end with the load.
        for _ in range(self.plan["idle"]):
            if self.stopping.is_set():
                break
            self._open("idle")
        head = b"POST /default/default HTTP/1.1\r\nHost: chaos\r\nce-id: slow\r\n"
        for _ in range(self.plan["trickle"]):
            if self.stopping.is_set():
                break
            self._open("trickle")
        bodies = threading.Thread(target=self._big, daemon=True)
        bodies.start()
        i = 0
        while True:
            for s in self.socks["trickle"]:
                if s.fileno() >= 0:
                    try:
                        s.send(head[i:i + 1] if i < len(head) else b"x")
                    except OSError:
                        pass
            i += 1
            if self.stopping.wait(2.0):
                break
        bodies.join(10)

    def _big(self):
        big = 4 * 1024 * 1024
        for _ in range(self.plan["big"]):
            if self.stopping.is_set():
                return
            s = self._open("big")
            if s is None:
                continue
            try:
                s.sendall(b"POST /default/default HTTP/1.1\r\nHost: chaos\r\n"
                          b"Content-Type: application/cloudevents-batch+json\r\n"
                          b"Content-Length: %d\r\n\r\n" % big)
                s.sendall(b"[" + b" " * (big - 2))
            except OSError:
                self.answers["big send failed"] += 1  # closed, reset or not read for 5 s

    def closed_by_broker(self):
        """Per kind: how many connections the broker closed or answered (non-blocking look)."""
        out = Counter()
        for kind, socks in self.socks.items():
            for s in socks:
                try:
                    s.setblocking(False)
                    data = s.recv(4096)
                    out[kind] += 1
                    if data.startswith(b"HTTP/1.1 "):
                        self.answers["%s %s" % (kind, data[9:12].decode("latin-1"))] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    out[kind] += 1
        return out

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        closed = self.closed_by_broker()
        for socks in self.socks.values():
            for s in socks:
                s.close()
        return closed

