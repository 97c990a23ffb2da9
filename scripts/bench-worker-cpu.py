#!/usr/bin/env python3
"""What a delivery worker costs at a fixed event rate: `ringcast serve` with one worker and one
trigger to a `ringcast sink --quiet` (optionally answering --delay ms late), events published
at --rate per second on one keep-alive connection for --seconds; the worker's CPU time (user +
system, all threads, /proc/PID/stat) and voluntary context switches (/proc/PID/task/*/status)
over that time. Rate 0 measures an idle worker. Medians of --runs runs; the last line is
machine-readable.

    scripts/bench-worker-cpu.py --rate 1000 --seconds 10 --runs 5      # RC_BIN_DIR=build/bin
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
  workers: 1
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t1}
spec:
  broker: default
  subscriber: {uri: http://127.0.0.1:%d/}
"""


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
        with Broker(CONFIG % port, env=env) as b:
            time.sleep(0.5)
            with open("/proc/%d/task/%d/children" % (b.proc.pid, b.proc.pid)) as f:
                worker = int(f.read().split()[0])
            conn = socket.create_connection((b.host, b.port))
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cpu0, sw0 = cost(worker)
            t0 = time.monotonic()
            n = int(a.rate * a.seconds)
            buf = b""
            for i in range(n):
                d = t0 + i / a.rate - time.monotonic()
                if d > 0:
                    time.sleep(d)
                conn.sendall(("POST /default/default HTTP/1.1\r\nHost: x\r\nce-id: %d\r\n"
                              "ce-source: /bench\r\nce-type: t\r\nce-specversion: 1.0\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\ndata" %
                              i).encode())
                while b"\r\n\r\n" not in buf:
                    buf += conn.recv(65536)
                buf = buf.split(b"\r\n\r\n", 1)[1]
            rest = t0 + a.seconds - time.monotonic()
            if rest > 0:
                time.sleep(rest)
            time.sleep(0.2)  # the last deliveries
            cpu1, sw1 = cost(worker)
            el = time.monotonic() - t0
            conn.close()
            return 100.0 * (cpu1 - cpu0) / el, (sw1 - sw0) / el, n / a.seconds
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
    a = ap.parse_args()
    res = []
    for _ in range(a.runs):
        cpu, sw, rate = one_run(a)
        print("run: worker cpu %.2f%% of a core, %.0f wakes/s, %.0f events/s" % (cpu, sw, rate),
              flush=True)
        res.append((cpu, sw))
    cpu = statistics.median(r[0] for r in res)
    # CPU per 1,000 events (ms): what the worker pays per unit of work, comparable across rates.
    per_1k = 10.0 * cpu * 1000 / a.rate if a.rate > 0 else 0.0
    print("scenario=worker_cpu rate=%g delay_ms=%d backend=%s runs=%d cpu_pct=%.2f wakes_s=%.0f "
          "worker_cpu_ms_per_1k_events=%.1f" %
          (a.rate, a.delay, a.backend or "auto", a.runs, cpu,
           statistics.median(r[1] for r in res), per_1k))


if __name__ == "__main__":
    main()
