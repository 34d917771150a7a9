#!/usr/bin/env bash
# gateway-compare.sh: the gateway dialect's benchmark row, repeated, with min / median / max.
#
# Each repeat starts a fresh server (`--shards 1 --pin`, loadtest/gateway.toml) on CPU 0 and runs
# the tool on CPU 1 with one worker:
#   1. 1 topic x N Pusher subscribers (`fanout`) and 1 topic x N gateway subscribers (`gateway`)
#      against that one server, same rate, duration and payload; the order alternates by repeat.
#   2. on another fresh server: upstream round trips through the hook shard (`gateway-calls`) to
#      the tool's mock upstream over TCP JSON, then HTTP.
# Raw JSON and logs go to OUT; the summary is printed and written to OUT/summary.md.
#
#   loadtest/gateway-compare.sh
#   REPEATS=1 N=2000 DURATION=5 loadtest/gateway-compare.sh
#
# Knobs: OUT, REPEATS (3), N (10000), RATE (10), DURATION (10 s), PAYLOAD (64), CALL_CONNS (64),
# PORT (6301; repeat r uses PORT + 2r and PORT + 2r + 1), PUSHGATE_BIN, LOAD_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/pushgate-gateway-$(date -u +%Y%m%d-%H%M%S)}
REPEATS=${REPEATS:-3}
N=${N:-10000}
RATE=${RATE:-10}
DURATION=${DURATION:-10}
PAYLOAD=${PAYLOAD:-64}
CALL_CONNS=${CALL_CONNS:-64}
PORT=${PORT:-6301}
PUSHGATE_BIN=${PUSHGATE_BIN:-target/release/pushgate}
LOAD_BIN=${LOAD_BIN:-target/release/pushgate-load}
SERVER_PID=""
mkdir -p "$OUT"

for b in "$PUSHGATE_BIN" "$LOAD_BIN"; do
    [ -x "$b" ] || { echo "missing $b: cargo build --release -p pushgate -p pushgate-load" >&2; exit 2; }
done

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT

start_server() { # port tag
    : >"$OUT/server-$2.log"
    taskset -c 0 "$PUSHGATE_BIN" --config loadtest/gateway.toml --host 127.0.0.1 --port "$1" \
        --shards 1 --pin >"$OUT/server-$2.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do grep -q "listening on" "$OUT/server-$2.log" && return 0; sleep 0.1; done
    echo "server $2 did not start" >&2
    exit 1
}

load() { # port json args...
    local port=$1 json=$2
    shift 2
    echo "+ pushgate-load $* --port $port" >>"$OUT/commands.txt"
    taskset -c 1 "$LOAD_BIN" "$@" --port "$port" --workers 1 --quiet --server-pid "$SERVER_PID" \
        --json "$OUT/$json" >>"$OUT/tool.log" 2>&1
}

{ date -u; uptime; nproc; } >"$OUT/env.txt"
for r in $(seq "$REPEATS"); do
    port=$((PORT + 2 * r))
    echo "[$(date -u +%T)] repeat $r: fan-out (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    start_server "$port" "fanout-r$r"
    fanout=(-n "$N" -c 1 -r "$RATE" -t "$DURATION" --payload-bytes "$PAYLOAD")
    if [ $((r % 2)) -eq 1 ]; then
        load "$port" "pusher-r$r.json" fanout "${fanout[@]}"
        load "$port" "gateway-r$r.json" gateway "${fanout[@]}"
    else
        load "$port" "gateway-r$r.json" gateway "${fanout[@]}"
        load "$port" "pusher-r$r.json" fanout "${fanout[@]}"
    fi
    stop_server
    echo "[$(date -u +%T)] repeat $r: upstream calls (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    start_server "$((port + 1))" "calls-r$r"
    load "$((port + 1))" "calls-tcp-r$r.json" gateway-calls --uri /bench/tcp -n "$CALL_CONNS" -t "$DURATION"
    load "$((port + 1))" "calls-http-r$r.json" gateway-calls --uri /bench/http -n "$CALL_CONNS" -t "$DURATION"
    stop_server
done
{ date -u; uptime; } >>"$OUT/env.txt"

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import glob, json, statistics, sys
out = sys.argv[1]
def runs(kind):
    return [json.load(open(p)) for p in sorted(glob.glob(f"{out}/{kind}-r*.json"))]
def mmm(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
print("| subscribers | deliveries/s | CPU us/delivery | p50 ms | p99 ms | missing |")
print("|---|---|---|---|---|---|")
for kind in ("pusher", "gateway"):
    r = runs(kind)
    print(f"| {kind} | {mmm([x['delivery']['deliveries_per_sec'] for x in r], '{:.0f}')} "
          f"| {mmm([x['server']['cpu_us_per_delivery'] for x in r])} "
          f"| {mmm([x['latency_us']['p50'] / 1000 for x in r], '{:.1f}')} "
          f"| {mmm([x['latency_us']['p99'] / 1000 for x in r], '{:.1f}')} "
          f"| {sum(x['delivery']['missing'] for x in r)} |")
p, g = runs("pusher"), runs("gateway")
ratios = [b["server"]["cpu_us_per_delivery"] / a["server"]["cpu_us_per_delivery"] for a, b in zip(p, g)]
print(f"\ngateway / Pusher CPU per delivery, same server, per repeat: {', '.join(f'{x:.3f}' for x in ratios)}"
      f" (median {statistics.median(ratios):.3f})\n")
print("| upstream | calls/s | server CPU us/call | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|")
for kind in ("calls-tcp", "calls-http"):
    r = runs(kind)
    print(f"| {kind[6:]} | {mmm([x['calls_per_sec'] for x in r], '{:.0f}')} "
          f"| {mmm([x['server_cpu_us_per_call'] for x in r], '{:.1f}')} "
          f"| {mmm([x['latency_us']['p50'] / 1000 for x in r], '{:.2f}')} "
          f"| {mmm([x['latency_us']['p99'] / 1000 for x in r], '{:.2f}')} "
          f"| {sum(x['errors'] for x in r)} |")
EOF
