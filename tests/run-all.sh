#!/usr/bin/env bash
# Every test pushgate has, in one command (the README's): the Rust unit and end-to-end tests in
# release mode, the pusher-js / Pusher SDK interop suite against the release binary, and a short
# run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build (release)"
cargo build --release --workspace --bins

echo "== Rust tests (unit + end-to-end, release)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --release --no-fail-fast
else
  cargo test --workspace --release --no-fail-fast
fi

echo "== interop: pusher-js and the Pusher Node SDK against target/release/pushgate"
PUSHGATE_BIN="$PWD/target/release/pushgate" bash tests/interop/run.sh

echo "== fuzz targets, ${FUZZ_SECONDS:=5} s each"
FUZZ_SECONDS="$FUZZ_SECONDS" bash fuzz/run.sh

echo "all test suites passed"
