"""Integration test of `ringcast send`: what it puts on the wire (captured by a one-shot HTTP
server on loopback), what it prints, and its exit codes."""

import json
import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Runner, check, eq, run_cli  # noqa: E402


class Capture:
    """Accepts one connection, records the request, answers with `reply`."""

    def __init__(self, reply=b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.head, self.body = None, None
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        try:
            c, _ = self.sock.accept()
        except socket.timeout:
            return
        c.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(4096)
        head, body = data.split(b"\r\n\r\n", 1)
        n = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        while len(body) < n:
            body += c.recv(4096)
        self.head, self.body = head.decode("latin-1"), body
        c.sendall(self.reply)
        c.close()

    def headers(self):
        lines = self.head.split("\r\n")
        return lines[0], {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}

    def done(self):
        self.t.join(10)
        self.sock.close()


def test_binary_mode():
    cap = Capture()
    rc, out, err = run_cli(["send", "http://127.0.0.1:%d/shop/orders" % cap.port,
                            "--type", "order.placed", "--source", "/shop", "--id", "o-1",
                            "--data", '{"total": 12}', "--subject", "h\u00e9 llo",
                            "--ext", "traceid=abc", "--time", "2026-01-02T03:04:05Z"])
    cap.done()
    eq(rc, 0, "exit code")
    eq(out, "202 Accepted\nid: o-1\n", "output")
    line, h = cap.headers()
    eq(line, "POST /shop/orders HTTP/1.1", "request line")
    eq(h["ce-specversion"], "1.0", "specversion")
    eq(h["ce-id"], "o-1", "id")
    eq(h["ce-source"], "/shop", "source")
    eq(h["ce-type"], "order.placed", "type")
    eq(h["ce-subject"], "h%C3%A9%20llo", "subject is percent-encoded")
    eq(h["ce-time"], "2026-01-02T03:04:05Z", "time")
    eq(h["ce-traceid"], "abc", "extension")
    eq(h["content-type"], "application/json", "datacontenttype")
    eq(cap.body, b'{"total": 12}', "data")


def test_structured_mode():
    cap = Capture()
    rc, out, err = run_cli(["send", "http://127.0.0.1:%d/default/default" % cap.port,
                            "--type", "user.created", "--source", "/users",
                            "--data", '{"name": "ana"}', "--mode", "structured"])
    cap.done()
    eq(rc, 0, "exit code")
    _, h = cap.headers()
    eq(h["content-type"], "application/cloudevents+json", "content type")
    ev = json.loads(cap.body)
    eq(ev["specversion"], "1.0", "specversion")
    eq(ev["type"], "user.created", "type")
    eq(ev["data"], {"name": "ana"}, "data")
    check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                       ev["id"]), "random UUID v4 id: " + ev["id"])
    eq(out, "202 Accepted\nid: %s\n" % ev["id"], "output")


def test_error_status():
    body = b'{"error": "id: must be a non-empty string"}'
    cap = Capture(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    rc, out, err = run_cli(["send", "http://127.0.0.1:%d/a/b" % cap.port, "--type", "t",
                            "--source", "s", "--id", "x"])
    cap.done()
    eq(rc, 1, "non-2xx exits 1")
    eq(out, "400 Bad Request\n%s\nid: x\n" % body.decode(), "prints status and body")


def test_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rc, out, err = run_cli(["send", "http://127.0.0.1:%d/a/b" % port, "--type", "t",
                            "--source", "s"])
    eq(rc, 1, "exit code")
    check("cannot connect to 127.0.0.1:%d: Connection refused" % port in err, err)


def test_usage():
    rc, out, err = run_cli(["send", "--help"])
    eq(rc, 0, "--help")
    check("usage: ringcast send" in out and "Exit codes" in out, out)
    for args, msg in [
        (["http://127.0.0.1:1/a/b", "--source", "s"], "URL, --type and --source are required"),
        (["ftp://x/a/b", "--type", "t", "--source", "s"], "URL must be http://HOST[:PORT]/PATH"),
        (["http://127.0.0.1:1/a", "--type", "t", "--source", "s", "--mode", "xml"],
         "--mode must be binary or structured"),
        (["http://127.0.0.1:1/a", "--type", "t", "--source", "s", "--ext", "noequals"],
         "--ext takes NAME=VALUE"),
        (["http://127.0.0.1:1/a", "--type"], "--type needs a value"),
        (["http://127.0.0.1:1/a", "--bogus", "1"], "unknown option '--bogus'"),
    ]:
        rc, out, err = run_cli(["send"] + args)
        eq(rc, 2, "bad usage exit code for %s" % args)
        check(msg in err, "%r not in %r" % (msg, err))


if __name__ == "__main__":
    Runner().run([test_binary_mode, test_structured_mode, test_error_status, test_unreachable,
                  test_usage])
