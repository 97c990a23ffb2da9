#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds ringcast and runs its demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
bin="$root/build/bin"
echo "== ringcast --help"
"$bin/ringcast" --help
