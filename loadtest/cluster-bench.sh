#!/usr/bin/env bash
# cluster-bench.sh: the cluster row of BENCHMARKS.md (issue 13). One channel x N subscribers spread
# round robin over 3 nodes linked through one nats-server, REST publishes on node 0; beside it the
# single-node row (same tool, one node, no cluster). Each (server, layout) runs REPEATS times with
# fresh processes, interleaved in one series.
#
# Placement (2 cores): every server process (the nodes and nats-server) on CPU 0, the tool on
# CPU 1, as in compare.sh, so the tool never takes CPU from the servers and "CPU per delivery"
# is the servers' own. PIN=0 runs everything unpinned.
#
# Prints and writes to OUT: raw/<run>.json (pushgate-load --json), raw/<run>.meta (which pid is
# what), summary.md (median and min-max over the repeats).
#
# Environment: OUT (/tmp/pushgate-cluster-<date>), REPEATS (3), N (10000), RATE (10), DURATION
# (10), PAYLOAD (64), SERVERS ("pushgate sockudo"; sockudo is skipped with a note when its binary
# is missing), LAYOUTS ("single cluster"), PIN (1), PUSHGATE_BIN, LOAD_BIN, SOCKUDO_BIN
# (/work/sockudo-nats/bin/sockudo, built with --features nats), NATS_BIN (/usr/sbin/nats-server),
# QUIET_MAX_SECS (900: total wait, over the series, for a quiet machine before a run), QUIET_LOAD
# (1.0: the 1-minute load average a quiet machine is under).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/pushgate-cluster-$(date -u +%Y%m%d-%H%M%S)}
REPEATS=${REPEATS:-3}
N=${N:-10000}
RATE=${RATE:-10}
DURATION=${DURATION:-10}
PAYLOAD=${PAYLOAD:-64}
SERVERS=${SERVERS:-"pushgate sockudo"}
LAYOUTS=${LAYOUTS:-"single cluster"}
PIN=${PIN:-1}
PUSHGATE_BIN=${PUSHGATE_BIN:-target/release/pushgate}
LOAD_BIN=${LOAD_BIN:-target/release/pushgate-load}
SOCKUDO_BIN=${SOCKUDO_BIN:-/work/sockudo-nats/bin/sockudo}
NATS_BIN=${NATS_BIN:-/usr/sbin/nats-server}
QUIET_MAX_SECS=${QUIET_MAX_SECS:-900}
QUIET_LOAD=${QUIET_LOAD:-1.0}
NODES=3
QUIET_WAITED=0

mkdir -p "$OUT/raw" "$OUT/logs"
PIDS=()

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }

