#!/usr/bin/env bash
# The chaos run (issue 11, docs/chaos.md): builds ringcast like scripts/test.sh, then runs every
# scenario (kill -9 loops of serve and of workers, hung/resetting/garbage/replying subscribers,
# SIGHUP, a stopped worker, a small ring overloaded, slowloris, the file limit) against the real
# broker on loopback and prints lost and duplicate counts per scenario. ~3.5 minutes on 2 cores.
# usage: scripts/chaos.sh [--list] [--only NAME,...] [--self-check] [--load-seconds S]
#                         [--drain-seconds S] [--rate EVENTS_PER_S]
# Exit code: 0 no accepted event lost, 1 a scenario lost one (or failed to run), 130 interrupted.
# Environment: RC_BUILD_DIR (default build/), RC_CHAOS_DIR (logs; default /tmp/rc-chaos-PID).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RC_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$build" -DRC_WERROR=ON
export RC_BIN_DIR=$build/bin

# The driver stops everything it started, by pid, on its way out; it runs in the background so
# that a SIGTERM to this script reaches it too (bash would wait for a foreground child first).
python3 "$root/tests/chaos/chaos.py" "$@" &
driver=$!
prefix=rcchaos$driver
trap 'kill -TERM "$driver" 2>/dev/null || true' INT TERM
rc=0
wait "$driver" || rc=$?
# wait returns early when a trapped signal arrives: wait again for the driver's cleanup.
while kill -0 "$driver" 2>/dev/null; do
    wait "$driver" || rc=$?
done
# Backstop for a driver that was killed before its cleanup: its rings carry its pid.
rm -f /dev/shm/"$prefix"s* 2>/dev/null || true
exit "$rc"
