"""Integration test: events through the real `ringcast serve` into its ring, read back with
`ringcast tail`. Binary, structured and batch modes, every rejection of an invalid event,
all-or-nothing batches, stamping, a full ring (429) and its recovery, a SIGTERM under load after
which every acknowledged event is in the ring, and `tail` itself."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import BIN_DIR, Broker, Runner, check, eq, run_cli  # noqa: E402

HELPER_DIR = os.environ.get("RC_TEST_HELPER_DIR") or os.path.join(BIN_DIR, "../tests")
RING_HOLDER = os.path.join(HELPER_DIR, "ring_holder")

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  retryAfterSeconds: 2
  limits:
    maxEventBytes: 8Ki
    maxBatchBytes: 64Ki
    maxBatchEvents: 5
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: orders
  namespace: shop
"""

B = None


def binary_headers(id_, type_="order.placed", source="/shop", **extra):
    h = {"ce-specversion": "1.0", "ce-id": id_, "ce-type": type_, "ce-source": source,
         "Content-Type": "application/json"}
    h.update({(k.replace("_", "-", 1) if k.startswith("ce_") else k): v for k, v in extra.items()})
    return h


def post(path, headers, body, broker=None):
    return (broker or B).request("POST", path, headers, body)


def structured(**attrs):
    ev = {"specversion": "1.0", "id": "s-1", "source": "/s", "type": "t"}
    ev.update(attrs)
    return ev


def test_binary_accepted():
    r = post("/shop/orders", binary_headers("b-1", ce_subject="x"), b'{"total": 12.5}')
    eq(r.status, 202, "status")
    eq(r.body, b"", "empty body")
    r = post("/shop/orders", {"ce-specversion": "1.0", "ce-id": "b-2", "ce-type": "t",
                              "ce-source": "/s", "ce-subject": "h%C3%A9%20llo",
                              "ce-traceparent": "00-abc", "Content-Type": "text/plain"}, b"hi")
    eq(r.status, 202, "status 2")
    evs = B.tail("shop/orders")
    eq([e["id"] for e in evs], ["b-1", "b-2"], "stored in order")
    e = evs[0]
    eq(e["type"], "order.placed", "type")
    eq(e["data"], {"total": 12.5}, "data")
    eq(e["knativebrokerttl"], 255, "ttl stamped")
    check(e["knativearrivaltime"].endswith("Z") and "T" in e["knativearrivaltime"],
          e["knativearrivaltime"])
    eq(evs[1]["subject"], "h\u00e9 llo", "percent-decoded subject")
    eq(evs[1]["traceparent"], "00-abc", "unknown ce- header is an extension")
    eq(evs[1]["datacontenttype"], "text/plain", "content type")
    eq(evs[1]["data"], "hi", "text data")


def test_structured_accepted():
    ev = structured(id="s-10", datacontenttype="application/json", data={"a": [1, 2]},
                    knativebrokerttl=7, knativearrivaltime="2000-01-01T00:00:00Z")
    r = post("/default/default", {"Content-Type": "application/cloudevents+json"},
             json.dumps(ev))
    eq(r.status, 202, "status %r" % r.body)
    ev2 = structured(id="s-11", datacontenttype="application/octet-stream",
                     data_base64=base64.b64encode(b"\x00\x01\xff").decode())
    r = post("/default/default", {"Content-Type": "application/cloudevents+json; charset=utf-8"},
             json.dumps(ev2))
    eq(r.status, 202, "base64 %r" % r.body)
    got = {e["id"]: e for e in B.tail("default/default")}
    eq(got["s-10"]["data"], {"a": [1, 2]}, "json data")
    eq(got["s-10"]["knativebrokerttl"], 7, "ttl kept")
    check(got["s-10"]["knativearrivaltime"] != "2000-01-01T00:00:00Z", "arrival time replaced")
    eq(base64.b64decode(got["s-11"]["data_base64"]), b"\x00\x01\xff", "binary data")


