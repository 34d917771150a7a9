/work/bench-bin/pushgate-20d5bfd --shards 2 --host 127.0.0.1 --port 6509
