#!/usr/bin/env python3
"""Rough publish -> subscriber latency of `ringcast serve` delivery: publishes binary events at a
fixed rate over one keep-alive connection (each carries its send time in extension `t0`,
CLOCK_MONOTONIC ns), a Python subscriber records arrival - t0. Python bounds the rate it can
sustain (a few thousand events/s on one core). usage: bench-delivery.py [RATE] [SECONDS]"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from rc_harness import Broker  # noqa: E402
from subscriber import Subscriber  # noqa: E402

rate = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
lat = []


def rec(_i, req):
    lat.append(time.monotonic_ns() - int(req.ce("t0")))
    return 200, {}, b"", 0.0


with Subscriber(rec) as s:
    cfg = ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n---\n"
           "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\n"
           "spec: {broker: default, subscriber: {uri: %s}}\n" % s.url)
    with Broker(cfg) as b:
        c = b.conn()
        n = int(rate * secs)
        start = time.monotonic()
        for i in range(n):
            due = start + i / rate
            while time.monotonic() < due:
                pass
            c.send_request("POST", "/default/default", {
                "ce-id": str(i), "ce-source": "/b", "ce-type": "a", "ce-specversion": "1.0",
                "ce-t0": str(time.monotonic_ns())}, b"x" * 128)
            c.response()
        sent_secs = time.monotonic() - start
        s.wait_for(n, timeout=30)
        c.close()
lat.sort()


def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e3


print("offered_rate=%d achieved_rate=%.0f delivered=%d p50_us=%.0f p99_us=%.0f max_us=%.0f" % (
    rate, n / sent_secs, len(lat), pct(0.5), pct(0.99), lat[-1] / 1e3))
