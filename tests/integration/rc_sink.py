"""A running `ringcast sink` for integration tests: started on a free loopback port (port 0,
it prints the port it got), its stdout log and --out JSON lines read back with bounded waits,
stopped by its pid. Python 3 standard library only."""

import json
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time

from rc_harness import RINGCAST


class Sink:
    def __init__(self, *args, listen="127.0.0.1:0"):
        self.tmp = tempfile.TemporaryDirectory(prefix="rc-sink-")
        self.out_path = os.path.join(self.tmp.name, "events.jsonl")
        self.log_path = os.path.join(self.tmp.name, "stdout")
        self.err_path = os.path.join(self.tmp.name, "stderr")
        cmd = [RINGCAST, "sink", "--listen", listen, "--out", self.out_path] + list(args)
        self.stdout = open(self.log_path, "w")
        self.stderr = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.stdout, stderr=self.stderr)
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline:
            line = self.log().split("\n", 1)[0]
            if line.startswith("listening ") or self.proc.poll() is not None:
                break
            time.sleep(0.02)
        m = re.match(r"listening ([\d.]+):(\d+)$", line)
        if not m:
            self.stop()
            raise RuntimeError("sink did not start: %r %r" % (line, self.errors()))
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = "http://%s:%d/" % (self.host, self.port)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def errors(self):
        with open(self.err_path) as f:
            return f.read()

    def log_lines(self, kind="event"):
        return [l for l in self.log().splitlines() if l.split(" ", 2)[1:2] == [kind]]

    def events(self):
        """The events written to --out so far (structured JSON, one per line)."""
        try:
            with open(self.out_path) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        # Only complete lines: the sink may be writing the next one.
        return [json.loads(l) for l in text.split("\n")[:-1] if l]

    def wait_events(self, n, timeout=10.0):
        """Waits until at least `n` events arrived; returns them (maybe fewer on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.events()
            if len(ev) >= n or time.monotonic() >= deadline:
                return ev
            time.sleep(0.02)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after `timeout`; the exit code of the graceful stop or None."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                return None
        return self.proc.returncode

    def wait(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.stdout.close()
        self.stderr.close()
        self.tmp.cleanup()
