#!/usr/bin/env python3
"""What a delivery worker costs at a fixed event rate: `ringcast serve` with one worker and one
trigger to a `ringcast sink --quiet` (optionally answering --delay ms late), events published
at --rate per second on one keep-alive connection for --seconds; the worker's CPU time (user +
system, all threads, /proc/PID/stat) and voluntary context switches (/proc/PID/task/*/status)
over that time. Rate 0 measures an idle worker. Medians of --runs runs; the last line is
machine-readable.

With --triggers N (and --workers W) the whole broker: N exact-type triggers to the same sink, the
events' types cycling over theirs (each event matches one trigger), and the CPU of `ringcast
serve` (all threads) and of its W workers together, next to the first worker's.

    scripts/bench-worker-cpu.py --rate 1000 --seconds 10 --runs 5      # RC_BIN_DIR=build/bin
    scripts/bench-worker-cpu.py --rate 1000 --triggers 100 --runs 5    # the whole broker
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("RC_BIN_DIR", os.path.join(ROOT, "build", "bin"))
from rc_harness import RINGCAST, Broker  # noqa: E402

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: %d
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""

TRIGGER = """---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t%d}
spec:
  broker: default
  filter: {attributes: {type: %s}}
  subscriber: {uri: http://127.0.0.1:%d/}
"""


def event_type(a, i):
    """The type of event i: "t" with one trigger (as before), else one of the triggers' types."""
    return "t" if a.triggers == 1 else "t%d" % (i % a.triggers)


def config(a, port):
    return CONFIG % a.workers + "".join(
        TRIGGER % (k, event_type(a, k), port) for k in range(a.triggers))


def cost(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    switches += int(line.split()[1])
    return cpu, switches


def one_run(a):
    cmd = [RINGCAST, "sink", "--listen", "127.0.0.1:0", "--quiet"]
    if a.delay:
        cmd += ["--delay", str(a.delay)]
    sink = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline().split()[-1].rsplit(":", 1)[1])
        env = dict(os.environ)
        if a.backend:
            env["RINGCAST_HTTP_BACKEND"] = a.backend
        with Broker(config(a, port), env=env) as b:
            time.sleep(0.5)
            with open("/proc/%d/task/%d/children" % (b.proc.pid, b.proc.pid)) as f:
                workers = [int(x) for x in f.read().split()]
            if len(workers) != a.workers:
                raise SystemExit("want %d workers, ringcast serve has %d children" %
                                 (a.workers, len(workers)))
            worker = workers[0]
            conn = socket.create_connection((b.host, b.port))
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cpu0, sw0 = cost(worker)
            serve0, all0 = cost(b.proc.pid)[0], sum(cost(w)[0] for w in workers)
            t0 = time.monotonic()
            n = int(a.rate * a.seconds)
            buf = b""
            for i in range(n):
                d = t0 + i / a.rate - time.monotonic()
                if d > 0:
                    time.sleep(d)
                conn.sendall(("POST /default/default HTTP/1.1\r\nHost: x\r\nce-id: %d\r\n"
                              "ce-source: /bench\r\nce-type: %s\r\nce-specversion: 1.0\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\ndata" %
                              (i, event_type(a, i))).encode())
                while b"\r\n\r\n" not in buf:
                    buf += conn.recv(65536)
                buf = buf.split(b"\r\n\r\n", 1)[1]
            rest = t0 + a.seconds - time.monotonic()
            if rest > 0:
                time.sleep(rest)
            time.sleep(0.2)  # the last deliveries
            cpu1, sw1 = cost(worker)
            serve1, all1 = cost(b.proc.pid)[0], sum(cost(w)[0] for w in workers)
            el = time.monotonic() - t0
            conn.close()
            return (100.0 * (cpu1 - cpu0) / el, (sw1 - sw0) / el, n / a.seconds,
                    100.0 * (serve1 - serve0) / el, 100.0 * (all1 - all0) / el)
    finally:
        sink.terminate()
        sink.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=1000, help="events/s (0: idle)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--delay", type=int, default=0, help="the sink answers this many ms late")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backend", choices=["uring", "epoll"], default=None)
    ap.add_argument("--triggers", type=int, default=1, help="exact-type triggers (1-4096)")
    ap.add_argument("--workers", type=int, default=1, help="spec.workers (1-64)")
    a = ap.parse_args()
    if not 1 <= a.triggers <= 4096 or not 1 <= a.workers <= 64 or a.runs < 1:
        ap.error("--triggers 1-4096, --workers 1-64, --runs >= 1")
    res = []
    for _ in range(a.runs):
        cpu, sw, rate, serve, workers = one_run(a)
        print("run: worker cpu %.2f%% of a core, %.0f wakes/s, %.0f events/s; serve %.2f%%, "
              "all workers %.2f%%, broker %.2f%%" % (cpu, sw, rate, serve, workers,
                                                     serve + workers), flush=True)
        res.append((cpu, sw, serve, workers))
    cpu = statistics.median(r[0] for r in res)
    # CPU per 1,000 events (ms): what the worker pays per unit of work, comparable across rates.
    per_1k = 10.0 * cpu * 1000 / a.rate if a.rate > 0 else 0.0
    print("scenario=worker_cpu rate=%g delay_ms=%d backend=%s runs=%d triggers=%d workers=%d "
          "cpu_pct=%.2f wakes_s=%.0f worker_cpu_ms_per_1k_events=%.1f serve_cpu_pct=%.2f "
          "workers_cpu_pct=%.2f broker_cpu_pct=%.2f" %
          (a.rate, a.delay, a.backend or "auto", a.runs, a.triggers, a.workers, cpu,
           statistics.median(r[1] for r in res), per_1k,
           statistics.median(r[2] for r in res), statistics.median(r[3] for r in res),
           statistics.median(r[2] + r[3] for r in res)))


if __name__ == "__main__":
    main()
