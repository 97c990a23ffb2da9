"""Smoke test of the comparison harness: `ringcast-bench all --quick` with tiny durations must
produce every report file, rows with the required fields, no lost events, the documented skip
messages, and leave no server process, temp directory or ring behind (also after SIGINT).
It checks that results exist and are consistent, never how fast anything is."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

BIN_DIR = os.environ.get("RC_BIN_DIR") or os.path.join(os.path.dirname(__file__), "../../build/bin")
BENCH = os.path.join(BIN_DIR, "ringcast-bench")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def leftovers(pid):
    """Rings and processes a harness run with this pid could have left."""
    rings = glob.glob("/dev/shm/rcbench%dx*" % pid)
    procs = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ("/tmp/rcbench%d-" % pid) in cmd or ("rcbench%dx" % pid) in cmd:
            procs.append(cmd)
    return rings, procs


def clones(cmd):
    """Processes still running with exactly this command line (forked bench sinks)."""
    want = "\0".join(cmd) + "\0"
    found = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(p, "rb") as f:
                if f.read().decode(errors="replace") == want:
                    found.append(p)
        except OSError:
            continue
    return found


def bench_dirs(pid):
    return glob.glob("/tmp/rcbench%d-*" % pid)


def sigint_check(args):
    """SIGINT in the middle of a run stops the servers (and bench sinks) it started."""
    cmd = [BENCH] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = None
    deadline = time.time() + 20
    buf = ""
    while time.time() < deadline and server is None:
        line = proc.stderr.readline()
        if not line:
            break
        buf += line
        m = re.search(r"server pid (\d+)", line)
        if m:
            server = int(m.group(1))
    check(server is not None, "no server pid announced: %r" % buf)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        check(False, "ringcast-bench did not exit after SIGINT")
    if server is not None:
        gone = not os.path.exists("/proc/%d" % server)
        if not gone:
            with open("/proc/%d/stat" % server) as f:
                gone = f.read().split(") ")[1].startswith("Z")
        check(gone, "server %d still running after SIGINT" % server)
    rings, procs = leftovers(proc.pid)
    check(not rings, "rings left after SIGINT: %s" % rings)
    # The signal path stops the servers but leaves their temp directories (not async-signal-
    # safe to walk); they hold only a config and logs. Remove them here.
    for d in bench_dirs(proc.pid):
        shutil.rmtree(d, ignore_errors=True)
    check(not procs, "processes left after SIGINT: %s" % procs)
    time.sleep(0.2)
    check(not clones(cmd), "bench sinks left after SIGINT: %s" % clones(cmd))


def ring_check():
    """`ring`: the stream baseline and the ratio to it in the result line, the issue 17 target
    lines (1 -> N sleeping: ratio to the stream with yielding readers, best-of-3 hand-off p99
    next to the floor, the same hand-off without the ring), nothing lost; a bad --pin is
    refused."""
    r = subprocess.run([BENCH, "ring", "--pin", "maybe"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 2 and "--pin" in r.stderr, "ring --pin maybe: exit %d" % r.returncode)
    r = subprocess.run([BENCH, "ring", "--duration", "0.2", "--readers", "2", "--wait", "sleep"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "ring: exit %d: %s" % (r.returncode, r.stderr[-2000:]))
    lines = r.stdout.strip().splitlines()
    kv = dict(x.split("=", 1) for x in (lines[-1] if lines else "").split() if "=" in x)
    check(kv.get("scenario") == "ring" and kv.get("lost") == "0", "ring result: %r" % lines)
    check(float(kv.get("stream_per_s_per_reader", 0)) > 0 and kv.get("stream_wait") == "yield",
          "ring: no stream baseline: %r" % kv)
    want = float(kv.get("events_per_s_per_reader", 0)) / float(kv.get("stream_per_s_per_reader", 1))
    check(abs(float(kv.get("per_reader_vs_stream", -1)) - want) < 0.01,
          "ring: per_reader_vs_stream is not per reader / stream: %r" % kv)
    targets = [x for x in lines if x.startswith("target=")]
    check(len(targets) == 2 and targets[0].startswith("target=ring_1to2_sleep_vs_stream ") and
          targets[1].startswith("target=handoff_p99_sleep best_of=3 ") and
          all(re.search(r" met=[01]$", t) for t in targets), "ring target lines: %r" % targets)
    check(int(kv.get("floor_p99_ns", 0)) > 0 and re.search(r" floor_ns=[1-9]\d* vs_floor=", targets[1]),
          "ring: no sleeping hand-off floor: %r %r" % (kv, targets))


def stalls_check():
    """`stalls`: one line per CPU on stderr, a result line with each CPU's gaps, longest gap and
    time lost; bad values refused."""
    for args in (["--seconds", "0"], ["--seconds", "61"], ["--seconds", "x"], ["--bogus"]):
        r = subprocess.run([BENCH, "stalls"] + args, capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and "usage" in r.stderr, "stalls %s: exit %d" % (args, r.returncode))
    r = subprocess.run([BENCH, "stalls", "--seconds", "0.2"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, "stalls: exit %d: %s" % (r.returncode, r.stderr[-1000:]))
    kv = dict(x.split("=", 1) for x in r.stdout.strip().split() if "=" in x)
    cpus = int(kv.get("cpus", 0))
    check(kv.get("scenario") == "stalls" and cpus >= 1, "stalls result: %r" % r.stdout)
    check(r.stderr.count("clock reads") == cpus, "stalls: a line per CPU: %r" % r.stderr)
    check(all(0 <= float(v) <= 100 for k, v in kv.items() if k.endswith("_lost_pct")) and
          len([k for k in kv if k.endswith("_max_us")]) == cpus, "stalls per CPU: %r" % kv)


DAPR_ROWS = ("publish rate=1000", "publish rate=10000", "bulk=10", "bulk=100",
             "e2e replicas=2 rate=1000", "e2e replicas=2 rate=10000")


def dapr_check(out):
    """`dapr --quick`: every row measured, nothing lost, no event at two replicas, the three
    target lines, the result line last, nothing left behind. Returns False when this ringcast
    does not load the Dapr kinds at all (the part is skipped, saying so)."""
    for args, word in ((["dapr", "--bulk", "0"], "--bulk"),
                       (["dapr", "--bulk", "10,x"], "--bulk")):
        r = subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=30)
        check(r.returncode == 2, "%s: exit %d, want 2" % (args, r.returncode))
        check(word in r.stderr, "%s: stderr does not name %r: %r" % (args, word, r.stderr))
    # Lists each number of which the option parser accepts, refused before any run (exit 1).
    for args, word in ((["dapr", "--bulk", "1.5"], "--bulk"),
                       (["dapr", "--bulk", "1001"], "--bulk"),
                       (["dapr", "--consumers", "65"], "--consumers")):
        r = subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=30)
        check(r.returncode == 1 and "rows=0" in r.stdout, "%s: exit %d, %r" %
              (args, r.returncode, r.stdout[-200:]))
        check(word in r.stderr, "%s: stderr does not name %r: %r" % (args, word, r.stderr))
    r = subprocess.run([BENCH, "dapr", "--help"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "--bulk" in r.stdout, "dapr --help")
    cmd = [BENCH, "dapr", "--quick", "--seconds", "0.3", "--drain", "2", "--conns", "4",
           "--out", out]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        check(False, "dapr --quick did not finish in 120 s")
        return True
    print("dapr --quick took %.1f s" % (time.time() - t0))
    if "unknown kind 'Component'" in stdout + stderr:
        print("skipped: dapr part: this ringcast does not load the Dapr kinds (issue 12)")
        return False
    print(stderr[-3000:], file=sys.stderr)
    check(p.returncode == 0, "dapr --quick exit %d" % p.returncode)
    rings, procs = leftovers(p.pid)
    check(not bench_dirs(p.pid) and not rings and not procs,
          "dapr left behind: %s %s %s" % (bench_dirs(p.pid), rings, procs))
    lines = stdout.strip().splitlines()
    kv = dict(x.split("=", 1) for x in (lines[-1] if lines else "").split() if "=" in x)
    check(kv.get("scenario") == "dapr" and kv.get("rows") == "6" and kv.get("lost") == "0" and
          kv.get("failed") == "0", "dapr result line: %r" % (lines[-1:],))
    targets = {}
    for line in lines:
        if line.startswith("target="):
            t = dict(x.split("=", 1) for x in line.split() if "=" in x)
            targets[t["target"]] = t
    for name, key in (("publish_p99_1k", "value_us"), ("bulk100_eps", "value_eps"),
                      ("e2e_p99_10k", "value_us")):
        t = targets.get(name, {})
        check(key in t and "error" not in t and t.get("ok") in ("0", "1"),
              "target line %s: %r" % (name, t))
    check(targets.get("e2e_p99_10k", {}).get("dups") == "0", "e2e duplicates: %r" % targets)
    with open(os.path.join(out, "report.json")) as f:
        rows = {r["params"]: r for r in json.load(f)["rows"] if r["scenario"] == "dapr"}
    check(sorted(rows) == sorted(DAPR_ROWS), "dapr rows: %r" % sorted(rows))
    for params, r in rows.items():
        check(not r["skipped"] and r["events"] > 0 and r["throughput"] > 0 and r["lost"] == 0 and
              r["dups"] == 0 and r["errors"] == 0 and r["cpu_s"] >= 0 and r["rss_mib"] > 0,
              "dapr row %s: %r" % (params, r))
        check(0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"],
              "dapr row %s percentiles out of order" % params)
        if params.startswith("e2e"):
            check(r["consumers"] == 2, "dapr e2e replicas: %r" % r["consumers"])
    check(not clones(cmd), "bench sinks left behind: %s" % clones(cmd))
    return True


INGEST_STORE_ROWS = ("ringcast-file-none", "ringcast-file-batch", "ringcast-file-sync",
                     "redis-aof-everysec", "redis-aof-always")
RATIO_LINES = ("sync_vs_redis_always", "batch_vs_memory", "none_vs_memory",
               "batch_vs_redis_everysec")


def ratio_lines(stdout):
    """The `target=...` lines of ingest's ratios, by name, each a dict of its fields."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("target="):
            t = dict(x.split("=", 1) for x in line.split() if "=" in x)
            if t["target"] in RATIO_LINES:
                found[t["target"]] = t
    return found


