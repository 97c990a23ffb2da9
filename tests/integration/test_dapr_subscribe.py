"""Programmatic Dapr subscriptions: ringcast asks each DaprApp replica GET /dapr/subscribe, keeps
asking until one answers (apps start after the broker), again on reload, merges the answers
with the declarative Subscriptions, and a bad answer marks the app not ready without stopping
the broker (net/dapr_subscribe.c). Real broker, real HTTP apps on loopback."""

import http.server
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import Broker, Runner, check, eq  # noqa: E402

HEAD = """apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namespace: default}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: default}
"""


def app_doc(name, ports):
    eps = ", ".join('"http://127.0.0.1:%d"' % p for p in ports)
    return """---
apiVersion: ringcast.dev/v1alpha1
kind: DaprApp
metadata: {name: %s, namespace: default}
spec:
  endpoints: [%s]
""" % (name, eps)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class App:
    """A Dapr app: answers GET /dapr/subscribe with `self.answer` (status, body), records it was
    asked, records every POST (path, JSON body) and answers it 200 {"status":"SUCCESS"}."""

    def __init__(self, port=0, answer=(200, "[]")):
        self.answer = answer
        self.asked = 0
        self.posts = []
        self.lock = threading.Lock()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes

            def log_message(self, *a):
                pass

            def reply(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path != "/dapr/subscribe":
                    return self.reply(404, "")
                with app.lock:
                    app.asked += 1
                    status, body = app.answer
                self.reply(status, body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with app.lock:
                    app.posts.append((self.path, body))
                self.reply(200, '{"status":"SUCCESS"}')

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = Server(("127.0.0.1", port), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sub(topic, route="/orders", **extra):
    d = {"pubsubname": "pubsub", "topic": topic, "route": route}
    d.update(extra)
    return d


def ready(b, app):
    return b.metrics().get(
        'ringcast_dapr_app_subscriptions_ready{namespace="default",app="%s"}' % app)


def wait_for(what, f, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = f()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def trigger_metric(b, name, trig):
    return b.metrics().get('ringcast_trigger_%s{namespace="default",trigger="%s",broker="default"}'
                           % (name, trig))


def publish(b, topic, i):
    r = b.request("POST", "/default/default",
                  {"ce-specversion": "1.0", "ce-id": "e%d" % i, "ce-source": "test",
                   "ce-type": "t", "ce-topic": topic, "Content-Type": "application/json"},
                  b'{"n": %d}' % i)
    eq(r.status, 202, "publish")


def test_app_starting_after_the_broker():
    port = free_port()
    with Broker(HEAD + app_doc("checkout", [port])) as b:
        time.sleep(0.4)  # the broker asks a closed port and backs off
        eq(ready(b, "checkout"), 0.0, "not ready before the app answers")
        with App(port, (200, json.dumps([sub("orders")]))) as app:
            wait_for("ready", lambda: ready(b, "checkout") == 1.0, 15.0)
            check(app.asked >= 1)
            wait_for("the trigger of the subscription",
                     lambda: trigger_metric(b, "delivered_total", "checkout:pubsub:orders") is not None)
            publish(b, "orders", 1)
            publish(b, "other", 2)
            wait_for("delivery", lambda: len(app.posts) >= 1)
            time.sleep(0.3)
            eq(len(app.posts), 1, "only the subscribed topic")
            path, body = app.posts[0]
            eq(path, "/orders", "route")
            eq(json.loads(body)["id"], "e1", "event")
            check("app default/checkout subscribes to 1 topic" in b.log(), b.log())
            md = b.request("GET", "/v1.0/metadata", {"dapr-app-id": "checkout"}).json()
            subs = [(x["topic"], x["type"], x["appID"]) for x in md["subscriptions"]]
            eq(subs, [("orders", "PROGRAMMATIC", "checkout")], "metadata lists it")
            md = b.request("GET", "/v1.0/metadata", {"dapr-app-id": "other"}).json()
            eq(md["subscriptions"], [], "another app's sidecar does not list it")


def test_bad_answer_then_fixed():
    with App(answer=(200, "this is not json")) as app:
        with Broker(HEAD + app_doc("checkout", [app.port])) as b:
            wait_for("an error counted", lambda: (b.metrics().get(
                'ringcast_dapr_app_subscribe_errors_total{namespace="default",app="checkout"}')
                or 0) >= 1)
            eq(ready(b, "checkout"), 0.0, "not ready after a bad answer")
            check("not a JSON array" in b.log(), b.log())
            eq(b.request("GET", "/readyz", admin=True).status, 200, "the broker serves")
            with app.lock:
                app.answer = (200, json.dumps([{"pubsubname": "pubsub"}]))
            wait_for("entry error logged", lambda: "entry 0 has no 'topic'" in b.log())
            with app.lock:
                app.answer = (200, json.dumps([sub("orders")]))
            wait_for("ready once fixed", lambda: ready(b, "checkout") == 1.0, 15.0)


def test_404_means_none():
    with App(answer=(404, "")) as app:
        with Broker(HEAD + app_doc("checkout", [app.port])) as b:
            wait_for("ready", lambda: ready(b, "checkout") == 1.0)
            eq(b.metrics().get(
                'ringcast_dapr_app_subscriptions{namespace="default",app="checkout"}'), 0.0,
               "no subscriptions")


def test_refused_entries_mark_not_ready():
    bad = [sub("orders", routes={"rules": [{"match": "event.type.matches('x')",
                                            "path": "/x"}]}),
           {"pubsubname": "nosuch", "topic": "t", "route": "/t"}]
    with App(answer=(200, json.dumps(bad))) as app:
        with Broker(HEAD + app_doc("checkout", [app.port])) as b:
            wait_for("refusal logged", lambda: "refused" in b.log())
            wait_for("both refusals", lambda: "nosuch" in b.log())
            eq(ready(b, "checkout"), 0.0, "not ready")
            eq(b.request("GET", "/readyz", admin=True).status, 200, "the broker serves")


def test_declarative_wins_and_reload_asks_again():
    decl = """---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders, namespace: default}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {default: /declared}
scopes: [checkout]
"""
    with App(answer=(200, json.dumps([sub("orders", "/programmatic")]))) as app:
        with Broker(HEAD + app_doc("checkout", [app.port]) + decl) as b:
            wait_for("declarative wins logged",
                     lambda: "a declarative Subscription of the app covers it" in b.log())
            publish(b, "orders", 1)
            wait_for("delivery", lambda: len(app.posts) >= 1)
            eq(app.posts[0][0], "/declared", "the declarative route")
            asked = app.asked
            with app.lock:
                app.answer = (200, json.dumps([sub("orders", "/programmatic"),
                                               sub("payments", "/payments")]))
            b.signal(signal.SIGHUP)
            wait_for("asked again on reload", lambda: app.asked > asked)
            wait_for("the new topic's trigger",
                     lambda: trigger_metric(b, "delivered_total", "checkout:pubsub:payments")
                     is not None, 15.0)
            publish(b, "payments", 2)
            wait_for("delivery of the new topic",
                     lambda: any(p == "/payments" for p, _ in app.posts))


def test_second_replica_answers():
    down = free_port()
    with App(answer=(200, json.dumps([sub("orders")]))) as app:
        with Broker(HEAD + app_doc("checkout", [down, app.port])) as b:
            wait_for("ready through the second replica", lambda: ready(b, "checkout") == 1.0)


if __name__ == "__main__":
    Runner().run([
        test_app_starting_after_the_broker,
        test_bad_answer_then_fixed,
        test_404_means_none,
        test_refused_entries_mark_not_ready,
        test_declarative_wins_and_reload_asks_again,
        test_second_replica_answers,
    ])
