#!/usr/bin/env bash
# The official Python server SDK (`pusher` 3.3.4 from PyPI) against the pushgate binary:
# installs it into a temporary virtualenv (removed at exit), then runs sdk_test.py.
# PUSHGATE_BIN selects the binary (default: ../../../target/release/pushgate); PYTHON the
# interpreter used to make the virtualenv (default: python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
venv="$(mktemp -d "${TMPDIR:-/tmp}/pushgate-pysdk-venv-XXXXXX")"
trap 'rm -rf "$venv"' EXIT
timeout 120 "${PYTHON:-python3}" -m venv "$venv"
timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input "pusher==3.3.4"
timeout 120 "$venv/bin/python" sdk_test.py
