fanout -n 10000 -c 1 -r 10 -t 10 --payload-bytes 64 --plot docs/benchmarks/results-20261122-1826/raw/pushgate-fixed-r1.svg
