"""Integration test of examples/reader.c (ringcast-example-reader), the local consumer built on
the installed SDK: a live `ringcast serve`, events posted over HTTP, the example attached to the
broker's ring by NAMESPACE/BROKER (short and hashed ring names) or by ring name, as a lossy reader
and as consumer group members; its output is checked line by line."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from rc_harness import BIN_DIR, Broker, Runner, check, eq  # noqa: E402

READER = os.path.join(BIN_DIR, "ringcast-example-reader")

# "<prefix>.<ns>.<name>" of the second broker is longer than a ring name may be (62), so the
# broker names its ring by a hash; the example must compute the same name.
LONG_NS = "analytics-team-namespace"
LONG_NAME = "clickstream-events-from-the-web-frontend"

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  ring:
    size: 1Mi
  limits: {maxEventBytes: 128Ki, maxBatchBytes: 256Ki, maxBatchEvents: 64}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: %s
  namespace: %s
""" % (LONG_NAME, LONG_NS)


def post_binary(b, path, ev_id, ev_type, data=None, content_type="text/plain"):
    h = {"ce-specversion": "1.0", "ce-id": ev_id, "ce-source": "/sdk-test", "ce-type": ev_type}
    if data is not None:
        h["Content-Type"] = content_type
    r = b.request("POST", path, h, data or b"")
    eq(r.status, 202, "POST %s %s" % (path, ev_id))


def run_reader(*args, timeout=20):
    p = subprocess.run([READER] + list(args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout.splitlines(), p.stderr


def test_prints_type_id_data():
    with Broker(CONFIG) as b:
        post_binary(b, "/default/default", "a-1", "order.placed", b'{"total": 12}',
                    "application/json")
        post_binary(b, "/default/default", "a-2", "order.note", b"two\nlines\\")
        post_binary(b, "/default/default", "a-3", "order.ping")
        body = json.dumps({"specversion": "1.0", "id": "a-4", "source": "/s", "type": "t.json",
                           "data": {"k": [1, 2]}})
        r = b.request("POST", "/default/default",
                      {"Content-Type": "application/cloudevents+json"}, body)
        eq(r.status, 202, "structured POST")
        rc, out, err = run_reader("-p", b.prefix, "-n", "4", "-t", "5000", "default/default")
        eq(rc, 0, "exit code (stderr %r)" % err)
        eq(out, ['type=order.placed id=a-1 data={"total": 12}',
                 "type=order.note id=a-2 data=two\\x0alines\\x5c",
                 "type=order.ping id=a-3",
                 'type=t.json id=a-4 data={"k": [1, 2]}'], "output")
        eq(err, "", "stderr")


def test_ring_name_and_hashed_name():
    with Broker(CONFIG) as b:
        path = "/%s/%s" % (LONG_NS, LONG_NAME)
        post_binary(b, path, "h-1", "long.name", b"x")
        check(len(b.ring_name(LONG_NS, LONG_NAME)) > 62, "the test's broker name is long enough")
        rc, out, err = run_reader("-p", b.prefix, "-t", "700", "%s/%s" % (LONG_NS, LONG_NAME))
        eq((rc, out), (0, ["type=long.name id=h-1 data=x"]), "hashed ring name (stderr %r)" % err)
        post_binary(b, "/default/default", "n-1", "by.ring.name", b"y")
        rc, out, err = run_reader("-t", "700", b.ring_name("default", "default"))
        eq((rc, out), (0, ["type=by.ring.name id=n-1 data=y"]), "ring name (stderr %r)" % err)


def test_group_members_share_events():
    with Broker(CONFIG) as b:
        ids = ["g-%d" % i for i in range(40)]
        for i in ids:
            post_binary(b, "/default/default", i, "grouped", i.encode())
        members = [subprocess.Popen([READER, "-p", b.prefix, "-g", "sdk-test", "-t", "1500",
                                     "default/default"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        seen = []
        for m in members:
            out, err = m.communicate(timeout=20)
            eq(m.returncode, 0, "member exit code (stderr %r)" % err)
            seen += out.splitlines()
        eq(sorted(seen), sorted("type=grouped id=%s data=%s" % (i, i) for i in ids),
           "every event exactly once across the group")


def test_errors():
    with Broker(CONFIG) as b:
        rc, out, err = run_reader("-p", b.prefix, "-t", "100", "default/nope")
        eq(rc, 1, "exit code for a broker without a ring")
        check("nope" in err, "stderr names the ring: %r" % err)
    for args in (["a/b/c"], [], ["-n", "x", "default/default"], ["-f", "middle", "a/b"]):
        rc, out, err = run_reader(*args)
        eq(rc, 2, "usage error for %r" % args)
        check("usage:" in err, "usage on stderr for %r" % args)


if __name__ == "__main__":
    Runner().run([test_prints_type_id_data, test_ring_name_and_hashed_name,
                  test_group_members_share_events, test_errors])
