fanout -n 10000 -c 10000 --random-channel -r 2000 --publishers 16 -t 10 --payload-bytes 64
