"""The chaos scenarios: for each, the triggers and their subscribers, the broker's settings, the
load, and what is done to the broker while the load runs (the action). Issue 11 says why each
one is here; docs/chaos.md says what each checks. An action gets the scenario's Rig and the
time the load ends, returns extra figures for the report line, and must return by that time
(plus the few seconds one restart takes)."""

import os
import signal
import time

from rig import Slowloris, start_broker, stop_sink

# Delivery blocks. Healthy subscribers answer at once; the generous retry count only matters
# when the connection breaks (a worker killed, serve restarted). Hostile subscribers fail every
# attempt, so their policy is short enough for the events to reach the dead-letter sink (or the
# subscriber, once it is healthy again) inside the scenario's drain window.
HEALTHY = ["retry: 20", "backoffPolicy: linear", "backoffDelay: PT0.1S", "backoffMax: PT0.5S",
           "timeout: PT5S"]
HOSTILE = ["retry: 2", "backoffPolicy: linear", "backoffDelay: PT0.2S", "backoffMax: PT1S",
           "timeout: PT2S"]
SMALL_LIMITS = {"maxEventBytes": "64Ki", "maxBatchBytes": "64Ki", "maxBatchEvents": "64"}


class Trig:
    """One trigger: its filter (an exact type, or every event), its subscriber (`ringcast sink`
    with `sink_args`), and always a dead-letter sink of its own, so that every accepted event
    it matches has a place to end in and "lost" means lost. A hostile subscriber's records are
    attempts, not deliveries; after the load it is replaced by a healthy sink on its port."""

    def __init__(self, name, sink_args=(), hostile=False, etype=None, delivery=None,
                 inflight=None):
        self.name = name
        self.sink_args = list(sink_args)
        self.hostile = hostile
        self.etype = etype
        self.delivery = delivery or (HOSTILE if hostile else HEALTHY)
        self.inflight = inflight
        self.sub = None  # the subscriber running now
        self.ok_sinks = []  # sinks whose records are deliveries
        self.attempt_sinks = []  # hostile sinks: their records are failed attempts
        self.dls = None

    def matches(self, etype):
        return self.etype is None or self.etype == etype

    def yaml(self, variant):
        inflight = self.inflight
        if variant % 2 == 1:
            inflight = max(1, (inflight or 100) // 2)  # a reload that changes the trigger
        doc = ("---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
               "  name: %s\n" % self.name)
        if inflight is not None:
            doc += "  annotations: {ringcast.dev/max-inflight: \"%d\"}\n" % inflight
        doc += "spec:\n  broker: default\n  subscriber: {uri: %s}\n" % self.sub.url
        if self.etype is not None:
            doc += "  filter: {attributes: {type: %s}}\n" % self.etype
        doc += "  delivery:\n" + "".join("    %s\n" % d for d in self.delivery)
        doc += "    deadLetterSink: {uri: %s}\n" % self.dls.url
        return doc


class Scenario:
    def __init__(self, name, about, triggers, action=None, workers=2, ring="4Mi",
                 limits=None, rate=None, threads=2, body=64, types=(("chaos.load", 1),),
                 extra=None, nofile=None):
        self.name = name
        self.about = about
        self.make_triggers = triggers  # a function: triggers hold the run's sinks
        self.action = action
        self.workers = workers
        self.ring = ring
        self.limits = SMALL_LIMITS if limits is None else limits
        self.rate = rate  # None: the run's --rate; 0: as fast as the broker answers
        self.threads = threads
        self.body = body
        self.types = types
        self.extra = extra  # a function(rig, final metrics) -> figures, after the drain
        self.nofile = nofile  # serve's soft RLIMIT_NOFILE (None: the driver's own)

    def config(self, triggers, variant=0):
        doc = ("apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec:\n"
               "  workers: %d\n  ring: {size: %s}\n" % (self.workers, self.ring))
        if self.limits:
            doc += "  limits:\n" + "".join("    %s: %s\n" % kv for kv in self.limits.items())
        doc += ("---\napiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                "metadata: {name: default}\n")
        return doc + "".join(t.yaml(variant) for t in triggers)


def pause(end, seconds):
    """Sleeps `seconds`, not past `end`; False once `end` has come."""
    left = end - time.monotonic()
    time.sleep(max(0.0, min(seconds, left)))
    return time.monotonic() < end - 0.2


# ---- actions --------------------------------------------------------------------------------

def second_serve(rig):
    """A second serve on the live broker's ring prefix must be refused (one broker per ring):
    1 when it exited without listening. Should it start, it runs for 2 s, so that its copies
    show as duplicates."""
    try:
        other = start_broker(rig.reg, rig.config_text, rig.prefix, rig.log_path("second"),
                             timeout=0)
    except RuntimeError:
        return 1
    time.sleep(2.0)
    other.dispose()
    return 0


def kill9_serve(rig, end):
    """A second serve on the same ring first (it must be refused); then kill -9 of serve
    every 3 s and a new serve on the same ring prefix at once (it waits for the killed one's
    workers to let go of the ring's lock)."""
    refused = second_serve(rig)
    kills, restart_max = 0, 0.0
    while pause(end, 3.0) and end - time.monotonic() > 1.0:
        old = rig.broker
        old.kill9()
        kills += 1
        t0 = time.monotonic()
        old.dispose()
        rig.broker = start_broker(rig.reg, rig.config_text, rig.prefix,
                                  rig.log_path("serve%d" % kills))
        restart_max = max(restart_max, time.monotonic() - t0)
    return {"second_serve_refused": refused, "kills": kills,
            "restart_s_max": "%.2f" % restart_max}


def kill9_worker(rig, end):
    """kill -9 of one worker every 2 s, each in turn; the supervisor restarts it."""
    kills = 0
    while pause(end, 2.0):
        pids = rig.broker.workers()
        if pids and rig.reg.signal_worker(pids[kills % len(pids)], signal.SIGKILL):
            kills += 1
    return {"kills": kills}


def sigstop_worker(rig, end):
    """SIGSTOP of one worker 2 s into the load; SIGCONT when the load is over (unless a
    watchdog replaced it first)."""
    if not pause(end, 2.0):
        return {}
    pids = rig.broker.workers()
    victim = pids[0]
    rig.reg.signal_worker(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    pause(end, end - time.monotonic())
    replaced = victim not in rig.broker.workers()
    return {"stopped_s": "%.1f" % (time.monotonic() - t0), "watchdog_replaced": int(replaced)}


def sighup(rig, end):
    """SIGHUP every 2 s with the file rewritten (max-inflight halved and back: every trigger
    kept, so every cursor must be kept); the third reload reads a broken file, which must be
    rejected with the running config kept."""
    hups, variant = 0, 0
    while pause(end, 2.0):
        variant += 1
        broken = variant == 3
        text = rig.scenario.config(rig.triggers, variant)
        with open(rig.broker.config_path, "w") as f:
            f.write(text + ("  filter: {attributes: [unclosed\n" if broken else ""))
        rig.broker.signal(signal.SIGHUP)
        hups += 1
        if broken:
            time.sleep(0.5)
            with open(rig.broker.config_path, "w") as f:
                f.write(text)
    return {"hups": hups}


def stalling(idle, trickle, big):
    """An action: idle connections, request heads sent a byte every 2 s, and batch bodies of
    4 MiB - 1 that stall, all while the load runs (serve's RSS is sampled by the monitor);
    reports how many of each the broker closed or answered by the end of the load."""
    def action(rig, end):
        b = rig.broker
        sl = Slowloris(b.host, b.port, idle=idle, trickle=trickle, big=big)
        pause(end, end - time.monotonic())
        closed = sl.stop()
        out = {"%s_closed" % k: "%d/%d" % (closed[k], n)
               for k, n in (("idle", idle), ("trickle", trickle), ("big", big)) if n}
        out["slow_open_errors"] = sl.open_errors
        if sl.answers:
            out["slow_answers"] = ",".join("%s:%d" % (k.replace(" ", "_"), v)
                                           for k, v in sorted(sl.answers.items()))
        return out
    return action


def reload_figures(_rig, m):
    return {"reloads": int(m.get("ringcast_config_reloads_total", -1)),
            "reload_errors": int(m.get("ringcast_config_reload_errors_total", -1))}


def rss_growth(rig, _m):
    return {"rss_growth_mb": "%.0f" % ((rig.monitor.rss_max - rig.monitor.rss_base) / 1024.0)}


def reply_figures(rig, _m):
    """Replies routed again (ping <-> pong) and the longest chain of replies to replies that
    reached a subscriber: TTL bounds it to 254 (an event starts with knativebrokerttl 255, each
    reply gets one less, the reply to a TTL 1 event is dropped). Subscribers are not sent the
    TTL, so the chain is followed through the replies' inreplyto. A reply that could not be
    stored shows in replies_failed, the event it answers retried in dups."""
    pings = sum(1 for _, t in rig.publisher.accepted if t == "chaos.ping")
    parents = {}
    for t in rig.triggers:
        for s in t.ok_sinks:
            parents.update(s.reader.parents)
    depth = {}
    for rid in parents:
        chain = []
        cur = rid
        while cur in parents and cur not in depth and len(chain) <= len(parents):
            chain.append(cur)
            cur = parents[cur]
        d = depth.get(cur, 0)
        for x in reversed(chain):
            d += 1
            depth[x] = d
    return {"pings": pings, "replies": len(parents),
            "reply_chain_max": max(depth.values()) if depth else 0}


# ---- the list -------------------------------------------------------------------------------

def all_scenarios():
    return [
        Scenario("kill9-serve", "kill -9 of serve every 3 s, restarted on the same ring (1 MiB); "
                 "one trigger lags (30 ms, window 5)",
                 lambda: [Trig("t-a"), Trig("t-b"), Trig("lagging", ["--delay", "30"], inflight=5)],
                 kill9_serve, ring="1Mi"),
        Scenario("kill9-worker", "kill -9 of a delivery worker every 2 s (3 workers)",
                 lambda: [Trig("t-a"), Trig("t-b"), Trig("t-c")], kill9_worker, workers=3),
        Scenario("hung-subscriber", "a subscriber that never answers next to a healthy one "
                 "(1 MiB ring, 1 KiB events)",
                 lambda: [Trig("healthy"), Trig("hung", ["--hang"], hostile=True)],
                 ring="1Mi", body=1024),
        Scenario("reset-subscriber", "a subscriber that resets every connection mid-answer",
                 lambda: [Trig("healthy"), Trig("reset", ["--reset"], hostile=True)]),
        Scenario("garbage-subscriber", "a subscriber that answers bytes that are not HTTP",
                 lambda: [Trig("healthy"), Trig("garbage", ["--garbage"], hostile=True)]),
        Scenario("reply-loop", "two triggers replying to each other (TTL bounds the loop) "
                 "next to a healthy and a hung one (the ring fills); 1 event in 4 starts a loop",
                 lambda: [Trig("healthy", etype="chaos.load"),
                          Trig("hung", ["--hang"], hostile=True, etype="chaos.load"),
                          Trig("ping", ["--reply-type", "chaos.pong"], etype="chaos.ping"),
                          Trig("pong", ["--reply-type", "chaos.ping"], etype="chaos.pong")],
                 ring="1Mi", body=512, types=(("chaos.load", 3), ("chaos.ping", 1)),
                 extra=reply_figures),
        Scenario("sighup", "SIGHUP every 2 s (triggers changed, one broken file)",
                 lambda: [Trig("t-a"), Trig("t-b")], sighup, extra=reload_figures),
        Scenario("sigstop-worker", "one worker SIGSTOPped for the load (1 MiB ring, 1 KiB "
                 "events), SIGCONT after", lambda: [Trig("t-a"), Trig("t-b")], sigstop_worker,
                 ring="1Mi", body=1024),
        Scenario("overload-1mi", "a 1 MiB ring under as much load as 3 connections give, a "
                 "slow subscriber (20 ms, window 20) and a fast one",
                 lambda: [Trig("slow", ["--delay", "20"], inflight=20), Trig("fast")],
                 ring="1Mi", rate=0, threads=3, body=2048),
        Scenario("slowloris", "500 idle connections, 200 sending a head a byte every 2 s, 25 "
                 "stalled 4 MiB batch bodies, while the load runs",
                 lambda: [Trig("t-a")], stalling(500, 200, 25), workers=1, ring="16Mi",
                 limits={}, extra=rss_growth),
        Scenario("fd-limit", "serve may open 256 files; 400 idle connections while the load "
                 "runs (the admin listener must stay up)",
                 lambda: [Trig("t-a")], stalling(400, 0, 0), workers=1, nofile=256),
    ]


def self_check():
    """A scenario that must lose events, to show the driver reports a loss: a subscriber that
    refuses every event (400: no retry, to the dead-letter sink) whose dead-letter sink is
    stopped as the load starts, so its events are dropped after the dead letter's retries."""
    def kill_dls(rig, _end):
        for t in rig.triggers:
            if t.name == "refusing":
                stop_sink(rig.reg, t.dls, kill=True)
        return {}
    return Scenario("self-check", "a subscriber answering 400 whose dead-letter sink is gone: "
                    "every event it matches must be reported lost",
                    lambda: [Trig("healthy"),
                             Trig("refusing", ["--status", "400"], hostile=True,
                                  delivery=["retry: 1", "backoffDelay: PT0.1S", "timeout: PT1S"])],
                    kill_dls)


def run_dir():
    d = os.environ.get("RC_CHAOS_DIR") or "/tmp/rc-chaos-%d" % os.getpid()
    os.makedirs(d, exist_ok=True)
    return d
