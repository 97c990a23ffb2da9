#!/usr/bin/env bash
# Side-by-side HTTP ingest: wrk POSTing binary-mode CloudEvents (100-byte JSON data) over
# keep-alive connections to `ringcast serve` (one ingress loop) and to nginx answering a bare
# `return 202` (one worker), on free loopback ports, one after the other, same load.
# Prints a human-readable table on stderr and one key=value result line last on stdout.
# usage: scripts/bench-ingress.sh [DURATION_S=5] [CONNECTIONS=32]
# Needs wrk and nginx (Debian packages); exits 77 (skipped) without them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dur=${1:-5}
conns=${2:-32}
bin=${RC_BIN_DIR:-$root/build/bin}
for tool in wrk nginx; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        echo "skipped: $tool is not installed (apt-get install wrk nginx-light)" >&2
        exit 77
    fi
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
tmp=$(mktemp -d /tmp/rc-bench-ingress.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
    rm -f /dev/shm/rcbench$$.* 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # host port
    for _ in $(seq 1 100); do
        if python3 -c "import socket,sys; socket.create_connection(('$1',$2),0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench: nothing listens on $1:$2" >&2
    return 1
}

run_wrk() { # url [script] -> prints "rps p50_ms p99_ms non2xx"
    wrk -t1 -c"$conns" -d"${dur}s" --latency -s "$root/bench/wrk/${2:-binary_event.lua}" "$1" \
        >"$tmp/wrk.out" 2>&1
    cat "$tmp/wrk.out" >&2
    python3 - "$tmp/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
def ms(label):
    m = re.search(r"\b%s%%\s+([\d.]+)(us|ms|s)\b" % label, t)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print("%.0f %.3f %.3f %s" % (rps, ms("50"), ms("99"), non2xx.group(1) if non2xx else 0))
PY
}

# ringcast: one ingress loop, the default 16 MiB ring (no readers: it wraps, nothing waits).
cat >"$tmp/ringcast.yaml" <<YAML
apiVersion: ringcast.dev/v1alpha1
kind: RingcastConfig
spec:
  ingressLoops: 1
  logLevel: warn
  ring:
    size: 16Mi
    namePrefix: rcbench$$
YAML
rport=$(free_port)
"$bin/ringcast" serve --config "$tmp/ringcast.yaml" --listen "127.0.0.1:$rport" \
    --admin 127.0.0.1:0 >"$tmp/ringcast.out" 2>"$tmp/ringcast.err" &
rpid=$!
pids+=("$rpid")
wait_port 127.0.0.1 "$rport"
echo "== ringcast (pid $rpid) 127.0.0.1:$rport" >&2
read -r r_rps r_p50 r_p99 r_bad < <(run_wrk "http://127.0.0.1:$rport/default/default")
echo "== ringcast batch mode (100 events per request)" >&2
read -r b_rps b_p50 b_p99 b_bad < <(run_wrk "http://127.0.0.1:$rport/default/default" \
    batch_events.lua)
kill -TERM "$rpid"
wait "$rpid" || true

# nginx: one worker, `return 202`, no logs.
nport=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$nport;
        location / { return 202; }
    }
}
NGINX
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
npid=$!
pids+=("$npid")
wait_port 127.0.0.1 "$nport"
echo "== nginx (pid $npid) 127.0.0.1:$nport" >&2
read -r n_rps n_p50 n_p99 n_bad < <(run_wrk "http://127.0.0.1:$nport/default/default")
kill -QUIT "$npid"
wait "$npid" || true

ratio=$(python3 -c "print('%.2f' % ($r_rps / $n_rps))")
batch_eps=$(python3 -c "print('%.0f' % ($b_rps * 100))")
printf '\n%-10s %12s %10s %10s %8s\n' server req/s p50_ms p99_ms non2xx >&2
printf '%-10s %12s %10s %10s %8s\n' ringcast "$r_rps" "$r_p50" "$r_p99" "$r_bad" >&2
printf '%-10s %12s %10s %10s %8s\n' nginx "$n_rps" "$n_p50" "$n_p99" "$n_bad" >&2
printf 'ringcast batch: %s requests/s x 100 = %s events/s (p99 %s ms, non2xx %s)\n' \
    "$b_rps" "$batch_eps" "$b_p99" "$b_bad" >&2
echo "scenario=ingress_vs_nginx connections=$conns duration_s=$dur ringcast_rps=$r_rps ringcast_p50_ms=$r_p50 ringcast_p99_ms=$r_p99 ringcast_non2xx=$r_bad nginx_rps=$n_rps nginx_p50_ms=$n_p50 nginx_p99_ms=$n_p99 ratio=$ratio batch_events_per_s=$batch_eps batch_p99_ms=$b_p99 batch_non2xx=$b_bad"
