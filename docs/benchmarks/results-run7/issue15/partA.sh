#!/usr/bin/env bash
D=/work/bench-runs/issue15-20261130T021341Z
cd /work/main
L=$D/load.log
run() { # name env...
  local name=$1; shift
  echo "$(date -u +%FT%TZ) START A/$name uptime: $(uptime)" >>$L
  env OUT=$D/A/$name "$@" bash loadtest/compare.sh >$D/A/$name.console.log 2>&1
  local rc=$?
  echo "$(date -u +%FT%TZ) END   A/$name rc=$rc uptime: $(uptime)" >>$L
  return $rc
}
for r in 1 2; do
  for b in 303f461 20d5bfd; do
    run pushgate-$b-r$r REPEATS=1 SERVERS=pushgate ROWS="rate fixed random idle" QUIET_MAX_SECS=60 PUSHGATE_BIN=/work/bench-bin/pushgate-$b LOAD_BIN=/work/bench-bin/pushgate-load-20d5bfd
  done
  run sockudo-r$r REPEATS=1 SERVERS=sockudo ROWS="rate fixed random idle" QUIET_MAX_SECS=60 SOCKUDO_BIN=/work/sockudo-nats/bin/sockudo LOAD_BIN=/work/bench-bin/pushgate-load-20d5bfd
done
echo "$(date -u +%FT%TZ) PARTA DONE" >>$L
