"""A programmable HTTP subscriber for delivery tests: a ThreadingHTTPServer on a free loopback
port, in the test process. Every request is recorded (time, path, headers, body); a behaviour
function decides the answer (status, headers, body, delay). Bounded waits only."""

import base64
import http.server
import socketserver
import threading
import time


class Request:
    def __init__(self, path, headers, body):
        self.t = time.monotonic()
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def ce(self, name):
        return self.headers.get("ce-" + name)


def ok(_i, _req):
    return 200, {}, b"", 0.0


class Subscriber:
    def __init__(self, behaviour=ok):
        self.behaviour = behaviour
        self.requests = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        sub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                req = Request(self.path, self.headers, body)
                with sub.lock:
                    i = len(sub.requests)
                    sub.requests.append(req)
                    sub.active += 1
                    sub.max_active = max(sub.max_active, sub.active)
                try:
                    status, headers, rbody, delay = sub.behaviour(i, req)
                    if delay:
                        time.sleep(delay)
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(rbody)))
                    self.end_headers()
                    self.wfile.write(rbody)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with sub.lock:
                        sub.active -= 1

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                import sys
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return  # the broker reset a connection (a worker killed or stopping)
                super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def ids(self):
        with self.lock:
            return [r.ce("id") for r in self.requests]

    def wait_for(self, n, timeout=10.0):
        """Waits until at least `n` requests arrived; returns the requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                break
            time.sleep(0.01)
        with self.lock:
            return list(self.requests)


def b64(data):
    return base64.b64encode(data).decode()


# ---- a subscriber that misbehaves at the byte level ----------------------------------------

class RawSubscriber:
    """A subscriber on a raw TCP socket (no http.server), for answers http.server cannot give:
    part of a response then a TCP reset, bytes that are not HTTP, a close without an answer, a
    Content-Length that lies. behaviour(i, req) returns (raw_bytes, end): the bytes are sent as
    they are (raw may also be a list of byte strings and pauses in seconds, sent in turn), then
    `end` is "close" (FIN), "rst" (SO_LINGER 0, so the close is a reset) or ("keep", s): wait up
    to s seconds for another request on the same connection, then close. Every request is
    recorded (req.conn_index: its index on its connection). With "close" or "rst" every
    connection serves one request, so each delivery attempt arrives on a fresh connection and
    the counts are exact."""

    def __init__(self, behaviour):
        import socket
        self.behaviour = behaviour
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        import socket
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        import socket
        import struct
        conn.settimeout(10.0)
        buf = b""
        k = 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, body = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, v = line.split(":", 1)
                    headers[name.strip()] = v.strip()
                n = int({a.lower(): v for a, v in headers.items()}.get("content-length", "0"))
                while len(body) < n:
                    data = conn.recv(65536)
                    if not data:
                        return
                    body += data
                buf = body[n:]
                req = Request(lines[0].split(" ")[1], headers, body[:n])
                req.conn_index = k
                k += 1
                with self.lock:
                    i = len(self.requests)
                    self.requests.append(req)
                raw, end = self.behaviour(i, req)
                for piece in (raw if isinstance(raw, list) else [raw]):
                    if isinstance(piece, (int, float)):
                        time.sleep(piece)
                    elif piece:
                        conn.sendall(piece)
                if end == "rst":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if not isinstance(end, tuple):
                    return
                conn.settimeout(end[1])
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    return
                if not data:
                    return
                buf += data
                conn.settimeout(10.0)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def ids(self):
        with self.lock:
            return [r.ce("id") for r in self.requests]

    def wait_for(self, n, timeout=10.0):
        """Waits until at least `n` requests arrived; returns the requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                break
            time.sleep(0.01)
        with self.lock:
            return list(self.requests)


def http_answer(status, body=b"", headers=None, keep=False):
    """The bytes of a complete HTTP/1.1 answer that closes its connection (keep: that keeps
    it)."""
    h = {"Content-Length": str(len(body))}
    if not keep:
        h["Connection"] = "close"
    h.update(headers or {})
    head = "HTTP/1.1 %d X\r\n" % status + "".join("%s: %s\r\n" % kv for kv in h.items())
    return head.encode() + b"\r\n" + body
