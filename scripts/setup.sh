#!/usr/bin/env bash
# Installs every build and test dependency of ringcast from Debian packages.
# Idempotent: prints nothing and installs nothing when all packages are present.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libuv1-dev libcjson-dev liburing-dev libyaml-dev node-llhttp
    curl python3
    nginx-light redis-server nats-server wrk
)
# Servers the benchmarks start themselves (own ports, configs and temp dirs; see docs/bench.md).
# Debian starts redis-server and nginx as services on install; the install below keeps them from
# starting (policy-rc.d) so nothing listens on their default ports behind the tests' backs.
SERVICES=(nginx-light redis-server nats-server)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

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
    redis-server | nats-server) svc=$p ;;
    *) continue ;;
    esac
    if command -v service >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
        $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
done
