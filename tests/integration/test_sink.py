"""Integration tests of `ringcast sink` (real process, real HTTP on loopback): what it logs and
writes to --out for binary, structured and batch requests, /healthz, invalid events and
malformed HTTP, each answer mode (status, fail-first, delay, reply, hang, reset, garbage),
--count, signals, usage errors; and `ringcast send --every/--types/--count` against it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import RINGCAST, Conn, Runner, check, eq, run_cli  # noqa: E402
from rc_sink import Sink  # noqa: E402


def post(sink, headers, body=b"", path="/"):
    c = Conn(sink.host, sink.port)
    try:
        c.send_request("POST", path, headers, body)
        return c.response()
    finally:
        c.close()


def binary_headers(id_="e-1", type_="user.created", **extra):
    h = {"ce-specversion": "1.0", "ce-id": id_, "ce-source": "/test", "ce-type": type_}
    h.update(extra)
    return h


def test_binary_event():
    with Sink() as s:
        r = post(s, binary_headers(**{"ce-subject": "caf%C3%A9 1", "ce-traceid": "t-7",
                                      "Content-Type": "application/json"}), b'{"user": "ana"}')
        eq(r.status, 200, "status")
        eq(r.body, b"", "body")
        ev = s.wait_events(1)
        eq(len(ev), 1, "events in --out")
        eq(ev[0]["id"], "e-1", "id")
        eq(ev[0]["type"], "user.created", "type")
        eq(ev[0]["subject"], "caf\u00e9 1", "percent-decoded subject")
        eq(ev[0]["traceid"], "t-7", "extension")
        eq(ev[0]["data"], {"user": "ana"}, "data")
        lines = s.log_lines()
        eq(len(lines), 1, "log lines")
        for part in ("type=user.created", "source=/test", "id=e-1", "mode=binary",
                     "traceid=t-7", 'data(15 B)={"user": "ana"}', "-> 200"):
            check(part in lines[0], "%r not in %r" % (part, lines[0]))


def test_structured_and_batch():
    with Sink() as s:
        one = {"specversion": "1.0", "id": "s-1", "source": "/t", "type": "order.placed",
               "datacontenttype": "text/plain", "data": "hello\nworld"}
        r = post(s, {"Content-Type": "application/cloudevents+json"}, json.dumps(one))
        eq(r.status, 200, "structured status")
        batch = [dict(one, id="b-1", type="a"), dict(one, id="b-2", type="b", data=None)]
        del batch[1]["data"]
        r = post(s, {"Content-Type": "application/cloudevents-batch+json"}, json.dumps(batch))
        eq(r.status, 200, "batch status")
        ev = s.wait_events(3)
        eq([e["id"] for e in ev], ["s-1", "b-1", "b-2"], "ids in order")
        eq(ev[0]["data"], "hello\nworld", "text data with a newline stays one line")
        check("data" not in ev[2], "event without data")
        lines = s.log_lines()
        eq(len(lines), 3, "one log line per event")
        check("mode=structured" in lines[0] and "hello\\x0aworld" in lines[0], lines[0])
        check("mode=batch" in lines[1] and "data=none" in lines[2], lines[2])


def test_healthz_and_methods():
    with Sink() as s:
        c = Conn(s.host, s.port)
        c.send_request("GET", "/healthz")
        r = c.response()
        eq((r.status, r.body), (200, b"ok\n"), "healthz")
        c.send_request("HEAD", "/healthz")
        eq(c.response(head_only=True).status, 200, "HEAD healthz on the same connection")
        c.send_request("GET", "/health")
        r = c.response()
        eq((r.status, r.body), (200, b"ok\n"), "health (the seed consumer's probe path)")
        c.send_request("HEAD", "/health")
        eq(c.response(head_only=True).status, 200, "HEAD health")
        c.send_request("GET", "/healthy")
        eq(c.response().status, 404, "a path that only starts like /health")
        c.send_request("GET", "/other")
        eq(c.response().status, 404, "other GET path")
        c.send_request("DELETE", "/")
        r = c.response()
        eq(r.status, 405, "DELETE")
        eq(r.header("Allow"), "GET, POST", "Allow")
        c.close()
        eq(s.log_lines(), [], "no events logged")


def test_invalid_events():
    with Sink() as s:
        r = post(s, {"ce-id": "x", "ce-source": "/t", "ce-type": "t"})
        eq(r.status, 400, "missing specversion")
        check("specversion" in r.json()["error"], r.body)
        r = post(s, binary_headers(**{"ce-source": ""}))
        eq(r.status, 400, "empty source")
        check("source" in r.json()["error"], r.body)
        r = post(s, {"Content-Type": "application/cloudevents+json"}, b"{not json")
        eq(r.status, 400, "bad JSON")
        r = post(s, {"Content-Type": "application/cloudevents+xml"}, b"<e/>")
        eq(r.status, 415, "xml format")
        r = post(s, binary_headers(**{"ce-subject": "%zz"}))
        eq(r.status, 400, "bad percent-encoding")
        eq(s.events(), [], "nothing written to --out")
        eq(len(s.log_lines("invalid")), 5, "invalid requests logged")
        eq(post(s, binary_headers()).status, 200, "still serving")


def test_malformed_http():
    with Sink() as s:
        c = Conn(s.host, s.port)
        c.send(b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
        r = c.response()
        eq(r.status, 400, "bad Content-Length")
        check(c.closed_by_peer(), "connection closed")
        c.close()
        c = Conn(s.host, s.port)
        c.send(b"\x00\x01garbage\r\n\r\n")
        eq(c.response().status, 400, "garbage request line")
        c.close()
        eq(len(s.log_lines("rejected")), 2, "rejections logged: %r" % s.log())
        eq(post(s, binary_headers()).status, 200, "still serving")


def test_status():
    with Sink("--status", "503") as s:
        for i in range(2):
            r = post(s, binary_headers("f-%d" % i))
            eq(r.status, 503, "failing status")
            check("error" in r.json(), r.body)
        ev = s.wait_events(2)
        eq(len(ev), 2, "failed events are still logged")
        check(all(l.endswith("-> 503") for l in s.log_lines()), s.log())
    with Sink("--status", "202") as s:
        eq(post(s, binary_headers()).status, 202, "2xx status is the normal answer")


def test_status_304_has_no_body():
    """A 304 answer carries no body (RFC 9110 15.4.5): two on one keep-alive connection parse
    cleanly; other failing codes keep their JSON error body."""
    with Sink("--status", "304") as s:
        c = Conn(s.host, s.port)
        try:
            for i in range(2):
                c.send_request("POST", "/", binary_headers("n-%d" % i), b"")
                r = c.response()
                eq((r.status, r.body), (304, b""), "304 without a body")
                check(r.header("Content-Length") in (None, "0"), "Content-Length %r"
                      % r.header("Content-Length"))
        finally:
            c.close()
    with Sink("--status", "307") as s:
        r = post(s, binary_headers())
        eq(r.status, 307, "307")
        check("error" in r.json(), r.body)


def test_fail_first():
    with Sink("--fail-first", "2") as s:
        got = [post(s, binary_headers("ff-%d" % i)).status for i in range(4)]
        eq(got, [500, 500, 200, 200], "default failure 500 for the first 2")
    with Sink("--fail-first", "1", "--status", "429") as s:
        got = [post(s, binary_headers("ff-%d" % i)).status for i in range(3)]
        eq(got, [429, 200, 200], "--status 429 for the first request")


def test_delay():
    with Sink("--delay", "300") as s:
        t0 = time.monotonic()
        eq(post(s, binary_headers()).status, 200, "status")
        check(time.monotonic() - t0 >= 0.29, "answered after the delay")
    with Sink("--delay", "1000", "--status", "503") as s:
        # Answers are held, not queued: four connections wait at the same time.
        conns = [Conn(s.host, s.port) for _ in range(4)]
        t0 = time.monotonic()
        for i, c in enumerate(conns):
            c.send_request("POST", "/", binary_headers("d-%d" % i))
        eq([c.response().status for c in conns], [503] * 4, "delayed failures")
        elapsed = time.monotonic() - t0
        check(0.95 <= elapsed < 3.0, "held concurrently, not one after another (%.2fs)" % elapsed)
        for c in conns:
            c.close()
    with Sink("--delay", "200", "--reply-type", "r.t") as s:
        # Pipelined requests behind a held one wait and are answered in order.
        c = Conn(s.host, s.port)
        reqs = b""
        for i in range(3):
            body = b'{"i": %d}' % i
            reqs += (b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: p-%d\r\n"
                     b"ce-source: /t\r\nce-type: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (i, len(body)) + body)
        reqs += b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        c.send(reqs)
        rs = [c.response() for _ in range(4)]
        eq([r.status for r in rs], [200] * 4, "statuses")
        eq([r.header("ce-inreplyto") for r in rs[:3]], ["p-0", "p-1", "p-2"], "in order")
        eq([r.body for r in rs], [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}', b"ok\n"], "bodies")
        c.close()
    with Sink("--delay", "60000") as s:
        # A stop answers delayed requests at once.
        c = Conn(s.host, s.port)
        c.send_request("POST", "/", binary_headers())
        s.wait_events(1, timeout=5)
        t0 = time.monotonic()
        eq(s.stop(), 0, "exit code")
        check(time.monotonic() - t0 < 5, "stopped during the delay")
        r = c.response()
        eq((r.status, r.header("Connection")), (200, "close"), "answered at the stop")
        c.close()


def test_reply():
    with Sink("--reply-type", "user.welcomed") as s:
        r = post(s, binary_headers("orig-1", **{"Content-Type": "application/json",
                                                "ce-knativebrokerttl": "7"}), b'{"n": 1}')
        eq(r.status, 200, "status")
        eq(r.header("ce-type"), "user.welcomed", "reply type")
        eq(r.header("ce-specversion"), "1.0", "specversion")
        eq(r.header("ce-source"), "/ringcast/sink/127.0.0.1:%d" % s.port, "reply source")
        eq(r.header("ce-inreplyto"), "orig-1", "inreplyto")
        check(r.header("ce-id") not in (None, "orig-1"), "new id")
        eq(r.header("ce-knativebrokerttl"), None, "no TTL in the reply")
        eq(r.header("Content-Type"), "application/json", "content type")
        eq(r.body, b'{"n": 1}', "reply data = received data")
        r2 = post(s, binary_headers("orig-2"))
        check(r2.header("ce-id") != r.header("ce-id"), "ids differ per reply")
        check("reply type=user.welcomed id=%s" % r.header("ce-id") in s.log_lines()[0], s.log())


def test_hang():
    with Sink("--hang") as s:
        c = Conn(s.host, s.port, timeout=0.7)
        c.send_request("POST", "/", binary_headers())
        try:
            c.response()
            check(False, "a hanging sink answered")
        except socket.timeout:
            pass
        # The loop is not blocked: other connections are served meanwhile.
        h = Conn(s.host, s.port)
        h.send_request("GET", "/healthz")
        eq(h.response().status, 200, "healthz during a hang")
        h.close()
        check(s.log_lines()[0].endswith("-> hang"), s.log())
        t0 = time.monotonic()
        eq(s.stop(), 0, "exit code with a held connection")
        check(time.monotonic() - t0 < 5, "stop bounded by the drain timeout")
        check(c.closed_by_peer(2), "held connection closed at stop")
        c.close()


def read_until_error(c, timeout=3.0):
    """Reads until EOF or error: returns (bytes read, 'reset' | 'eof')."""
    c.sock.settimeout(timeout)
    data = c.buf
    try:
        while True:
            d = c.sock.recv(65536)
            if not d:
                return data, "eof"
            data += d
    except ConnectionResetError:
        return data, "reset"


def test_reset():
    with Sink("--reset", "--fail-first", "1") as s:
        c = Conn(s.host, s.port)
        c.send_request("POST", "/", binary_headers())
        data, how = read_until_error(c)
        eq(how, "reset", "connection reset")
        check(data == b"" or data.startswith(b"HTTP/1.1 200 OK"), data)
        c.close()
        eq(post(s, binary_headers("ok")).status, 200, "second request answered")
        check(s.log_lines()[0].endswith("-> reset"), s.log())


def test_garbage():
    with Sink("--garbage") as s:
        c = Conn(s.host, s.port)
        c.send_request("POST", "/", binary_headers())
        data, how = read_until_error(c)
        eq(how, "eof", "closed after the garbage")
        check(data.startswith(b"HTTP/1.1 2oo"), data)
        c.close()
        check(s.log_lines()[0].endswith("-> garbage"), s.log())


def test_count_and_signals():
    with Sink("--count", "2") as s:
        eq(post(s, binary_headers("c-1")).status, 200, "first")
        eq(post(s, binary_headers("c-2")).status, 200, "second answered before exiting")
        eq(s.wait(5), 0, "exits 0 after --count events")
        eq(len(s.events()), 2, "both written")
    for sig in (signal.SIGINT, signal.SIGTERM):
        with Sink() as s:
            s.proc.send_signal(sig)
            eq(s.wait(5), 0, "exit code on %s" % sig.name)


def test_quiet():
    with Sink("--quiet") as s:
        eq(post(s, binary_headers("q-1")).status, 200, "status")
        eq([e["id"] for e in s.wait_events(1)], ["q-1"], "--out still written")
        eq(s.log_lines(), [], "no log line")
        eq(s.log().splitlines()[0].startswith("listening "), True, "listening line kept")


def test_usage():
    for args, what in ((["--status", "99"], "--status"), (["--status", "600"], "--status"),
                       (["--status", "abc"], "--status"), (["--delay", "-1"], "--delay"),
                       (["--fail-first", "0"], "--fail-first"), (["--count", "0"], "--count"),
                       (["--hang", "--reset"], "exclude"), (["--garbage", "--status", "500"],
                                                            "exclude"),
                       (["--listen", "nowhere"], "--listen"), (["--bogus"], "unknown option"),
                       (["--reply-type", "x", "--status", "202"], "--reply-type"),
                       (["--reply-type", ""], "--reply-type"), (["--delay"], "needs a value"),
                       (["extra"], "unexpected argument")):
        rc, out, err = run_cli(["sink"] + args, timeout=5)
        eq(rc, 2, "exit code for %r" % args)
        check(what in err, "%r not in %r" % (what, err))
    rc, out, err = run_cli(["sink", "--help"])
    eq(rc, 0, "--help")
    check("--fail-first" in out and "Exit codes" in out, out)
    rc, out, err = run_cli(["sink", "--listen", "127.0.0.1:0", "--out", "/nonexistent/dir/x"])
    eq(rc, 1, "--out not writable")
    check("--out" in err, err)
    with Sink() as s:
        rc, out, err = run_cli(["sink", "--listen", "127.0.0.1:%d" % s.port], timeout=5)
        eq(rc, 1, "port in use")
        check("cannot listen" in err, err)


def test_send_every():
    with Sink() as s:
        t0 = time.monotonic()
        rc, out, err = run_cli(["send", s.url + "default/default", "--every", "100ms",
                                "--count", "5", "--types", "a.one,b.two"], timeout=20)
        elapsed = time.monotonic() - t0
        eq(rc, 0, "exit code: " + err)
        lines = out.splitlines()
        eq(len(lines), 5, "one line per send: %r" % out)
        for i, l in enumerate(lines):
            check(" sent %d type=%s " % (i + 1, ["a.one", "b.two"][i % 2]) in l, l)
            check(l.endswith("-> 200 OK"), l)
        check(elapsed >= 0.4, "four pauses of 100ms")
        ev = s.wait_events(5)
        eq([e["type"] for e in ev], ["a.one", "b.two", "a.one", "b.two", "a.one"], "types")
        eq([e["data"] for e in ev], [{"seq": n} for n in range(1, 6)], "default data")
        eq(len({e["id"] for e in ev}), 5, "fresh ids")
        eq({e["source"] for e in ev}, {"/ringcast/send"}, "default source")
        rc, out, err = run_cli(["send", s.url, "--types", "x,y", "--id", "p", "--source", "/s",
                                "--data", '{"k":1}'])
        eq(rc, 0, "without --every: one per type")
        ev = s.wait_events(7)[5:]
        eq([(e["id"], e["type"], e["data"]) for e in ev],
           [("p-1", "x", {"k": 1}), ("p-2", "y", {"k": 1})], "ids ID-N, given data")
    with Sink("--status", "500", "--fail-first", "1") as s:
        rc, out, err = run_cli(["send", s.url, "--types", "t", "--count", "2", "--every", "1ms"])
        eq(rc, 1, "a failed send makes the exit code 1")
        check("-> 500" in out.splitlines()[0] and "-> 200" in out.splitlines()[1], out)
    rc, out, err = run_cli(["send", "http://127.0.0.1:1/", "--types", "t", "--count", "2"])
    eq(rc, 1, "unreachable")
    eq(out.count("-> error: cannot connect"), 2, out)


def test_send_every_stops_on_signal():
    with Sink() as s:
        p = subprocess.Popen([RINGCAST, "send", s.url, "--every", "10s", "--types", "t"],
                             stdout=subprocess.PIPE, text=True)
        try:
            s.wait_events(1)
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            eq(p.wait(5), 0, "exit code after SIGTERM")
            check(time.monotonic() - t0 < 2, "the pause is cut short")
            eq(len(p.stdout.read().splitlines()), 1, "one send")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            p.stdout.close()


def test_send_usage():
    for args, what in ((["--types", "a,,b"], "--types"), (["--types", ""], "--types"),
                       (["--type", "a", "--types", "b"], "exclude"),
                       (["--types", "a", "--every", "soon"], "--every"),
                       (["--types", "a", "--count", "0"], "--count"),
                       (["--types", "a", "--count", "-3"], "--count")):
        rc, out, err = run_cli(["send", "http://127.0.0.1:1/"] + args, timeout=5)
        eq(rc, 2, "exit code for %r" % args)
        check(what in err, "%r not in %r" % (what, err))


if __name__ == "__main__":
    Runner().run([test_binary_event, test_structured_and_batch, test_healthz_and_methods,
                  test_invalid_events, test_malformed_http, test_status,
                  test_status_304_has_no_body, test_fail_first, test_delay, test_reply,
                  test_hang, test_reset, test_garbage,
                  test_count_and_signals, test_quiet, test_usage, test_send_every,
                  test_send_every_stops_on_signal, test_send_usage])
