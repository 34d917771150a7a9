#!/usr/bin/env bash
# Prints every recommended setting for a million pushgate connections next to the current
# value, and whether it is OK. Changes nothing. Exit status is 0 whatever it finds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

row() { printf '%-34s %-26s %-26s %s\n' "$@"; }

row SETTING CURRENT RECOMMENDED STATUS
while IFS=$'\t' read -r key rec; do
    cur=$(current "$key")
    row "$key" "$cur" "$rec" "$(judge "$key" "$cur" "$rec")"
done < <(settings)

# Per-process limits of this shell; the systemd unit sets its own (LimitNOFILE, LimitMEMLOCK).
nofile=$(ulimit -n)
memlock=$(ulimit -l)
row "ulimit -n (this shell)" "$nofile" "1048576" \
    "$([[ "$nofile" == unlimited || "$nofile" -ge 1048576 ]] && echo OK || echo LOW)"
# KiB: pushgate needs io_memory (default 512 KiB) per shard plus glommio's rings; 64 MiB covers
# dozens of shards.
row "ulimit -l KiB (this shell)" "$memlock" "65536" \
    "$([[ "$memlock" == unlimited || "$memlock" -ge 65536 ]] && echo OK || echo LOW)"

# Facts that shape the plan rather than settings.
cpus=$(nproc --all 2>/dev/null || echo "n/a")
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || true)
row "CPUs" "$cpus" "shards = CPUs - 1" "info"
row "RAM GiB" "$(awk -v k="${mem_kib:-0}" 'BEGIN {printf "%.1f", k / 1048576}')" ">= 16" \
    "$(awk -v k="${mem_kib:-0}" 'BEGIN {print (k >= 16 * 1048576 ? "OK" : "LOW")}')"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet irqbalance 2>/dev/null; then
    row "irqbalance" "active" "inactive if irq-affinity.sh is used" "info"
else
    row "irqbalance" "inactive or n/a" "inactive if irq-affinity.sh is used" "info"
fi