def durable_rows_check(rows, stdout, where):
    """The file-store and Redis AOF rows of ingest: measured (or skipped saying what to install),
    nonzero rates, fsync figures for batch and sync, and well-formed ratio lines."""
    ingest = {r["system"]: r for r in rows if r["scenario"] == "ingest"}
    for name in INGEST_STORE_ROWS:
        r = ingest.get(name)
        check(r is not None, "%s: no ingest row %s" % (where, name))
        if r is None:
            continue
        if r["skipped"]:
            check(name.startswith("redis") and "not installed" in r.get("note", ""),
                  "%s: %s skipped: %r" % (where, name, r.get("note")))
            continue
        check(r["events"] > 0 and r["throughput"] > 0 and r["errors"] == 0 and r["lost"] == 0,
              "%s: row %s: %r" % (where, name, r))
        check(0 < r["p50_us"] <= r["p99_us"] <= r["max_us"], "%s: %s percentiles" % (where, name))
        if name in ("ringcast-file-batch", "ringcast-file-sync"):
            check(r.get("fsyncs_per_s", 0) > 0 and r.get("events_per_fsync", 0) > 0 and
                  r.get("fsync_mean_us", 0) > 0, "%s: %s fsync figures: %r" % (where, name, r))
        else:
            check("fsyncs_per_s" not in r, "%s: %s has fsync figures" % (where, name))
        if name == "ringcast-file-sync":
            # Every 202 of sync waited for an fdatasync that began after its commit, so the
            # durable position covers every acknowledged event.
            check(r.get("durable_events", 0) >= r["events"],
                  "%s: sync: %r durable events < %r acknowledged" %
                  (where, r.get("durable_events"), r["events"]))
        if name.startswith("redis-aof"):
            check("AOF" in r.get("note", ""), "%s: %s note: %r" % (where, name, r.get("note")))
    lines = ratio_lines(stdout)
    for name in RATIO_LINES:
        t = lines.get(name)
        check(t is not None, "%s: no target=%s line" % (where, name))
        if t is None:
            continue
        if "error" in t:
            check(t.get("ok") == "0" and "not_installed" in t["error"],
                  "%s: %s failed: %r" % (where, name, t))
            continue
        check(float(t.get("ratio", "0")) > 0, "%s: %s ratio: %r" % (where, name, t))
        if name in ("sync_vs_redis_always", "batch_vs_memory"):
            check(t.get("ok") in ("0", "1") and t.get("limit") in ("1.0", "0.8"),
                  "%s: %s target fields: %r" % (where, name, t))
            check(float(t.get("fsyncs_s", "0")) > 0 and float(t.get("events_per_fsync", "0")) > 0,
                  "%s: %s fsync fields: %r" % (where, name, t))


