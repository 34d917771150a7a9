#!/usr/bin/env bash
# Every test pushgate has, in one command (the README's): the Rust unit and end-to-end tests in
# release mode, the pusher-js / Pusher SDK interop suite against the release binary, and a short
# run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interop suite's TLS test makes certificates with openssl; its Python SDK checks need
# python3 with venv. Say so now rather than after the Rust tests (.ci/run installs them).
for tool in openssl python3 npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/run-all.sh: the interop suite needs the $tool command (bash .ci/run installs it on Debian)" >&2
    exit 1
  fi
done

echo "== build (release)"
cargo build --release --workspace --bins

echo "== Rust tests (unit + end-to-end, release)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --release --no-fail-fast
else
  cargo test --workspace --release --no-fail-fast
fi

echo "== interop: pusher-js, the Pusher Node SDK and the Python SDK against target/release/pushgate"
PUSHGATE_BIN="$PWD/target/release/pushgate" bash tests/interop/run.sh

echo "== fuzz targets, ${FUZZ_SECONDS:=5} s each"
FUZZ_SECONDS="$FUZZ_SECONDS" bash fuzz/run.sh

echo "all test suites passed"
