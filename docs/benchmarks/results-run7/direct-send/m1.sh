#!/usr/bin/env bash
# direct_send off vs on, beside the busy-reader floor, 1,000 and 10,000 sockets, 3 repeats alternating.
cd /work/main
for r in 1 2 3; do
  for v in false true; do
    echo "[$(date -u +%H:%M:%S)] r$r direct_send=$v $(uptime)" >> /work/bench-runs/direct/load.log
    PUSHGATE_DIRECT_SEND=$v OUT=/work/bench-runs/direct/m1-$v-r$r SIZES="1000 10000" REPEATS=1 FLOOR_VARIANTS=spin QUIET_MAX_SECS=30 \
      PUSHGATE_BIN=/work/bench-bin/pushgate-direct-0238 LOAD_BIN=/work/bench-bin/pushgate-load-direct-0238 \
      bash loadtest/floor-vs-fanout.sh > /work/bench-runs/direct/m1-$v-r$r.log 2>&1
  done
done
echo "[$(date -u +%H:%M:%S)] m1 done $(uptime)" >> /work/bench-runs/direct/load.log
