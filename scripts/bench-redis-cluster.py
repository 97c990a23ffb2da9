#!/usr/bin/env python3
"""Ingest into a redis broker: a standalone redis-server against a 3-master Redis Cluster
(docs/scaleout.md "Redis Cluster"), both started here on free loopback ports without
persistence, the real broker in front, `wrk` POSTing one binary-mode CloudEvent per request
(bench/wrk/binary_event.lua), no trigger. Prints the requests/s of each run and the medians.
usage: scripts/bench-redis-cluster.py [RUNS=3] [DURATION_S=4] [CONNECTIONS=16] [PARTITIONS=6]
Needs redis-server, redis-cli and wrk; exits 77 (skipped) without them."""
import os
import re
import shutil
import statistics
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tests", "integration"))
os.environ.setdefault("RC_BIN_DIR", os.path.join(root, "build", "bin"))
from rc_harness import Broker  # noqa: E402
from test_redis import Redis  # noqa: E402
from test_redis_cluster import Cluster, SETTINGS  # noqa: E402


def wrk(port, dur, conns):
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % dur, "-s",
                          os.path.join(root, "bench", "wrk", "binary_event.lua"),
                          "http://127.0.0.1:%d/default/default" % port],
                         stdout=subprocess.PIPE, text=True, timeout=dur + 30).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise SystemExit("non-202 answers during the run:\n" + out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    runs, dur, conns, parts = (int(a) for a in (sys.argv[1:] + ["3", "4", "16", "6"][len(
        sys.argv[1:]):]))
    for tool in ("redis-server", "redis-cli", "wrk"):
        if shutil.which(tool) is None:
            print("skipped: %s is not installed" % tool)
            return 77
    results = {}
    for name in ("standalone", "cluster"):
        rps = []
        for _ in range(runs):
            with (Redis() if name == "standalone" else Cluster()) as rd:
                if name == "standalone":  # test_redis.Redis fsyncs its AOF: not here
                    rd.cmd("CONFIG", "SET", "appendonly", "no")
                seeds = ('"127.0.0.1:%d"' % rd.port if name == "standalone" else rd.seeds())
                cfg = (SETTINGS % (seeds, parts, "")).replace("  workers: 1\n",
                                                               "  workers: 1\n  logLevel: warn\n")
                with Broker(cfg) as b:
                    rps.append(wrk(b.port, dur, conns))
            print("%-10s %8.0f requests/s" % (name, rps[-1]), flush=True)
        results[name] = statistics.median(rps)
    print("median of %d runs, %d s, %d connections, %d partitions: standalone %.0f, "
          "cluster (3 masters) %.0f requests/s" % (runs, dur, conns, parts,
                                                    results["standalone"], results["cluster"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
