#!/usr/bin/env bash
# The seed demo, the README's first command:
# sets up a fresh Debian machine, builds ringcast and runs broker `default` with
# one Trigger per event type (examples/demo.yaml), each routed to its own consumer
# (`ringcast sink`), a producer (`ringcast send --every`) posting user.created, order.placed and
# payment.processed, the consumers' log lines, then everything stopped by pid. The payments
# consumer fails its first request, so one delivery is retried. Free loopback ports; bounded in
# time (well under 30 s once built) and self-cleaning (processes stopped, ring removed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
bin="$root/build/bin"
echo "== ringcast --help"
"$bin/ringcast" --help

tmp=$(mktemp -d /tmp/ringcast-demo.XXXXXX)
prefix="rcdemo$$"
pids=()
stop_pid() { # SIGTERM, wait up to 5 s, then SIGKILL; only our own pids
    local p=$1
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
    for p in "${pids[@]}"; do stop_pid "$p"; done
    rm -f /dev/shm/"$prefix".* 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# wait_line FILE PATTERN PID: the first line of FILE matching PATTERN, within 5 s.
wait_line() {
    for _ in $(seq 1 100); do
        if grep -q "$2" "$1" 2>/dev/null; then grep -m1 "$2" "$1"; return 0; fi
        kill -0 "$3" 2>/dev/null || break
        sleep 0.05
    done
    echo "process $3 did not print '$2'" >&2
    cat "${1%.out}.err" >&2 2>/dev/null || true
    return 1
}

echo
echo "== consumers: ringcast sink (users, orders, payments, dead letters)"
declare -A port
for name in users orders payments deadletter; do
    args=()
    [ "$name" = payments ] && args=(--fail-first 1 --status 503)
    "$bin/ringcast" sink --listen 127.0.0.1:0 "${args[@]}" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    line=$(wait_line "$tmp/$name.out" '^listening' $!)
    port[$name]=${line##*:}
    echo "$name: $line ${args[*]}"
done

# examples/demo.yaml with the consumers' ports and a ring name of our own.
sed -e "s|127.0.0.1:9101/|127.0.0.1:${port[users]}/|" \
    -e "s|127.0.0.1:9102/|127.0.0.1:${port[orders]}/|" \
    -e "s|127.0.0.1:9103/|127.0.0.1:${port[payments]}/|" \
    -e "s|127.0.0.1:9109/|127.0.0.1:${port[deadletter]}/|" \
    -e "s|^    size: 1Mi$|    size: 1Mi\n    namePrefix: $prefix|" \
    "$root/examples/demo.yaml" >"$tmp/demo.yaml"

echo
echo "== broker: ringcast serve --config examples/demo.yaml (consumer ports filled in)"
"$bin/ringcast" serve --config "$tmp/demo.yaml" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
pids+=($serve_pid)
line=$(wait_line "$tmp/serve.out" '^listening' $serve_pid)
echo "$line"
ingress=$(sed -n 's/.*ingress=\([^ ]*\).*/\1/p' <<<"$line")
admin=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' <<<"$line")

echo
echo "== producer: ringcast send --every 300ms --count 6 --types user.created,order.placed,payment.processed"
timeout 20 "$bin/ringcast" send --every 300ms --count 6 \
    --types user.created,order.placed,payment.processed --source /demo/producer \
    "http://$ingress/default/default"

# Each consumer should log its two events (payments: one more, the failed first attempt).
for _ in $(seq 1 100); do
    [ "$(grep -c ' event ' "$tmp/users.out")" -ge 2 ] &&
        [ "$(grep -c ' event ' "$tmp/orders.out")" -ge 2 ] &&
        [ "$(grep -c ' -> 200$' "$tmp/payments.out")" -ge 2 ] && break
    sleep 0.05
done
for name in users orders payments deadletter; do
    echo
    echo "== $name consumer log"
    grep -v '^listening' "$tmp/$name.out" || echo "(nothing)"
done

echo
echo "== curl http://$admin/metrics (excerpt)"
curl -s --max-time 5 "http://$admin/metrics" |
    grep -E '^ringcast_(ingress_events_accepted_total|trigger_[a-z_]*(delivered|retried|dead)[a-z_]*\{)' || true

echo
echo "== stopping broker and consumers (SIGTERM by pid)"
rc=0
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do
    stop_pid "$p" # bounded: SIGKILL after 5 s
    code=0
    wait "$p" || code=$?
    [ "$code" -eq 0 ] || { echo "pid $p exited with $code" >&2; rc=1; }
done
pids=()
cat "$tmp/serve.err"
echo "all stopped (exit $rc)"
exit "$rc"
