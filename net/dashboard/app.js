// The dashboard (docs/dashboard.md). Every second it fetches the admin API's Overview (every
// Broker, Trigger and Dapr Subscription object, and the monotonic time of the sample), turns
// counters into rates between two samples, keeps the last 60 rates for the sparklines and
// updates the tables in place: rows are keyed by namespace/name and only changed text is
// rewritten, so a link that has the keyboard focus keeps it. Everything is built with DOM calls
// and textContent (never innerHTML), so names and error messages cannot inject markup.
"use strict";

(function () {
  const OVERVIEW = "/apis/ringcast.dev/v1alpha1/overview";
  const PERIOD_MS = 1000;
  const TIMEOUT_MS = 3000;
  const HISTORY = 60;
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    ov: null, // the latest Overview
    prev: new Map(), // key -> {t, v}: the counter at the previous sample
    rates: new Map(), // key -> latest rate (per second) or null
    hist: new Map(), // key -> array of the last HISTORY rates
    polls: 0,
    detail: null, // {key, obj}: the open page's object as a one-object GET serves it
  };

  // ---- errors: shown on the page (and read by the browser test) ----------------------------

  function reportError(text) {
    const ul = document.getElementById("errors");
    const li = document.createElement("li");
    li.textContent = "Dashboard error: " + text;
    ul.appendChild(li);
    ul.hidden = false;
    document.body.dataset.errors = String(ul.children.length);
  }
  window.addEventListener("error", (e) => reportError(e.message + " (" + e.filename + ":" + e.lineno + ")"));
  window.addEventListener("unhandledrejection", (e) => reportError(String(e.reason)));

  // ---- formatting -----------------------------------------------------------------------------

  function num(v) {
    return typeof v === "number" ? v.toLocaleString("en-US") : "–";
  }

  function rate(v) {
    if (v === null || v === undefined) return "–";
    if (v === 0) return "0";
    return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US");
  }

  function bytes(v) {
    if (typeof v !== "number") return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
  }

  function seconds(s) {
    if (typeof s !== "number" || s < 0) return "–";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms";
    return s.toFixed(2) + " s";
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (!state.ov || isNaN(t)) return "";
    const s = Math.max(0, Math.round((state.ov.timeMs - t) / 1000));
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }

  function outcome(o) {
    return o ? o.message + " (" + ago(o.time) + ")" : "";
  }

  function ready(obj) {
    const c = ((obj.status || {}).conditions || []).find((x) => x.type === "Ready");
    return c || { status: "Unknown", reason: "NoCondition", message: "no Ready condition" };
  }

  // Paused by an operator (Ready False, reason Paused): not a failure, marked apart.
  function isPaused(c) {
    return c.status === "False" && c.reason === "Paused";
  }

  // The text marker: a failing object is marked in words, not by colour alone.
  function readyText(c) {
    if (isPaused(c)) return "‖ PAUSED";
    if (c.status === "True") return "✓ Ready";
    if (c.status === "False") return "✗ NOT READY";
    return "? Unknown";
  }

  function key(obj) {
    return obj.metadata.namespace + "/" + obj.metadata.name;
  }

  // ---- rates and their history ------------------------------------------------------------------

  // Records counter `v` of `k` at sample time `t` (seconds); the rate since the previous sample,
  // or null on the first sample and when the counter went back (a restarted broker).
  function track(k, v, t) {
    const p = state.prev.get(k);
    let r = null;
    if (p && t > p.t && v >= p.v) r = (v - p.v) / (t - p.t);
    else if (p && t === p.t) r = state.rates.has(k) ? state.rates.get(k) : null;
    state.prev.set(k, { t: t, v: v });
    if (!p || t !== p.t) {
      const h = state.hist.get(k) || [];
      h.push(r === null ? 0 : r);
      if (h.length > HISTORY) h.shift();
      state.hist.set(k, h);
    }
    state.rates.set(k, r);
    return r;
  }

  // ---- DOM helpers --------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const a in attrs || {}) e.setAttribute(a, attrs[a]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function sparkline(label) {
    const s = document.createElementNS(SVG, "svg");
    s.setAttribute("class", "spark");
    s.setAttribute("viewBox", "0 0 90 20");
    s.setAttribute("role", "img");
    s.setAttribute("aria-label", label);
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", "0");
    base.setAttribute("x2", "90");
    base.setAttribute("y1", "19.5");
    base.setAttribute("y2", "19.5");
    s.appendChild(base);
    s.appendChild(document.createElementNS(SVG, "polyline"));
    return s;
  }

  function drawSpark(svg, h, label) {
    const max = Math.max(1, ...h);
    const step = 90 / (HISTORY - 1);
    const x0 = 90 - step * (h.length - 1);
    const pts = h.map((v, i) => (x0 + i * step).toFixed(1) + "," + (19 - (v / max) * 18).toFixed(1));
    svg.lastChild.setAttribute("points", pts.join(" "));
    svg.setAttribute("aria-label", label + ", last " + h.length + " s, peak " + rate(Math.max(0, ...h)) + "/s");
  }

  // Keeps the rows of `table`'s body in the order of `items`: a row is built once per key
  // (`build` returns it with one cell per column, each with data-col) and updated in place.
  function syncRows(table, emptyId, items, keyOf, build, update) {
    const body = table.tBodies[0];
    const rows = new Map();
    for (const tr of Array.from(body.rows)) rows.set(tr.dataset.key, tr);
    let after = null;
    for (const it of items) {
      const k = keyOf(it);
      let tr = rows.get(k);
      if (tr) rows.delete(k);
      else tr = build(it, k);
      update(tr, it, k);
      const want = after ? after.nextSibling : body.firstChild;
      if (want !== tr) body.insertBefore(tr, want);
      after = tr;
    }
    for (const tr of rows.values()) tr.remove();
    document.getElementById(emptyId).hidden = items.length > 0;
  }

  function row(k, cols) {
    const tr = el("tr");
    tr.dataset.key = k;
    for (const c of cols) {
      const td = el("td");
      td.dataset.col = c.name;
      if (c.cls) td.className = c.cls;
      tr.appendChild(td);
    }
    return tr;
  }

  function cell(tr, name) {
    return tr.querySelector('td[data-col="' + name + '"]');
  }

  function setReady(td, c) {
    if (!td.firstChild) {
      td.appendChild(el("span"));
      td.appendChild(el("span", { class: "reason" }));
    }
    td.className = "ready-" + (isPaused(c) ? "Paused" : c.status);
    setText(td.firstChild, readyText(c));
    setText(td.lastChild, c.status === "True" ? "" : c.reason);
    td.title = c.message;
  }

  // ---- brokers ----------------------------------------------------------------------------------

  const BROKER_COLS = [
    { name: "name" }, { name: "ready" }, { name: "rate", cls: "num" }, { name: "spark" },
    { name: "events", cls: "num" }, { name: "fill" }, { name: "readers", cls: "num" },
    { name: "storage" }, { name: "refused", cls: "num" }, { name: "holder" },
  ];

  function buildBroker(b, k) {
    const tr = row(k, BROKER_COLS);
    cell(tr, "name").textContent = k;
    cell(tr, "spark").appendChild(sparkline("events accepted per second"));
    const f = cell(tr, "fill");
    const bar = el("span", { class: "fill", "aria-hidden": "true" });
    bar.appendChild(el("span"));
    f.appendChild(bar);
    f.appendChild(el("span"));
    return tr;
  }

  function updateBroker(tr, b, k) {
    const ring = (b.status && b.status.ring) || {};
    const c = ready(b);
    tr.classList.toggle("not-ready", c.status === "False");
    tr.dataset.ready = c.status;
    setReady(cell(tr, "ready"), c);
    const r = state.rates.get("broker:" + k);
    setText(cell(tr, "rate"), rate(r));
    drawSpark(cell(tr, "spark").firstChild, state.hist.get("broker:" + k) || [], "events accepted per second");
    setText(cell(tr, "events"), num(ring.events));
    const fill = typeof ring.fill === "number" ? ring.fill : 0;
    const f = cell(tr, "fill");
    f.firstChild.firstChild.style.width = (fill * 100).toFixed(1) + "%";
    f.firstChild.classList.toggle("high", fill > 0.8);
    setText(f.lastChild, (fill * 100).toFixed(1) + "% of " + bytes(ring.capacityBytes));
    setText(cell(tr, "readers"), num(ring.readers) + " (" + num(ring.losslessReaders) + " lossless)");
    const st = ring.storage || {};
    setText(cell(tr, "storage"), (st.type || "memory") + (st.durability ? ", " + st.durability : "") +
      (st.fileBytes ? ", " + bytes(st.fileBytes) : ""));
    setText(cell(tr, "refused"), num(ring.refused));
    const h = ring.heldBackBy;
    // the slowest reader is always named; it holds the ring back only when it is behind
    setText(cell(tr, "holder"), h && (h.lagEvents > 0 || h.lagBytes > 0)
      ? (h.trigger || h.reader) + " (" + num(h.lagEvents) + " events behind)" : "");
  }

  // ---- triggers and subscriptions -------------------------------------------------------------------

  const DELIVERY_COLS = [
    { name: "name" }, { name: "where" }, { name: "ready" }, { name: "subscriber", cls: "uri" },
    { name: "rate", cls: "num" }, { name: "spark" }, { name: "delivered", cls: "num" },
    { name: "failed", cls: "num" }, { name: "retried", cls: "num" },
    { name: "deadLettered", cls: "num" }, { name: "dropped", cls: "num" },
    { name: "lag", cls: "num" }, { name: "inflight", cls: "num" },
    { name: "p50", cls: "num" }, { name: "p99", cls: "num" },
    { name: "rp50", cls: "num" }, { name: "rp99", cls: "num" }, { name: "lastError", cls: "wrap" },
  ];

  function buildDelivery(kind) {
    return function (o, k) {
      const tr = row(k, DELIVERY_COLS);
      const a = el("a", { href: "#/" + kind + "/" + encodeURIComponent(o.metadata.namespace) + "/" +
        encodeURIComponent(o.metadata.name) }, k);
      cell(tr, "name").appendChild(a);
      cell(tr, "spark").appendChild(sparkline("events delivered per second"));
      return tr;
    };
  }

  function updateDelivery(kind) {
    return function (tr, o, k) {
      const st = o.status || {};
      const s = st.stats || {};
      const c = ready(o);
      tr.classList.toggle("not-ready", c.status === "False" && !isPaused(c));
      tr.classList.toggle("paused", isPaused(c));
      tr.dataset.ready = isPaused(c) ? "Paused" : c.status;
      setText(cell(tr, "where"), kind === "trigger" ? o.spec.broker : o.spec.pubsubname + "/" + o.spec.topic);
      setReady(cell(tr, "ready"), c);
      setText(cell(tr, "subscriber"), st.subscriberUri || "");
      cell(tr, "subscriber").title = st.subscriberUri || "";
      setText(cell(tr, "rate"), rate(state.rates.get(kind + ":" + k)));
      drawSpark(cell(tr, "spark").firstChild, state.hist.get(kind + ":" + k) || [], "events delivered per second");
      for (const f of ["delivered", "failed", "retried", "deadLettered", "dropped", "inflight"]) {
        setText(cell(tr, f), num(s[f]));
      }
      setText(cell(tr, "lag"), num(s.lagEvents));
      const l = st.deliveryLatency;
      setText(cell(tr, "p50"), l ? seconds(l.p50Seconds) : "–");
      setText(cell(tr, "p99"), l ? seconds(l.p99Seconds) : "–");
      const rl = st.recentLatency;
      setText(cell(tr, "rp50"), rl ? seconds(rl.p50Seconds) : "–");
      setText(cell(tr, "rp99"), rl ? seconds(rl.p99Seconds) : "–");
      setText(cell(tr, "lastError"), outcome(st.lastError));
    };
  }

  // ---- sorting the triggers and subscriptions tables by a column ----------------------------------

  // Each heading (but the sparkline's) holds a button: Enter, Space or a click sorts by that
  // column, again the other way. The heading says it with aria-sort; ties keep the name order.
  const sorting = { triggers: null, subscriptions: null }; // {col, dir: 1 | -1}

  const READY_ORDER = { False: 0, Paused: 1, Unknown: 2, True: 3 };

  function sortValue(kind, o, col) {
    const st = o.status || {};
    const s = st.stats || {};
    const lat = (l, q) => (l ? l[q] : -1);
    switch (col) {
      case "name": return key(o);
      case "where": return kind === "trigger" ? o.spec.broker : o.spec.pubsubname + "/" + o.spec.topic;
      case "ready": { const c = ready(o); return READY_ORDER[isPaused(c) ? "Paused" : c.status]; }
      case "subscriber": return st.subscriberUri || "";
      case "rate": { const r = state.rates.get(kind + ":" + key(o)); return typeof r === "number" ? r : -1; }
      case "lag": return s.lagEvents || 0;
      case "p50": return lat(st.deliveryLatency, "p50Seconds");
      case "p99": return lat(st.deliveryLatency, "p99Seconds");
      case "rp50": return lat(st.recentLatency, "p50Seconds");
      case "rp99": return lat(st.recentLatency, "p99Seconds");
      case "lastError": return st.lastError ? Date.parse(st.lastError.time) : 0;
      default: return typeof s[col] === "number" ? s[col] : 0;
    }
  }

  function sorted(table, kind, items) {
    const by = sorting[table];
    if (!by) return items;
    const v = new Map(items.map((o) => [o, sortValue(kind, o, by.col)]));
    return items.slice().sort((a, b) => {
      const x = v.get(a), y = v.get(b);
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return c !== 0 ? c * by.dir : key(a).localeCompare(key(b));
    });
  }

  function setupSorting(table) {
    const ths = document.querySelectorAll("#" + table + " thead th");
    ths.forEach((th, i) => {
      const col = DELIVERY_COLS[i].name;
      if (col === "spark") return;
      const b = el("button", { type: "button", class: "sort" }, th.textContent);
      b.dataset.col = col;
      th.replaceChildren(b);
      b.addEventListener("click", () => {
        const cur = sorting[table];
        sorting[table] = { col: col, dir: cur && cur.col === col ? -cur.dir : 1 };
        ths.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", sorting[table].dir > 0 ? "ascending" : "descending");
        render();
      });
    });
  }

  setupSorting("triggers");
  setupSorting("subscriptions");

  // ---- consumer groups and local readers ---------------------------------------------------------

  const READER_COLS = [
    { name: "broker" }, { name: "kind" }, { name: "name" }, { name: "mode" },
    { name: "lagEvents", cls: "num" }, { name: "lagBytes", cls: "num" }, { name: "limit" },
    { name: "skipped", cls: "num" },
  ];

  function readerItems(brokers) {
    const out = [];
    for (const b of brokers) {
      const ring = (b.status && b.status.ring) || {};
      for (const g of ring.groups || []) out.push({ broker: key(b), kind: "group", r: g });
      for (const r of ring.localReaders || []) out.push({ broker: key(b), kind: "local reader", r: r });
    }
    return out;
  }

  function updateReader(tr, it) {
    const r = it.r;
    setText(cell(tr, "broker"), it.broker);
    setText(cell(tr, "kind"), it.kind);
    setText(cell(tr, "name"), r.name);
    if (it.kind === "group") {
      setText(cell(tr, "mode"), num(r.members) + " member" + (r.members === 1 ? "" : "s"));
      setText(cell(tr, "limit"), r.lagPolicy === "block" ? "block" : bytes(r.lagLimitBytes));
      setText(cell(tr, "skipped"), num(r.skipped));
    } else {
      setText(cell(tr, "mode"), r.mode + ", pid " + r.pid);
      setText(cell(tr, "limit"), "");
      setText(cell(tr, "skipped"), "");
    }
    setText(cell(tr, "lagEvents"), num(r.lagEvents));
    setText(cell(tr, "lagBytes"), bytes(r.lagBytes));
  }

  // ---- the overview page -------------------------------------------------------------------------------

  function renderOverview(ov) {
    syncRows(document.getElementById("brokers"), "brokers-empty", ov.brokers, key, buildBroker, updateBroker);
    syncRows(document.getElementById("triggers"), "triggers-empty",
      sorted("triggers", "trigger", ov.triggers), key, buildDelivery("trigger"), updateDelivery("trigger"));
    syncRows(document.getElementById("subscriptions"), "subscriptions-empty",
      sorted("subscriptions", "subscription", ov.subscriptions), key,
      buildDelivery("subscription"), updateDelivery("subscription"));
    syncRows(document.getElementById("readers"), "readers-empty", readerItems(ov.brokers),
      (it) => it.broker + "|" + it.kind + "|" + it.r.name + (it.kind === "group" ? "" : "|" + it.r.slot),
      (it, k) => row(k, READER_COLS), updateReader);
    const bad = (list) => list.filter((o) => ready(o).status === "False" && !isPaused(ready(o))).length;
    const nt = bad(ov.triggers) + bad(ov.subscriptions);
    const np = ov.triggers.filter((o) => isPaused(ready(o))).length;
    setText(document.getElementById("summary"),
      ov.brokers.length + " broker" + (ov.brokers.length === 1 ? "" : "s") + " · " +
      ov.triggers.length + " trigger" + (ov.triggers.length === 1 ? "" : "s") + " · " +
      ov.subscriptions.length + " subscription" + (ov.subscriptions.length === 1 ? "" : "s") +
      (nt > 0 ? " · ✗ " + nt + " not ready" : "") + (np > 0 ? " · ‖ " + np + " paused" : ""));
  }

  // ---- the trigger (or subscription) page -----------------------------------------------------------

  function route() {
    const m = /^#\/(trigger|subscription)\/([^/]+)\/([^/]+)$/.exec(location.hash);
    if (!m) return null;
    try {
      return { kind: m[1], ns: decodeURIComponent(m[2]), name: decodeURIComponent(m[3]) };
    } catch (e) {
      return null; // a malformed %-escape: not a page of ours
    }
  }

  function kv(pairs) {
    const dl = el("dl", { class: "kv" });
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      dl.appendChild(el("dt", {}, k));
      const dd = el("dd");
      if (v instanceof Node) dd.appendChild(v);
      else dd.textContent = String(v);
      dl.appendChild(dd);
    }
    return dl;
  }

  function section(title, content) {
    const d = el("div");
    d.appendChild(el("h3", {}, title));
    d.appendChild(content);
    return d;
  }

  function specPairs(r, o) {
    const st = o.status || {};
    if (r.kind === "trigger") {
      const sub = o.spec.subscriber || {};
      return [
        ["Broker", o.spec.broker],
        ["Subscriber", sub.ref ? sub.ref.kind + " " + sub.ref.name : sub.uri],
        ["Subscriber URI", st.subscriberUri],
        ["Endpoints", (st.subscriberEndpoints || []).join(", ")],
        ["Filter", el("code", {}, st.filter || "true")],
        ["Worker pid", st.workerPid],
        ["Added", o.metadata.creationTimestamp + " (" + ago(o.metadata.creationTimestamp) + ")"],
      ];
    }
    const routes = (o.spec.routes || {});
    const rules = (routes.rules || []).map((x) => x.match + " → " + x.path);
    if (routes.default) rules.push("default → " + routes.default);
    const labels = o.metadata.labels || {};
    return [
      ["Pub/sub", o.spec.pubsubname],
      ["Topic", o.spec.topic],
      ["App", labels["dapr.io/app-id"]],
      ["Broker", st.broker],
      ["Consumer group", st.consumerGroup],
      ["Subscriber URI", st.subscriberUri],
      ["Routes", rules.join("; ")],
      ["Dead-letter topic", o.spec.deadLetterTopic],
      ["Bulk", o.spec.bulkSubscribe ? "up to " + o.spec.bulkSubscribe.maxMessagesCount + " messages, " +
        o.spec.bulkSubscribe.maxAwaitDurationMs + " ms" : ""],
      ["Worker pid", st.workerPid],
      ["Added", o.metadata.creationTimestamp + " (" + ago(o.metadata.creationTimestamp) + ")"],
    ];
  }

  function renderDetail(r) {
    const list = r.kind === "trigger" ? state.ov.triggers : state.ov.subscriptions;
    const o = list.find((x) => x.metadata.namespace === r.ns && x.metadata.name === r.name);
    const label = (r.kind === "trigger" ? "Trigger " : "Dapr subscription ") + r.ns + "/" + r.name;
    setText(document.getElementById("d-title"), label);
    document.title = label + " · ringcast";
    const body = document.getElementById("d-body");
    const p = document.getElementById("d-ready");
    if (!o) {
      renderActions(r, null);
      document.getElementById("d-dead").hidden = true;
      document.getElementById("d-sample").hidden = true;
      setText(p, "✗ Not in the latest overview: removed by a reload, or never configured.");
      p.className = "ready ready-False";
      body.replaceChildren();
      setText(document.getElementById("d-json"), "");
      return;
    }
    const c = ready(o);
    p.className = "ready ready-" + (isPaused(c) ? "Paused" : c.status);
    setText(p, readyText(c) + " (" + c.reason + "): " + c.message);
    renderActions(r, o);
    const st = o.status || {};
    const s = st.stats || {};
    const k = r.kind + ":" + r.ns + "/" + r.name;
    const pol = st.deliveryPolicy || {};
    const l = st.deliveryLatency;
    const cols = el("div", { class: "cols" });
    cols.appendChild(section("Spec", kv(specPairs(r, o))));
    cols.appendChild(section("Delivery policy", kv([
      ["Retries", pol.retry], ["Backoff", pol.backoffPolicy + ", " + pol.backoffDelay + " (at most " +
        pol.backoffMax + ")"], ["Timeout", pol.timeout], ["Retry-After at most", pol.retryAfterMax],
      ["Format", pol.format], ["Max in flight", pol.maxInflight], ["Dead-letter sink", st.deadLetterSinkUri],
    ])));
    cols.appendChild(section("Counters", kv([
      ["Delivered/s", rate(state.rates.get(k))], ["Delivered", num(s.delivered)], ["Failed", num(s.failed)],
      ["Retries", num(s.retried)], ["Dead letters", num(s.deadLettered)], ["Dropped", num(s.dropped)],
      ["In flight", num(s.inflight)], ["Lag", num(s.lagEvents) + " events, " + bytes(s.lagBytes)],
      ["Latency p50", l ? seconds(l.p50Seconds) : "–"], ["Latency p99", l ? seconds(l.p99Seconds) : "–"],
      ["Latencies counted", l ? num(l.count) : "0"],
      ["Latency p50, last 60 s", st.recentLatency ? seconds(st.recentLatency.p50Seconds) : "–"],
      ["Latency p99, last 60 s", st.recentLatency ? seconds(st.recentLatency.p99Seconds) : "–"],
    ])));
    cols.appendChild(section("Outcomes", kv([
      ["Last attempt", st.lastAttempt ? st.lastAttempt.message + " at " + st.lastAttempt.time + " (" +
        ago(st.lastAttempt.time) + ")" : "none yet"],
      ["Last error", st.lastError ? st.lastError.message + " at " + st.lastError.time + " (" +
        ago(st.lastError.time) + ")" : "none"],
    ])));
    body.replaceChildren(cols);
    const d = state.detail && state.detail.key === k ? state.detail.obj : null;
    body.appendChild(outcomesTable(d));
    renderDeadLetters(r, d);
    document.getElementById("d-sample").hidden = r.kind !== "trigger";
    setText(document.getElementById("d-json"), JSON.stringify(d || o, null, 2));
  }

  // ---- pause and resume (a trigger's page) ---------------------------------------------------------

  // The admin API accepts a browser's writes only with the bearer token (the Overview's
  // `tokenRequired`; `writable` is for clients that are not browsers): without a token the page
  // is read-only. The token is the password field's
  // value: in this page's memory only, never stored.
  const actions = { busy: false };

  function renderActions(r, o) {
    const ov = state.ov;
    const can = o !== null && (ov.writable || ov.tokenRequired);
    document.getElementById("d-actions").hidden = !can;
    document.getElementById("d-readonly").hidden = can || o === null;
    document.getElementById("d-token-row").hidden = !ov.tokenRequired;
    if (!can) return;
    const paused = !!(o.status || {}).paused;
    const b = document.getElementById("d-pause");
    setText(b, paused ? "Resume" : "Pause");
    b.dataset.action = paused ? "resume" : "pause";
    // aria-disabled, not disabled: a disabled button would drop the keyboard focus
    b.setAttribute("aria-disabled", actions.busy ? "true" : "false");
    b.setAttribute("aria-label", (paused ? "Resume" : "Pause") + " " +
      (r.kind === "trigger" ? "trigger " : "Dapr subscription ") + r.ns + "/" + r.name);
  }

  function actionMessage(text, bad) {
    const m = document.getElementById("d-action-msg");
    m.classList.toggle("bad", bad);
    setText(m, text);
  }

  // The headers of a write: the bearer token when the broker has one. Returns null (and says
  // so, with the focus on the field) when the token is needed and not typed in.
  function writeHeaders(say) {
    const headers = {};
    const token = document.getElementById("d-token").value.trim();
    if (state.ov && state.ov.tokenRequired) {
      if (!token) {
        say("✗ enter the admin token first", true);
        document.getElementById("d-token").focus();
        return null;
      }
      headers.Authorization = "Bearer " + token;
    }
    return headers;
  }

  // A path segment: a Dapr subscription's object name (GROUP:NAME) keeps its ':'.
  function seg(s) {
    return encodeURIComponent(s).replace(/%3A/gi, ":");
  }

  async function pauseOrResume() {
    const r = route();
    const b = document.getElementById("d-pause");
    if (!r || actions.busy) return;
    const verb = b.dataset.action === "resume" ? "resume" : "pause";
    const headers = writeHeaders(actionMessage);
    if (headers === null) return;
    actions.busy = true;
    b.setAttribute("aria-disabled", "true");
    try {
      const res = await fetch("/apis/ringcast.dev/v1alpha1/namespaces/" + seg(r.ns) + "/" +
        (r.kind === "trigger" ? "triggers/" : "subscriptions/") + seg(r.name) + "/" + verb,
        { method: "POST", headers: headers, cache: "no-store" });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        actionMessage("✗ " + verb + " refused (HTTP " + res.status + "): " + (body.message || body.error || ""), true);
        return;
      }
      // The answer is the object as it is now: show it at once, the next poll confirms.
      const list = r.kind === "trigger" ? state.ov.triggers : state.ov.subscriptions;
      const i = list.findIndex((x) => x.metadata.namespace === r.ns && x.metadata.name === r.name);
      if (i >= 0 && (body.kind === "Trigger" || body.kind === "Subscription")) list[i] = body;
      actionMessage(verb === "pause" ? "Paused: events wait in the ring" : "Resumed", false);
    } catch (e) {
      actionMessage("✗ " + verb + " failed: " + e.message, true);
    } finally {
      actions.busy = false;
      render();
    }
  }

  document.getElementById("d-pause").addEventListener("click", pauseOrResume);

  // ---- dead letters and their replay (a trigger's page) ---------------------------------------------

  // status.deadLetters of the one-object GET, rows kept by key so that a focused Replay button
  // keeps the focus across polls.
  function renderDeadLetters(r, d) {
    const box = document.getElementById("d-dead");
    box.hidden = r.kind !== "trigger" || !d;
    if (box.hidden) return;
    const can = state.ov.writable || state.ov.tokenRequired;
    const list = (d.status || {}).deadLetters || [];
    syncRows(document.getElementById("deadletters"), "deadletters-empty", list,
      (x) => x.eventId + "@" + x.position + "@" + x.time,
      (x, k) => {
        const tr = row(k, [{ name: "time" }, { name: "id" }, { name: "error" },
          { name: "position", cls: "num" }, { name: "replay" }]);
        const b = el("button", { type: "button", class: "replay" }, "Replay");
        b.dataset.id = x.eventId;
        b.setAttribute("aria-label", "Replay event " + x.eventId + " to trigger " + r.ns + "/" + r.name);
        b.addEventListener("click", () => replay(b));
        cell(tr, "replay").appendChild(b);
        return tr;
      },
      (tr, x) => {
        setText(cell(tr, "time"), x.time + " (" + ago(x.time) + ")");
        setText(cell(tr, "id"), x.eventId);
        setText(cell(tr, "error"), x.lastError);
        setText(cell(tr, "position"), num(x.position));
        cell(tr, "replay").firstChild.hidden = !can;
      });
  }

  function replayMessage(text, bad) {
    const m = document.getElementById("d-replay-msg");
    m.classList.toggle("bad", bad);
    setText(m, text);
  }

  async function replay(b) {
    const r = route();
    if (!r || r.kind !== "trigger" || actions.busy) return;
    const headers = writeHeaders(replayMessage);
    if (headers === null) return;
    headers["Content-Type"] = "application/json";
    actions.busy = true;
    try {
      const res = await fetch("/apis/ringcast.dev/v1alpha1/namespaces/" + seg(r.ns) + "/triggers/" +
        seg(r.name) + "/replay", { method: "POST", headers: headers, cache: "no-store",
        body: JSON.stringify({ id: b.dataset.id }) });
      const body = await res.json().catch(() => ({}));
      if (res.status !== 202) {
        replayMessage("✗ replay refused (HTTP " + res.status + "): " + (body.message || body.error || ""), true);
        return;
      }
      replayMessage("✓ " + (body.message || "queued"), false);
    } catch (e) {
      replayMessage("✗ replay failed: " + e.message, true);
    } finally {
      actions.busy = false;
    }
  }

  // ---- the sample of recent events (a trigger's page, on request) -------------------------------------

  function sampleMessage(text, bad) {
    const m = document.getElementById("d-sample-msg");
    m.classList.toggle("bad", bad);
    setText(m, text);
  }

  function dataText(ev) {
    if (ev.data !== undefined) return typeof ev.data === "string" ? ev.data : JSON.stringify(ev.data);
    if (ev.data_base64 !== undefined) return "(base64) " + ev.data_base64;
    return "";
  }

  // Fetches the latest events the trigger's filter matches (the broker reads its ring with a
  // lossy reader: this never holds producers back) and shows them, newest first. Data is shown
  // when the broker includes it (with the token; never to a browser without one).
  async function showSample() {
    const r = route();
    const o = r && state.ov && state.ov.triggers.find((x) => x.metadata.namespace === r.ns && x.metadata.name === r.name);
    if (!o) return;
    const headers = {};
    const token = document.getElementById("d-token").value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    sampleMessage("Loading…", false);
    try {
      const res = await fetch("/apis/ringcast.dev/v1alpha1/namespaces/" + seg(r.ns) + "/brokers/" +
        seg(o.spec.broker) + "/events?limit=20&trigger=" + encodeURIComponent(r.name),
        { headers: headers, cache: "no-store" });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        sampleMessage("✗ HTTP " + res.status + ": " + (body.message || body.error || ""), true);
        return;
      }
      const tb = document.querySelector("#sample tbody");
      tb.replaceChildren();
      for (const it of body.items) {
        const ev = it.event;
        const tr = el("tr");
        tr.dataset.id = ev.id;
        tr.appendChild(el("td", {}, ev.knativearrivaltime || ev.time || ""));
        tr.appendChild(el("td", {}, ev.id));
        tr.appendChild(el("td", {}, ev.type));
        tr.appendChild(el("td", {}, ev.source));
        const td = el("td");
        const text = dataText(ev) + (it.dataTruncated ? " … (" + num(it.dataBytes) + " bytes in all)" : "");
        td.appendChild(el("pre", { class: "data" }, body.dataIncluded ? text
          : it.dataBytes ? "(" + num(it.dataBytes) + " bytes, not shown)" : ""));
        tr.appendChild(td);
        tb.appendChild(tr);
      }
      document.getElementById("sample").hidden = body.items.length === 0;
      setText(document.getElementById("d-sample-btn"), "Refresh");
      sampleMessage(body.items.length + " event" + (body.items.length === 1 ? "" : "s") + " (newest first" +
        (body.complete ? "" : "; older ones not looked at") + ")" +
        (body.dataIncluded ? "" : " · " + body.dataOmitted), false);
    } catch (e) {
      sampleMessage("✗ " + e.message, true);
    }
  }

  document.getElementById("d-sample-btn").addEventListener("click", showSample);

  // The latest attempts to the subscriber (status.recentOutcomes of the one-object GET, which
  // the page fetches with each poll while it is open).
  function outcomesTable(d) {
    const wrap = el("div");
    wrap.appendChild(el("h3", { id: "h-outcomes" }, "Recent outcomes"));
    const list = d && (d.status || {}).recentOutcomes;
    if (!list || list.length === 0) {
      wrap.appendChild(el("p", { class: "empty" }, list ? "No attempt yet." : "Loading…"));
      return wrap;
    }
    const t = el("table", { id: "outcomes", "aria-labelledby": "h-outcomes" });
    const hr = el("tr");
    for (const h of ["Time", "Outcome", "Duration", "Event id"]) {
      hr.appendChild(el("th", h === "Duration" ? { scope: "col", class: "num" } : { scope: "col" }, h));
    }
    t.appendChild(el("thead")).appendChild(hr);
    const tb = t.appendChild(el("tbody"));
    for (const x of list) {
      const tr = el("tr");
      const ok = typeof x.status === "number" && x.status >= 200 && x.status < 300;
      tr.appendChild(el("td", {}, x.time + " (" + ago(x.time) + ")"));
      tr.appendChild(el("td", { class: ok ? "ready-True" : "ready-False" }, (ok ? "✓ " : "✗ ") + x.message));
      tr.appendChild(el("td", { class: "num" }, seconds(x.durationSeconds)));
      tr.appendChild(el("td", {}, x.eventId));
      tb.appendChild(tr);
    }
    wrap.appendChild(t);
    return wrap;
  }

  async function fetchDetail(r) {
    const path = r.kind === "trigger"
      ? "/apis/eventing.knative.dev/v1/namespaces/" + encodeURIComponent(r.ns) + "/triggers/"
      : "/apis/dapr.io/v2alpha1/namespaces/" + encodeURIComponent(r.ns) + "/subscriptions/";
    const res = await fetch(path + seg(r.name), { cache: "no-store" });
    if (res.status === 404) return; // not there (any more): the page says so from the overview
    if (!res.ok) throw new Error("HTTP " + res.status + " from " + path);
    state.detail = { key: r.kind + ":" + r.ns + "/" + r.name, obj: await res.json() };
  }

  // ---- polling and the views ------------------------------------------------------------------------

  function render() {
    if (!state.ov) return;
    const r = route();
    if (r) renderDetail(r);
    else renderOverview(state.ov);
  }

  function showView() {
    const r = route();
    // a sample belongs to the page it was asked on
    document.querySelector("#sample tbody").replaceChildren();
    document.getElementById("sample").hidden = true;
    setText(document.getElementById("d-sample-btn"), "Show recent events");
    sampleMessage("", false);
    replayMessage("", false);
    actionMessage("", false);
    document.getElementById("overview-view").hidden = r !== null;
    document.getElementById("detail-view").hidden = r === null;
    if (r === null) document.title = "ringcast";
    render();
    return r;
  }

  // A trigger's page takes the focus to its title; back on the overview, the focus returns to
  // the link that opened it, so a keyboard user continues where they were.
  let opened = null;
  window.addEventListener("hashchange", () => {
    const r = showView();
    if (r) {
      opened = r.kind + "s|" + r.ns + "/" + r.name;
      document.getElementById("d-title").focus();
    } else if (opened) {
      const [table, k] = opened.split("|");
      const link = Array.from(document.querySelectorAll("#" + table + " tbody tr"))
        .find((tr) => tr.dataset.key === k);
      if (link && link.querySelector("a")) link.querySelector("a").focus();
      opened = null;
    }
  });

  function ingest(ov) {
    const t = ov.sampleSeconds;
    for (const b of ov.brokers) track("broker:" + key(b), ((b.status || {}).ring || {}).events || 0, t);
    for (const o of ov.triggers) track("trigger:" + key(o), ((o.status || {}).stats || {}).delivered || 0, t);
    for (const o of ov.subscriptions) {
      track("subscription:" + key(o), ((o.status || {}).stats || {}).delivered || 0, t);
    }
    state.ov = ov;
    state.polls++;
    document.body.dataset.polls = String(state.polls);
  }

  function connection(ok, text) {
    const p = document.getElementById("conn");
    p.classList.toggle("down", !ok);
    setText(p, text);
  }

  async function poll() {
    const start = Date.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(OVERVIEW, { cache: "no-store", signal: ctl.signal });
      if (!res.ok) throw new Error("HTTP " + res.status + " from " + OVERVIEW);
      const ov = await res.json();
      const r = route();
      if (r) await fetchDetail(r);
      ingest(ov);
      render();
      connection(true, "live · " + new Date(ov.timeMs).toLocaleTimeString("en-GB") + " · " +
        (ov.writable ? "pause/resume allowed" : ov.tokenRequired ? "pause/resume with the admin token" : "read-only"));
    } catch (e) {
      // The broker stopped or the network failed: say so and keep trying (not a page error).
      connection(false, "✗ admin API not reachable (" + (e.name === "AbortError" ? "timed out" : e.message) +
        "); retrying");
    } finally {
      clearTimeout(timer);
      setTimeout(poll, Math.max(0, PERIOD_MS - (Date.now() - start)));
    }
  }

  showView();
  poll();
})();
