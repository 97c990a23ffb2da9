"""Helpers for ringcast's integration tests: start the real `ringcast serve` on free loopback
ports (port 0; the broker prints the ports it got), talk raw HTTP over sockets, stop the broker
by its pid. Every wait is bounded. Python 3 standard library only."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN_DIR = os.environ.get("RC_BIN_DIR") or os.path.join(os.path.dirname(__file__), "../../build/bin")
RINGCAST = os.path.join(BIN_DIR, "ringcast")


_seq = [0]


class Broker:
    """A running `ringcast serve`. Use as a context manager; it is always stopped by pid, and
    its rings (shm objects named with a prefix unique to this broker) are removed."""

    def __init__(self, config=None, args=(), env=None, listen="127.0.0.1:0",
                 admin="127.0.0.1:0", preexec_fn=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="rc-it-")
        _seq[0] += 1
        self.prefix = "rcit%dx%d" % (os.getpid(), _seq[0])
        cmd = [RINGCAST, "serve", "--listen", listen, "--admin", admin,
               "--ring-prefix", self.prefix]
        if config is not None:
            path = os.path.join(self.tmp.name, "ringcast.yaml")
            with open(path, "w") as f:
                f.write(config)
            cmd += ["--config", path]
        cmd += list(args)
        self.stderr_path = os.path.join(self.tmp.name, "stderr")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     env=env, preexec_fn=preexec_fn)
        line = self._read_line(10.0)
        m = re.match(r"listening ingress=\[?([\d.:a-f]+?)\]?:(\d+) admin=\[?([\d.:a-f]+?)\]?:(\d+)$",
                     (line or "").strip())
        if not m:
            self.stop()
            self.remove_rings()
            raise RuntimeError("broker did not start: stdout=%r stderr=%r" % (line, self.log()))
        self.host, self.port = m.group(1), int(m.group(2))
        self.admin_port = int(m.group(4))

    def _read_line(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return None
        return self.proc.stdout.readline()

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code of the graceful stop
        (None when it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.proc.stdout.close()
        self.stderr.close()
        self.tmp.cleanup()
        self.remove_rings()

    def ring_name(self, ns, name):
        return "%s.%s.%s" % (self.prefix, ns, name)

    def remove_rings(self):
        import glob
        for p in glob.glob("/dev/shm/%s.*" % self.prefix):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def tail(self, target, *args, timeout="700ms"):
        """Events of a broker's ring via `ringcast tail` (structured JSON, one per line)."""
        import json
        rc, out, err = run_cli(["tail", target, "--ring-prefix", self.prefix, "--timeout",
                                timeout] + list(args))
        if rc != 0:
            raise AssertionError("tail failed (%d): %s" % (rc, err))
        return [json.loads(line) for line in out.splitlines() if line]

    def conn(self, admin=False):
        return Conn(self.host, self.admin_port if admin else self.port)

    def request(self, method, path, headers=None, body=b"", admin=False):
        c = self.conn(admin)
        try:
            c.send_request(method, path, headers, body)
            return c.response()
        finally:
            c.close()

    def metrics(self):
        r = self.request("GET", "/metrics", admin=True)
        out = {}
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.headers, self.body[:200])


class Conn:
    """A raw HTTP/1.1 client connection: send bytes as they are, read responses one by one."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_request(self, method, path, headers=None, body=b"", version="HTTP/1.1"):
        if isinstance(body, str):
            body = body.encode()
        h = {"Host": "ringcast"}
        if body or method in ("POST", "PUT"):
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        head = "%s %s %s\r\n" % (method, path, version)
        head += "".join("%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None)
        self.send(head.encode("latin-1") + b"\r\n" + body)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed with %d bytes buffered" % len(self.buf))
        self.buf += data

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        _, status, reason = lines[0].split(" ", 2)
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        r = Response(int(status), reason, headers, b"")
        n = int(r.header("Content-Length") or 0)
        if head_only:
            n = 0
        while len(self.buf) < n:
            self._fill()
        r.body, self.buf = self.buf[:n], self.buf[n:]
        return r

    def closed_by_peer(self, timeout=5.0):
        """True when the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Runner:
    """Runs test functions, prints one line each, exits 1 when any failed."""

    def __init__(self):
        self.failed = []

    def run(self, tests):
        only = os.environ.get("RC_TEST_ONLY")
        for t in tests:
            if only and only not in t.__name__:
                continue
            start = time.monotonic()
            try:
                t()
                print("ok   %-45s %.2fs" % (t.__name__, time.monotonic() - start), flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                import traceback
                traceback.print_exc()
                print("FAIL %-45s %s" % (t.__name__, e), flush=True)
                self.failed.append(t.__name__)
        if self.failed:
            print("failed: " + ", ".join(self.failed))
            sys.exit(1)


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def children(pid):
    """The live child processes of `pid` (a broker's workers), from every process's stat line.
    /proc/PID/task/TID/children lists a child under the thread that forked it only, and proc(5)
    calls it reliable only while the children are stopped: a worker restarted by the supervisor
    could be missing from it. A zombie (killed, not reaped yet) is not listed."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if fields[0] != "Z" and int(fields[1]) == pid:
            out.append(int(name))
    return sorted(out)


def alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_cli(args, timeout=20.0, input_text=None):
    p = subprocess.run([RINGCAST] + list(args), capture_output=True, text=True, timeout=timeout,
                       input=input_text)
    return p.returncode, p.stdout, p.stderr
