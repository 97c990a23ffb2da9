#!/usr/bin/env python3
"""The dashboard in a real browser (issue 18): Debian's chromium, headless, driven over the
DevTools protocol (tests/integration/cdp.py, standard library only), loads `/` from the real
`ringcast serve` on free loopback ports while events flow to a trigger whose subscriber accepts
and to one whose subscriber answers 500. It checks what a user sees: the ingest and delivery
counters and rates appear and move between two snapshots of the page, the failing trigger is
marked in words (not by colour only), the keyboard reaches a trigger's link, keeps it across
updates and opens the trigger's page with Enter, pauses and resumes a trigger with its button
(Tab, Enter: the broker stops and restarts its deliveries), sorts the triggers table by a column
from the keyboard, shows a trigger's recent events on request (its filter's events only) and
replays a dead letter with its button (the subscriber gets that event again), and the page makes
no request outside the admin listener, throws no JavaScript error and logs no console error; an external fetch is refused by
its Content-Security-Policy. Screenshots go to the build tree (test-artifacts/). Skips (77) only
when chromium is not installed (scripts/setup.sh installs it)."""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rc_harness import BIN_DIR, RINGCAST, Broker, Runner, check, eq  # noqa: E402
from subscriber import Subscriber  # noqa: E402
import cdp  # noqa: E402

CONFIG = """apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  workers: 1
  shutdownTimeout: 500ms
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: default}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: good, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: t.ok}}
  subscriber: {uri: "%(ok)s/in"}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: failing, namespace: default}
spec:
  broker: default
  filter: {attributes: {type: t.bad}}
  subscriber: {uri: "%(bad)s/in"}
  delivery: {retry: 1, backoffDelay: PT0.01S, deadLetterSink: {uri: "%(ok)s/dead"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub, namespace: default}
spec:
  type: pubsub.ringcast
  version: v1
  metadata:
  - {name: broker, value: default}
---
apiVersion: ringcast.dev/v1alpha1
kind: DaprApp
metadata: {name: orders-app, namespace: default}
spec:
  endpoints: ["%(ok)s"]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders-sub, namespace: default}
spec:
  pubsubname: pubsub
  topic: orders
  routes: {default: /orders}
scopes: [orders-app]
"""

TOKEN = "dash-token-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + TOKEN}
TOKEN_CONFIG = CONFIG.replace("  shutdownTimeout: 500ms\n",
                              "  shutdownTimeout: 500ms\n  admin:\n    token: %s\n" % TOKEN)

ARTIFACTS = os.path.join(BIN_DIR, "..", "test-artifacts")

# What the page shows, read from its DOM: each table's rows by key, each cell's text.
SNAPSHOT_JS = """(() => {
  if (!document.body || !document.getElementById('errors')) return JSON.stringify({polls: 0});
  const rows = (id) => Object.fromEntries(Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
    .map((tr) => [tr.dataset.key, Object.assign({
      _ready: tr.dataset.ready, _notReady: tr.classList.contains('not-ready'),
      _spark: (tr.querySelector('svg.spark polyline') || {getAttribute: () => ''}).getAttribute('points')
    }, Object.fromEntries(Array.from(tr.cells).map((td) => [td.dataset.col, td.textContent])))]));
  return JSON.stringify({
    polls: Number(document.body.dataset.polls || 0),
    errors: document.getElementById('errors').textContent,
    conn: document.getElementById('conn').textContent,
    summary: document.getElementById('summary').textContent,
    brokers: rows('brokers'), triggers: rows('triggers'), subscriptions: rows('subscriptions'),
    readers: rows('readers')});
})()"""


def number(text):
    """A counter as the page prints it ("1,234"), or None for "–"."""
    text = text.replace(",", "").strip()
    return None if text in ("", "–") else float(text)


class Traffic:
    """Posts events to the broker from a thread until stopped: mostly t.ok, some t.bad."""

    def __init__(self, broker):
        self.b, self.stop_flag, self.sent = broker, threading.Event(), 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        end = time.monotonic() + 120  # bounded even if the test forgets to stop it
        while not self.stop_flag.is_set() and time.monotonic() < end:
            etype = "t.bad" if self.sent % 10 == 0 else "t.ok"
            try:
                r = self.b.request("POST", "/default/default",
                                   {"ce-id": str(self.sent), "ce-source": "/browser-test",
                                    "ce-type": etype, "ce-specversion": "1.0"}, b"x")
            except OSError:
                return  # the broker is gone: the test ends
            if r.status == 202:
                self.sent += 1
            time.sleep(0.02)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)


