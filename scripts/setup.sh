#!/usr/bin/env bash
# Installs every build and test dependency of ringcast: Debian packages, then the npm packages of
# the Dapr SDK tests (tests/dapr, exact versions from its package-lock.json).
# Idempotent: prints nothing and installs nothing when all of it is present (so it works offline
# once done).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libuv1-dev libcjson-dev liburing-dev libyaml-dev libhiredis-dev node-llhttp
    curl python3
    nginx-light redis-server nats-server wrk
    prometheus
    chromium
)
# prometheus is there for its promtool: tests/integration/test_metrics.py checks the broker's
# /metrics with `promtool check metrics`; its server is kept from starting like the ones below.
# chromium is the headless browser of tests/integration/test_dashboard_browser.py (the dashboard
# in a real browser, driven over its DevTools protocol; the test skips without it).
# Servers the benchmarks start themselves (own ports, configs and temp dirs; see docs/bench.md).
# Debian starts redis-server and nginx as services on install; the install below keeps them from
# starting (policy-rc.d) so nothing listens on their default ports behind the tests' backs.
SERVICES=(nginx-light redis-server nats-server prometheus)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
# Node.js and npm run the Dapr SDK tests. Judged by the commands, not the packages: a machine whose
# Node.js came from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm)
# keeps it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

# tests/dapr/node_modules is current when it was installed from this very package-lock.json
# (its checksum is kept beside it); otherwise `npm ci` installs exactly what the lock file says.
dapr_tests=$root/tests/dapr
npm_stamp=$dapr_tests/node_modules/.ringcast-lock.sha256
npm_modules() {
    local want
    want=$(sha256sum "$dapr_tests/package-lock.json" | cut -d' ' -f1)
    if [ -f "$npm_stamp" ] && [ "$(cat "$npm_stamp")" = "$want" ]; then
        return 0
    fi
    echo "setup: npm ci in tests/dapr" >&2
    (cd "$dapr_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$want" >"$npm_stamp"
}

if [ ${#missing[@]} -eq 0 ]; then
    npm_modules
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
own_policy=0
for p in "${missing[@]}"; do
    for s in "${SERVICES[@]}"; do
        if [ "$p" = "$s" ] && [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
            $SUDO chmod 755 "$policy"
            own_policy=1
        fi
    done
done
cleanup_policy() { if [ "$own_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup_policy EXIT
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where services were started anyway (an init that ignores policy-rc.d), stop them: the
# benchmarks run their own instances and must not share a machine with system ones.
for p in "${missing[@]}"; do
    case "$p" in
    nginx-light) svc=nginx ;;
    redis-server | nats-server | prometheus) svc=$p ;;
    *) continue ;;
    esac
    if command -v service >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
        $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
done
npm_modules
