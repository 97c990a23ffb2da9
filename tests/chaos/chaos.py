#!/usr/bin/env python3
"""The chaos run (issue 11): the real `ringcast serve` and real subscribers on loopback, one
scenario after another, each under steady load from a publisher that records every id it got
202 for. At the end of each scenario (after a bounded drain wait) it compares what reached the
subscribers and dead-letter sinks with what was accepted, per trigger:

  lost   accepted ids a trigger matches that reached neither its subscriber nor its
         dead-letter sink; a failure unless the broker counted them as given up past a lag
         limit or dropped (`unaccounted` is what it did not count)
  dups   deliveries beyond the first per id (reported: delivery is at-least-once)

and prints one `chaos scenario=...` line per scenario, a `chaos-trigger ...` line per trigger
and a summary table. Exits 1 when a scenario lost an accepted event the broker did not count
as given up, delivered an id nobody
sent, saw serve die on its own, or could not run; 0 otherwise. Run it with scripts/chaos.sh
(builds first); docs/chaos.md says what each scenario checks. Every process it starts is
stopped by pid at the end and on Ctrl-C or SIGTERM, and the rings it made are removed."""

import argparse
import os
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ beside the tests, here or in integration/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rig import Monitor, Publisher, Registry, start_broker, start_sink, stop_sink  # noqa: E402
from scenarios import all_scenarios, run_dir, self_check  # noqa: E402


class Rig:
    """One scenario's running parts. The action replaces `broker` when it restarts serve; the
    publisher and the monitor always use the current one."""

    def __init__(self, reg, scenario, prefix, logs):
        self.reg = reg
        self.scenario = scenario
        self.name = scenario.name
        self.prefix = prefix
        self.logs = logs
        self.broker = None
        self.triggers = []
        self.config_text = ""
        self.publisher = None
        self.monitor = None

    def log_path(self, what):
        return os.path.join(self.logs, "%s.%s.log" % (self.name, what))

    def start(self):
        self.triggers = self.scenario.make_triggers()
        for t in self.triggers:
            t.sub = start_sink(self.reg, *t.sink_args)
            (t.attempt_sinks if t.hostile else t.ok_sinks).append(t.sub)
            t.dls = start_sink(self.reg)
        self.config_text = self.scenario.config(self.triggers)
        self.broker = start_broker(self.reg, self.config_text, self.prefix,
                                   self.log_path("serve"), nofile=self.scenario.nofile)

    def recover(self):
        """After the load: stopped workers continue, hostile subscribers are replaced by
        healthy ones on the same port (SIGKILL: what they hold gets no answer), so that every
        pending event can end within the drain window."""
        self.reg.resume_stopped()
        for t in self.triggers:
            if t.hostile:
                port = t.sub.port
                stop_sink(self.reg, t.sub, kill=True)
                t.sub = start_sink(self.reg, port=port)
                t.ok_sinks.append(t.sub)

    def sinks(self):
        for t in self.triggers:
            yield from t.ok_sinks + t.attempt_sinks + [t.dls]

    def update(self):
        for s in self.sinks():
            s.reader.update()


def tally(rig):
    """Per trigger and in all: expected (accepted ids it matches), delivered, dead-lettered,
    lost, dups, unacked (delivered ids whose 202 never arrived: the connection broke) and
    strangers (delivered ids that were never sent, or that the trigger does not match)."""
    pub = rig.publisher
    rows = []
    for t in rig.triggers:
        expected = {eid for eid, etype in pub.accepted if t.matches(etype)}
        matching_unknown = pub.unknown  # their types are not known: any trigger may get them
        ok, dl = {}, {}
        for s in t.ok_sinks:
            for eid, n in s.reader.ids.items():
                ok[eid] = ok.get(eid, 0) + n
        for eid, n in t.dls.reader.ids.items():
            dl[eid] = n
        seen = set(ok) | set(dl)
        row = {"trigger": t.name, "expected": len(expected),
               "delivered": len(expected & set(ok)),
               "dead_lettered": len((expected & set(dl)) - set(ok)),
               "lost": len(expected - seen),
               "dups": sum(ok.get(i, 0) + dl.get(i, 0) - 1 for i in expected & seen),
               "unacked": len((seen - expected) & matching_unknown),
               "strangers": len(seen - expected - matching_unknown),
               "attempts": sum(s.reader.records for s in t.attempt_sinks),
               "lag_max": int(rig.monitor.lag_max.get(t.name, 0))}
        row["lost_ids"] = ",".join(sorted(expected - seen)[:3])
        rows.append(row)
    return rows


def outstanding(rig):
    """Accepted events not yet delivered or dead-lettered, over all triggers."""
    n = 0
    for t in rig.triggers:
        seen = set()
        for s in t.ok_sinks + [t.dls]:
            seen.update(s.reader.ids)
        n += sum(1 for eid, etype in rig.publisher.accepted if t.matches(etype)
                 and eid not in seen)
    return n