def wait_polls(br, n, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = json.loads(br.evaluate(SNAPSHOT_JS))
        if s["polls"] >= n:
            return s
        time.sleep(0.2)
    raise AssertionError("the page did not reach %d polls in %.0f s (last: %r)" % (n, timeout, s))


def wait_for(br, expression, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if br.evaluate(expression):
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def tab_to(br, selector, limit=60):
    """Presses Tab until the element `selector` has the focus (at most `limit` presses)."""
    for _ in range(limit):
        br.key("Tab", "Tab", 9)
        if br.evaluate("document.activeElement === document.querySelector(%s)" %
                       json.dumps(selector)):
            return
    raise AssertionError("Tab never reached %s" % selector)


def check_clean(br, admin_origin):
    """No exception, no console or log error, no request outside the admin listener."""
    br.drain(0.2)
    bad = []
    for e in br.events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.exceptionThrown":
            bad.append("exception: %s" % p["exceptionDetails"])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            bad.append("console.%s: %s" % (p["type"], p.get("args")))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            bad.append("log: %s %s" % (p["entry"]["text"], p["entry"].get("url", "")))
    eq(bad, [], "the page's errors")
    urls = [e["params"]["request"]["url"] for e in br.events
            if e["method"] == "Network.requestWillBeSent"]
    check(len(urls) >= 5, "requests were recorded: %r" % urls)
    outside = [u for u in urls if not u.startswith(admin_origin + "/")]
    eq(outside, [], "requests outside the admin listener")
    return urls


def test_dashboard_in_chromium():
    binary = cdp.find_chromium()
    if binary is None:
        print("SKIP: chromium is not installed (scripts/setup.sh installs Debian's chromium); "
              "the dashboard's browser test needs it")
        sys.exit(77)
    os.makedirs(ARTIFACTS, exist_ok=True)
    ok = Subscriber(lambda _i, _r: (200, {}, b"", 0.003))
    bad = Subscriber(lambda _i, _r: (500, {}, b"nope", 0.0))
    traffic, group = None, None
    try:
        with Broker(TOKEN_CONFIG % {"ok": ok.url, "bad": bad.url}) as b, \
                cdp.Browser(binary, width=1600) as br:
            origin = "http://127.0.0.1:%d" % b.admin_port
            traffic = Traffic(b)
            # a consumer group member, for the table of groups and local readers
            group = subprocess.Popen([RINGCAST, "tail", "default/default", "--group", "dash-g",
                                      "--timeout", "60s", "--ring-prefix", b.prefix],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for domain in ("Runtime", "Log", "Network", "Page"):
                br.command(domain + ".enable")
            br.command("Page.navigate", {"url": origin + "/"})
            s1 = wait_polls(br, 3)
            s2 = wait_polls(br, s1["polls"] + 2)
            check_snapshots(s1, s2)

            # the keyboard: Tab reaches the failing trigger's link, the link keeps the focus
            # while the table updates, Enter opens the trigger's page
            link = '#triggers tr[data-key="default/failing"] a'
            tab_to(br, link)
            n = wait_polls(br, s2["polls"] + 2)["polls"]
            check(n > s2["polls"], "the page kept polling")
            check(br.evaluate("document.activeElement === document.querySelector(%s)" %
                              json.dumps(link)), "the focused link survives the updates")
            check(br.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none",
                  "a focused link shows a focus ring")
            br.screenshot(os.path.join(ARTIFACTS, "dashboard.png"))
            br.key("Enter", "Enter", 13, text="\r")
            check_trigger_page(br)
            br.screenshot(os.path.join(ARTIFACTS, "dashboard-trigger.png"))
            # back with the keyboard: the focus returns to the link that opened the page
            tab_to(br, "#back")
            br.key("Enter", "Enter", 13, text="\r")
            wait_for(br, "location.hash === '#/' && !document.getElementById('overview-view')"
                     ".hidden", "the overview again")
            check(br.evaluate("document.activeElement === document.querySelector(%s)" %
                              json.dumps(link)), "the focus is back on the trigger's link")
            check_sort(br)
            # writes, and events' data, need the token from a browser (typed once, page memory)
            br.evaluate("document.getElementById('d-token').value = %s" % json.dumps(TOKEN))
            check_sample(br)
            check_pause(br, b)
            check_replay(br, bad)
            # a trigger that does not exist (a stale bookmark): said so, no error
            br.evaluate("location.hash = '#/trigger/default/nope'")
            wait_for(br, "document.getElementById('d-ready').textContent.includes("
                     "'Not in the latest overview')", "the page of an unknown trigger")
            # a Dapr subscription's page: its pub/sub, topic, app, routes
            br.evaluate("document.querySelector('#subscriptions tbody a').click()")
            wait_for(br, "document.getElementById('d-body').textContent.includes('Topic')",
                     "the subscription's page")
            body = br.evaluate("document.getElementById('d-body').innerText")
            for want in ("pubsub", "orders", "orders-app", "default → /orders", "Consumer group"):
                check(want in body, "subscription page shows %r: %r" % (want, body))
            eq(br.evaluate("document.getElementById('d-title').textContent"),
               "Dapr subscription default/orders-app:orders-sub", "its title")
            br.evaluate("location.hash = '#/trigger/%E0%A4%A/x'")  # a malformed escape
            wait_for(br, "!document.getElementById('overview-view').hidden", "the overview")
            urls = check_clean(br, origin)
            check(origin + "/apis/ringcast.dev/v1alpha1/overview" in urls, "it polls the overview")
            check_csp(br)
            traffic.stop()
            check(traffic.sent > 50, "traffic flowed (%d events)" % traffic.sent)
            # the broker goes away: the page says so, without a script error, and keeps trying
            b.stop()
            wait_for(br, "document.getElementById('conn').textContent.includes("
                     "'admin API not reachable')", "the page to notice the broker is gone")
            br.drain(1.5)
            eq([e["params"]["exceptionDetails"] for e in br.events
                if e["method"] == "Runtime.exceptionThrown"], [], "exceptions")
            eq(br.evaluate("document.getElementById('errors').textContent"), "", "page errors")
    finally:
        if traffic is not None:
            traffic.stop()
        if group is not None:
            group.terminate()
            try:
                group.wait(10)
            except subprocess.TimeoutExpired:
                group.kill()
                group.wait(5)
        ok.close()
        bad.close()


def test_read_only_without_token_in_chromium():
    """Without spec.admin.token the page is read-only, even on loopback (a browser is no proof
    of the operator: docs/operations.md, "Who may write"): no Pause button, the note says why,
    no Replay buttons, and a trigger's recent events come without their data."""
    binary = cdp.find_chromium()
    if binary is None:
        return  # said by the first test
    ok = Subscriber()
    bad = Subscriber(lambda _i, _r: (500, {}, b"nope", 0.0))
    try:
        with Broker(CONFIG % {"ok": ok.url, "bad": bad.url}) as b, cdp.Browser(binary) as br:
            for i in range(3):
                for typ in ("t.ok", "t.bad"):
                    r = b.request("POST", "/default/default",
                                  {"ce-id": "%s-%d" % (typ, i), "ce-source": "/browser-test",
                                   "ce-type": typ, "ce-specversion": "1.0",
                                   "Content-Type": "text/plain"}, b"x")
                    eq(r.status, 202, "publish")
            for domain in ("Runtime", "Page"):
                br.command(domain + ".enable")
            br.command("Page.navigate",
                       {"url": "http://127.0.0.1:%d/#/trigger/default/good" % b.admin_port})
            wait_for(br, "!!document.getElementById('d-readonly') && "
                     "!document.getElementById('d-readonly').hidden", "the read-only note")
            eq(br.evaluate("document.getElementById('d-actions').hidden"), True, "no Pause")
            check("read-only" in br.evaluate("document.getElementById('conn').textContent"),
                  "the header says read-only")
            check("spec.admin.token" in br.evaluate(
                "document.getElementById('d-readonly').textContent"), "the note says why")
            br.evaluate("document.getElementById('d-sample-btn').click()")
            wait_for(br, "document.querySelectorAll('#sample tbody tr').length >= 1", "a sample")
            cells = json.loads(br.evaluate("JSON.stringify(Array.from(document.querySelectorAll("
                                           "'#sample tbody tr pre.data')).map((p) => "
                                           "p.textContent))"))
            check(cells and all("not shown" in c for c in cells), "no data: %r" % cells)
            br.evaluate("location.hash = '#/trigger/default/failing'")
            wait_for(br, "document.querySelectorAll('#deadletters tbody tr').length >= 1",
                     "the dead letters")
            eq(br.evaluate("Array.from(document.querySelectorAll('#deadletters button.replay'))"
                           ".every((b) => b.hidden)"), True, "no Replay buttons")
            eq(good_status(b)["paused"], False, "nothing paused")
            eq([e["params"]["exceptionDetails"] for e in br.events
                if e["method"] == "Runtime.exceptionThrown"], [], "exceptions")
            eq(br.evaluate("document.getElementById('errors').textContent"), "", "page errors")
    finally:
        ok.close()
        bad.close()


def test_pause_with_token_in_chromium():
    """With spec.admin.token: the page asks for the token (a password field), refuses to send
    without one, shows the broker's 403 for a wrong one, and pauses with the right one, sent as
    a bearer token; nothing is kept in the browser's storage."""
    binary = cdp.find_chromium()
    if binary is None:
        return  # said by the first test
    ok = Subscriber()
    config = TOKEN_CONFIG
    try:
        with Broker(config % {"ok": ok.url, "bad": ok.url}) as b, cdp.Browser(binary) as br:
            for domain in ("Runtime", "Page"):
                br.command(domain + ".enable")
            br.command("Page.navigate",
                       {"url": "http://127.0.0.1:%d/#/trigger/default/good" % b.admin_port})
            wait_for(br, "!!document.getElementById('d-actions') && "
                     "!document.getElementById('d-actions').hidden && "
                     "!document.getElementById('d-token-row').hidden", "the token field")
            eq(br.evaluate("document.getElementById('d-token').type"), "password", "its type")
            check("with the admin token" in br.evaluate(
                "document.getElementById('conn').textContent"), "the header says so")
            msg = "document.getElementById('d-action-msg').textContent"
            br.evaluate("document.getElementById('d-pause').click()")
            wait_for(br, msg + ".includes('enter the admin token')", "asks for the token")
            eq(br.evaluate("document.activeElement.id"), "d-token", "the focus is on the field")
            br.command("Input.insertText", {"text": "not-the-right-token"})
            br.evaluate("document.getElementById('d-pause').click()")
            wait_for(br, msg + ".includes('HTTP 403')", "the broker's refusal")
            eq(good_status(b)["paused"], False, "a wrong token pauses nothing")
            br.evaluate("document.getElementById('d-token').value = ''")
            br.evaluate("document.getElementById('d-token').focus()")
            br.command("Input.insertText", {"text": TOKEN})
            br.evaluate("document.getElementById('d-pause').click()")
            wait_for(br, "document.getElementById('d-pause').textContent === 'Resume'", "paused")
            eq(good_status(b)["paused"], True, "paused with the token")
            eq(br.evaluate("localStorage.length + sessionStorage.length + document.cookie.length"),
               0, "nothing stored")
            br.evaluate("document.getElementById('d-pause').click()")
            wait_for(br, "document.getElementById('d-pause').textContent === 'Pause'", "resumed")
            eq(good_status(b)["paused"], False, "resumed with the token")
            eq([e["params"]["exceptionDetails"] for e in br.events
                if e["method"] == "Runtime.exceptionThrown"], [], "exceptions")
            eq(br.evaluate("document.getElementById('errors').textContent"), "", "page errors")
    finally:
        ok.close()


def spark_rises(points):
    """A sparkline (SVG polyline points, y 19 = 0/s) with several points, one above zero."""
    pts = [tuple(map(float, p.split(","))) for p in (points or "").split()]
    return len(pts) >= 3 and any(y < 18.5 for _x, y in pts)


def check_snapshots(s1, s2):
    for s in (s1, s2):
        eq(s["errors"], "", "errors shown on the page")
        check(s["conn"].startswith("live"), "connected: %r" % s["conn"])
    b1, b2 = s1["brokers"]["default/default"], s2["brokers"]["default/default"]
    check(number(b2["events"]) > number(b1["events"]),
          "broker events grow: %s -> %s" % (b1["events"], b2["events"]))
    check((number(b2["rate"]) or 0) > 0, "an ingest rate: %r" % b2["rate"])
    check(spark_rises(b2["_spark"]), "an ingest sparkline: %r" % b2["_spark"])
    check("%" in b2["fill"], "ring fill: %r" % b2["fill"])
    eq(b2["_ready"], "True", "broker ready")
    g1, g2 = s1["triggers"]["default/good"], s2["triggers"]["default/good"]
    check(number(g2["delivered"]) > number(g1["delivered"]),
          "good's delivered grows: %s -> %s" % (g1["delivered"], g2["delivered"]))
    check((number(g2["rate"]) or 0) > 0, "good's delivery rate: %r" % g2["rate"])
    check(spark_rises(g2["_spark"]), "a delivery sparkline: %r" % g2["_spark"])
    check(g2["p50"].endswith("ms") and g2["p99"].endswith("ms"), "latency: %r" % g2)
    eq((g2["_ready"], g2["_notReady"]), ("True", False), "good is ready")
    check("Ready" in g2["ready"], "good says Ready: %r" % g2["ready"])
    f2 = s2["triggers"]["default/failing"]
    eq((f2["_ready"], f2["_notReady"]), ("False", True), "failing is marked")
    check("NOT READY" in f2["ready"] and "DeliveryFailed" in f2["ready"],
          "failing is marked in words: %r" % f2["ready"])
    check(number(f2["failed"]) > 0 and number(f2["retried"]) > 0, "failing's counters: %r" % f2)
    check("HTTP 500" in f2["lastError"], "failing's last error: %r" % f2["lastError"])
    check("not ready" in s2["summary"], "the summary counts it: %r" % s2["summary"])
    sub = s2["subscriptions"]["default/orders-app:orders-sub"]
    eq(sub["where"], "pubsub/orders", "the subscription's pub/sub and topic")
    check(sub["_ready"] in ("Unknown", "True"), "the subscription's Ready: %r" % sub)
    grp = s2["readers"].get("default/default|group|dash-g")
    check(grp is not None, "the consumer group is listed: %r" % s2["readers"])
    eq(grp["mode"], "1 member", "its members")


def check_trigger_page(br):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if br.evaluate("location.hash") == "#/trigger/default/failing" and \
                "HTTP 500" in br.evaluate("document.getElementById('d-body').textContent"):
            break
        time.sleep(0.1)
    page = br.evaluate("""JSON.stringify({
      overviewHidden: document.getElementById('overview-view').hidden,
      title: document.getElementById('d-title').textContent,
      focus: document.activeElement.id,
      ready: document.getElementById('d-ready').textContent,
      body: document.getElementById('d-body').innerText,
      raw: document.getElementById('d-json').textContent})""")
    page = json.loads(page)
    eq(page["overviewHidden"], True, "the overview is hidden on the trigger page")
    eq(page["title"], "Trigger default/failing", "title")
    eq(page["focus"], "d-title", "the focus moves to the page's title")
    check("NOT READY" in page["ready"] and "HTTP 500" in page["ready"], page["ready"])
    for want in ('attributes(type="t.bad")', "Delivery policy", "Retries", "PT0.01S",
                 "Last error", "HTTP 500", "Failed"):
        check(want in page["body"], "trigger page shows %r: %r" % (want, page["body"]))
    eq(json.loads(page["raw"])["metadata"]["name"], "failing", "the raw object")
    # the recent outcomes: the subscriber's 500s, with their event ids (every 10th is t.bad)
    wait_for(br, "document.querySelectorAll('#outcomes tbody tr').length >= 2", "recent outcomes")
    rows = json.loads(br.evaluate("JSON.stringify(Array.from(document.querySelectorAll("
                                  "'#outcomes tbody tr')).map((tr) => Array.from(tr.cells)"
                                  ".map((td) => td.textContent)))"))
    for row in rows:
        check("HTTP 500" in row[1] and row[1].startswith("✗") and int(row[3]) % 10 == 0 and
              row[2].endswith("s"), "an outcome row: %r" % row)


def good_status(b):
    r = b.request("GET", "/apis/eventing.knative.dev/v1/namespaces/default/triggers/good",
                  admin=True)
    eq(r.status, 200, "GET good")
    return r.json()["status"]


def check_pause(br, b):
    """Pause and resume the trigger `good` from its page with the keyboard (the token typed in
    the page's field): the button says what it does, the broker has it paused (its deliveries
    stop while events flow), the overview marks it paused, and resume delivers."""
    br.evaluate("location.hash = '#/trigger/default/good'")
    wait_for(br, "!document.getElementById('d-actions').hidden && "
             "document.getElementById('d-pause').textContent === 'Pause'", "the Pause button")
    eq(br.evaluate("document.getElementById('d-token-row').hidden"), False, "the token field")
    check("with the admin token" in br.evaluate("document.getElementById('conn').textContent"),
          "the header says writes take the token")
    tab_to(br, "#d-pause")
    br.key("Enter", "Enter", 13, text="\r")
    wait_for(br, "document.getElementById('d-pause').textContent === 'Resume' && "
             "document.getElementById('d-ready').textContent.includes('PAUSED')", "paused")
    check("Paused" in br.evaluate("document.getElementById('d-action-msg').textContent"),
          "the page says paused")
    eq(good_status(b)["paused"], True, "the broker has it paused")
    time.sleep(0.3)  # attempts under way finish
    before = good_status(b)["stats"]["delivered"]
    time.sleep(1.2)
    st = good_status(b)
    eq(st["stats"]["delivered"], before, "no deliveries while paused (events flow)")
    check(st["stats"]["lagEvents"] > 0, "its lag grows: %r" % st["stats"])
    br.screenshot(os.path.join(ARTIFACTS, "dashboard-paused.png"))
    check(br.evaluate("document.activeElement.id") == "d-pause", "the button keeps the focus")
    br.key("Enter", "Enter", 13, text="\r")
    wait_for(br, "document.getElementById('d-pause').textContent === 'Pause'", "resumed")
    eq(good_status(b)["paused"], False, "the broker resumed it")
    end = time.monotonic() + 10
    while time.monotonic() < end and good_status(b)["stats"]["delivered"] <= before:
        time.sleep(0.1)
    check(good_status(b)["stats"]["delivered"] > before, "it delivers again")
    # paused again from the overview's point of view: marked as paused, not as failing
    eq(b.request("POST", "/apis/ringcast.dev/v1alpha1/namespaces/default/triggers/good/pause",
                 AUTH, admin=True).status, 200, "pause over HTTP")
    br.evaluate("location.hash = '#/'")
    wait_for(br, "(document.querySelector('#triggers tr[data-key=\"default/good\"]') || {dataset: {}})"
             ".dataset.ready === 'Paused'", "the overview marks it paused")
    row = json.loads(br.evaluate(SNAPSHOT_JS))["triggers"]["default/good"]
    check("PAUSED" in row["ready"] and not row["_notReady"], "paused in words: %r" % row)
    check("1 paused" in br.evaluate("document.getElementById('summary').textContent"), "summary")
    eq(b.request("POST", "/apis/ringcast.dev/v1alpha1/namespaces/default/triggers/good/resume",
                 AUTH, admin=True).status, 200, "resume over HTTP")


def row_order(br, table):
    return json.loads(br.evaluate("JSON.stringify(Array.from(document.querySelectorAll("
                                  "'#%s tbody tr')).map((tr) => tr.dataset.key))" % table))


def check_sort(br):
    """The triggers table sorts by a column from the keyboard: Tab to its heading's button,
    Enter sorts ascending (aria-sort says so), Enter again descending; the button keeps the
    focus while the rows move and the numbers update."""
    br.evaluate("location.hash = '#/'")
    wait_for(br, "!document.getElementById('overview-view').hidden", "the overview")
    button = '#triggers th button[data-col="failed"]'
    th = "document.querySelector(%s).parentNode.getAttribute('aria-sort')" % json.dumps(button)
    tab_to(br, button)
    br.key("Enter", "Enter", 13, text="\r")
    wait_for(br, th + " === 'ascending'", "sorted ascending")
    wait_for(br, "JSON.stringify(Array.from(document.querySelectorAll('#triggers tbody tr'))"
             ".map((tr) => tr.dataset.key)) === '[\"default/good\",\"default/failing\"]'",
             "fewest failures first")
    br.key("Enter", "Enter", 13, text="\r")
    wait_for(br, th + " === 'descending'", "sorted descending")
    wait_for(br, "document.querySelector('#triggers tbody tr').dataset.key === 'default/failing'",
             "most failures first")
    n = json.loads(br.evaluate(SNAPSHOT_JS))["polls"]
    wait_polls(br, n + 2)
    eq(row_order(br, "triggers"), ["default/failing", "default/good"], "the order holds")
    check(br.evaluate("document.activeElement === document.querySelector(%s)" %
                      json.dumps(button)), "the heading's button keeps the focus")
    row = json.loads(br.evaluate(SNAPSHOT_JS))["triggers"]["default/good"]
    check(row["rp50"].endswith("s") and row["rp99"].endswith("s"),
          "p50/p99 of the last 60 s: %r" % row)


def check_sample(br):
    """On the good trigger's page, the button (Tab, Enter) shows its recent events: only those
    its filter matches (type t.ok), newest first, with their data (loopback, no token)."""
    br.evaluate("location.hash = '#/trigger/default/good'")
    wait_for(br, "!document.getElementById('d-sample').hidden", "the sample's button")
    eq(br.evaluate("document.getElementById('sample').hidden"), True, "nothing before asked")
    tab_to(br, "#d-sample-btn")
    br.key("Enter", "Enter", 13, text="\r")
    wait_for(br, "document.querySelectorAll('#sample tbody tr').length >= 5", "the sample")
    rows = json.loads(br.evaluate("JSON.stringify(Array.from(document.querySelectorAll("
                                  "'#sample tbody tr')).map((tr) => Array.from(tr.cells)"
                                  ".map((td) => td.textContent)))"))
    check(len(rows) <= 20, "at most 20: %d" % len(rows))
    for r in rows:
        check(r[2] == "t.ok" and r[3] == "/browser-test" and r[4] == "x" and r[0],
              "a sampled event of good's filter: %r" % r)
    ids = [int(r[1]) for r in rows]
    eq(ids, sorted(ids, reverse=True), "newest first")
    check("newest first" in br.evaluate("document.getElementById('d-sample-msg').textContent"),
          "the message")
    eq(br.evaluate("document.getElementById('d-sample-btn').textContent"), "Refresh", "label")
    eq(br.evaluate("document.activeElement.id"), "d-sample-btn", "the button keeps the focus")
    br.screenshot(os.path.join(ARTIFACTS, "dashboard-sample.png"))


def check_replay(br, bad):
    """On the failing trigger's page its dead letters are listed; Tab to a Replay button, Enter:
    the broker queues it and the (still failing) subscriber gets that event again."""
    br.evaluate("location.hash = '#/trigger/default/failing'")
    wait_for(br, "document.querySelectorAll('#deadletters tbody tr').length >= 1 && "
             "!document.querySelector('#deadletters tbody button.replay').hidden",
             "the dead letters with their Replay buttons")
    eid = br.evaluate("document.querySelector('#deadletters tbody button.replay').dataset.id")
    before = bad.ids().count(eid)
    check(before >= 1, "the subscriber had %s: %r" % (eid, before))
    tab_to(br, "#deadletters tbody button.replay")
    br.key("Enter", "Enter", 13, text="\r")
    wait_for(br, "document.getElementById('d-replay-msg').textContent.includes('queued')",
             "the replay accepted")
    end = time.monotonic() + 10
    while time.monotonic() < end and bad.ids().count(eid) <= before:
        time.sleep(0.1)
    check(bad.ids().count(eid) > before, "the subscriber got event %s again" % eid)
    br.screenshot(os.path.join(ARTIFACTS, "dashboard-replay.png"))


def check_csp(br):
    """An external fetch is refused before it leaves the browser."""
    directive = br.evaluate("""new Promise((resolve) => {
      document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective),
                                {once: true});
      fetch('http://192.0.2.1/x').catch(() => {});
      setTimeout(() => resolve('no violation'), 3000);
    })""", await_promise=True)
    eq(directive, "connect-src", "the CSP refuses an external request")


if __name__ == "__main__":
    Runner().run([test_dashboard_in_chromium, test_read_only_without_token_in_chromium,
                  test_pause_with_token_in_chromium])
