#!/usr/bin/env bash
# Part B: floor vs fan-out p99 at 10,000 subscribers, after binary (20d5bfd) only.
D=/work/bench-runs/issue15-20261130T021341Z
B=$D/B
SRV=/work/bench-bin/pushgate-20d5bfd
LOAD=/work/bench-bin/pushgate-load-20d5bfd
L=$D/load.log
NEXT_PORT=6501
SERVER_PID=""
mkdir -p $B/raw
lg() { echo "$(date -u +%FT%TZ) $*" >>$L; }
pick_port() { # sets PORT: a fresh port with no socket on it, never reused in this series
  local p
  while :; do p=$NEXT_PORT; NEXT_PORT=$((NEXT_PORT+1)); ss -Htan "sport = :$p" | grep -q . || { PORT=$p; return; }; done
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM $SERVER_PID 2>/dev/null
  local k=""
  for _ in $(seq 30); do kill -0 $SERVER_PID 2>/dev/null || break; sleep 0.1; done
  if kill -0 $SERVER_PID 2>/dev/null; then kill -KILL $SERVER_PID; k=" (needed SIGKILL)"; fi
  wait $SERVER_PID 2>/dev/null
  lg "server $SERVER_PID stopped$k"
  SERVER_PID=""
}
trap stop_server EXIT
start_server() { # name prefix-cmd... : sets SERVER_PID, PORT
  local name=$1; shift
  pick_port
  "$@" --host 127.0.0.1 --port $PORT >$B/raw/$name.server.log 2>&1 &
  SERVER_PID=$!
  echo "$* --host 127.0.0.1 --port $PORT" >$B/raw/$name.server.cmd
  for _ in $(seq 100); do
    grep -q "listening on" $B/raw/$name.server.log && return 0
    kill -0 $SERVER_PID 2>/dev/null || break
    sleep 0.1
  done
  lg "$name: server did not print 'listening on': $(tail -3 $B/raw/$name.server.log)"
  return 1
}
floor_run() { # i
  local name=floor-r$1
  local args="floor --sockets 10000 --frame-bytes 112 --count 1000000 --sender-cpu 0 --reader-cpu 1 --reader-spin"
  lg "START B1 $name uptime: $(uptime)"
  timeout 300 $LOAD $args --json $B/raw/$name.json >$B/raw/$name.txt 2>&1 || lg "$name failed"
  echo "$LOAD $args --json $B/raw/$name.json" >$B/raw/$name.cmd
  lg "END   B1 $name uptime: $(uptime) :: $(jq -r '"\(.sender_cpu_us_per_send) us/send"' $B/raw/$name.json 2>/dev/null)"
}
fanout_run() { # variant i
  local v=$1 i=$2 name=$1-r$2 srvpre loadpre workers
  case $v in
    B2) srvpre="taskset -c 0 $SRV --shards 1 --pin"; loadpre="taskset -c 1"; workers=1 ;;
    B3) srvpre="$SRV --shards 2"; loadpre=""; workers=1 ;;
    B4) srvpre="$SRV --shards 2"; loadpre=""; workers=2 ;;
  esac
  lg "START $name uptime: $(uptime)"
  # shellcheck disable=SC2086
  start_server $name $srvpre || { stop_server; return; }
  local largs="fanout -n 10000 -c 1 -r 2 -t 10 --payload-bytes 64 --port $PORT --workers $workers --quiet --server-pid $SERVER_PID --json $B/raw/$name.json"
  echo "$loadpre $LOAD $largs" >$B/raw/$name.cmd
  # shellcheck disable=SC2086
  timeout 300 /usr/bin/time -v $loadpre $LOAD $largs >$B/raw/$name.txt 2>&1 || lg "$name: load failed"
  stop_server
  lg "END   $name uptime: $(uptime) :: $(jq -r '"\(.server.cpu_us_per_delivery) us/deliv p99 \(.latency_us.p99) missing \(.delivery.missing)"' $B/raw/$name.json 2>/dev/null)"
}
lg "PARTB (rerun with a fresh port per run) START uptime: $(uptime)"
for i in 1 2 3; do
  floor_run $i
  for v in B2 B3 B4; do fanout_run $v $i; done
done
lg "PARTB DONE uptime: $(uptime)"
