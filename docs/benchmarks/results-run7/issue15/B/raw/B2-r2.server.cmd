taskset -c 0 /work/bench-bin/pushgate-20d5bfd --shards 1 --pin --host 127.0.0.1 --port 6504
