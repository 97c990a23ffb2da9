#!/usr/bin/env python3
"""Who may use a broker's ring (issue 11, defects 2 and 7), through the real `ringcast serve`:
a second serve on the same ring exits 1 naming the broker that holds it (also with another
ring size, which must not replace the live ring); a ring another user could have made or read
(group/other access, another owner) is refused by serve and by `ringcast tail`, naming the
object and the fix; a ring truncated under a running broker is reported in words, not a
SIGBUS; a quick restart with a small ring and a healthy subscriber gets no 429 from the slots
the previous broker left; a killed local reader leaves the readers gauge within seconds.
Every wait is bounded; processes are stopped by pid."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import RINGCAST, Broker, Runner, check, eq, run_cli  # noqa: E402
from subscriber import Subscriber  # noqa: E402

HOLDER = os.path.join(os.environ.get("RC_BIN_DIR") or
                      os.path.join(os.path.dirname(__file__), "../../build/bin"),
                      "..", "tests", "ring_holder")

HEAD = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
%s---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
"""


def config(ring_size=None, subscriber=None):
    # A ring smaller than the default takes limits it can hold (the loader checks them).
    small = "  limits: {maxEventBytes: 128Ki, maxBatchBytes: 256Ki, maxBatchEvents: 50}\n"
    doc = HEAD % ("  ring: {size: %s}\n%s" % (ring_size, small) if ring_size else "")
    if subscriber is not None:
        doc += ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                "metadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: %s}\n"
                % subscriber)
    return doc


def ce_headers(i):
    return {"ce-id": str(i), "ce-source": "/test", "ce-type": "a", "ce-specversion": "1.0",
            "Content-Type": "application/octet-stream"}


