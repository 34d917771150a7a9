fanout -n 10000 -c 1 -r 10 -t 10 --payload-bytes 64 --plot docs/benchmarks/results-20261122-1811/raw/pushgate-fixed-r3.svg
