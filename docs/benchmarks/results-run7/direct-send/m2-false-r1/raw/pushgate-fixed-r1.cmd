fanout -n 10000 -c 1 -r 10 -t 10 --payload-bytes 64 --plot /work/bench-runs/direct/m2-false-r1/raw/pushgate-fixed-r1.svg
