#!/usr/bin/env python3
"""Instruction counts of the delivery path, stable on a noisy machine: runs `ringcast serve`
(one worker) under `valgrind --tool=callgrind --trace-children=yes` with T triggers that all
match, each to its own `ringcast sink`, posts N binary events over one keep-alive connection,
waits until every trigger delivered them all (bounded), stops everything by pid and prints each
process's total instructions (one line per process: serve, and its worker, which does the
deliveries; callgrind_annotate on a file names the program).

usage: scripts/callgrind-delivery.py BIN_DIR N_EVENTS N_TRIGGERS OUT_PREFIX
  e.g. scripts/callgrind-delivery.py build/bin 1000 8 /tmp/cg/new
Then `callgrind_annotate --inclusive=yes OUT_PREFIX.cg.PID` shows where they go. Needs valgrind
(Debian package valgrind). Loopback only, free ports, rings under a prefix of its own."""
import glob
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

if len(sys.argv) != 5 or shutil.which("valgrind") is None:
    sys.exit(__doc__ if len(sys.argv) != 5 else "callgrind-delivery: valgrind is not installed")
binp = sys.argv[1]; N = int(sys.argv[2]); T = int(sys.argv[3]); out = sys.argv[4]
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
sinks = []; sps = []
for i in range(T):
    p = port(); sps.append(p)
    sinks.append(subprocess.Popen([binp + "/ringcast", "sink", "--listen", f"127.0.0.1:{p}", "--quiet"] ,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
ip, ap = port(), port()
cfg = f"""apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  listen: 127.0.0.1:{ip}
  admin: 127.0.0.1:{ap}
  workers: 1
  ring:
    size: 16Mi
    namePrefix: rccg{os.getpid()}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: default, namespace: default}}
"""
for i in range(T):
    cfg += f"""---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: t{i}, namespace: default}}
spec:
  broker: default
  filter: {{attributes: {{type: bench.t}}}}
  subscriber: {{uri: "http://127.0.0.1:{sps[i]}/"}}
"""
open(out + ".yaml", "w").write(cfg)
for f in glob.glob(out + ".cg.*"): os.unlink(f)
srv = subprocess.Popen(["valgrind", "--tool=callgrind", "--trace-children=yes",
                        f"--callgrind-out-file={out}.cg.%p", binp + "/ringcast", "serve", "--config", out + ".yaml"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
deadline = time.time() + 120
while time.time() < deadline:
    try:
        c = http.client.HTTPConnection("127.0.0.1", ap, timeout=2); c.request("GET", "/readyz")
        if c.getresponse().status == 200: break
    except Exception: time.sleep(0.3)
time.sleep(2)
c = http.client.HTTPConnection("127.0.0.1", ip, timeout=30)
for i in range(N):
    c.request("POST", "/default/default", body=b'{"n":%d}' % i, headers={"ce-specversion": "1.0",
              "ce-type": "bench.t", "ce-source": "/cg", "ce-id": "id-%d" % i, "content-type": "application/json"})
    r = c.getresponse(); r.read(); assert r.status == 202, r.status
def delivered():
    c = http.client.HTTPConnection("127.0.0.1", ap, timeout=5); c.request("GET", "/metrics")
    tot = 0
    for l in c.getresponse().read().decode().splitlines():
        if l.startswith("ringcast_trigger_delivered_total"): tot += int(float(l.split()[-1]))
    return tot
while time.time() < deadline and delivered() < N * T: time.sleep(0.5)
print("delivered", delivered())
srv.send_signal(signal.SIGTERM); srv.wait(60)
for s in sinks: s.send_signal(signal.SIGTERM); s.wait(10)
for p in glob.glob("/dev/shm/rccg%d.*" % os.getpid()):
    os.unlink(p)
for f in sorted(glob.glob(out + ".cg.*")):
    tot = 0; cmd = ""
    for l in open(f):
        if l.startswith("summary:") or l.startswith("totals:"): tot = int(l.split()[1])
        if l.startswith("cmd:"): cmd = l.strip()
    print(f, tot)
