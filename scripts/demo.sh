#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds ringcast and runs its demo: a broker on free loopback
# ports, three events posted with `ringcast send`, shown with `ringcast tail`, then a graceful
# stop. Bounded in time and self-cleaning (the broker is stopped by its pid, its ring removed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
bin="$root/build/bin"
echo "== ringcast --help"
"$bin/ringcast" --help

tmp=$(mktemp -d /tmp/ringcast-demo.XXXXXX)
prefix="rcdemo$$"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f /dev/shm/"$prefix".* 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/ringcast.yaml" <<YAML
apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  ring:
    size: 1Mi
    namePrefix: $prefix
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: default
YAML

echo
echo "== ringcast serve --config $tmp/ringcast.yaml (free loopback ports)"
"$bin/ringcast" serve --config "$tmp/ringcast.yaml" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
for _ in $(seq 1 100); do
    grep -q '^listening' "$tmp/serve.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.err" >&2; exit 1; }
    sleep 0.05
done
line=$(grep '^listening' "$tmp/serve.out") || { echo "broker did not start" >&2; exit 1; }
echo "$line"
ingress=$(sed -n 's/.*ingress=\([^ ]*\).*/\1/p' <<<"$line")
admin=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' <<<"$line")
url="http://$ingress/default/default"

echo
echo "== ringcast send (three events)"
"$bin/ringcast" send "$url" --type user.created --source /demo/users \
    --data '{"user":"ana","plan":"pro"}'
"$bin/ringcast" send "$url" --type order.placed --source /demo/shop --mode structured \
    --data '{"order":"A-1001","total":42.5}'
"$bin/ringcast" send "$url" --type payment.processed --source /demo/payments \
    --subject A-1001 --data '{"order":"A-1001","status":"paid"}'

echo
echo "== ringcast tail default/default --from oldest --count 3"
"$bin/ringcast" tail default/default --from oldest --count 3 --timeout 5s --ring-prefix "$prefix"

echo
echo "== curl http://$admin/metrics (excerpt)"
curl -s --max-time 5 "http://$admin/metrics" | grep -E '^ringcast_(ingress_events_accepted_total|ring_used_bytes)' || true

echo
echo "== stopping the broker (SIGTERM to pid $pid)"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
cat "$tmp/serve.err"
echo "broker exited with code $rc"
exit "$rc"
