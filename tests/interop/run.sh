#!/usr/bin/env bash
# Runs the pusher-js / pusher SDK interop suite against the pushgate binary, then the official
# Python SDK's checks (python/run.sh).
# PUSHGATE_BIN selects the binary (default: ../../target/release/pushgate).
set -euo pipefail
# A relative PUSHGATE_BIN is taken relative to the caller's directory.
if [ -n "${PUSHGATE_BIN:-}" ]; then
  dir="$(cd "$(dirname "$PUSHGATE_BIN")" && pwd)" || { echo "PUSHGATE_BIN: no such directory: $PUSHGATE_BIN" >&2; exit 1; }
  PUSHGATE_BIN="$dir/$(basename "$PUSHGATE_BIN")"
  export PUSHGATE_BIN
fi
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
# Both parts run whatever the other's outcome; the script fails if either failed.
failed=0
npm test || failed=1

# ---- The official Python server SDK (pusher 3.3.4 from PyPI, in a temporary virtualenv).
echo "== interop: the Python SDK (pusher 3.3.4)"
bash python/run.sh || failed=1
exit "$failed"
