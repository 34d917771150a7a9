#!/usr/bin/env bash
# heap-profile.sh: where an idle subscribed connection's user-space memory goes.
#
# Builds pushgate with `--features heap-profile` (a counting allocator over mimalloc) into its own
# target directory, starts it with one shard, reads GET /debug/heap, opens N idle subscribed
# connections with pushgate-load, reads /debug/heap again while they are held, and prints the heap
# bytes per connection and the change per size class, next to the RSS per connection the load
# generator measured. Extra arguments are set in the server's environment, e.g.
#
#   loadtest/heap-profile.sh                                    # 10,000 connections
#   N=19000 loadtest/heap-profile.sh MIMALLOC_ARENA_EAGER_COMMIT=0
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
PORT=${PORT:-7101}
TARGET=${TARGET:-target/heap-profile}
HOLD=${HOLD:-10}

CARGO_TARGET_DIR=$TARGET cargo build --release --features heap-profile -p pushgate -p pushgate-load >&2
server=$TARGET/release/pushgate
load=$TARGET/release/pushgate-load
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

env "$@" "$server" --port "$PORT" --shards 1 >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "localhost:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf "localhost:$PORT/debug/heap" >"$work/before"
"$load" idle -n "$N" -c 1 --port "$PORT" --hold-secs "$HOLD" --server-pid "$pid" --quiet \
    >"$work/idle.txt" 2>&1 &
loader=$!
# Read the heap while every connection is open: once the server counts N, before the hold ends.
open_now() { curl -sf "localhost:$PORT/metrics" | awk '$1 == "pushgate_connections" { print $2 }'; }
until [ "$(open_now)" = "$N" ] || ! kill -0 "$loader" 2>/dev/null; do sleep 0.2; done
sleep 1
curl -sf "localhost:$PORT/debug/heap" >"$work/during"
wait "$loader"
grep -E "^connections:|RSS/conn" "$work/idle.txt"
python3 - "$work/before" "$work/during" "$N" <<'PY'
import sys
def load(path):
    return {k: int(v) for k, v in (line.split() for line in open(path))}
before, during, n = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
print(f"heap bytes per connection (requested, live): {(during['live_bytes'] - before['live_bytes']) / n:.0f}")
print("live allocations per connection, by size class (bytes rounded up to 8):")
for size in sorted((set(before) | set(during)) - {"live_bytes"},
                   key=lambda k: int(k) if k.isdigit() else 1 << 40):
    delta = during.get(size, 0) - before.get(size, 0)
    if abs(delta) >= n // 20 or size == "over_4096":
        print(f"  {size:>9}: {delta / n:+.2f}  ({delta:+d})")
PY
