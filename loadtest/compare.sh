#!/usr/bin/env bash
# compare.sh: pushgate and sockudo side by side, every BENCHMARKS.md row, each repeated.
#
# Server pinned to CPU 0 (fresh process per measured run), pushgate-load pinned to CPU 1 with one
# worker. Writes raw JSON per run, env.txt, quiet.log, run.log and results.md (min / median / max)
# to OUT; server and tool output go to LOGS (default /tmp/pushgate-compare-<name of OUT>).
#
#   loadtest/compare.sh                      # everything, ~15-20 min
#   OUT=/tmp/r REPEATS=1 SERVERS=pushgate loadtest/compare.sh
#
# Knobs (environment): OUT, REPEATS (3), DURATION (10 s per fanout run), RATES (search list for row
# 1), FIXED_RATE (10), RANDOM_RATE (2000), RANDOM_PUBLISHERS (16), IDLE_SIZES ("10000 19000"),
# SERVERS ("pushgate sockudo"), QUIET_MAX_SECS (1200, total wait for a quiet machine), ROWS
# ("floor rate fixed random idle hook"), PUSHGATE_BIN, LOAD_BIN, SOCKUDO_BIN, PUSHGATE_PORT (6001)
# and SOCKUDO_PORT (6101): each run takes the first port from there with no socket left on it.
# SUMMARY_ONLY=1 OUT=dir only rewrites dir/results.md from dir/raw.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-docs/benchmarks/results-$(date -u +%Y%m%d-%H%M%S)}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-10}
RATES=${RATES:-"1 2 5 10 20 40 80 160 320 640"}
FIXED_RATE=${FIXED_RATE:-10}
RANDOM_RATE=${RANDOM_RATE:-2000}
RANDOM_PUBLISHERS=${RANDOM_PUBLISHERS:-16}
IDLE_SIZES=${IDLE_SIZES:-"10000 19000"}
SERVERS=${SERVERS:-"pushgate sockudo"}
ROWS=${ROWS:-"floor rate fixed random idle hook"}
QUIET_MAX_SECS=${QUIET_MAX_SECS:-1200}
PUSHGATE_BIN=${PUSHGATE_BIN:-target/release/pushgate}
LOAD_BIN=${LOAD_BIN:-target/release/pushgate-load}
SOCKUDO_BIN=${SOCKUDO_BIN:-/root/.cargo/bin/sockudo}
PUSHGATE_PORT=${PUSHGATE_PORT:-6001}
SOCKUDO_PORT=${SOCKUDO_PORT:-6101}
PORT=$PUSHGATE_PORT
HOOK_PORT=18080

LOGS=${LOGS:-/tmp/pushgate-compare-$(basename "$OUT")}
mkdir -p "$OUT/raw" "$LOGS"
SERVER_PID=""
SINK_PID=""
QUIET_WAITED=0

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }

stop_pid() { # pid: TERM, then KILL after 3 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$SERVER_PID"; SERVER_PID=""
    stop_pid "$SINK_PID"; SINK_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { ss -Htln "sport = :$1" | grep -q .; }

for b in "$PUSHGATE_BIN" "$LOAD_BIN"; do
    [ -x "$b" ] || { echo "missing $b: cargo build --release -p pushgate -p pushgate-load" >&2; exit 2; }
done
case " $SERVERS " in *" sockudo "*) [ -x "$SOCKUDO_BIN" ] || { echo "missing $SOCKUDO_BIN" >&2; exit 2; } ;; esac

