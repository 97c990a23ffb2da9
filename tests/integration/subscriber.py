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
