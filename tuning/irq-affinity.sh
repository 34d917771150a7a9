#!/usr/bin/env bash
# Shows a NIC's interrupts and a suggested CPU layout for them, plus RPS/XPS masks; changes
# nothing unless --apply is given (then as root, with irqbalance stopped, or it will undo this).
#
#   tuning/irq-affinity.sh eth0                      # dedicated: IRQs on the last CPU
#   tuning/irq-affinity.sh eth0 --reserve 2          # IRQs on the last 2 CPUs
#   tuning/irq-affinity.sh eth0 --spread             # IRQs round-robin over all CPUs
#   sudo tuning/irq-affinity.sh eth0 --apply
#
# Layouts. pushgate --pin puts shard i on CPU i, so with `shards = CPUs - reserve` the last
# `reserve` CPUs run no shard:
#   dedicated (default): NIC IRQs and RPS go to the reserved CPUs, so softirq work never
#     preempts a shard. Right when the reserved cores keep up with the packet rate.
#   spread: IRQ q goes to CPU q mod CPUs, and RPS spreads over all CPUs. Right when the NIC has
#     many queues and one or two cores cannot take the softirq load; every shard then pays an
#     equal share.
# XPS in both layouts: tx queue q is used by the CPUs c with c mod queues == q, so each shard
# sends through its own queue without contention.
set -euo pipefail

usage() { echo "usage: $0 NIC [--reserve N | --spread] [--apply]" >&2; exit 2; }

nic=""
reserve=1
spread=false
apply=false
while (($#)); do
    case "$1" in
        --reserve) reserve=${2:-}; shift ;;
        --spread) spread=true ;;
        --apply) apply=true ;;
        -h | --help) usage ;;
        -*) usage ;;
        *) nic=$1 ;;
    esac
    shift
done
[[ -n "$nic" && "$reserve" =~ ^[0-9]+$ ]] || usage
[[ -d "/sys/class/net/$nic" ]] || { echo "no such interface: $nic" >&2; exit 1; }

ncpu=$(nproc --all)
((reserve >= 1 && reserve < ncpu)) || { echo "--reserve must be 1..$((ncpu - 1))" >&2; exit 1; }

# Hex CPU mask of the given CPU numbers, in the kernel's comma-separated 32-bit words.
cpu_mask() {
    local -a words=()
    local cpu word nwords=$(((ncpu + 31) / 32)) out=""
    for ((word = 0; word < nwords; word++)); do words[word]=0; done
    for cpu in "$@"; do
        words[cpu / 32]=$((words[cpu / 32] | (1 << (cpu % 32))))
    done
    for ((word = nwords - 1; word >= 0; word--)); do
        out+=$(printf '%08x' "${words[word]}")
        ((word > 0)) && out+=","
    done
    echo "$out"
}

# IRQ numbers of the NIC: MSI vectors of its PCI device (virtio NICs sit one level down), else
# /proc/interrupts lines naming the interface.
nic_irqs() {
    local dev
    dev=$(readlink -f "/sys/class/net/$nic/device" 2>/dev/null || true)
    for dir in "$dev/msi_irqs" "$dev/../msi_irqs"; do
        if [[ -n "$dev" && -d "$dir" ]]; then
            ls "$dir" | sort -n
            return
        fi
    done
    awk -v nic="$nic" '$0 ~ nic { sub(":", "", $1); print $1 }' /proc/interrupts
}

irq_name() { awk -v irq="$1:" '$1 == irq { print $NF }' /proc/interrupts; }

write() {  # write VALUE FILE, or say it would
    if $apply; then
        if echo "$1" >"$2" 2>/dev/null; then echo "    set $2 = $1"; else echo "    FAILED $2 = $1"; fi
    else
        echo "    would set $2 = $1"
    fi
}

first_reserved=$((ncpu - reserve))
reserved=$(seq "$first_reserved" $((ncpu - 1)) | paste -sd, -)
all=$(seq 0 $((ncpu - 1)) | paste -sd' ' -)
echo "NIC $nic, $ncpu CPUs; layout: $($spread && echo "spread over all CPUs" ||
    echo "dedicated, IRQ CPUs $reserved (run pushgate with shards = $first_reserved and --pin)")"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet irqbalance 2>/dev/null; then
    echo "warning: irqbalance is active and will rewrite these; stop it or ban these IRQs"
fi

echo "IRQs:"
mapfile -t irqs < <(nic_irqs)
((${#irqs[@]})) || echo "    none found for $nic (a virtual or software interface?)"
i=0
for irq in "${irqs[@]}"; do
    if $spread; then target=$((i % ncpu)); else target=$((first_reserved + i % reserve)); fi
    now=$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null || echo "n/a")
    printf '  irq %-5s %-28s now %-10s -> %s\n' "$irq" "$(irq_name "$irq")" "$now" "$target"
    [[ "$now" == "n/a" ]] || write "$target" "/proc/irq/$irq/smp_affinity_list"
    i=$((i + 1))
done

echo "RPS (receive steering of packets after the IRQ):"
if $spread; then
    # shellcheck disable=SC2086
    rps_mask=$(cpu_mask $all)
else
    # shellcheck disable=SC2046
    rps_mask=$(cpu_mask $(seq "$first_reserved" $((ncpu - 1))))
fi
for file in /sys/class/net/"$nic"/queues/rx-*/rps_cpus; do
    [[ -e "$file" ]] || { echo "    n/a"; break; }
    echo "  $(basename "$(dirname "$file")") now $(cat "$file")"
    write "$rps_mask" "$file"
done

echo "XPS (which tx queue each sending CPU uses):"
mapfile -t txq < <(ls -d /sys/class/net/"$nic"/queues/tx-* 2>/dev/null | sort -V)
((${#txq[@]})) || echo "    n/a"
for q in "${!txq[@]}"; do
    file="${txq[q]}/xps_cpus"
    [[ -e "$file" ]] || { echo "    n/a"; continue; }
    cpus=()
    for ((c = q; c < ncpu; c += ${#txq[@]})); do cpus+=("$c"); done
    ((${#cpus[@]})) || continue
    echo "  $(basename "${txq[q]}") now $(cat "$file" 2>/dev/null || echo n/a) (CPUs ${cpus[*]})"
    write "$(cpu_mask "${cpus[@]}")" "$file"
done
$apply || echo "dry run: nothing changed; --apply (as root) to make these changes"
