#!/usr/bin/env python3
"""What the admin API's sample of recent events costs (docs/dashboard.md, "The sample of recent
events"): a real `ringcast serve` (the build's, as the integration tests find it) with a 16 MiB
ring filled with 50,000 events (1 in 1,000 of type `rare`), then 5 runs of 20 GETs per case on
one keep-alive connection from this process; prints each case's median of the runs' medians,
in milliseconds. Run from the build directory: python3 ../scripts/measure_sample.py"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from rc_harness import Broker  # noqa: E402
from subscriber import Subscriber  # noqa: E402

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 2s
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all, namespace: default}
spec:
  broker: default
  subscriber: {uri: "%s/all"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: rare, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: rare}}
  subscriber: {uri: "%s/rare"}
"""

PATH = "/apis/ringcast.dev/v1alpha1/namespaces/default/brokers/default/events"


def fill(b, n=50000, batch=500):
    for start in range(0, n, batch):
        evs = [{"specversion": "1.0", "id": str(i), "source": "/m",
                "type": "rare" if i % 1000 == 0 else "common", "data": {"i": i, "pad": "x" * 64}}
               for i in range(start, start + batch)]
        r = b.request("POST", "/default/default",
                      {"Content-Type": "application/cloudevents-batch+json"},
                      json.dumps(evs).encode())
        assert r.status == 202, r.body


def measure(b, query, runs=5, per_run=20):
    meds = []
    c = b.conn(admin=True)
    items = None
    for _ in range(runs):
        ts = []
        for _ in range(per_run):
            t = time.perf_counter()
            c.send_request("GET", PATH + query)
            r = c.response()
            ts.append(time.perf_counter() - t)
            assert r.status == 200, r.body
            o = r.json()
            items = (len(o["items"]), o["scanned"])
        meds.append(statistics.median(ts) * 1000)
    c.close()
    return statistics.median(meds), items


def main():
    sub = Subscriber()
    try:
        with Broker(CONFIG % (sub.url, sub.url)) as b:
            fill(b)
            time.sleep(2)  # the 1 s step then holds only what came after the fill: nothing
            for q in ("?limit=20", "?limit=50", "?limit=20&trigger=all",
                      "?limit=50&trigger=rare"):
                ms, (n, scanned) = measure(b, q)
                print("%-26s %7.2f ms  (%d events, %d scanned)" % (q, ms, n, scanned))
    finally:
        sub.close()


if __name__ == "__main__":
    main()
