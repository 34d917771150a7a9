#!/usr/bin/env bash
# Runs client.mjs (protobufjs + ws over WebSocket, @grpc/grpc-js for the push API, all from npm)
# against a pushgate on 127.0.0.1:PORT. Installs its node_modules here once (npm install).
# Exits 77 when node or npm is missing, so the caller can skip; any other failure is non-zero.
#
#   bash tests/im/interop/run.sh PORT TOKEN API_KEY
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP: node and npm are needed" >&2
  exit 77
fi
if [ ! -d node_modules/protobufjs ] || [ ! -d node_modules/@grpc/grpc-js ] || [ ! -d node_modules/ws ]; then
  npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2
fi
exec node client.mjs "$@"