def serve_once(prefix, cfg_text=None, timeout=8.0):
    """Runs a second `ringcast serve` on `prefix` and returns (exit code, stderr), or fails if it
    is still running after `timeout` (it started: the defect) after stopping it by pid."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="rc-it-") as tmp:
        cmd = [RINGCAST, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
               "--ring-prefix", prefix]
        if cfg_text is not None:
            path = os.path.join(tmp, "ringcast.yaml")
            with open(path, "w") as f:
                f.write(cfg_text)
            cmd += ["--config", path]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            _, err = p.communicate(timeout=5)
            raise AssertionError("second serve on ring prefix %s kept running: %s"
                                 % (prefix, err[-2000:]))
        return p.returncode, err


def shm_path(b):
    return "/dev/shm/" + b.ring_name("default", "default")


def test_second_serve_exits_1():
    """One live broker per ring: a second serve on the same ring prefix exits 1 at once, naming
    the ring and the pid of the broker holding it; the first one keeps working."""
    with Subscriber() as s, Broker(config(subscriber=s.url)) as b:
        t0 = time.monotonic()
        code, err = serve_once(b.prefix, config(subscriber=s.url))
        eq(code, 1, "exit code of the second serve (stderr %r)" % err[-2000:])
        check(time.monotonic() - t0 < 5, "refused at once")
        check(b.ring_name("default", "default") in err, "names the ring: %r" % err)
        check("pid %d" % b.proc.pid in err, "names the holder's pid: %r" % err)
        r = b.request("POST", "/default/default", ce_headers(1), b"x")
        eq(r.status, 202, "first broker still accepts")
        s.wait_for(1)
        time.sleep(0.3)
        eq([q.ce("id") for q in s.requests], ["1"], "delivered once, by one broker")
        check(b.proc.poll() is None, "first broker still running")


def test_other_size_does_not_replace_live_ring():
    """A serve configured with another ring size refuses the live broker's ring (exit 1)
    instead of replacing it under the broker: the shm object is the same one afterwards."""
    with Broker(config()) as b:
        ino = os.stat(shm_path(b)).st_ino
        code, err = serve_once(b.prefix, config(ring_size="1Mi"))
        eq(code, 1, "exit code (stderr %r)" % err[-2000:])
        check("pid %d" % b.proc.pid in err, "names the holder: %r" % err)
        eq(os.stat(shm_path(b)).st_ino, ino, "the live ring was not replaced")
        eq(b.request("POST", "/default/default", ce_headers(1), b"x").status, 202, "accepts")


def test_exposed_or_foreign_ring_refused():
    """A ring with group/other access (as a local user who made the name first would leave it)
    is refused by serve and tail, naming the object and the fix; as root, so is a ring of mode
    0600 owned by another user."""
    b = Broker(config())
    try:
        b.stop()
        path = shm_path(b)
        check(os.path.exists(path), "the stopped broker's ring is kept")
        os.chmod(path, 0o666)
        code, err = serve_once(b.prefix, config())
        eq(code, 1, "serve on a 0666 ring (stderr %r)" % err[-2000:])
        check(path in err and "0666" in err, "names the object and its mode: %r" % err)
        check("chmod 600 " + path in err and "rm " + path in err, "says the fix: %r" % err)
        rc, _out, terr = run_cli(["tail", "default/default", "--ring-prefix", b.prefix,
                                  "--timeout", "200ms"])
        eq(rc, 1, "tail on a 0666 ring (stderr %r)" % terr)
        check(path in terr, "tail names the object: %r" % terr)
        os.chmod(path, 0o600)
        if os.geteuid() != 0:
            print("note: not root: the foreign-owner case needs root (os.chown); not checked")
            return
        os.chown(path, 65534, 65534)
        code, err = serve_once(b.prefix, config())
        eq(code, 1, "serve on a ring owned by uid 65534 (stderr %r)" % err[-2000:])
        check(path in err and "65534" in err, "names the object and its owner: %r" % err)
        eq(os.stat(path).st_uid, 65534, "not replaced either")
    finally:
        b.stop()
        b.remove_rings()


def test_truncated_ring_reported():
    """Someone shrinks the ring object under a running broker: the next event that touches the
    lost pages stops the broker with a message naming the ring (exit 1), not a SIGBUS."""
    with Broker(config()) as b:
        os.truncate(shm_path(b), 4096)
        try:
            b.request("POST", "/default/default", ce_headers(1), b"x" * 100)
        except (OSError, EOFError):
            pass  # the broker stops while answering
        code = b.wait(10)
        check(code is not None, "broker stopped")
        eq(code, 1, "exit code (not killed by SIGBUS, -7); log %r" % b.log()[-2000:])
        log = b.log()
        check("truncated" in log and b.ring_name("default", "default") in log,
              "reported in words: %r" % log[-2000:])


def test_quick_restart_no_429():
    """A 1 MiB ring, a healthy subscriber. The broker is stopped and another one started on the
    same ring at once; 64 events of 32 KiB (2 MiB, twice the ring) are published one after the
    other, each delivered before the next: none gets 429 (the previous broker's dead feed slots
    no longer hold the ring), every one is delivered once."""
    body = b"r" * (32 * 1024)
    with Subscriber() as s:
        cfg = config(ring_size="1Mi", subscriber=s.url)
        b = Broker(cfg)
        try:
            for i in range(8):
                eq(b.request("POST", "/default/default", ce_headers("a-%d" % i), body).status,
                   202, "before the restart")
            s.wait_for(8)
            time.sleep(0.2)
            eq(b.stop(), 0, "graceful stop")
            b2 = Broker(cfg, args=["--ring-prefix", b.prefix])
            try:
                refused = 0
                for i in range(64):
                    r = b2.request("POST", "/default/default", ce_headers("b-%d" % i), body)
                    if r.status == 429:
                        refused += 1
                        time.sleep(0.01)
                        continue
                    eq(r.status, 202, "publish")
                    s.wait_for(8 + i + 1 - refused, timeout=5)
                eq(refused, 0, "429s after a quick restart")
                ids = [q.ce("id") for q in s.requests if q.ce("id").startswith("b-")]
                eq(sorted(ids), sorted("b-%d" % i for i in range(64)), "each delivered once")
                m = b2.metrics()
                eq(m.get('ringcast_ring_readers{namespace="default",broker="default",'
                         'mode="lossless"}'), 1.0, "one live feed counted")
            finally:
                b2.stop()
                b2.remove_rings()
        finally:
            b.stop()
            b.remove_rings()


def test_dead_reader_leaves_gauge():
    """A local lossless reader is killed with SIGKILL: ringcast_ring_readers stops counting it
    within seconds (the heartbeat timeout, 2 s, and a scrape; its slot is reclaimed, so it no
    longer holds the ring either)."""
    key = 'ringcast_ring_readers{namespace="default",broker="default",mode="lossless"}'
    with Broker(config()) as b:
        eq(b.metrics().get(key), 0.0, "no reader yet")
        h = subprocess.Popen([HOLDER, b.ring_name("default", "default")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            eq(h.stdout.readline().strip(), "ready", "holder attached")
            eq(b.metrics().get(key), 1.0, "the holder counted")
        finally:
            os.kill(h.pid, signal.SIGKILL)
            h.wait(5)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6 and b.metrics().get(key) != 0.0:
            time.sleep(0.1)
        eq(b.metrics().get(key), 0.0, "dead reader counted %.1f s after it died"
           % (time.monotonic() - t0))


if __name__ == "__main__":
    Runner().run([
        test_second_serve_exits_1,
        test_other_size_does_not_replace_live_ring,
        test_exposed_or_foreign_ring_refused,
        test_truncated_ring_reported,
        test_quick_restart_no_429,
        test_dead_reader_leaves_gauge,
    ])