def ingest_store_check(out):
    """ingest rows alone (--systems), in a --store-dir the harness empties again; and with no
    redis-server on PATH the AOF row is skipped, saying so, and its ratio line names why."""
    store = tempfile.mkdtemp(prefix="rc-bench-store-")
    cmd = [BENCH, "ingest", "--quick", "--seconds", "0.3", "--conns", "4", "--systems",
           "ringcast-file-sync,redis-aof-always", "--store-dir", store, "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "ingest sync vs always: exit %d: %s" % (r.returncode, r.stderr[-2000:]))
    with open(os.path.join(out, "report.json")) as f:
        rows = json.load(f)["rows"]
    check(sorted(x["system"] for x in rows) == ["redis-aof-always", "ringcast-file-sync"],
          "ingest --systems rows: %r" % [x["system"] for x in rows])
    sync = [x for x in rows if x["system"] == "ringcast-file-sync"]
    check(sync and not sync[0]["skipped"] and sync[0]["events"] > 0 and
          sync[0].get("fsyncs_per_s", 0) > 0, "ingest sync alone: %r" % sync)
    lines = ratio_lines(r.stdout)
    check(sorted(lines) == ["sync_vs_redis_always"], "ratio lines alone: %r" % sorted(lines))
    last = r.stdout.strip().splitlines()[-1]
    check(last.startswith("scenario=ingest") and
          "ringcast_file_sync_binary_conns_4_depth_1_fsyncs_s=" in last and
          "ringcast_file_sync_binary_conns_4_depth_1_events_per_fsync=" in last,
          "ingest result line: %r" % last)
    check(os.listdir(store) == [], "store directory not emptied: %r" % os.listdir(store))
    # No redis-server anywhere the harness looks (PATH, then the sbin directories).
    env = dict(os.environ, PATH="/nonexistent")
    cmd = [BENCH, "ingest", "--quick", "--seconds", "0.3", "--conns", "4", "--systems",
           "ringcast-file-sync,redis-aof-always", "--store-dir", store]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode == 0, "ingest without redis-server: exit %d" % r.returncode)
    t = ratio_lines(r.stdout).get("sync_vs_redis_always", {})
    check(t.get("ok") == "0" and "redis-server_is_not_installed" in t.get("error", ""),
          "ratio line without redis-server: %r" % t)
    check("redis-aof-always" in r.stderr and "not installed" in r.stderr,
          "no skip message without redis-server: %r" % r.stderr[-1000:])
    check(os.listdir(store) == [], "store directory not emptied: %r" % os.listdir(store))
    shutil.rmtree(store, ignore_errors=True)
    # A store directory that cannot be made: the run fails (exit 1), naming the directory.
    missing = os.path.join(store, "missing")
    cmd = [BENCH, "ingest", "--quick", "--seconds", "0.3", "--conns", "4", "--systems",
           "ringcast-file-none", "--store-dir", missing]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and missing in r.stderr and "failed=1" in r.stdout,
          "ingest --store-dir missing: exit %d: %r" % (r.returncode, r.stderr[-500:]))


