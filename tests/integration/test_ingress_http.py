"""Integration test: the real `ringcast serve` binary over real HTTP on loopback. HTTP-level
behaviour of the ingress and the admin listener: routing, methods, limits, timeouts, malformed
requests, keep-alive and pipelining, the connection cap, config errors, graceful shutdown."""

import glob
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq, run_cli  # noqa: E402

SETTINGS = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  shutdownTimeout: 3s
  limits:
    maxEventBytes: 4Ki
    maxBatchBytes: 16Ki
    maxHeaderBytes: 2Ki
    maxConnections: 8
    headerTimeout: 400ms
    bodyTimeout: 400ms
    idleTimeout: 2s
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: orders
  namespace: shop
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
"""

B = None  # the shared broker for the tests that do not stop it


def test_options():
    r = B.request("OPTIONS", "/shop/orders")
    eq(r.status, 200, "status")
    eq(r.header("Allow"), "POST, OPTIONS", "Allow")
    eq(r.header("WebHook-Allowed-Origin"), "*", "origin")
    eq(r.header("WebHook-Allowed-Rate"), "*", "rate")
    eq(r.body, b"", "body")


def test_not_found():
    r = B.request("POST", "/shop/missing", {"Content-Type": "text/plain"}, "x")
    eq(r.status, 404, "unknown broker")
    eq(r.json(), {"error": "no broker 'shop/missing'"}, "body")
    eq(r.header("Content-Type"), "application/json", "content type")
    r = B.request("POST", "/default/orders", body="x")
    eq(r.status, 404, "broker in another namespace")
    for path in ["/", "/shop", "/shop/", "//orders", "/shop/orders/", "/shop/orders/x",
                 "/shop//orders", "http://h/shop/orders", "*"]:
        r = B.request("POST", path, body="x")
        eq(r.status, 404, path)
        eq(r.json(), {"error": "path must be /{namespace}/{broker}"}, path)


def test_method_not_allowed():
    for m in ["GET", "PUT", "DELETE", "PATCH", "HEAD"]:
        c = B.conn()
        c.send_request(m, "/shop/orders")
        r = c.response(head_only=(m == "HEAD"))
        eq(r.status, 405, m)
        eq(r.header("Allow"), "POST, OPTIONS", m)
        if m != "HEAD":
            eq(r.json(), {"error": "method %s not allowed; use POST" % m}, m)
        c.close()


def test_too_large():
    big = b"x" * 5000
    r = B.request("POST", "/shop/orders", {"Content-Type": "application/json"}, big)
    eq(r.status, 413, "binary over maxEventBytes")
    eq(r.json(), {"error": "body of 5000 bytes exceeds the maximum of 4096 bytes"}, "413 body")
    # A batch may be larger than one event, up to maxBatchBytes.
    r = B.request("POST", "/shop/orders", {"Content-Type": "application/cloudevents-batch+json"},
                  b"x" * 20000)
    eq(r.status, 413, "batch over maxBatchBytes")
    # Chunked bodies are counted as they arrive.
    c = B.conn()
    c.send("POST /shop/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           "Content-Type: text/plain\r\n\r\n")
    try:
        for _ in range(3):
            c.send("800\r\n" + "y" * 0x800 + "\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    eq(c.response().status, 413, "chunked over maxEventBytes")
    c.close()
    # With Expect: 100-continue the client learns it before sending the body.
    c = B.conn()
    c.send("POST /shop/orders HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
           "Content-Length: 100000\r\n\r\n")
    r = c.response()
    eq(r.status, 413, "100-continue over the limit")
    eq(r.header("Connection"), "close", "closes")
    check(c.closed_by_peer(), "connection closed")
    c.close()


def test_headers_too_large():
    r = B.request("POST", "/shop/orders", {"X-Big": "h" * 3000}, "x")
    eq(r.status, 431, "one huge header")
    eq(r.json(), {"error": "request headers too large"}, "431 body")
    hs = {"X-H%d" % i: "v" for i in range(120)}
    r = B.request("POST", "/shop/orders", hs, "x")
    eq(r.status, 431, "too many headers")
    r = B.request("POST", "/shop/" + "o" * 3000, body="x")
    eq(r.status, 414, "long target")


def test_malformed_http():
    cases = [
        b"POST /shop/orders HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /shop/orders HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
        b"POST /shop/orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"G@T /shop/orders HTTP/1.1\r\n\r\n",
        b"POST /shop/orders HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\x03 garbage\r\n\r\n",
        b"POST /shop/orders HTTP/1.1\r\nX-A\x01: b\r\n\r\n",
    ]
    for raw in cases:
        c = B.conn()
        c.send(raw)
        r = c.response()
        eq(r.status, 400, repr(raw))
        check(r.json()["error"].startswith("malformed HTTP request: "), r.body)
        eq(r.header("Connection"), "close", "closes")
        check(c.closed_by_peer(), "closed after 400")
        c.close()


def test_keepalive_pipelining():
    c = B.conn()
    for _ in range(3):
        c.send_request("OPTIONS", "/shop/orders")
        eq(c.response().status, 200, "keep-alive")
    # Five requests in one write: answers come back in order.
    raw = b""
    for path in ["/shop/orders", "/nope/x", "/default/default", "/a", "/shop/orders"]:
        raw += ("OPTIONS %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
    c.send(raw)
    got = [c.response().status for _ in range(5)]
    eq(got, [200, 404, 200, 404, 200], "pipelined statuses")
    # HTTP/1.0 closes unless asked to keep alive.
    c.send_request("OPTIONS", "/shop/orders", version="HTTP/1.0")
    r = c.response()
    eq(r.status, 200, "HTTP/1.0")
    eq(r.header("Connection"), "close", "HTTP/1.0 closes")
    check(c.closed_by_peer(), "closed after HTTP/1.0")
    c.close()
    c = B.conn()
    c.send_request("OPTIONS", "/shop/orders", {"Connection": "keep-alive"}, version="HTTP/1.0")
    eq(c.response().header("Connection"), "keep-alive", "HTTP/1.0 keep-alive")
    c.send_request("OPTIONS", "/shop/orders", {"Connection": "close"})
    eq(c.response().header("Connection"), "close", "Connection: close honoured")
    check(c.closed_by_peer(), "closed after Connection: close")
    c.close()


def test_slowloris():
    # Headers trickling in: closed with 408 at headerTimeout (400 ms), not kept open.
    c = B.conn()
    c.send("POST /shop/orders HTTP/1.1\r\n")
    start = time.monotonic()
    status = None
    try:
        for i in range(60):
            c.send("X-Slow-%d: y\r\n" % i)
            c.sock.settimeout(0.05)
            try:
                c._fill()
                break
            except socket.timeout:
                pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    c.sock.settimeout(5)
    status = c.response().status
    took = time.monotonic() - start
    eq(status, 408, "slow headers")
    check(took < 3.0, "closed after %.2fs" % took)
    check(c.closed_by_peer(), "closed")
    c.close()
    # A body that never completes.
    c = B.conn()
    c.send("POST /shop/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    r = c.response()
    eq(r.status, 408, "slow body")
    eq(r.json(), {"error": "timed out reading request body"}, "408 body")
    c.close()
    # A connection that never sends anything is closed without a response.
    c = B.conn()
    check(c.closed_by_peer(3.0), "silent connection closed")
    eq(c.buf, b"", "no bytes")
    c.close()


def test_connection_cap():
    conns = []
    try:
        for _ in range(8):
            c = B.conn()
            c.send_request("OPTIONS", "/shop/orders")
            eq(c.response().status, 200, "within the cap")
            conns.append(c)
        extra = B.conn()
        r = extra.response()
        eq(r.status, 503, "over the cap")
        eq(r.json(), {"error": "too many connections"}, "503 body")
        extra.close()
    finally:
        for c in conns:
            c.close()
    # The server sees the closes a moment later; a new connection gets in again.
    deadline = time.monotonic() + 5
    while B.request("OPTIONS", "/shop/orders").status != 200:
        check(time.monotonic() < deadline, "no room after closing connections")
        time.sleep(0.05)


def test_admin():
    r = B.request("GET", "/healthz", admin=True)
    eq((r.status, r.body), (200, b"ok\n"), "healthz")
    r = B.request("GET", "/readyz", admin=True)
    eq((r.status, r.body), (200, b"ready\n"), "readyz")
    r = B.request("GET", "/nope", admin=True)
    eq(r.status, 404, "unknown admin path")
    r = B.request("POST", "/metrics", admin=True, body="x")
    eq(r.status, 405, "admin POST")
    r = B.request("GET", "/metrics", admin=True)
    eq(r.status, 200, "metrics")
    check(r.header("Content-Type").startswith("text/plain; version=0.0.4"), "metrics type")
    m = B.metrics()
    check(m['ringcast_ingress_rejected_total{reason="not_found"}'] >= 10, "404s counted")
    check(m['ringcast_ingress_rejected_total{reason="method_not_allowed"}'] >= 5, "405s counted")
    check(m['ringcast_ingress_rejected_total{reason="malformed_http"}'] >= 7, "400s counted")
    check(m['ringcast_ingress_rejected_total{reason="timeout"}'] >= 2, "408s counted")
    check(m['ringcast_ingress_rejected_total{reason="too_large"}'] >= 4, "413s counted")
    check(m['ringcast_ingress_rejected_total{reason="headers_too_large"}'] >= 3, "431s counted")
    check(m['ringcast_ingress_rejected_total{reason="unavailable"}'] >= 1, "503 counted")
    check(m["ringcast_ingress_connections_total"] >= 30, "connections counted")
    eq(m['ringcast_ring_capacity_bytes{namespace="shop",broker="orders"}'], 16 * 1024 * 1024,
       "ring capacity gauge")
    check('ringcast_ingest_latency_seconds_bucket{le="+Inf"}' in m, "latency histogram")


def test_graceful_shutdown():
    with Broker(SETTINGS) as b:
        idle = b.conn()
        idle.send_request("OPTIONS", "/shop/orders")
        eq(idle.response().status, 200, "before")
        busy = b.conn()
        busy.send("OPTIONS /shop/orders HTTP/1.1\r\nHost: x\r\nX-Partial: ")
        time.sleep(0.05)
        b.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while b.request("GET", "/readyz", admin=True).status != 503:
            check(time.monotonic() < deadline, "readyz never turned 503")
            time.sleep(0.02)
        # The listeners close (on the ingress threads, a moment after /readyz turns 503): new
        # connections are refused. One accepted in between gets 503 for its request.
        while True:
            try:
                c = socket.create_connection((b.host, b.port), timeout=1)
            except ConnectionRefusedError:
                break
            c.sendall(b"OPTIONS /shop/orders HTTP/1.1\r\nHost: x\r\n\r\n")
            c.settimeout(5)
            try:
                head = c.recv(12)
            except ConnectionResetError:
                # Still in the kernel's accept queue when the listener closed: never accepted
                # by the broker, so the kernel resets it. That is the listener closing.
                c.close()
                break
            eq(head, b"HTTP/1.1 503", "request on a connection accepted while stopping")
            c.close()
            check(time.monotonic() < deadline, "ingress still accepts connections while stopping")
            time.sleep(0.01)
        # The request in flight is finished and answered, with Connection: close.
        busy.send("1\r\n\r\n")
        r = busy.response()
        eq(r.status, 200, "in-flight request")
        eq(r.header("Connection"), "close", "in-flight closes")
        # A new request on a kept-alive connection gets 503.
        idle.send_request("OPTIONS", "/shop/orders")
        r = idle.response()
        eq(r.status, 503, "new request while stopping")
        eq(r.json(), {"error": "server is shutting down"}, "503 body")
        idle.close()
        busy.close()
        eq(b.wait(10), 0, "exit code after SIGTERM")
        check("SIGTERM: stopping" in b.log(), b.log())
        check("stopped" in b.log(), b.log())


def test_sigint_idle_exit():
    with Broker() as b:
        b.signal(signal.SIGINT)
        eq(b.wait(10), 0, "exit code after SIGINT")


def test_config_errors():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bad.yaml")
        cases = [
            ("apiVersion: v1\nkind: Pod\n",
             "unknown kind 'Pod' (known: Broker and Trigger in eventing.knative.dev/v1, "
             "Service in v1, "
             "RingcastConfig and DaprApp in ringcast.dev/v1alpha1, Component in "
             "dapr.io/v1alpha1, Subscription in dapr.io/v2alpha1 or v1alpha1)", 2),
            ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: a\n"
             "spec:\n  deliver: {}\n", "unknown field 'spec.deliver'", 6),
            ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
             "  listen: nowhere\n", "'spec.listen' must be IP:PORT such as 127.0.0.1:8080 or "
             "[::1]:8080, not 'nowhere'", 4),
            ("a: b: c\n", "YAML syntax error: mapping values are not allowed in this context", 1),
        ]
        for text, msg, line in cases:
            with open(path, "w") as f:
                f.write(text)
            rc, out, err = run_cli(["serve", "--config", path, "--listen", "127.0.0.1:0",
                                    "--admin", "127.0.0.1:0"])
            eq(rc, 2, "exit code for " + msg)
            eq(err.strip(), "ringcast serve: %s:%d: %s" % (path, line, msg), "message")
            eq(out, "", "nothing started")
        rc, out, err = run_cli(["serve", "--config", os.path.join(d, "missing.yaml")])
        eq(rc, 2, "missing file")
        check("missing.yaml: cannot open: No such file or directory" in err, err)


def test_cli_usage():
    rc, out, err = run_cli(["serve", "--help"])
    eq(rc, 0, "--help")
    check("usage: ringcast serve" in out and "Exit codes" in out, out)
    rc, out, err = run_cli(["serve", "--bogus"])
    eq(rc, 2, "unknown option")
    rc, out, err = run_cli(["serve", "--listen", "localhost:1"])
    eq(rc, 2, "bad --listen")
    check("--listen must be IP:PORT" in err, err)
    rc, out, err = run_cli(["serve", "--loops", "0"])
    eq(rc, 2, "bad --loops")


def test_port_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        prefix = "rcit%dport" % os.getpid()
        rc, out, err = run_cli(["serve", "--listen", "127.0.0.1:%d" % port, "--admin",
                                "127.0.0.1:0", "--ring-prefix", prefix])
        for p in glob.glob("/dev/shm/%s.*" % prefix):
            os.unlink(p)
        eq(rc, 1, "exit code when the port is taken")
        check("cannot listen on 127.0.0.1:%d: Address already in use" % port in err, err)
    finally:
        s.close()


def test_port_owned_by_another_broker():
    # SO_REUSEPORT must not let a second broker share (and split) a port in use.
    with Broker(SETTINGS, args=["--loops", "2"]) as b:
        prefix = "rcit%dsecond" % os.getpid()
        rc, out, err = run_cli(["serve", "--listen", "127.0.0.1:%d" % b.port, "--admin",
                                "127.0.0.1:0", "--ring-prefix", prefix])
        for p in glob.glob("/dev/shm/%s.*" % prefix):
            os.unlink(p)
        eq(rc, 1, "second broker on the same port")
        check("Address already in use" in err, err)
        eq(b.request("OPTIONS", "/shop/orders").status, 200, "first broker unaffected")


def test_ipv6():
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        print("     (no IPv6 loopback here; test_ipv6 checks nothing)")
        return
    with Broker(SETTINGS, listen="[::1]:0", admin="[::1]:0") as b:
        eq(b.host, "::1", "host in the ready line")
        eq(b.request("OPTIONS", "/shop/orders").status, 200, "ingress over IPv6")
        eq(b.request("GET", "/healthz", admin=True).status, 200, "admin over IPv6")


def test_reuseport_loops():
    with Broker(SETTINGS, args=["--loops", "3"]) as b:
        conns = []
        for _ in range(8):
            c = b.conn()
            c.send_request("OPTIONS", "/shop/orders")
            eq(c.response().status, 200, "served by some loop")
            conns.append(c)
        extra = b.conn()
        eq(extra.response().status, 503, "the connection cap spans all loops")
        extra.close()
        for c in conns:
            c.close()
        eq(b.stop(), 0, "clean stop with 3 loops")


def main():
    global B
    with Broker(SETTINGS) as b:
        B = b
        Runner().run([
            test_options, test_not_found, test_method_not_allowed, test_too_large,
            test_headers_too_large, test_malformed_http, test_keepalive_pipelining,
            test_slowloris, test_connection_cap, test_admin,
        ])
        eq(b.stop(), 0, "shared broker stops cleanly")
    Runner().run([test_graceful_shutdown, test_sigint_idle_exit, test_config_errors,
                  test_cli_usage, test_port_in_use, test_port_owned_by_another_broker,
                  test_ipv6, test_reuseport_loops])


if __name__ == "__main__":
    main()
