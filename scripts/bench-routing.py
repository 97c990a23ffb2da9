#!/usr/bin/env python3
"""End-to-end delivery throughput of `ringcast serve` with many triggers of which one matches:
N exact-type triggers (types t1..t<N-1> never sent, plus `hit`), all events of type `hit`,
delivered to one `ringcast sink --quiet --out FILE`. Events are published in batch mode (100 per
request, one connection) into a 128 MiB ring (room for ~300,000 of them); the time runs from
the first publish until FILE has a line for every event. worker_cpu_us_per_event is the
workers' CPU time (user + system) over that interval divided by the events: less sensitive to
a busy machine than the wall time. Prints one key=value line per trigger count (medians of
--runs).

usage: bench-routing.py [--triggers 1,2000] [--events 20000] [--runs 3] [--workers 1]
                        [--max-inflight 100]
Environment: RC_BIN_DIR (default build/bin)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from rc_harness import RINGCAST, Broker  # noqa: E402

HEAD = ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n  workers: %d\n"
        "  ring: {size: 128Mi}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n")
TRIG = ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
        "metadata: {name: %s, annotations: {ringcast.dev/max-inflight: \"%d\"}}\n"
        "spec:\n  broker: default\n  subscriber: {uri: %s}\n  filter: {attributes: {type: %s}}\n")


def cpu_s(pids):
    """User + system CPU seconds of the processes `pids`."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def one_run(ntrig, events, workers, inflight):
    tmp = tempfile.TemporaryDirectory(prefix="rc-bench-routing-")
    out = os.path.join(tmp.name, "events")
    open(out, "w").close()
    sink = subprocess.Popen([RINGCAST, "sink", "--quiet", "--listen", "127.0.0.1:0", "--out", out],
                            stdout=subprocess.PIPE, text=True)
    try:
        addr = sink.stdout.readline().split()[1]
        url = "http://%s/" % addr
        cfg = HEAD % workers + "".join(TRIG % ("t%d" % i, inflight, url, "t%d" % i)
                                       for i in range(1, ntrig)) + TRIG % ("hit", inflight, url, "hit")
        with Broker(cfg) as b:
            time.sleep(0.5)  # workers up
            with open("/proc/%d/task/%d/children" % (b.proc.pid, b.proc.pid)) as f:
                wpids = [int(p) for p in f.read().split()]
            cpu0 = cpu_s(wpids)
            c = b.conn()
            c.sock.settimeout(30)
            start = time.monotonic()
            for k in range(0, events, 100):
                batch = [{"specversion": "1.0", "id": str(i), "source": "/bench", "type": "hit",
                          "data": "x" * 100} for i in range(k, min(events, k + 100))]
                body = json.dumps(batch)
                for _ in range(10000):
                    c.send_request("POST", "/default/default",
                                   {"Content-Type": "application/cloudevents-batch+json"}, body)
                    r = c.response()
                    if r.status != 429:  # ring full: the workers are behind
                        break
                    time.sleep(0.002)
                if r.status != 202:
                    raise RuntimeError("publish: %r" % r)
            published = time.monotonic() - start
            c.close()
            got = 0
            deadline = start + 120
            with open(out) as f:
                while got < events:
                    chunk = f.read()
                    got += chunk.count("\n")
                    if not chunk:
                        if time.monotonic() > deadline:
                            raise RuntimeError("only %d of %d delivered" % (got, events))
                        time.sleep(0.002)
            return published, time.monotonic() - start, cpu_s(wpids) - cpu0
    finally:
        sink.terminate()
        sink.wait(10)
        tmp.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--triggers", default="1,2000")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-inflight", type=int, default=100)
    a = ap.parse_args()
    for n in [int(x) for x in a.triggers.split(",")]:
        runs = [one_run(n, a.events, a.workers, a.max_inflight) for _ in range(a.runs)]
        total = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print("triggers=%d events=%d workers=%d max_inflight=%d runs=%d publish_s=%.3f "
              "total_s=%.3f events_per_s=%.0f worker_cpu_s=%.3f worker_cpu_us_per_event=%.2f "
              "all_s=%s" % (
                  n, a.events, a.workers, a.max_inflight, a.runs,
                  statistics.median(r[0] for r in runs), total, a.events / total, cpu,
                  cpu * 1e6 / a.events, ",".join("%.3f" % r[1] for r in runs)), flush=True)


if __name__ == "__main__":
    main()
