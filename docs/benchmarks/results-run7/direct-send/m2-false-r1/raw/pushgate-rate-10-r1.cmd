fanout -n 10000 -c 1 -r 10 -t 10 --payload-bytes 64
