pushgate-load floor --sockets 1000 --frame-bytes 112 --count 1000000 --sender-cpu 0 --reader-cpu 1 --reader-spin