# Wait (bounded over the whole script) until no compiler or cargo job runs; log what we found.
quiet() {
    local label=$1 t0 waited
    t0=$(date +%s)
    while pgrep -x rustc >/dev/null || pgrep -f 'cargo (build|test|nextest|clippy|bench|fuzz)' >/dev/null; do
        if [ "$QUIET_WAITED" -ge "$QUIET_MAX_SECS" ]; then
            echo "$(date -u +%T) $label BUSY (wait budget spent): $(pgrep -a -f 'rustc|cargo' | cut -c1-120 | head -3 | tr '\n' ';')" >>"$OUT/quiet.log"
            return 0
        fi
        sleep 10
        QUIET_WAITED=$((QUIET_WAITED + 10))
    done
    waited=$(($(date +%s) - t0))
    echo "$(date -u +%T) $label quiet (waited ${waited}s) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/quiet.log"
}

series() { # record the machine state at the start of a series
    {
        echo "## series $1 at $(date -u +%FT%TZ)"
        echo "nproc: $(nproc); cpu: $(lscpu | sed -n 's/^Model name: *//p'); kernel: $(uname -r)"
        echo "loadavg: $(cat /proc/loadavg)"
    } >>"$OUT/env.txt"
}

# A port with no socket on it at all: pushgate does not bind with SO_REUSEADDR, so a port with
# TIME_WAIT sockets left by the previous run (of either server) cannot be reused for 60 s.
pick_port() { # base
    local p
    for p in $(seq "$1" $(($1 + 29))); do
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return 0; }
    done
    echo "$1"
}

start_server() { # kind [config]: start on CPU 0 on a free port, set SERVER_PID and PORT
    local kind=$1 cfg=${2:-} logf
    logf="$LOGS/$kind-$(date +%s%N).log"
    case $kind in pushgate) PORT=$(pick_port "$PUSHGATE_PORT") ;; *) PORT=$(pick_port "$SOCKUDO_PORT") ;; esac
    case $kind in
        pushgate)
            taskset -c 0 "$PUSHGATE_BIN" ${cfg:+--config "$cfg"} --host 127.0.0.1 --port "$PORT" \
                --shards 1 --pin >"$logf" 2>&1 &
            ;;
        sockudo)
            # Same app; per-app limits lifted; INFO logging (one line per subscription) off.
            env SOCKUDO_DEFAULT_APP_ID=app-id SOCKUDO_DEFAULT_APP_KEY=app-key \
                SOCKUDO_DEFAULT_APP_SECRET=app-secret \
                SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 \
                SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=100000000 \
                SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=100000000 \
                RATE_LIMITER_ENABLED=false PORT="$PORT" RUST_LOG=warn \
                taskset -c 0 "$SOCKUDO_BIN" >"$logf" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do
        port_busy "$PORT" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { log "$kind died at start: $(tail -3 "$logf")"; return 1; }
        sleep 0.1
    done
    port_busy "$PORT" || { log "$kind not listening after 10 s"; return 1; }
    sleep 0.3
}

stop_server() { stop_pid "$SERVER_PID"; SERVER_PID=""; }

load() { # name args...: one pushgate-load run against SERVER_PID, JSON to raw/name.json
    local name=$1; shift
    taskset -c 1 "$LOAD_BIN" "$@" --port "$PORT" --workers 1 --quiet --server-pid "$SERVER_PID" \
        --json "$OUT/raw/$name.json" >"$LOGS/$name.txt" 2>&1 || log "$name: pushgate-load failed"
    echo "${*}" >"$OUT/raw/$name.cmd"
}

# A fanout run passes when everything arrived, nothing failed and p99 < 100 ms.
# "Sustained": the same with p99 < 1 s (deliveries keep up, latency does not grow).
passes() { # file p99-limit-us
    jq -e --argjson lim "$2" '.connections.connected == .connections.requested and .delivery.missing == 0
        and .publish.http_errors == 0 and .publish.transport_errors == 0
        and .connections.dropped == 0 and .latency_us.p99 < $lim
        and .publish.achieved_rate >= 0.95 * .publish.target_rate' "$1" >/dev/null 2>&1
}

fanout_cmd() { # rate: the row-1/row-2 fanout flags
    echo "fanout -n 10000 -c 1 -r $1 -t $DURATION --payload-bytes 64"
}

