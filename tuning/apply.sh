#!/usr/bin/env bash
# Shows which recommended sysctl settings differ from the current ones and, with --apply, sets
# them with `sysctl -w` (runtime only; nothing is written to disk). Values that are already
# better (a larger fs.file-max, a wider port range) are left alone. Missing keys print "n/a".
#
#   tuning/apply.sh            # dry run
#   sudo tuning/apply.sh --apply
#
# To persist: cp tuning/sysctl-pushgate.conf /etc/sysctl.d/60-pushgate.conf
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

apply=false
case "${1:-}" in
    --apply) apply=true ;;
    "") ;;
    *) echo "usage: $0 [--apply]" >&2; exit 2 ;;
esac

changes=0
failed=0
while IFS=$'\t' read -r key rec; do
    cur=$(current "$key")
    status=$(judge "$key" "$cur" "$rec")
    case "$status" in
        n/a) printf '%-34s n/a (key not present)\n' "$key" ;;
        OK) printf '%-34s ok (%s)\n' "$key" "$cur" ;;
        *)
            changes=$((changes + 1))
            if $apply; then
                if sysctl -q -w "$key=$rec"; then
                    printf '%-34s set: %s -> %s\n' "$key" "$cur" "$rec"
                else
                    printf '%-34s FAILED to set %s\n' "$key" "$rec"
                    failed=$((failed + 1))
                fi
            else
                printf '%-34s would set: %s -> %s\n' "$key" "$cur" "$rec"
            fi
            ;;
    esac
done < <(settings)

if ! $apply && ((changes > 0)); then
    echo "dry run: $changes change(s); run with --apply (as root) to make them"
fi
((failed == 0))
