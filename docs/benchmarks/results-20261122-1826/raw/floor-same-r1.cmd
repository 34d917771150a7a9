floor --count 1000000 --frame-bytes 112 --sender-cpu 0 --reader-cpu 0
