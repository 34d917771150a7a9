#!/usr/bin/env bash
# direct_send off vs on: compare.sh rows 1 (rate search) and 2 (fixed 10/s), 2 repeats alternating.
cd /work/main
for r in 1 2; do
  for v in false true; do
    echo "[$(date -u +%H:%M:%S)] m2 r$r direct_send=$v $(uptime)" >> /work/bench-runs/direct/load.log
    PUSHGATE_DIRECT_SEND=$v OUT=/work/bench-runs/direct/m2-$v-r$r REPEATS=1 SERVERS=pushgate ROWS="rate fixed" QUIET_MAX_SECS=30 \
      PUSHGATE_BIN=/work/bench-bin/pushgate-direct-0238 LOAD_BIN=/work/bench-bin/pushgate-load-direct-0238 \
      bash loadtest/compare.sh > /work/bench-runs/direct/m2-$v-r$r.log 2>&1
  done
done
echo "[$(date -u +%H:%M:%S)] m2 done $(uptime)" >> /work/bench-runs/direct/load.log
