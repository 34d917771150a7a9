idle -n 10000 -c 1 --hold-secs 5
