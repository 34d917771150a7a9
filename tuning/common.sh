# Shared by check.sh and apply.sh: read the recommended settings and compare values.
# Sourced, not run.

TUNING_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF="${PUSHGATE_SYSCTL_CONF:-$TUNING_DIR/sysctl-pushgate.conf}"

# Prints "key<TAB>value" for every setting in the conf file, whitespace in values normalized.
settings() {
    sed -e 's/#.*//' "$CONF" | awk -F'=' 'NF >= 2 {
        key = $1; sub(/^[ \t]+/, "", key); sub(/[ \t]+$/, "", key)
        val = $2; gsub(/[ \t]+/, " ", val); sub(/^ /, "", val); sub(/ $/, "", val)
        if (key != "") print key "\t" val
    }'
}

# Current value of a sysctl with whitespace normalized, or "n/a" if the key does not exist
# (module not loaded, older kernel, or not visible in this namespace).
current() {
    local path="/proc/sys/${1//.//}"
    if [[ -r "$path" ]]; then
        tr -s ' \t' '  ' <"$path" | sed -e 's/^ //' -e 's/ $//'
    else
        echo "n/a"
    fi
}

# How a key is judged: "le" (lower is better), "range" (at least as wide), "eq" (a trade-off:
# report differences, do not rank), otherwise "ge" field by field (higher is fine).
mode() {
    case "$1" in
        kernel.io_uring_disabled) echo le ;;
        net.ipv4.ip_local_port_range) echo range ;;
        net.ipv4.tcp_rmem | net.ipv4.tcp_wmem) echo eq ;;
        *) echo ge ;;
    esac
}

# Prints OK, LOW, HIGH, DIFFERS or n/a for current value $2 against recommended $3 of key $1.
judge() {
    local key=$1 cur=$2 rec=$3
    if [[ "$cur" == "n/a" ]]; then
        echo "n/a"
        return
    fi
    awk -v mode="$(mode "$key")" -v cur="$cur" -v rec="$rec" 'BEGIN {
        n = split(cur, c, " "); m = split(rec, r, " ")
        if (n != m) { print "DIFFERS"; exit }
        if (mode == "eq") { print (cur == rec ? "OK" : "DIFFERS"); exit }
        if (mode == "range") { print ((c[1] + 0 <= r[1] + 0 && c[2] + 0 >= r[2] + 0) ? "OK" : "LOW"); exit }
        for (i = 1; i <= n; i++) {
            if (mode == "le" && c[i] + 0 > r[i] + 0) { print "HIGH"; exit }
            if (mode == "ge" && c[i] + 0 < r[i] + 0) { print "LOW"; exit }
        }
        print "OK"
    }'
}
