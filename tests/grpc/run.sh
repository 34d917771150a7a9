#!/usr/bin/env bash
# Runs push_msg.py, or SCRIPT with ARGS (the real grpcio client), against an h2c server on
# 127.0.0.1:PORT.
# grpcio is installed with pip into a venv, once: GRPC_VENV, default $TMPDIR/pushgate-grpc-venv
# (about 10 s and 6 MB the first time). Exits 77 when python3, venv or pip is missing, so a
# caller can skip; any other non-zero exit is a failure.
#
#   bash tests/grpc/run.sh PORT [SCRIPT [ARGS...]]
set -euo pipefail
port="${1:?usage: run.sh PORT [SCRIPT [ARGS...]]}"
script="${2:-push_msg.py}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${GRPC_VENV:-${TMPDIR:-/tmp}/pushgate-grpc-venv}"
grpcio="grpcio==1.85.3"

if ! "$venv/bin/python" -c 'import grpc' >/dev/null 2>&1; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is not installed" >&2
    exit 77
  fi
  if ! python3 -m venv "$venv" >/dev/null 2>&1 || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "SKIP: python3 has no venv/pip (Debian: apt-get install python3-venv)" >&2
    exit 77
  fi
  echo "installing $grpcio into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 "$grpcio" >&2
fi
exec "$venv/bin/python" "$here/$script" "$port" "${@:3}"
