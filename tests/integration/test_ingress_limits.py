"""Integration test: the real `ringcast serve` binary at its limits (issue 11).

- Host: an HTTP/1.1 request without Host (or with two) gets 400 naming the header; HTTP/1.0
  needs none.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Broker, Runner, check, eq  # noqa: E402

EVENT = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-type": "t", "ce-source": "/s",
         "Content-Type": "application/json"}


# ---- Host (RFC 9112 3.2) -------------------------------------------------------------------


def test_host():
    with Broker() as b:
        c = b.conn()
        c.send_request("POST", "/default/default", dict(EVENT, Host=None), "{}")
        r = c.response()
        eq(r.status, 400, "HTTP/1.1 without Host")
        eq(r.json(), {"error": "malformed HTTP request: HTTP/1.1 request without a Host header"},
           "400 body")
        eq(r.header("Connection"), "close", "closes")
        check(c.closed_by_peer(), "closed after 400")
        c.close()
        c = b.conn()
        c.send("POST /default/default HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n"
               "ce-specversion: 1.0\r\nce-id: 2\r\nce-type: t\r\nce-source: /s\r\n\r\n{}")
        r = c.response()
        eq(r.status, 400, "two Host headers")
        eq(r.json(), {"error": "malformed HTTP request: more than one Host header"}, "400 body")
        c.close()
        # HTTP/1.0 needs no Host; an empty Host is valid in HTTP/1.1.
        c = b.conn()
        c.send_request("POST", "/default/default", dict(EVENT, Host=None), "{}",
                       version="HTTP/1.0")
        eq(c.response().status, 202, "HTTP/1.0 without Host")
        c.close()
        eq(b.request("POST", "/default/default", dict(EVENT, Host=""), "{}").status, 202,
           "empty Host")
        eq(b.request("POST", "/default/default", EVENT, "{}").status, 202, "with Host")
        m = b.metrics()
        eq(m['ringcast_ingress_rejected_total{reason="malformed_http"}'], 2, "400s counted")


def main():
    Runner().run([test_host])


if __name__ == "__main__":
    main()
