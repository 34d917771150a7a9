fanout -n 10000 -c 1 -r 20 -t 10 --payload-bytes 64