run_measured() { # server name [config] -- load args
    local server=$1 name=$2 cfg=$3; shift 4
    quiet "$server-$name"
    start_server "$server" "$cfg" || return 0
    load "$server-$name" "$@"
    if [ "$cfg" != "" ]; then
        curl -s "127.0.0.1:$PORT/metrics" | grep hook_ >"$OUT/raw/$server-$name.metrics" || true
    fi
    stop_server
}

if [ -n "${SUMMARY_ONLY:-}" ]; then ROWS=""; else
series start
log "results in $OUT"
fi

for row in $ROWS; do
    case $row in
    floor)
        series floor
        # cross: reader sleeping in recv on CPU 1 (the benchmark's layout); spin: reader polling on
        # CPU 1; same: reader on the sender's CPU 0.
        for i in $(seq "$REPEATS"); do
            for v in cross spin same; do
                case $v in
                    cross) a="--sender-cpu 0 --reader-cpu 1" ;;
                    spin) a="--sender-cpu 0 --reader-cpu 1 --reader-spin" ;;
                    same) a="--sender-cpu 0 --reader-cpu 0" ;;
                esac
                quiet "floor-$v-r$i"
                # shellcheck disable=SC2086
                "$LOAD_BIN" floor --count 1000000 --frame-bytes 112 $a \
                    --json "$OUT/raw/floor-$v-r$i.json" >"$LOGS/floor-$v-r$i.txt" 2>&1
                echo "floor --count 1000000 --frame-bytes 112 $a" >"$OUT/raw/floor-$v-r$i.cmd"
            done
        done
        ;;
    rate)
        series rate
        # One pass over RATES per server: best = highest rate before the first run with p99 >= 100 ms
        # (or anything missing); sustained = highest rate before the first run with p99 >= 1 s. The
        # search stops at the first rate that is not sustained; both winners get REPEATS-1 more runs.
        for s in $SERVERS; do
            best="" sust="" ok100=1
            for r in $RATES; do
                log "$s rate search: $r/s"
                # shellcheck disable=SC2046
                run_measured "$s" "rate-$r-r1" "" -- $(fanout_cmd "$r")
                f="$OUT/raw/$s-rate-$r-r1.json"
                if [ $ok100 = 1 ] && passes "$f" 100000; then best=$r; else ok100=0; fi
                if passes "$f" 1000000; then sust=$r; else break; fi
            done
            echo "$best" >"$OUT/raw/$s-rate-best"
            echo "$sust" >"$OUT/raw/$s-rate-sustained"
            for r in $(echo "$best $sust" | tr ' ' '\n' | sort -un); do
                for i in $(seq 2 "$REPEATS"); do
                    log "$s rate repeat $i at $r/s"
                    # shellcheck disable=SC2046
                    run_measured "$s" "rate-$r-r$i" "" -- $(fanout_cmd "$r")
                done
            done
        done
        ;;
    fixed)
        series fixed
        for i in $(seq "$REPEATS"); do
            for s in $SERVERS; do
                log "$s fixed $FIXED_RATE/s r$i"
                # shellcheck disable=SC2046
                run_measured "$s" "fixed-r$i" "" -- $(fanout_cmd "$FIXED_RATE") \
                    --plot "$OUT/raw/$s-fixed-r$i.svg"
            done
        done
        ;;
    random)
        series random
        for i in $(seq "$REPEATS"); do
            for s in $SERVERS; do
                log "$s random $RANDOM_RATE/s r$i"
                run_measured "$s" "random-r$i" "" -- fanout -n 10000 -c 10000 --random-channel \
                    -r "$RANDOM_RATE" --publishers "$RANDOM_PUBLISHERS" -t "$DURATION" --payload-bytes 64
            done
        done
        ;;
    idle)
        series idle
        for n in $IDLE_SIZES; do
            for i in $(seq "$REPEATS"); do
                for s in $SERVERS; do
                    log "$s idle $n r$i"
                    run_measured "$s" "idle$n-r$i" "" -- idle -n "$n" -c 1 --hold-secs 5
                done
            done
        done
        ;;
    hook)
        case " $SERVERS " in *" pushgate "*) ;; *) continue ;; esac
        series hook
        cfg="$OUT/hook.toml"
        printf '[[event_hooks]]\nevent = "message.delivered"\nurl = "http://127.0.0.1:%s/delivered"\n' \
            "$HOOK_PORT" >"$cfg"
        for i in $(seq "$REPEATS"); do
            log "pushgate fixed $FIXED_RATE/s without hook r$i"
            # shellcheck disable=SC2046
            run_measured pushgate "nohook-r$i" "" -- $(fanout_cmd "$FIXED_RATE")
            log "pushgate fixed $FIXED_RATE/s with message.delivered hook r$i"
            taskset -c 1 "$LOAD_BIN" sink --listen "127.0.0.1:$HOOK_PORT" --idle-exit-secs 3 \
                --duration-secs 120 --json "$OUT/raw/sink-hook-r$i.json" \
                >"$LOGS/sink-r$i.txt" 2>&1 &
            SINK_PID=$!
            sleep 0.3
            # shellcheck disable=SC2046
            run_measured pushgate "hook-r$i" "$cfg" -- $(fanout_cmd "$FIXED_RATE")
            wait "$SINK_PID" 2>/dev/null || true
            SINK_PID=""
        done
        ;;
    esac