def drain(rig, seconds, quiet=1.0):
    """Waits until every accepted event reached its triggers and nothing new arrived for
    `quiet` s (a late duplicate or the tail of a reply loop would), at most `seconds`."""
    t0 = time.monotonic()
    last, still_since = -1, time.monotonic()
    left = None
    while time.monotonic() - t0 < seconds:
        rig.update()
        left = outstanding(rig)
        total = sum(s.reader.records for s in rig.sinks())
        if total != last:
            last, still_since = total, time.monotonic()
        if left == 0 and time.monotonic() - still_since >= quiet:
            break
        time.sleep(0.25)
    return time.monotonic() - t0, left


def metric_sum(m, name):
    return int(sum(v for k, v in m.items() if k == name or k.startswith(name + "{")))


def figures(rig, rows, m, probe, drained, serve_exit):
    """The scenario's report line as a dict: the publisher's counts, the tally summed over the
    triggers, what the monitor saw and a few of the broker's final metrics."""
    pub, mon = rig.publisher, rig.monitor
    out = {"sent": pub.sent, "accepted": len(pub.accepted),
           "rejected_429": pub.status[429], "rejected_503": pub.status[503],
           "rejected_other": sum(n for s, n in pub.status.items() if s not in (202, 429, 503)),
           "conn_errors": pub.conn_errors, "unknown": len(pub.unknown)}
    for k in ("expected", "delivered", "dead_lettered", "lost", "dups", "unacked", "strangers"):
        out[k] = sum(r[k] for r in rows)
    out.update({
        "probe_s": "%.2f" % probe if probe is not None else "none",
        "drain_s": "%.1f" % drained,
        "ring_max": "%.2f" % (mon.ring_used_max / mon.ring_capacity if mon.ring_capacity
                              else 0.0),
        "admin_errors": mon.admin_errors,
        "restarts": metric_sum(m, "ringcast_worker_restarts_total"),
        "dropped": metric_sum(m, "ringcast_trigger_dropped_total"),
        "lag_dropped": metric_sum(m, "ringcast_trigger_lagged_dropped_total"),
        "replies_failed": metric_sum(m, "ringcast_trigger_replies_failed_total"),
        "serve_exit": serve_exit if serve_exit is not None else "killed"})
    return out


def run_scenario(reg, sc, args, prefix, logs):
    """Runs one scenario: start, load with the action, stop the load, probe, recover, drain,
    stop everything, tally. Returns its figures (a dict) for the report line."""
    rig = Rig(reg, sc, prefix, logs)
    out = {"scenario": sc.name}
    t0 = time.monotonic()
    try:
        rig.start()
        rig.monitor = Monitor(rig)
        rate = args.rate if sc.rate is None else sc.rate
        rig.publisher = Publisher(rig, sc.threads, rate, sc.types, sc.body)
        end = time.monotonic() + args.load_seconds
        extras = sc.action(rig, end) if sc.action else {}
        time.sleep(max(0.0, end - time.monotonic()))
        rig.publisher.stop()
        probe = rig.publisher.probe()  # before recover(): with the fault still there
        crashed = rig.broker.proc.poll() is not None
        rig.recover()
        drained, left = drain(rig, args.drain_seconds)
        try:
            m = rig.broker.metrics()
        except (OSError, EOFError, ValueError):
            m = {}
        if sc.extra:
            extras.update(sc.extra(rig, m))
        rig.monitor.stop()
        crashed = crashed or rig.broker.proc.poll() is not None
        serve_exit = rig.broker.dispose()
        for s in list(rig.sinks()):
            stop_sink(reg, s, kill=False)
        rows = tally(rig)
        out.update(figures(rig, rows, m, probe, drained, serve_exit))
        out.update(extras)
        if extras.get("kills"):
            out["dups_per_kill"] = "%.1f" % (out["dups"] / extras["kills"])
        out["rows"] = rows
        notes = []
        if crashed:
            notes.append("serve died during the scenario (log: %s)" % rig.broker.log_path)
        if left:
            notes.append("%d accepted events still undelivered after the %.0f s drain"
                         % (left, args.drain_seconds))
        if probe is None:
            notes.append("no 202 within 5 s after the load stopped")
        if serve_exit != 0:
            notes.append("serve's graceful stop exited %s" % out["serve_exit"])
        out["notes"] = notes
        # A trigger past its lag limit gives events up by design (docs/config.md, "Lag
        # limits"): to its dead-letter sink, or dropped and counted. A loss the broker counted
        # so is accounted for; any loss beyond the broker's own counts fails the scenario.
        counted = (out.get("dropped") or 0) + (out.get("lag_dropped") or 0)
        out["unaccounted"] = max(0, out["lost"] - counted)
        if out["lost"] and not out["unaccounted"]:
            notes.append("%d events were given up past a lag limit or dropped, as the broker "
                         "counted (ringcast_trigger_*dropped_total)" % out["lost"])
        out["ok"] = int(out["unaccounted"] == 0 and out["strangers"] == 0 and not crashed)
    except Exception as e:  # noqa: BLE001 - a scenario that cannot run is reported, not hidden
        traceback.print_exc()
        out.update({"ok": 0, "error": "%s: %s" % (type(e).__name__, e), "rows": [],
                    "notes": ["could not run: %s" % e]})
    finally:
        if rig.publisher is not None:
            rig.publisher.stopping.set()
        if rig.monitor is not None:
            rig.monitor.stopping.set()
        reg.stop_all()
        reg.remove_rings(prefix + ".")
    out["secs"] = "%.1f" % (time.monotonic() - t0)
    return out


