#!/usr/bin/env bash
# Runs the pusher-js / pusher SDK interop suite against the pushgate binary, then again over a
# three-node cluster (when nats-server is installed), then the official Python SDK's checks
# (python/run.sh).
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

# ---- The same files over a cluster: a nats-server and three nodes, pusher-js clients spread
# over them in turn, the SDKs on node 0 (lib/server.js; TLS stays on one node).
NATS_SERVER="${NATS_SERVER:-/usr/sbin/nats-server}"
if [ -x "$NATS_SERVER" ]; then
  echo "== interop: the same suite over three nodes linked by NATS"
  INTEROP_NODES=3 NATS_SERVER="$NATS_SERVER" npm test || failed=1
else
  echo "== interop over three nodes: SKIPPED (no nats-server at $NATS_SERVER)"
fi

# ---- The official Python server SDK (pusher 3.3.4 from PyPI, in a temporary virtualenv).
echo "== interop: the Python SDK (pusher 3.3.4)"
bash python/run.sh || failed=1
exit "$failed"