def test_batch_all_or_nothing():
    before = len(B.tail("shop/orders"))
    batch = [structured(id="k-%d" % i, source="/batch") for i in range(3)]
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"},
             json.dumps(batch))
    eq(r.status, 202, "batch %r" % r.body)
    evs = B.tail("shop/orders")
    eq([e["id"] for e in evs[before:]], ["k-0", "k-1", "k-2"], "all three stored in order")
    bad = [structured(id="m-0"), structured(id=""), structured(id="m-2")]
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"},
             json.dumps(bad))
    eq(r.status, 400, "one invalid event rejects the batch")
    check(r.json()["error"].startswith("event 1: id"), r.json())
    eq(len(B.tail("shop/orders")), before + 3, "nothing of the bad batch stored")
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"},
             json.dumps([structured(id="n-%d" % i) for i in range(6)]))
    eq(r.status, 413, "more than maxBatchEvents")
    big = [structured(id="big-0"), structured(id="big-1", data="x" * 30000)]
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"},
             json.dumps(big))
    eq(r.status, 413, "one event of a batch over the event size")
    eq(r.json(), {"error": "event 1: larger than the maximum event size"}, "413 body")
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"}, "[]")
    eq(r.status, 202, "empty batch")
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"}, "{}")
    eq(r.status, 400, "batch not an array")
    eq(len(B.tail("shop/orders")), before + 3, "still nothing more")


def test_invalid_events():
    cases = [
        ({"ce-id": "1", "ce-type": "t", "ce-source": "/s"}, b"", "specversion"),
        (binary_headers("1", **{"ce-specversion": "0.3"}), b"", "specversion"),
        (binary_headers(""), b"", "id"),
        (binary_headers("1", source=""), b"", "source"),
        (binary_headers("1", source="a b"), b"", "source"),
        (binary_headers("1", type_=""), b"", "type"),
        (binary_headers("1", ce_time="yesterday"), b"", "time"),
        (binary_headers("1", ce_dataschema="not a uri"), b"", "dataschema"),
        (binary_headers("1", ce_subject=""), b"", "subject"),
        (binary_headers("1", **{"ce-subject": "%FF%FE"}), b"", "subject"),
        (binary_headers("1", **{"ce-subject": "%G1"}), b"", "subject"),
        (binary_headers("1", **{"ce-my_ext": "x"}), b"", "my_ext"),
        (binary_headers("1", **{"ce-averyveryverylongextensionname": "x"}), b"",
         "averyveryverylongextensionname"),
        (binary_headers("1", **{"ce-knativebrokerttl": "0"}), b"", "knativebrokerttl"),
        (binary_headers("1", **{"ce-knativebrokerttl": "many"}), b"", "knativebrokerttl"),
        (binary_headers("1", **{"Content-Type": "not a media type"}), b"x", "datacontenttype"),
    ]
    for headers, body, field in cases:
        r = post("/shop/orders", headers, body)
        eq(r.status, 400, "%s: %r" % (field, headers))
        msg = r.json()["error"]
        check(field in msg, "%r does not name %s" % (msg, field))
    # A duplicate ce- header (same attribute twice) is refused.
    c = B.conn()
    c.send("POST /shop/orders HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\n"
           "ce-id: 2\r\nce-type: t\r\nce-source: /s\r\nContent-Length: 0\r\n\r\n")
    r = c.response()
    eq(r.status, 400, "duplicate ce-id")
    check("id" in r.json()["error"], r.body)
    c.close()
    # Invalid UTF-8 in a raw header value.
    c = B.conn()
    c.send(b"POST /shop/orders HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\n"
           b"ce-type: t\xff\xfe\r\nce-source: /s\r\nContent-Length: 0\r\n\r\n")
    r = c.response()
    eq(r.status, 400, "invalid UTF-8 in ce-type")
    check("type" in r.json()["error"], r.body)
    c.close()
    structured_cases = [
        (b"{not json", None),
        (b"[]", None),
        (json.dumps(structured(data="x", data_base64="eA==")).encode(), "data"),
        (json.dumps(structured(specversion="2.0")).encode(), "specversion"),
        (json.dumps(structured(id=5)).encode(), "id"),
        (json.dumps({"specversion": "1.0", "id": "1", "type": "t"}).encode(), "source"),
        (b'{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}', "id"),
    ]
    for body, field in structured_cases:
        r = post("/shop/orders", {"Content-Type": "application/cloudevents+json"}, body)
        eq(r.status, 400, "structured %r" % body)
        if field:
            check(field in r.json()["error"], "%r does not name %s" % (r.body, field))
    r = post("/shop/orders", {"Content-Type": "application/cloudevents+xml"}, "<e/>")
    eq(r.status, 415, "xml event format")
    r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+avro"}, "x")
    eq(r.status, 415, "avro batch format")
    m = B.metrics()
    check(m['ringcast_ingress_rejected_total{reason="invalid_event"}'] >= 25, "400s counted")
    check(m['ringcast_ingress_rejected_total{reason="unsupported_media_type"}'] >= 2,
          "415s counted")


