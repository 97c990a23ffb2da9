#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds ringcast and runs the whole test suite.
# usage: scripts/test.sh [ctest options...]   e.g. scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build" -DRC_WERROR=ON
cd "$root/build"
ctest --output-on-failure -j2 "$@"
