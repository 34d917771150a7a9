#!/usr/bin/env bash
# durable.sh: acknowledged durable publishing, 1 topic x 10 consumers, 1 KiB messages: pushgate's
# Zato GD topic (notify subscriptions to the load tool) against NATS JetStream file storage
# (10 durable pull consumers), side by side in the same run. For each target and repeat: a
# throughput run (64 publishers, each waiting for its ack, as fast as acks come) and a latency
# run (a fixed total rate), each on a fresh server and data directory. Server on CPU 0, load tool
# on CPU 1. Prints min/median/max over the repeats and keeps every JSON under OUT.
#
#   OUT=/tmp/durable REPEATS=3 bash loadtest/durable.sh
#
# Needs target/release/{pushgate,pushgate-load} (cargo build --release -p pushgate -p
# pushgate-load), nats-server (apt-get install -y nats-server) and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/pushgate-durable}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-10}
PUBLISHERS=${PUBLISHERS:-64}
RATE=${RATE:-500}
CONSUMERS=${CONSUMERS:-10}
SIZE=${SIZE:-1024}
PG_PORT=${PG_PORT:-26001}
NATS_PORT=${NATS_PORT:-24222}
DATA=${DATA:-$OUT/data}
mkdir -p "$OUT"

wait_port() { # port: until something accepts on 127.0.0.1:port (10 s at most)
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

pushgate_config() {
    {
        printf '[store]\npath = "%s"\n\n[zato]\nadmin_password = "bench"\n\n' "$DATA"
        printf '[[zato.topics]]\nname = "/bench"\nhas_gd = true\nmax_depth_gd = 100000000\ndepth_check_freq = 1000000\n\n'
        printf '[[zato.endpoints]]\nname = "pub"\nusername = "pub"\npassword = "pub-pass"\npub = ["**"]\nsub = ["**"]\n\n'
        for i in $(seq 0 $((CONSUMERS - 1))); do
            printf '[[zato.endpoints]]\nname = "s%d"\nusername = "s%d"\npassword = "x"\nsub = ["**"]\n\n' "$i" "$i"
        done
    } >"$OUT/pushgate.toml"
}

start_server() { # target: start it on CPU 0 with an empty data directory; sets SERVER_PID
    local port=$PG_PORT
    [ "$1" = jetstream ] && port=$NATS_PORT
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is taken by another process: set PG_PORT / NATS_PORT" >&2
        ss -ltnp | grep ":$port " >&2 || true
        exit 2
    fi
    rm -rf "$DATA"
    case $1 in
        pushgate)
            taskset -c 0 target/release/pushgate --config "$OUT/pushgate.toml" --host 127.0.0.1 \
                --port "$PG_PORT" --shards 1 >"$OUT/server.log" 2>&1 &
            SERVER_PID=$!
            wait_port "$PG_PORT" ;;
        jetstream)
            taskset -c 0 nats-server -js -sd "$DATA" -a 127.0.0.1 -p "$NATS_PORT" >"$OUT/server.log" 2>&1 &
            SERVER_PID=$!
            wait_port "$NATS_PORT" ;;
    esac
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    sleep 0.5
}

run_one() { # target mode repeat
    local rate=0
    [ "$2" = latency ] && rate=$RATE
    start_server "$1"
    taskset -c 1 target/release/pushgate-load durable --target "$1" --workers 1 \
        --pushgate "127.0.0.1:$PG_PORT" --nats "127.0.0.1:$NATS_PORT" --consumers "$CONSUMERS" \
        --publishers "$PUBLISHERS" --size "$SIZE" --duration-secs "$DURATION" --rate "$rate" \
        --json "$OUT/$1-$2-r$3.json" 2>>"$OUT/run.log" || echo "$1 $2 r$3 failed" >>"$OUT/run.log"
    stop_server
}

pushgate_config
{ date -u; uptime; nats-server --version; nproc; } >"$OUT/env.txt"
for r in $(seq 1 "$REPEATS"); do
    for target in pushgate jetstream; do
        for mode in throughput latency; do
            run_one "$target" "$mode" "$r"
        done
    done
done
uptime >>"$OUT/env.txt"

python3 - "$OUT" "$REPEATS" <<'EOF'
import json, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
def figures(target, mode, key):
    values = []
    for r in range(1, repeats + 1):
        try:
            values.append(json.load(open(f"{out}/{target}-{mode}-r{r}.json"))[key])
        except (OSError, KeyError, ValueError):
            pass
    return values
def line(label, values, unit):
    if not values:
        return f"{label}: no data"
    return f"{label}: min {min(values):.0f} / median {statistics.median(values):.0f} / max {max(values):.0f} {unit} ({len(values)} runs)"
for target in ("pushgate", "jetstream"):
    print(line(f"{target} acked/s (throughput run)", figures(target, "throughput", "acked_per_sec"), "msg/s"))
    print(line(f"{target} delivery p50 (throughput run)", figures(target, "throughput", "latency_us_p50"), "us"))
    print(line(f"{target} delivery p50 (latency run)", figures(target, "latency", "latency_us_p50"), "us"))
    print(line(f"{target} delivery p99 (latency run)", figures(target, "latency", "latency_us_p99"), "us"))
    delivered = figures(target, "throughput", "delivered")
    acked = figures(target, "throughput", "acked")
    print(f"{target} delivered/acked (throughput runs): {list(zip(delivered, acked))}")
EOF
