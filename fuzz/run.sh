#!/usr/bin/env bash
# Builds every fuzz target and runs each for FUZZ_SECONDS (default 5) from a copy of its seeds.
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z flags
# cargo-fuzz passes (sanitizer, coverage). Exits non-zero if any target crashes; the crashing
# input is left in fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh                      # from the repo root (or anywhere)
#   FUZZ_SECONDS=60 bash fuzz/run.sh
#   FUZZ_TARGETS="ws_frame handshake" bash fuzz/run.sh
#   FUZZ_SANITIZER=none bash fuzz/run.sh  # no AddressSanitizer: faster build and runs
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$fuzz_dir")"
cd "$root"

seconds="${FUZZ_SECONDS:-5}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

# Use the stable toolchain explicitly when rustup is there (CI has nothing else).
cargo=(cargo)
if command -v rustup >/dev/null 2>&1; then
    cargo=(cargo "+${FUZZ_TOOLCHAIN:-stable}")
fi

if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    "${cargo[@]}" install cargo-fuzz --locked
fi

# shellcheck disable=SC2207 # target names have no spaces
targets=($(if [ -n "${FUZZ_TARGETS:-}" ]; then echo "$FUZZ_TARGETS"; else "${cargo[@]}" fuzz list; fi))
build_args=()
if [ -n "${FUZZ_TARGETS:-}" ] && [ "${#targets[@]}" -eq 1 ]; then
    build_args=("${targets[0]}")
fi

echo "==> building ${#targets[@]} targets (sanitizer: $sanitizer)"
"${cargo[@]}" fuzz build --sanitizer "$sanitizer" "${build_args[@]}"

# Run the binaries just built rather than `cargo fuzz run`, which would rebuild before each
# target: one build, and every target fuzzes the same snapshot of the source.
triple="$(rustc "${cargo[@]:1}" -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$triple/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

started="$(mktemp)"
trap 'rm -f "$started"' EXIT
failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "fuzz/seeds/$target" ]; then
        cp -- fuzz/seeds/"$target"/* "$corpus"/
    fi
    echo "==> fuzzing $target for ${seconds}s"
    if ! "$bin_dir/$target" -artifact_prefix="$artifacts/" -max_total_time="$seconds" \
        -timeout=10 -print_final_stats=1 "$corpus"; then
        echo "!!! $target FAILED: crashing input in $artifacts/ (reproduce:" \
            "RUSTC_BOOTSTRAP=1 cargo fuzz run $target $artifacts/<file>)" >&2
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "==> crashes in: ${failed[*]}" >&2
    for target in "${failed[@]}"; do
        find "fuzz/artifacts/$target" -type f -newer "$started" 2>/dev/null | while read -r artifact; do
            echo "--- $artifact (hex, first 1000 bytes):" >&2
            od -An -tx1 -v "$artifact" | tr -d ' \n' | head -c 2000 >&2
            echo >&2
        done
    done
    exit 1
fi
echo "==> all ${#targets[@]} targets ran ${seconds}s without a crash"
