#!/usr/bin/env bash
# Configures and builds ringcast into a build directory (default: build/).
# usage: scripts/build.sh [BUILD_DIR] [extra cmake -D options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# Quiet on success (warnings still show); the whole log on failure.
if ! log=$(cmake --build "$build" -j"$(nproc)" 2>&1); then
    printf '%s\n' "$log"
    echo "build failed in $build" >&2
    exit 1
fi
printf '%s\n' "$log" | grep -E 'warning:' || true