def test_http_features_with_events():
    # Pipelined events, answered in order.
    c = B.conn()
    raw = b""
    for i in range(3):
        raw += (b"POST /default/default HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\n"
                b"ce-id: p-%d\r\nce-type: t\r\nce-source: /p\r\nContent-Length: 2\r\n\r\n{}" % i)
    raw += b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    c.send(raw)
    eq([c.response().status for _ in range(4)], [202, 202, 202, 400], "pipelined")
    # Chunked body and 100-continue.
    c.send(b"POST /default/default HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: ch-1\r\n"
           b"ce-type: t\r\nce-source: /c\r\nContent-Type: text/plain\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    eq(c.response().status, 202, "chunked")
    c.send(b"POST /default/default HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: co-1\r\n"
           b"ce-type: t\r\nce-source: /c\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\n"
           b"Content-Length: 3\r\n\r\n")
    eq(c.response().status, 100, "100 Continue")
    c.send(b"abc")
    eq(c.response().status, 202, "after 100")
    c.close()
    got = {e["id"]: e for e in B.tail("default/default")}
    for i in range(3):
        check("p-%d" % i in got, "pipelined event p-%d stored" % i)
    eq(got["ch-1"]["data"], "hello world", "chunked data")
    eq(got["co-1"]["data"], "abc", "100-continue data")


def test_send_and_tail_commands():
    url = "http://127.0.0.1:%d/shop/orders" % B.port
    rc, out, err = run_cli(["send", url, "--type", "payment.processed", "--source", "/pay",
                            "--id", "cli-1", "--data", '{"ok": true}'])
    eq((rc, out), (0, "202 Accepted\nid: cli-1\n"), "send binary: " + err)
    rc, out, err = run_cli(["send", url, "--type", "payment.processed", "--source", "/pay",
                            "--id", "cli-2", "--mode", "structured", "--data", "[1]"])
    eq(rc, 0, "send structured: " + err)
    rc, out, err = run_cli(["send", url, "--type", "", "--source", "/pay"])
    eq(rc, 1, "invalid event exit code")
    check(out.startswith("400 Bad Request\n") and "type" in out, out)
    evs = B.tail("shop/orders")
    eq([e["id"] for e in evs[-2:]], ["cli-1", "cli-2"], "send events in the ring")
    eq(evs[-1]["data"], [1], "structured data")
    # --count, --from latest, --format binary.
    eq(len(B.tail("shop/orders", "--count", "2")), 2, "--count")
    eq(B.tail("shop/orders", "--from", "latest"), [], "--from latest sees nothing old")
    rc, out, err = run_cli(["tail", "shop/orders", "--ring-prefix", B.prefix, "--count", "1",
                            "--format", "binary", "--timeout", "1s"])
    eq(rc, 0, "binary tail")
    check(out.startswith("ce-specversion: 1.0\nce-id: b-1\n"), out)
    check("\n\n{\"total\": 12.5}\n" in out, out)
    # A follower sees an event posted after it started.
    p = subprocess.Popen([os.path.join(BIN_DIR, "ringcast"), "tail", "default/default",
                          "--ring-prefix", B.prefix, "--from", "latest", "--count", "1",
                          "--timeout", "5s"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    eq(post("/default/default", binary_headers("live-1"), b"{}").status, 202, "post")
    out, _ = p.communicate(timeout=10)
    eq(json.loads(out)["id"], "live-1", "follower")
    eq(p.returncode, 0, "follower exit")
    # Errors.
    rc, out, err = run_cli(["tail", "shop/nope", "--ring-prefix", B.prefix])
    eq(rc, 1, "missing ring")
    check("no ring for broker shop/nope" in err, err)
    for args in (["nodash"], ["a/b", "--from", "middle"], ["a/b", "--format", "xml"],
                 ["a/b", "--count", "0"], ["a/b/c"], []):
        rc, out, err = run_cli(["tail"] + args)
        eq(rc, 2, "bad usage %r" % args)
    rc, out, err = run_cli(["tail", "--help"])
    eq(rc, 0, "--help")
    check("usage: ringcast tail" in out and "Exit codes" in out, out)


def test_tail_group():
    """Two `tail --group` members share a broker's events: each exactly once."""
    def member():
        return subprocess.Popen([os.path.join(BIN_DIR, "ringcast"), "tail", "shop/orders",
                                 "--ring-prefix", B.prefix, "--group", "billing", "--from",
                                 "latest", "--timeout", "2s"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    procs = [member(), member()]
    time.sleep(0.5)
    ids = ["grp-%d" % i for i in range(40)]
    c = B.conn()
    for id_ in ids:
        c.send_request("POST", "/shop/orders", binary_headers(id_), b"{}")
        eq(c.response().status, 202, "post " + id_)
    got = []
    for p in procs:
        out, err = p.communicate(timeout=20)
        eq(p.returncode, 0, "group member exit: " + err)
        got += [json.loads(line)["id"] for line in out.splitlines() if line]
    eq(sorted(got), sorted(ids), "each event to exactly one member")
    for args in (["--group", "bad name"], ["--group", ""], ["--group", "x" * 32]):
        rc, out, err = run_cli(["tail", "shop/orders", "--ring-prefix", B.prefix] + args)
        eq(rc, 2, "bad usage %r" % args)
        check("--group" in err, err)


def test_ring_full_and_recovery():
    cfg = CONFIG.replace("  retryAfterSeconds: 2\n", "  retryAfterSeconds: 2\n  ring:\n"
                         "    size: 64Ki\n").replace("64Ki\n    maxBatchEvents", "12Ki\n"
                                                 "    maxHeaderBytes: 4Ki\n    maxBatchEvents")
    with Broker(cfg) as b:
        holder = subprocess.Popen([RING_HOLDER, b.ring_name("shop", "orders")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            eq(holder.stdout.readline().strip(), "ready", "lossless reader attached")
            body = b"x" * 2000
            accepted, status = 0, None
            c = b.conn()
            for i in range(200):
                c.send_request("POST", "/shop/orders",
                               binary_headers("f-%d" % i, **{"Content-Type": "text/plain"}),
                               body)
                r = c.response()
                if r.status != 202:
                    status = r
                    break
                accepted += 1
            check(status is not None, "ring never filled")
            eq(status.status, 429, "full ring")
            eq(status.header("Retry-After"), "2", "Retry-After")
            check("full" in status.json()["error"], status.body)
            check(20 <= accepted <= 40, "accepted %d events of 2 KB in a 64 KiB ring" % accepted)
            # A batch that does not fit is refused whole.
            r = post("/shop/orders", {"Content-Type": "application/cloudevents-batch+json"},
                     json.dumps([structured(id="fb-%d" % i) for i in range(3)]), broker=b)
            eq(r.status, 429, "batch on a full ring")
            m = b.metrics()
            check(m['ringcast_ingress_rejected_total{reason="ring_full"}'] >= 2, "429 counted")
            check(m['ringcast_ring_used_bytes{namespace="shop",broker="orders"}'] > 60000,
                  "ring fill gauge")
            eq(m['ringcast_ring_readers{namespace="shop",broker="orders",mode="lossless"}'], 1,
               "the holder is a lossless reader")
            eq(m['ringcast_ring_events_total{namespace="shop",broker="orders"}'], accepted,
               "events committed")
            # The reader catches up: events are accepted again.
            holder.stdin.write("drain\n")
            holder.stdin.flush()
            eq(holder.stdout.readline().strip(), "drained %d" % accepted, "reader got them all")
            c.send_request("POST", "/shop/orders", binary_headers("after-1"), b"{}")
            eq(c.response().status, 202, "accepted after recovery")
            c.close()
            # Nothing refused was stored: the lossless reader got exactly the accepted events
            # (above); a lossy tail sees the newest of them (after-1 may have reused the space
            # of the oldest) in order, without gaps.
            ids = [e["id"] for e in b.tail("shop/orders")]
            eq(ids[-1], "after-1", "newest event")
            first = int(ids[0].split("-")[1])
            check(first <= 2, "tail starts at f-%d" % first)
            eq(ids[:-1], ["f-%d" % i for i in range(first, accepted)], "ring contents")
        finally:
            holder.stdin.close()
            holder.wait(10)


def test_sigterm_under_load():
    cfg = CONFIG.replace("  retryAfterSeconds: 2\n", "  retryAfterSeconds: 2\n"
                         "  shutdownTimeout: 2s\n  ring:\n    size: 16Mi\n")
    with Broker(cfg, args=["--loops", "2"]) as b:
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def producer(n):
            i = 0
            while not stop.is_set():
                try:
                    c = b.conn()
                except OSError:
                    return  # the listener is closed
                try:
                    while not stop.is_set():
                        id_ = "load-%d-%d" % (n, i)
                        i += 1
                        c.send_request("POST", "/default/default", binary_headers(id_), b"{}")
                        r = c.response()
                        if r.status == 202:
                            with lock:
                                acked.append(id_)
                        if r.header("Connection") == "close":
                            break
                except (OSError, EOFError):
                    pass
                finally:
                    c.close()

        threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        b.signal(signal.SIGTERM)
        eq(b.wait(10), 0, "clean exit under load")
        stop.set()
        for t in threads:
            t.join(10)
        check(len(acked) >= 200, "only %d events acknowledged" % len(acked))
        # The ring outlives the broker: every acknowledged event is in it.
        stored = {e["id"] for e in b.tail("default/default", timeout="1s")}
        missing = [i for i in acked if i not in stored]
        eq(missing, [], "acknowledged events missing from the ring")


def test_restart_keeps_ring():
    with Broker(CONFIG) as b:
        eq(post("/shop/orders", binary_headers("keep-1"), b"{}", broker=b).status, 202, "post")
        eq(b.stop(), 0, "stop")
        prefix = b.prefix
        # A new broker with the same ring prefix attaches to the same ring.
        b2 = Broker(CONFIG, args=["--ring-prefix", prefix])
        b2.prefix = prefix
        try:
            eq(post("/shop/orders", binary_headers("keep-2"), b"{}", broker=b2).status, 202, "")
            eq([e["id"] for e in b2.tail("shop/orders")], ["keep-1", "keep-2"], "kept")
        finally:
            b2.stop()
            b2.proc.stdout.close()
            b2.stderr.close()
            b2.tmp.cleanup()


def main():
    global B
    with Broker(CONFIG) as b:
        B = b
        Runner().run([test_binary_accepted, test_structured_accepted, test_batch_all_or_nothing,
                      test_invalid_events, test_http_features_with_events,
                      test_send_and_tail_commands, test_tail_group])
        eq(b.stop(), 0, "shared broker stops cleanly")
    Runner().run([test_ring_full_and_recovery, test_sigterm_under_load, test_restart_keeps_ring])


if __name__ == "__main__":
    main()
