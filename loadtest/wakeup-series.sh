#!/usr/bin/env bash
# wakeup-series.sh: CPU per REST publish against the number of idle connections, for one or more
# pushgate builds in one series (issue 15, goal 3: a shard's wake-up must not cost more with more
# idle connections).
#
# Each run: a fresh `pushgate --shards 1 --pin` on CPU 0, then on CPU 1
#   pushgate-load fanout -n N -c N --random-channel -r RATE --publishers 16 -t DURATION --payload-bytes 64
# (N connections, one per channel, each REST publish goes to one random channel: one delivery per
# publish, so the server's CPU per delivery is its CPU per REST publish, and the rest of the N
# connections sit idle with an armed read poll). Builds alternate inside each repeat, so a busy
# moment of the machine falls on both.
#
#   loadtest/wakeup-series.sh                                  # target/release/pushgate only
#   BINS="before=/tmp/pushgate-crates after=target/release/pushgate" loadtest/wakeup-series.sh
#   SERVER_ENV="PUSHGATE_RING_DEPTH=128" ...   # set in every server's environment; a smaller
#                  # ring makes the kernel's hash of armed polls 8 buckets instead of 64, so
#                  # 19,000 connections walk like 152,000 at the default depth
#   PERF=1 ...     # also a perf profile (cpu-clock, call graphs) of one run per build at the
#                  # largest N, reported as the top symbols and the share of io_poll_find
#
# Knobs: BINS, SERVER_ENV, SIZES ("1000 5000 10000 19000"), REPEATS (3), DURATION (8), RATE (2000),
# PUBLISHERS (16), LOAD_BIN, OUT (default /tmp/wakeup-series-<date>), PORT_BASE (6201),
# QUIET_MAX_SECS (900: total wait for no compiler running). Writes OUT/raw/*.json, *.cmd,
# OUT/quiet.log, OUT/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BINS=${BINS:-"current=target/release/pushgate"}
SIZES=${SIZES:-"1000 5000 10000 19000"}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-8}
RATE=${RATE:-2000}
PUBLISHERS=${PUBLISHERS:-16}
LOAD_BIN=${LOAD_BIN:-target/release/pushgate-load}
OUT=${OUT:-/tmp/wakeup-series-$(date -u +%Y%m%d-%H%M%S)}
PORT_BASE=${PORT_BASE:-6201}
QUIET_MAX_SECS=${QUIET_MAX_SECS:-900}
PERF=${PERF:-0}
SERVER_ENV=${SERVER_ENV:-}
mkdir -p "$OUT/raw"
SERVER_PID=""
QUIET_WAITED=0

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; return 0; }
    for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

busy_pct() { # CPU busy over one second, all CPUs, from /proc/stat
    local a b
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 k
    for k in 1 2 3 4 5 6 7 8; do total=$((total + b[k] - a[k])); done
    echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

quiet() { # label: wait (bounded over the series) until no compiler runs and the CPUs are
    # mostly idle (BUSY_MAX %, default 15: other engineers' test runs count too); log the state
    local t0
    t0=$(date +%s)
    while pgrep -x rustc >/dev/null || [ "$(busy_pct)" -gt "${BUSY_MAX:-15}" ]; do
        [ "$QUIET_WAITED" -lt "$QUIET_MAX_SECS" ] || { echo "$(date -u +%T) $1 BUSY load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/quiet.log"; return 0; }
        sleep 5
        QUIET_WAITED=$((QUIET_WAITED + 5))
    done
    echo "$(date -u +%T) $1 quiet (waited $(($(date +%s) - t0))s) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/quiet.log"
}

pick_port() { # first port from PORT_BASE with no socket at all (no TIME_WAIT left by a run)
    local p
    for p in $(seq "$PORT_BASE" $((PORT_BASE + 49))); do
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return 0; }
    done
    echo "$PORT_BASE"
}

start_server() { # bin: pushgate on CPU 0, one shard; sets SERVER_PID and PORT
    PORT=$(pick_port)
    # shellcheck disable=SC2086
    env $SERVER_ENV taskset -c 0 "$1" --host 127.0.0.1 --port "$PORT" --shards 1 --pin >"$OUT/raw/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        ss -Htln "sport = :$PORT" | grep -q . && { sleep 0.3; return 0; }
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "server $1 did not start: $(tail -3 "$OUT/raw/server.log")"
    return 1
}

