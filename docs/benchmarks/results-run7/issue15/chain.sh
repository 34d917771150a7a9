#!/usr/bin/env bash
D=/work/bench-runs/issue15-20261130T021341Z
while kill -0 $(cat $D/partA.pid) 2>/dev/null; do sleep 5; done
$D/partB.sh