done

[ -n "${SUMMARY_ONLY:-}" ] || series end
log "writing $OUT/results.md"
OUT="$OUT" SERVERS="$SERVERS" FIXED_RATE="$FIXED_RATE" python3 - >"$OUT/results.md" <<'EOF'
import glob, json, os, re, statistics
out, servers = os.environ["OUT"], os.environ["SERVERS"].split()
raw = os.path.join(out, "raw")

def load(pat):
    runs = []
    for f in sorted(glob.glob(os.path.join(raw, pat))):
        with open(f) as fh:
            j = json.load(fh)
        j["_file"] = os.path.basename(f)
        runs.append(j)
    return runs

def g(j, path):
    for k in path.split("."):
        if j is None:
            return None
        j = j.get(k)
    return j

def busy(j):
    w = (g(j, "publish.duration_secs") or 0) + (g(j, "delivery.drain_secs") or 0)
    c = g(j, "server.cpu_us_window")
    return None if not c or not w else 100.0 * c / (w * 1e6)

def mmm(vals, fmt="{:.0f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    md = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(md)
    return f"{fmt.format(md)} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def cmd(name):
    f = os.path.join(raw, name + ".cmd")
    return open(f).read().strip() if os.path.exists(f) else "?"

ms = lambda us: None if us is None else us / 1000.0
M = {}
print(f"# pushgate vs sockudo ({out})\n")
print("Cells: median (min-max) over the runs listed; latency in ms; CPU in server CPU microseconds per delivered message.\n")
env = os.path.join(out, "env.txt")
if os.path.exists(env):
    print("```\n" + open(env).read().strip() + "\n```\n")
q = os.path.join(out, "quiet.log")
if os.path.exists(q):
    busy_runs = [l for l in open(q) if "BUSY" in l]
    print(f"Quiet-machine check: {len(busy_runs)} run(s) started while a compiler/cargo job ran (see quiet.log).\n")

if glob.glob(os.path.join(raw, "floor-*.json")):
    print("## Floor: one send(2) of a 112-byte frame over loopback TCP\n")
    print("| variant | command | runs | sender CPU us/send | user | sys | reader CPU us/send |\n|---|---|---|---|---|---|---|")
    for v in ("cross", "spin", "same"):
        fl = load(f"floor-{v}-r*.json")
        if not fl:
            continue
        print(f"| {v} | `pushgate-load {cmd(f'floor-{v}-r1')}` | {len(fl)} | {mmm([g(j,'sender_cpu_us_per_send') for j in fl], '{:.3f}')} | {mmm([g(j,'sender_user_us_per_send') for j in fl], '{:.3f}')} | {mmm([g(j,'sender_sys_us_per_send') for j in fl], '{:.3f}')} | {mmm([g(j,'reader_cpu_us_per_send') for j in fl], '{:.3f}')} |")
        M["floor-" + v] = med([g(j, "sender_cpu_us_per_send") for j in fl])
    print()

rows, trails = [], []
for s in servers:
    bf = os.path.join(raw, f"{s}-rate-best")
    if not os.path.exists(bf):
        continue
    search = sorted(load(f"{s}-rate-*-r1.json"), key=lambda j: g(j, "publish.target_rate") or 0)
    done_ok = [j for j in search if g(j, "delivery.missing") == 0 and g(j, "connections.dropped") == 0]
    if done_ok:
        pk = max(done_ok, key=lambda j: g(j, "delivery.deliveries_per_sec") or 0)
        M[(s, "peak")] = g(pk, "delivery.deliveries_per_sec")
        M[(s, "peak_at")] = f"{g(pk, 'publish.target_rate'):.0f}/s target, {g(pk, 'publish.achieved_rate'):.1f}/s achieved, p99 {ms(g(pk, 'latency_us.p99')):.0f} ms"
    trails.append((s, "; ".join(
        f"{g(j,'publish.target_rate'):.0f}/s (achieved {g(j,'publish.achieved_rate'):.1f}/s): p99 {ms(g(j,'latency_us.p99')):.1f} ms, missing {g(j,'delivery.missing')}, "
        f"{g(j,'delivery.deliveries_per_sec'):.0f} deliv/s, server {busy(j) or 0:.0f}% busy"
        for j in search if g(j, "latency_us.p99") is not None)))
    for kind, fname in (("p99 < 100 ms", "best"), ("sustained (p99 < 1 s)", "sustained")):
        f = os.path.join(raw, f"{s}-rate-{fname}")
        best = open(f).read().strip() if os.path.exists(f) else ""
        runs = load(f"{s}-rate-{best}-r*.json") if best else []
        if fname == "sustained":
            M[(s, "maxdps")] = med([g(j, "delivery.deliveries_per_sec") for j in runs])
        rows.append((s, kind, best or "none", len(runs), mmm([g(j,"delivery.deliveries_per_sec") for j in runs]),
                     mmm([g(j,"server.cpu_us_per_delivery") for j in runs], "{:.2f}"),
                     mmm([ms(g(j,"latency_us.p50")) for j in runs], "{:.1f}"),
                     mmm([ms(g(j,"latency_us.p99")) for j in runs], "{:.1f}"),
                     mmm([busy(j) for j in runs])))
if rows:
    print("## 1. One channel x 10,000 subscribers: highest publish rate\n")
    print(f"`pushgate-load {cmd(f'{servers[0]}-rate-1-r1')} --port PORT --workers 1 --quiet --server-pid PID --json F` (rate -r from the search list)\n")
    print("| server | criterion | rate /s | runs | deliveries/s | CPU us/delivery | p50 ms | p99 ms | server busy % |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print("\nSearch (first run at each rate; stops at the first rate that is not sustained):\n")
    for s, t in trails:
        print(f"- {s}: {t}")
    print("\nPeak deliveries/s in any search run with nothing missing:\n")
    for s in servers:
        if (s, "peak") in M:
            print(f"- {s}: {M[(s, 'peak')]:.0f} deliveries/s ({M[(s, 'peak_at')]})")
    print()

def fanout_table(title, pat, key):
    have = [(s, load(pat.format(s=s))) for s in servers]
    have = [(s, r) for s, r in have if r]
    if not have:
        return
    print(title + "\n")
    print(f"`pushgate-load {cmd(pat.format(s=have[0][0]).replace('*','1').replace('.json',''))} --port PORT --workers 1 --quiet --server-pid PID --json F`\n")
    print("| server | runs | deliveries/s | missing | CPU us/delivery | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | publish req p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for s, r in have:
        print(f"| {s} | {len(r)} | {mmm([g(j,'delivery.deliveries_per_sec') for j in r])} | {mmm([g(j,'delivery.missing') for j in r])} | "
              f"{mmm([g(j,'server.cpu_us_per_delivery') for j in r], '{:.2f}')} | "
              + " | ".join(mmm([ms(g(j, 'latency_us.' + p)) for j in r], '{:.1f}') for p in ("p50", "p90", "p99", "p999", "max"))
              + f" | {mmm([ms(g(j,'publish.request_us.p99')) for j in r], '{:.1f}')} |")
        M[(s, key, "p99")] = med([g(j, "latency_us.p99") for j in r])
        M[(s, key, "cpu")] = med([g(j, "server.cpu_us_per_delivery") for j in r])
        M[(s, key, "dps")] = med([g(j, "delivery.deliveries_per_sec") for j in r])
    print()

fr = os.environ.get("FIXED_RATE", "10")
fanout_table(f"## 2. One channel x 10,000 subscribers at a fixed {fr} publishes/s", "{s}-fixed-r*.json", "fixed")
fanout_table("## 3. 10,000 channels x 1 subscriber, random channel", "{s}-random-r*.json", "random")

idle = sorted({int(m.group(1)) for f in glob.glob(os.path.join(raw, "*-idle*-r*.json")) if (m := re.search(r"-idle(\d+)-", f))})
if idle:
    print("## 4 + 5. Idle subscribed connections: resident memory and connect + subscribe rate\n")
    print(f"`pushgate-load {cmd(f'{servers[0]}-idle{idle[0]}-r1')} --port PORT --workers 1 --quiet --server-pid PID --json F`\n")
    print("| server | connections | runs | connected | RSS bytes/conn | RSS MiB at end | connect+subscribe /s | connect p99 ms |\n|---|---|---|---|---|---|---|---|")
    for n in idle:
        for s in servers:
            r = load(f"{s}-idle{n}-r*.json")
            if not r:
                continue
            print(f"| {s} | {n} | {len(r)} | {mmm([g(j,'connections.connected') for j in r])} | {mmm([g(j,'server.rss_bytes_per_conn') for j in r])} | "
                  f"{mmm([(g(j,'server.end.rss_kb') or 0)/1024 for j in r], '{:.1f}')} | {mmm([g(j,'connections.connect_rate_per_s') for j in r])} | "
                  f"{mmm([ms(g(j,'connections.connect_us.p99')) for j in r], '{:.1f}')} |")
            M[(s, f"idle{n}", "rss")] = med([g(j, "server.rss_bytes_per_conn") for j in r])
            M[(s, f"idle{n}", "rate")] = med([g(j, "connections.connect_rate_per_s") for j in r])
    print()

nh, hk = load("pushgate-nohook-r*.json"), load("pushgate-hook-r*.json")
if hk:
    print(f"## Issue 5: fixed {fr}/s fan-out with a message.delivered event hook\n")
    print("Hook receiver: `pushgate-load sink` on CPU 1 (answers 200). pushgate `--config hook.toml` (in this directory).\n")
    print("| run | runs | p50 ms | p99 ms | p99.9 ms | max ms | missing | CPU us/delivery |\n|---|---|---|---|---|---|---|---|")
    for label, r in (("without hook", nh), ("with hook", hk)):
        print(f"| {label} | {len(r)} | " + " | ".join(mmm([ms(g(j, 'latency_us.' + p)) for j in r], '{:.1f}') for p in ("p50", "p99", "p999", "max"))
              + f" | {mmm([g(j,'delivery.missing') for j in r])} | {mmm([g(j,'server.cpu_us_per_delivery') for j in r], '{:.2f}')} |")
    print("\nHook counters after each run (`curl -s 127.0.0.1:6001/metrics | grep hook_`) and the sink's count:\n")
    for i in range(1, 10):
        mf = os.path.join(raw, f"pushgate-hook-r{i}.metrics")
        if not os.path.exists(mf):
            continue
        c = {}
        for line in open(mf):
            if line.startswith("#"):
                continue
            name, _, val = line.rpartition(" ")
            c[name.split("{")[0].replace("pushgate_", "")] = val.strip()
        sk = os.path.join(raw, f"sink-hook-r{i}.json")
        sj = json.load(open(sk)) if os.path.exists(sk) else {}
        print(f"- r{i}: " + ", ".join(f"{k} {v}" for k, v in c.items()) + f"; sink requests {sj.get('requests', '?')}")
    print()

def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b
def yn(x, test):
    return "-" if x is None else ("yes" if test(x) else "no")
def fmt(x, f="{:.2f}"):
    return "-" if x is None else f.format(x)
print("## Where we stand (medians)\n")
print("| target | pushgate | sockudo | ratio | met? |\n|---|---|---|---|---|")
for n in idle:
    v = M.get(("pushgate", f"idle{n}", "rss"))
    print(f"| RSS per idle connection at {n} <= 1024 B | {fmt(v, '{:.0f}')} | {fmt(M.get(('sockudo', f'idle{n}', 'rss')), '{:.0f}')} | - | {yn(v, lambda x: v <= 1024)} |")
for key in ("fixed", "random"):
    a, b = M.get(("pushgate", key, "cpu")), M.get(("sockudo", key, "cpu"))
    r = ratio(a, b)
    print(f"| CPU/delivery ({key}) <= 1/3 sockudo | {fmt(a)} | {fmt(b)} | {fmt(r)} | {yn(r, lambda x: r <= 1/3)} |")
    for v in ("cross", "same"):
        f = M.get("floor-" + v)
        r2 = ratio(a, f)
        print(f"| CPU/delivery ({key}) <= 1.5x send floor ({v}: {fmt(f, '{:.3f}')} us) | {fmt(a)} | {fmt(b)} | {fmt(r2)}x | {yn(r2, lambda x: r2 <= 1.5)} |")
a, b = M.get(("pushgate", "fixed", "p99")), M.get(("sockudo", "fixed", "p99"))
r = ratio(a, b)
print(f"| fixed-rate p99 <= 1/4 sockudo | {fmt(ms(a), '{:.1f}')} ms | {fmt(ms(b), '{:.1f}')} ms | {fmt(r)} | {yn(r, lambda x: r <= 0.25)} |")
a, b = M.get(("pushgate", "maxdps")), M.get(("sockudo", "maxdps"))
r = ratio(a, b)
print(f"| max sustained deliveries/s >= 3x sockudo | {fmt(a, '{:.0f}')} | {fmt(b, '{:.0f}')} | {fmt(r)} | {yn(r, lambda x: r >= 3)} |")
a, b = M.get(("pushgate", "peak")), M.get(("sockudo", "peak"))
r = ratio(a, b)
print(f"| peak deliveries/s, nothing missing >= 3x sockudo | {fmt(a, '{:.0f}')} | {fmt(b, '{:.0f}')} | {fmt(r)} | {yn(r, lambda x: r >= 3)} |")
for n in idle:
    a, b = M.get(("pushgate", f"idle{n}", "rate")), M.get(("sockudo", f"idle{n}", "rate"))
    r = ratio(a, b)
    print(f"| connect+subscribe rate ({n}) >= 3x sockudo | {fmt(a, '{:.0f}')}/s | {fmt(b, '{:.0f}')}/s | {fmt(r)} | {yn(r, lambda x: r >= 3)} |")
EOF
cat "$OUT/results.md"