run_one() { # label bin n repeat [perf]
    local label=$1 bin=$2 n=$3 i=$4 prof=${5:-} name args perf_pid=""
    name="$label-n$n-r$i"
    args="fanout -n $n -c $n --random-channel -r $RATE --publishers $PUBLISHERS -t $DURATION --payload-bytes 64"
    quiet "$name"
    start_server "$bin" || return 0
    if [ -n "$prof" ]; then
        # Profile the middle of the publish phase: connecting N takes about N/10,000 s.
        (sleep $((n / 8000 + 3)) && perf record -q -e cpu-clock -F 2000 -g -p "$SERVER_PID" \
            -o "$OUT/raw/$name.perf.data" -- sleep 4 >/dev/null 2>&1) &
        perf_pid=$!
    fi
    # shellcheck disable=SC2086
    taskset -c 1 "$LOAD_BIN" $args --port "$PORT" --workers 1 --quiet --server-pid "$SERVER_PID" \
        --json "$OUT/raw/$name.json" >"$OUT/raw/$name.txt" 2>&1 || log "$name: pushgate-load failed"
    echo "${SERVER_ENV:+$SERVER_ENV }taskset -c 0 $bin --host 127.0.0.1 --port P --shards 1 --pin; taskset -c 1 pushgate-load $args --port P --workers 1 --quiet --server-pid PID --json F" >"$OUT/raw/$name.cmd"
    [ -z "$perf_pid" ] || wait "$perf_pid" 2>/dev/null || true
    stop_server
    log "$name: $(jq -r '"\(.server.cpu_us_per_delivery) us/publish, connected \(.connections.connected), missing \(.delivery.missing)"' "$OUT/raw/$name.json" 2>/dev/null || echo '?')"
}

echo "series start $(date -u +%FT%TZ); server env '${SERVER_ENV}'; nproc $(nproc); kernel $(uname -r); load $(cat /proc/loadavg)" >>"$OUT/env.txt"
for i in $(seq "$REPEATS"); do
    for n in $SIZES; do
        for b in $BINS; do
            run_one "${b%%=*}" "${b#*=}" "$n" "$i"
        done
    done
done
if [ "$PERF" = 1 ]; then
    last=${SIZES##* }
    for b in $BINS; do
        run_one "${b%%=*}" "${b#*=}" "$last" perf 1
        f="$OUT/raw/${b%%=*}-n$last-rperf.perf.data"
        [ -f "$f" ] || continue
        perf report -i "$f" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' \
            | cut -c1-110 | sed 's/ *$//' | head -20 >"$OUT/raw/${b%%=*}-perf-top.txt" || true
        perf report -i "$f" --no-children --sort symbol --stdio -G -S io_poll_find.isra.0 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | sed 's/ *$//' >"$OUT/raw/${b%%=*}-perf-io_poll_find.txt" || true
    done
fi
echo "series end $(date -u +%FT%TZ); load $(cat /proc/loadavg)" >>"$OUT/env.txt"

OUT="$OUT" BINS="$BINS" SIZES="$SIZES" python3 - >"$OUT/results.md" <<'EOF'
import glob, json, os, statistics
out, bins, sizes = os.environ["OUT"], os.environ["BINS"].split(), os.environ["SIZES"].split()
labels = [b.split("=", 1)[0] for b in bins]
def runs(label, n):
    vals = []
    for f in sorted(glob.glob(f"{out}/raw/{label}-n{n}-r[0-9]*.json")):
        j = json.load(open(f))
        v = (j.get("server") or {}).get("cpu_us_per_delivery")
        if v is not None and (j.get("delivery") or {}).get("missing") == 0:
            vals.append(v)
    return vals
def cell(v):
    return "-" if not v else f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"
print(f"# CPU per REST publish vs idle connections ({out})\n")
print(open(f"{out}/env.txt").read().strip().replace("\n", "  \n") + "\n")
print("Server CPU us per REST publish (one delivery each), median (min-max) over the runs with nothing missing.\n")
print("| build | " + " | ".join(f"{n} conns" for n in sizes) + f" | {sizes[-1]} / {sizes[0]} |")
print("|---|" + "---|" * (len(sizes) + 1))
for l in labels:
    meds = [statistics.median(v) if (v := runs(l, n)) else None for n in sizes]
    ratio = f"{meds[-1] / meds[0]:.2f}x" if meds[0] and meds[-1] else "-"
    print(f"| {l} | " + " | ".join(cell(runs(l, n)) for n in sizes) + f" | {ratio} |")
for l in labels:
    f = f"{out}/raw/{l}-perf-top.txt"
    if os.path.exists(f):
        print(f"\n{l}, top symbols (perf, cpu-clock, {sizes[-1]} connections):\n\n```\n{open(f).read().rstrip()}\n```")
EOF
cat "$OUT/results.md"