stop_all() { # TERM every process this script started, KILL after 3 s
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Wait (bounded over the whole series) until no compiler, cargo or test job runs and the load
# average is under QUIET_LOAD: on 2 cores a build beside the run moves p50 from tens to hundreds
# of ms. quiet.log says what each run found.
busy() {
    pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null || pgrep -x cargo-nextest >/dev/null ||
        awk -v max="$QUIET_LOAD" '{ exit !($1 >= max) }' /proc/loadavg
}
quiet() {
    local t0=$SECONDS
    while busy; do
        if [ "$QUIET_WAITED" -ge "$QUIET_MAX_SECS" ]; then
            echo "$(date -u +%T) $1 BUSY (wait budget spent) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/quiet.log"
            return 0
        fi
        sleep 5
        QUIET_WAITED=$((QUIET_WAITED + 5))
    done
    echo "$(date -u +%T) $1 quiet (waited $((SECONDS - t0))s) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/quiet.log"
}

server_cpu() { if [ "$PIN" = 1 ]; then echo "taskset -c 0"; fi; }
tool_cpu() { if [ "$PIN" = 1 ]; then echo "taskset -c 1"; fi; }

# A port with no socket on it (pushgate binds without SO_REUSEADDR, so TIME_WAIT leftovers
# block a port for 60 s), set in the named variable; NEXT_PORT moves on so no two processes of a
# run get the same one (not called in $(...): the subshell would not move it).
NEXT_PORT=6201
free_port() { # variable
    while ss -Htan "sport = :$NEXT_PORT" | grep -q .; do NEXT_PORT=$((NEXT_PORT + 1)); done
    printf -v "$1" '%s' "$NEXT_PORT"
    NEXT_PORT=$((NEXT_PORT + 1))
    [ "$NEXT_PORT" -lt 6900 ] || NEXT_PORT=6201
}

wait_listening() { # pid port label
    for _ in $(seq 100); do
        ss -Htln "sport = :$2" | grep -q . && return 0
        kill -0 "$1" 2>/dev/null || { log "$3 died at start"; return 1; }
        sleep 0.1
    done
    log "$3 not listening on $2 after 10 s"
    return 1
}

start_nats() { # sets NATS_PORT, NATS_PID
    free_port NATS_PORT
    $(server_cpu) "$NATS_BIN" -a 127.0.0.1 -p "$NATS_PORT" >"$OUT/logs/$RUN-nats.log" 2>&1 &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
    wait_listening "$NATS_PID" "$NATS_PORT" nats-server
}

start_pushgate() { # index cluster(0|1): appends to NODE_PORTS / NODE_PIDS
    local i=$1 cfg="$OUT/logs/$RUN-node-$1.toml" port
    free_port port
    : >"$cfg"
    if [ "$2" = 1 ]; then
        printf '[cluster]\nadapter = "nats"\nservers = ["nats://127.0.0.1:%s"]\nnode = "node-%s"\n' \
            "$NATS_PORT" "$i" >"$cfg"
    fi
    $(server_cpu) "$PUSHGATE_BIN" --config "$cfg" --host 127.0.0.1 --port "$port" --shards 1 \
        >"$OUT/logs/$RUN-node-$i.log" 2>&1 &
    NODE_PIDS+=($!); PIDS+=($!); NODE_PORTS+=("$port")
    wait_listening "$!" "$port" "pushgate node $i"
}

start_sockudo() { # index cluster(0|1)
    local i=$1 port mport adapter=local
    free_port port; free_port mport
    [ "$2" = 1 ] && adapter=nats
    # compare.sh's settings (same app, per-app limits lifted, INFO logging off), plus the adapter
    # and a metrics port of its own per node. Idempotency off: 5.2.0 refuses to start clustered
    # with it on unless cache.driver is redis, and the tool's publishes carry no idempotency key.
    env SOCKUDO_DEFAULT_APP_ID=app-id SOCKUDO_DEFAULT_APP_KEY=app-key \
        SOCKUDO_DEFAULT_APP_SECRET=app-secret \
        SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=100000000 \
        SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=100000000 \
        RATE_LIMITER_ENABLED=false PORT="$port" METRICS_PORT="$mport" RUST_LOG=warn \
        ADAPTER_DRIVER=$adapter NATS_SERVERS="nats://127.0.0.1:${NATS_PORT:-4222}" \
        INSTANCE_PROCESS_ID="node-$i" IDEMPOTENCY_ENABLED=false \
        $(server_cpu) "$SOCKUDO_BIN" >"$OUT/logs/$RUN-node-$i.log" 2>&1 &
    NODE_PIDS+=($!); PIDS+=($!); NODE_PORTS+=("$port")
    wait_listening "$!" "$port" "sockudo node $i"
}

# pushgate: every node sees the other NODES-1 (pushgate_cluster_nodes counts the others).
cluster_ready() { # server
    local port v
    [ "$1" = pushgate ] || { sleep 3; return 0; }
    for _ in $(seq 200); do
        local ok=1
        for port in "${NODE_PORTS[@]}"; do
            v=$(curl -s "http://127.0.0.1:$port/metrics" |
                sed -n 's/^pushgate_cluster_nodes{[^}]*} \([0-9]*\).*/\1/p' | head -1)
            [ "${v:-0}" = $((NODES - 1)) ] || ok=0
        done
        [ $ok = 1 ] && return 0
        sleep 0.1
    done
    log "cluster not formed after 20 s"
    return 1
}

run_one() { # server layout repeat
    local server=$1 layout=$2 r=$3 i n=1 extra=() subs
    RUN="$server-$layout-r$r"
    NODE_PORTS=(); NODE_PIDS=(); NATS_PID=""; NATS_PORT=""
    quiet "$RUN"
    [ "$layout" = cluster ] && { n=$NODES; start_nats || return 1; }
    for i in $(seq 0 $((n - 1))); do
        "start_$server" "$i" "$([ "$layout" = cluster ] && echo 1 || echo 0)" || return 1
    done
    [ "$layout" = cluster ] && { cluster_ready "$server" || return 1; }
    sleep 0.5
    for pid in "${NODE_PIDS[@]:1}"; do extra+=(--extra-pid "$pid"); done
    [ -n "$NATS_PID" ] && extra+=(--extra-pid "$NATS_PID")
    subs=$(IFS=,; echo "${NODE_PORTS[*]}")
    printf 'server=%s layout=%s nodes=%s nats=%s loadavg=%s\n' "$server" "$layout" \
        "$(IFS=,; echo "${NODE_PIDS[*]}")" "$NATS_PID" "$(cut -d' ' -f1-3 /proc/loadavg)" \
        >"$OUT/raw/$RUN.meta"
    log "$RUN: nodes on ${subs}, publishing to ${NODE_PORTS[0]}, load $(cut -d' ' -f1-3 /proc/loadavg)"
    $(tool_cpu) "$LOAD_BIN" fanout -n "$N" -c 1 -r "$RATE" -t "$DURATION" \
        --payload-bytes "$PAYLOAD" --port "${NODE_PORTS[0]}" --sub-ports "$subs" \
        --server-pid "${NODE_PIDS[0]}" "${extra[@]}" --workers 1 --quiet \
        --json "$OUT/raw/$RUN.json" >"$OUT/logs/$RUN.txt" 2>&1 || log "$RUN: pushgate-load failed"
    grep -E "^deliveries|^end-to-end" "$OUT/logs/$RUN.txt" | sed "s/^/  /" >&2 || true
    stop_all
}

for b in "$PUSHGATE_BIN" "$LOAD_BIN" "$NATS_BIN"; do
    [ -x "$b" ] || { echo "missing $b (cargo build --release -p pushgate -p pushgate-load)" >&2; exit 2; }
done
if [[ " $SERVERS " == *" sockudo "* ]] && [ ! -x "$SOCKUDO_BIN" ]; then
    echo "sockudo: $SOCKUDO_BIN is missing; not measured" | tee "$OUT/sockudo-missing.txt" >&2
    SERVERS=${SERVERS//sockudo/}
fi
{
    echo "date: $(date -u +%FT%TZ); nproc: $(nproc); cpu: $(lscpu | sed -n 's/^Model name: *//p')"
    echo "kernel: $(uname -r); nofile: $(ulimit -Hn); pin: $PIN"
    echo "pushgate: $(git rev-parse --short HEAD) $PUSHGATE_BIN; nats-server: $("$NATS_BIN" --version)"
    [[ " $SERVERS " == *" sockudo "* ]] && echo "sockudo: $("$SOCKUDO_BIN" --version 2>&1 | head -1) $SOCKUDO_BIN"
    echo "uptime at start: $(uptime)"
} >"$OUT/env.txt"

for r in $(seq "$REPEATS"); do
    for server in $SERVERS; do
        for layout in $LAYOUTS; do
            run_one "$server" "$layout" "$r" || { log "$server-$layout-r$r: setup failed"; stop_all; }
        done
    done
done
echo "uptime at end: $(uptime)" >>"$OUT/env.txt"

python3 - "$OUT" "$N" "$RATE" "$DURATION" "$PAYLOAD" "$PIN" <<'EOF' | tee "$OUT/summary.md"
import json, pathlib, statistics, sys
out, n, rate, dur, payload, pin = sys.argv[1:]
rows = {}
for meta in sorted(pathlib.Path(out, "raw").glob("*.meta")):
    m = dict(kv.split("=", 1) for kv in meta.read_text().split(" ", 4))
    try:
        j = json.loads(meta.with_suffix(".json").read_text())
    except (OSError, ValueError):
        continue
    d, lat, s = j["delivery"], j["latency_us"], j["server"]
    delivered = max(d["delivered"], 1)
    window = j["publish"]["duration_secs"] + d["drain_secs"]
    nats = int(m["nats"]) if m["nats"] else None
    node_cpu = (s["cpu_us_window"] or 0) + sum(x["cpu_us_window"] or 0 for x in j["extra"] if x["pid"] != nats)
    nats_cpu = next((x["cpu_us_window"] for x in j["extra"] if x["pid"] == nats), None)
    rows.setdefault((m["server"], m["layout"]), []).append({
        "dps": d["deliveries_per_sec"], "missing": d["missing"], "dup": d["duplicated"],
        "p50": lat["p50"] / 1000, "p99": lat["p99"] / 1000,
        "cpu": node_cpu / delivered,
        "nats": None if nats_cpu is None else nats_cpu / delivered,
        "nats_pct": None if nats_cpu is None else 100 * nats_cpu / 1e6 / window,
        "load": float(m["loadavg"].split()[0]),
    })
def cell(runs, k, f):
    v = [r[k] for r in runs if r[k] is not None]
    if not v:
        return "–"
    return f"{f.format(statistics.median(v))} ({f.format(min(v))}–{f.format(max(v))})"
print(f"# 1 channel x {n} subscribers, {rate} publishes/s for {dur} s, {payload}-byte payloads\n")
print("Cluster: 3 nodes on this machine linked through one nats-server, subscribers round robin")
print("over the nodes, REST publishes on node 0. Single: one node, no cluster. Medians of the")
print("repeats (min–max); every run with fresh processes.")
print("Placement: " + ("nodes and nats-server on CPU 0, pushgate-load on CPU 1 (taskset)."
                       if pin == "1" else "nothing pinned."))
print("Node CPU is the sum over the nodes; NATS is nats-server's CPU over the same window")
print("(publish + drain), also as a share of one core. Load: 1-minute load average when the")
print("run started (2 cores).\n")
print("| server | layout | runs | deliveries/s | missing | dup | p50 ms | p99 ms | node CPU µs/delivery | NATS CPU µs/delivery | NATS CPU % | load |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (srv, lay), runs in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] != "single")):
    print(f"| {srv} | {lay} | {len(runs)} | {cell(runs, 'dps', '{:,.0f}')} | {cell(runs, 'missing', '{:.0f}')} "
          f"| {cell(runs, 'dup', '{:.0f}')} | {cell(runs, 'p50', '{:.1f}')} | {cell(runs, 'p99', '{:.1f}')} "
          f"| {cell(runs, 'cpu', '{:.2f}')} | {cell(runs, 'nats', '{:.3f}')} | {cell(runs, 'nats_pct', '{:.2f}')} "
          f"| {cell(runs, 'load', '{:.1f}')} |")
EOF
cat "$OUT/env.txt" >&2
[ -f "$OUT/sockudo-missing.txt" ] && cat "$OUT/sockudo-missing.txt" >>"$OUT/summary.md"
log "results in $OUT"