def scaleout_rows(stdout):
    """The `scaleout_row system=... nodes=N key=value...` lines, by (system, nodes)."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("scaleout_row "):
            kv = dict(x.split("=", 1) for x in line.split()[1:])
            rows[(kv["system"], int(kv["nodes"]))] = kv
    return rows


def scaleout_check(out):
    """scaleout --nodes 1,2: 1 and 2 ringcast nodes sharing one broker over Redis, the shm node
    and Dapr's Redis pattern, each accepted event exactly once at the sink; the result lines
    machine-readable; the report says the nodes share the cores. Without redis-server the Redis
    rows are skipped, saying what to install, and the shm row still runs."""
    cmd = [BENCH, "scaleout", "--nodes", "1,2", "--quick", "--seconds", "0.3", "--conns", "4",
           "--drain", "3", "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    check(r.returncode == 0, "scaleout: exit %d: %s" % (r.returncode, r.stderr[-2000:]))
    check(re.search(r"^note: .*share this machine's \d+ cores: .*efficiency.*not scaling",
                    r.stdout, re.M), "scaleout: no efficiency-not-scaling note: %r" % r.stdout)
    rows = scaleout_rows(r.stdout)
    have_redis = shutil.which("redis-server") or os.path.exists("/usr/bin/redis-server")
    want = [("ringcast-shm", 1)]
    if have_redis:
        want += [("ringcast-redis", 1), ("ringcast-redis", 2), ("redis-dapr", 1)]
    for key in want:
        kv = rows.get(key)
        check(kv is not None and kv.get("skipped") is None, "scaleout: no %s row: %r" %
              (key, sorted(rows)))
        if kv is None or kv.get("skipped") is not None:
            continue
        check(int(kv["events"]) > 0 and float(kv["eps"]) > 0, "scaleout %s: no events %r" %
              (key, kv))
        check(kv["lost"] == "0" and kv["dups"] == "0" and kv["exactly_once"] == "1",
              "scaleout %s: not exactly once: %r" % (key, kv))
        check(0 < float(kv["p50_us"]) <= float(kv["p99_us"]), "scaleout %s: percentiles %r" %
              (key, kv))
        check(float(kv["events_per_server_cpu_s"]) > 0 and
              float(kv["events_per_machine_cpu_s"]) > 0 and kv["cores"] == str(os.cpu_count()),
              "scaleout %s: efficiency %r" % (key, kv))
        if key[0] == "ringcast-redis":
            check(float(kv["redis_cpu_s"]) > 0 and float(kv["nodes_cpu_s"]) > 0,
                  "scaleout %s: nodes' and Redis's CPU %r" % (key, kv))
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    check(last.startswith("scenario=scaleout ") and " lost=0 failed=0" in last and
          (not have_redis or "ringcast_redis_nodes_2_eps=" in last),
          "scaleout result line: %r" % last)
    with open(os.path.join(out, "report.json")) as f:
        systems = sorted({x["system"] for x in json.load(f)["rows"]})
    check(systems == ["redis-dapr", "ringcast-redis", "ringcast-shm"],
          "scaleout report.json systems: %r" % systems)
    check(not clones(cmd), "scaleout: bench sinks left behind: %s" % clones(cmd))
    # No redis-server: the Redis rows say what to install; the shm row runs; exit 0.
    env = dict(os.environ, PATH="/nonexistent")
    cmd = [BENCH, "scaleout", "--nodes", "2", "--quick", "--seconds", "0.2", "--conns", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    rows = scaleout_rows(r.stdout)
    check(r.returncode == 0 and rows.get(("ringcast-redis", 2), {}).get("skipped") == "1" and
          rows.get(("redis-dapr", 1), {}).get("skipped") == "1" and
          rows.get(("ringcast-shm", 1), {}).get("exactly_once") == "1",
          "scaleout without redis-server: exit %d %r" % (r.returncode, rows))
    check("redis-server is not installed" in r.stdout + r.stderr,
          "scaleout without redis-server: no message: %r" % r.stderr[-1000:])


def main():
    if not os.access(BENCH, os.X_OK):
        print("skipped: %s not built" % BENCH)
        return 77

    # Bad usage: exit 2 with a message naming the problem.
    for args, word in ((["ingest", "--conns", "0"], "out of range"),
                       (["ingest", "--mode", "xml"], "--mode"),
                       (["latency", "--rates", "fast"], "--rates"),
                       (["fanout", "--consumers", "1,-4"], "--consumers"),
                       (["fanout", "--triggers", "0"], "--triggers"),
                       (["fanout", "--decoys", "-1"], "out of range"),
                       (["fanout", "--rate", "x"], "--rate"),
                       (["ingest", "--systems", "kafka"], "kafka"),
                       (["ingest", "--systems", "ringcast-file-fast"], "ringcast-file-fast"),
                       (["ingest", "--seconds"], "--seconds"),
                       (["ingest", "--bogus", "1"], "--bogus"),
                       (["scaleout", "--nodes", "0"], "--nodes"),
                       (["scaleout", "--nodes", "1,9"], "--nodes"),
                       (["scaleout", "--nodes", "1.5"], "--nodes")):
        r = subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=30)
        check(r.returncode == 2, "%s: exit %d, want 2" % (args, r.returncode))
        check(word in r.stderr, "%s: stderr does not name %r: %r" % (args, word, r.stderr))
    r = subprocess.run([BENCH, "fanout", "--help"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "--consumers" in r.stdout and "--triggers" in r.stdout,
          "fanout --help")

    ring_check()
    stalls_check()

    # The quick run, shortened further.
    out = tempfile.mkdtemp(prefix="rc-bench-smoke-")
    cmd = [BENCH, "all", "--quick", "--seconds", "0.3", "--drain", "1", "--rates", "500,2000",
           "--consumers", "1,2", "--conns", "4", "--out", out]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdout_text, stderr = p.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        print("FAIL: all --quick did not finish in 150 s")
        return 1
    p.stdout = p.stdout_text
    print(stderr[-4000:], file=sys.stderr)
    print("all --quick took %.1f s" % (time.time() - t0))
    check(p.returncode == 0, "all --quick exit %d" % p.returncode)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    kv = dict(x.split("=", 1) for x in last.split() if "=" in x)
    check(kv.get("scenario") == "all", "last line is not key=value: %r" % last)
    check(kv.get("lost") == "0", "lost events: %r" % last)
    check(kv.get("failed") == "0", "failed runs: %r" % last)
    check("| x ringcast |" in p.stdout, "no markdown table on stdout")

    for f in ("report.json", "report.md", "ingest.svg", "latency.svg", "fanout.svg"):
        check(os.path.exists(os.path.join(out, f)), "missing %s" % f)
    with open(os.path.join(out, "micro.txt")) as f:
        micro = [line.split()[0] for line in f if line.strip()]
    check(micro == ["scenario=ring", "scenario=cesql", "scenario=stalls"],
          "micro-benchmarks in micro.txt: %r" % micro)
    for svg in glob.glob(os.path.join(out, "*.svg")):
        try:
            root = ET.parse(svg).getroot()
            check(root.tag.endswith("svg"), "%s is not an SVG" % svg)
        except ET.ParseError as e:
            check(False, "%s is not well-formed XML: %s" % (svg, e))
    with open(os.path.join(out, "report.json")) as f:
        rows = json.load(f)["rows"]
    measured = [r for r in rows if not r["skipped"]]
    skipped = [r for r in rows if r["skipped"]]
    for r in measured:
        for key in ("scenario", "system", "throughput", "p50_us", "p99_us", "lost", "cpu_s",
                    "rss_mib"):
            check(key in r, "row %s/%s lacks %s" % (r.get("scenario"), r.get("system"), key))
        check(r["lost"] == 0, "row %s/%s/%s lost %s" % (r["scenario"], r["system"], r["params"],
                                                        r["lost"]))
        check(r["dups"] == 0, "row %s/%s duplicates" % (r["scenario"], r["system"]))
        check(r["events"] > 0 and r["throughput"] > 0, "row %s/%s/%s produced no events" %
              (r["scenario"], r["system"], r["params"]))
        check(0 < r["p50_us"] <= r["p99_us"] <= r["max_us"],
              "row %s/%s percentiles out of order" % (r["scenario"], r["system"]))
        check(r["rss_mib"] > 0, "row %s/%s has no RSS" % (r["scenario"], r["system"]))
        # Which side saturated: every process's CPU over the run, as shares of its interval.
        check(r["wall_s"] > 0 and r["load_cpu_pct"] > 0 and r["server_cpu_pct"] >= 0 and
              r["consumers_cpu_pct"] >= 0 and 0 <= r["machine_busy_pct"] <= 100 and
              r["saturated"] in ("loadgen", "server", "consumers", "cpus", "machine", "none"),
              "row %s/%s/%s CPU shares: %r" % (r["scenario"], r["system"], r["params"],
                                               {k: r.get(k) for k in (
                                                   "wall_s", "load_cpu_pct", "server_cpu_pct",
                                                   "consumers_cpu_pct", "machine_busy_pct",
                                                   "saturated")}))
        if r["system"] == "ringcast-http":  # /proc's 10 ms ticks: a short run may show 0
            check(0 <= r["workers_cpu_pct"] <= r["server_cpu_pct"],
                  "ringcast-http row: workers' CPU not part of the server's: %r" % r)
    # ringcast itself always runs; each scenario has its row(s) (dapr: 2 publish rates, 2 bulk
    # sizes, 2 x 2 end-to-end rows with 1 and 2 replicas).
    durable_rows_check(rows, p.stdout, "all --quick")
    for scen, system, n in (("ingest", "ringcast", 1), ("latency", "ringcast-shm", 2),
                            ("fanout", "ringcast-shm", 2), ("groups", "ringcast-group", 2),
                            ("dapr", "ringcast", 8)):
        got = [r for r in measured if r["scenario"] == scen and r["system"] == system]
        check(len(got) == n, "%s: %d %s rows, want %d" % (scen, len(got), system, n))
    for r in measured:
        if r["scenario"] == "latency":
            m = re.match(r"rate=(\d+)", r["params"])
            check(m and abs(r["rate"] - float(m.group(1))) < 1, "latency row rate")
        if r["scenario"] in ("fanout", "groups"):
            check(r["consumers"] in (1, 2), "%s consumers %r" % (r["scenario"], r["consumers"]))
    # ringcast HTTP push: measured rows (one per latency rate, one quick fanout row), next to
    # the same sink driven directly.
    for scen, system, n in (("latency", "ringcast-http", 2), ("fanout", "ringcast-http", 1),
                            ("fanout", "sinks-direct", 1)):
        got = [r for r in measured if r["scenario"] == scen and r["system"] == system]
        check(len(got) == n, "%s: %d %s rows, want %d" % (scen, len(got), system, n))
    check(not [r for r in skipped if r["system"] in ("ringcast-http", "sinks-direct")],
          "ringcast-http/sinks-direct rows skipped")
    # nginx as a reverse proxy to the same sinks, and push / proxy as a ratio to the target.
    proxy = [r for r in rows if r["scenario"] == "fanout" and r["system"] == "nginx-proxy"]
    check(len(proxy) == 1, "fanout: %d nginx-proxy rows, want 1" % len(proxy))
    if proxy and not proxy[0]["skipped"]:
        push = [r for r in measured if r["scenario"] == "fanout" and
                r["system"] == "ringcast-http"]
        check(push and re.search(r"push / nginx-proxy [0-9.]+x \(target 1\.5x: (met|not met)\)",
                                 push[0].get("note", "")),
              "no push / nginx-proxy ratio in the ringcast-http note: %r" % push)
        check(re.search(r"^target=push_vs_nginx_proxy consumers=1 ratio=[0-9.]+ limit=1\.5 .*"
                        r"met=[01]$", p.stdout, re.M), "no push_vs_nginx_proxy target line")
    check(not clones(cmd), "bench sinks left behind: %s" % clones(cmd))
    for r in skipped:
        if r["system"] in ("nginx", "nginx-proxy", "redis", "nats", "redis-aof-everysec",
                           "redis-aof-always"):
            check("not installed" in r["note"], "peer %s skipped without saying why: %r" %
                  (r["system"], r["note"]))
    rings, procs = leftovers(p.pid)
    check(not bench_dirs(p.pid), "temp directories left: %s" % bench_dirs(p.pid))
    check(not rings, "rings left behind: %s" % rings)
    check(not procs, "processes left behind: %s" % procs)

    # fanout over HTTP alone: 2 triggers + 3 decoys, and the direct baseline; every sink gets
    # every acknowledged event exactly once.
    cmd2 = [BENCH, "fanout", "--systems", "ringcast-http,sinks-direct", "--triggers", "2",
            "--decoys", "3", "--seconds", "0.3", "--drain", "2", "--conns", "4", "--out", out]
    r = subprocess.run(cmd2, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "fanout --triggers 2 --decoys 3: exit %d: %s" %
          (r.returncode, r.stderr[-2000:]))
    with open(os.path.join(out, "report.json")) as f:
        rows = json.load(f)["rows"]
    check(sorted(r["system"] for r in rows) == ["ringcast-http", "sinks-direct"],
          "fanout --triggers rows: %r" % [(r["system"], r["params"]) for r in rows])
    for r in rows:
        check(not r["skipped"] and r["lost"] == 0 and r["dups"] == 0 and r["events"] > 0 and
              r["consumers"] == 2 and r["cpu_s"] >= 0 and r["rss_mib"] > 0,
              "fanout http row %r" % r)
        if r["system"] == "ringcast-http":
            check("triggers=5" in r["params"], "decoys not in params: %r" % r["params"])
    check(not clones(cmd2), "bench sinks left behind: %s" % clones(cmd2))

    ingest_store_check(out)

    scaleout_check(out)

    sigint_check(["fanout", "--seconds", "20", "--consumers", "1", "--systems", "ringcast"])
    sigint_check(["fanout", "--seconds", "20", "--triggers", "2", "--systems", "ringcast-http"])

    dapr_check(out)

    shutil.rmtree(out, ignore_errors=True)
    if failures:
        print("%d failed" % len(failures))
        return 1
    print("bench smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
