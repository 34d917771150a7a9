idle -n 19000 -c 1 --hold-secs 5
