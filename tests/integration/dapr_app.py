"""A Dapr app for delivery tests: each replica is a real HTTP server (ThreadingHTTPServer) on a
loopback port (free, or a given one, to bring a replica up where one was down) that reads each
request as Dapr delivers it (a structured CloudEvent, application/cloudevents+json), records
it, and answers as its behaviour says: a status, a body (bytes, or a dict sent as JSON, e.g.
{"status": "RETRY"}) and a delay. It counts the requests it holds at once (max_active). Bounded
waits only; Python standard library only."""

import http.server
import json
import socketserver
import threading
import time


class Request:
    def __init__(self, path, headers, body):
        self.t = time.monotonic()
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        try:
            self.event = json.loads(body)
        except ValueError:
            self.event = None

    def ce(self, name):
        return self.headers.get("ce-" + name)


class Replica:
    """One replica. `behaviour(i, req, event)` returns (status, body, delay); None: 200, empty."""

    def __init__(self, behaviour=None, port=0):
        self.behaviour = behaviour
        self.requests = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        rep = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                req = Request(self.path, self.headers, self.rfile.read(n))
                with rep.lock:
                    i = len(rep.requests)
                    rep.requests.append(req)
                    rep.active += 1
                    rep.max_active = max(rep.max_active, rep.active)
                try:
                    status, body, delay = (rep.behaviour(i, req, req.event)
                                           if rep.behaviour else (200, b"", 0))
                    if isinstance(body, (dict, list)):
                        body = json.dumps(body).encode()
                    if delay:
                        time.sleep(delay)
                    self.send_response(status)
                    if body:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with rep.lock:
                        rep.active -= 1

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                import sys
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return
                super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", port), Handler)
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

    def events(self):
        with self.lock:
            return [r.event for r in self.requests]

    def ids(self):
        return [e.get("id") if isinstance(e, dict) else None for e in self.events()]

    def wait_for(self, n, timeout=10.0):
        """Waits until at least `n` requests arrived; returns the requests."""
        wait_until(lambda: self.count() >= n, timeout, "%d requests" % n, fail=False)
        with self.lock:
            return list(self.requests)


def wait_until(cond, timeout=10.0, what="condition", fail=True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    if fail:
        raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
    return False
