fanout -n 10000 -c 1 -r 10 -t 10 --payload-bytes 64 --plot /work/bench-runs/issue15-20261130T021341Z/A/pushgate-303f461-r2/raw/pushgate-fixed-r1.svg
