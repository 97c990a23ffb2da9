"""Headless Chromium driven over the DevTools protocol, Python 3 standard library only: start
Debian's chromium with a fresh profile on a loopback debugging port, speak WebSocket (RFC 6455,
client side: masked frames out, fragmented and large frames in) to one page, send commands and
keep every event it reports (console, exceptions, log entries, network requests). Every wait is
bounded; the browser is stopped by its pid."""

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request


def find_chromium():
    """The chromium binary, or None."""
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


class WebSocket:
    """A minimal WebSocket client for one ws://host:port/path URL."""

    def __init__(self, url, timeout=10.0):
        assert url.startswith("ws://"), url
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("WebSocket handshake refused: %r" % head[:200])

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("the browser closed the DevTools connection")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self, timeout):
        """One whole text message, or None when none came within `timeout` seconds."""
        self.sock.settimeout(timeout)
        parts = []
        try:
            while True:
                b0, b1 = self._take(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self._take(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self._take(8))[0]
                mask = self._take(4) if b1 & 0x80 else None
                payload = self._take(n)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                op = b0 & 0x0F
                if op == 0x9:  # ping
                    self._send_frame(0xA, payload)
                    continue
                if op == 0x8:
                    raise EOFError("the browser closed the DevTools connection")
                if op in (0x0, 0x1, 0x2):
                    parts.append(payload)
                    if b0 & 0x80:
                        return b"".join(parts).decode()
        except socket.timeout:
            if parts:  # a message cut in the middle would desynchronise the stream
                raise
            return None

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Browser:
    """A headless chromium with one page, driven over DevTools. Use as a context manager."""

    def __init__(self, binary, width=1400, height=1000):
        self.profile = tempfile.TemporaryDirectory(prefix="rc-chromium-")
        args = [binary, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps", "--mute-audio",
                "--user-data-dir=" + self.profile.name, "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", "--window-size=%d,%d" % (width, height),
                "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
        self.log_path = os.path.join(self.profile.name, "chromium.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.events = []
        self.ws = None
        self.next_id = 0
        try:
            self._connect()
        except Exception:
            self.close()
            raise

    def _connect(self):
        # chromium writes the port it got into DevToolsActivePort once it listens
        port_file = os.path.join(self.profile.name, "DevToolsActivePort")
        end = time.monotonic() + 30
        port = None
        while time.monotonic() < end and port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited (%d): %s" % (self.proc.returncode,
                                                                 self.chromium_log()))
            try:
                with open(port_file) as f:
                    port = int(f.readline().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.1)
        if port is None:
            raise RuntimeError("chromium did not open its DevTools port: " + self.chromium_log())
        page = None
        while time.monotonic() < end and page is None:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            page = pages[0] if pages else None
            if page is None:
                time.sleep(0.1)
        if page is None:
            raise RuntimeError("chromium has no page target")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])

    def chromium_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-2000:]

    def command(self, method, params=None, timeout=20.0):
        """Sends one command and returns its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        cid = self.next_id
        self.ws.send(json.dumps({"id": cid, "method": method, "params": params or {}}))
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("DevTools: no answer to %s within %.0f s" % (method, timeout))
            msg = self.ws.recv(left)
            if msg is None:
                continue
            m = json.loads(msg)
            if m.get("id") == cid:
                if "error" in m:
                    raise RuntimeError("DevTools %s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def drain(self, seconds=0.0):
        """Collects the events that arrive within `seconds`."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            msg = self.ws.recv(max(left, 0.01))
            if msg is not None:
                m = json.loads(msg)
                if "method" in m:
                    self.events.append(m)
            elif left <= 0:
                return

    def evaluate(self, expression, await_promise=False):
        """The value of a JavaScript expression in the page (JSON-able), raising on an
        exception."""
        r = self.command("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                              "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            raise RuntimeError("page: %s raised %s" % (expression[:80], r["exceptionDetails"]))
        return r["result"].get("value")

    def key(self, key, code, vk, text=None, shift=False):
        """One key pressed and released, as the keyboard sends it."""
        mods = 8 if shift else 0
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk,
                "nativeVirtualKeyCode": vk, "modifiers": mods}
        if text is not None:
            down["text"] = text
        self.command("Input.dispatchKeyEvent", down)
        self.command("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code,
                                                "windowsVirtualKeyCode": vk,
                                                "nativeVirtualKeyCode": vk, "modifiers": mods})

    def screenshot(self, path):
        r = self.command("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        if self.ws is not None:
            self.ws.close()
        # chromium's helper processes are in the session it was started in: its process
        # group, whose id is its pid (the group ends with them even when chromium is gone)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()
        self.profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