LINE_KEYS = ("sent", "accepted", "rejected_429", "rejected_503", "rejected_other",
             "conn_errors", "unknown", "expected", "delivered", "dead_lettered", "lost", "dups",
             "unacked", "strangers", "probe_s", "drain_s", "ring_max", "admin_errors",
             "restarts", "dropped", "lag_dropped", "unaccounted", "replies_failed", "serve_exit")


def report_line(r):
    keys = [k for k in LINE_KEYS if k in r]
    extra = [k for k in r if k not in LINE_KEYS + ("scenario", "rows", "notes", "ok", "secs",
                                                     "error")]
    fields = ["scenario=%s" % r["scenario"]] + ["%s=%s" % (k, r[k]) for k in keys + extra]
    fields += ["secs=%s" % r["secs"], "ok=%d" % r["ok"]]
    print("chaos " + " ".join(fields), flush=True)
    for row in r["rows"]:
        print("chaos-trigger scenario=%s " % r["scenario"] + " ".join(
            "%s=%s" % (k, v) for k, v in row.items() if k != "lost_ids" or v), flush=True)
    for n in r["notes"]:
        print("chaos-note scenario=%s %s" % (r["scenario"], n), flush=True)


def summary(results, elapsed):
    cols = ("scenario", "accepted", "rejected_429", "delivered", "dead_lettered", "lost",
            "dups", "probe_s", "secs", "ok")
    heads = ("scenario", "accepted", "429", "delivered", "dead-lettered", "lost", "dups",
             "probe s", "secs", "ok")
    table = [heads] + [tuple(str(r.get(c, "-")) for c in cols) for r in results]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    print()
    for row in table:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths))))
    bad = [r["scenario"] for r in results if not r["ok"]]
    given_up = sum(r.get("lost", 0) for r in results if r["ok"])
    good = "no acknowledged event lost"
    if given_up:
        good += " beyond the %d the broker counted as given up (lag limits, drops)" % given_up
    print("\nchaos: %d scenarios in %.0f s, %s" % (len(results), elapsed,
                                                     "failed: " + ", ".join(bad) if bad
                                                     else good))


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: not an Exception, so that no scenario's error handling swallows it."""


def on_signal(signum, _frame):
    # Once: the cleanup that follows must not be cut short by a second Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted("signal %d" % signum)


def main():
    scs = all_scenarios()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario names (see --list)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--self-check", action="store_true",
                    help="run only a scenario built to lose events (a 400 subscriber whose "
                    "dead-letter sink is gone) and exit 0 when the driver reports the loss")
    ap.add_argument("--load-seconds", type=float, default=15.0, help="load per scenario")
    ap.add_argument("--drain-seconds", type=float, default=20.0,
                    help="longest wait for accepted events to arrive after the load")
    ap.add_argument("--rate", type=float, default=200.0,
                    help="events/s of the steady load (scenarios with their own keep theirs)")
    args = ap.parse_args()
    if args.list:
        for sc in scs:
            print("%-20s %s" % (sc.name, sc.about))
        return 0
    if args.self_check:
        scs = [self_check()]
    elif args.only:
        want = args.only.split(",")
        unknown = [w for w in want if w not in {sc.name for sc in scs}]
        if unknown:
            ap.error("unknown scenario %s (see --list)" % ", ".join(unknown))
        scs = [sc for sc in scs if sc.name in want]
    # Explicit handlers: started in the background by a script, SIGINT may arrive ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    prefix = "rcchaos%d" % os.getpid()  # scripts/chaos.sh removes these should we be killed
    logs = run_dir()
    reg = Registry(prefix)
    print("chaos: %d scenarios, %.0f s load each at %.0f events/s, rings /dev/shm/%s*, logs in "
          "%s" % (len(scs), args.load_seconds, args.rate, prefix, logs), flush=True)
    results = []
    t0 = time.monotonic()
    code = 0
    try:
        for k, sc in enumerate(scs):
            print("chaos: %s: %s" % (sc.name, sc.about), flush=True)
            r = run_scenario(reg, sc, args, "%ss%d" % (prefix, k), logs)
            results.append(r)
            report_line(r)
        summary(results, time.monotonic() - t0)
        code = 0 if all(r["ok"] for r in results) else 1
        if args.self_check:
            caught = results[0].get("lost", 0) > 0 and not results[0]["ok"]
            print("chaos: self-check %s" % ("passed: the loss was reported" if caught else
                                            "FAILED: the driver did not report the loss"))
            code = 0 if caught else 1
    except Interrupted as e:
        print("chaos: interrupted (%s); stopping what was started" % e, flush=True)
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        reg.stop_all()
        n = reg.remove_rings()
        if n:
            print("chaos: removed %d rings" % n, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
