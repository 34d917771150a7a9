#!/usr/bin/env bash
# The IM rows of BENCHMARKS.md, next to the Pusher fan-out row, on one server process:
#   1. Pusher: fanout -n 10000 -c 1 -r 10 -t 10 (10,000 subscribers of one channel, 10 publishes/s)
#   2. IM: im-push -n 10000 -r 10 -t 10 (POST /im/sendMsg naming 10,000 users, 10 pushes/s),
#      answered with every connection reached (xxim's shape), then with --only-failed
#   3. IM: im-rtt -n 64 -k 4 -t 10 (event 1 requests through the tool's mock gRPC backend)
# each RUNS times (default 3), interleaved. The server (one shard) runs on CPU 0, the tool on CPU 1.
# JSON per run goes to OUT (default /tmp/im-bench); a summary line per run goes to stderr.
#
#   bash loadtest/im-bench.sh [RUNS]   (PUSHGATE, LOAD: the binaries; default target/release/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
server="${PUSHGATE:-$root/target/release/pushgate}"
load="${LOAD:-$root/target/release/pushgate-load}"
out="${OUT:-/tmp/im-bench}"
port="${PORT:-6101}"
backend=6700
mkdir -p "$out"
config="$out/im-bench.toml"
cat > "$config" <<TOML
port = $port
shards = 1
[im.auth]
mode = "none"
[[im.routes]]
event = 1
url = "http://127.0.0.1:$backend"
TOML
uptime >&2
taskset -c 0 "$server" --config "$config" > "$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1
common=(--port "$port" --server-pid "$pid" --quiet)
for run in $(seq 1 "$runs"); do
  taskset -c 1 "$load" fanout "${common[@]}" -n 10000 -c 1 -r 10 -t 10 --payload-bytes 64 \
    --json "$out/pusher-fanout-$run.json" || true
  sleep 2
  taskset -c 1 "$load" im-push "${common[@]}" -n 10000 -r 10 -t 10 --payload-bytes 64 \
    --json "$out/im-push-$run.json" || true
  sleep 2
  taskset -c 1 "$load" im-push "${common[@]}" -n 10000 -r 10 -t 10 --payload-bytes 64 \
    --only-failed --json "$out/im-push-only-failed-$run.json" || true
  sleep 2
  taskset -c 1 "$load" im-rtt "${common[@]}" -n 64 -k 4 -t 10 --backend-port "$backend" \
    --json "$out/im-rtt-$run.json" || true
  sleep 2
done
uptime >&2
