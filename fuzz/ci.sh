#!/usr/bin/env bash
# The fuzzing smoke run for CI: replay the committed corpus (stable toolchain, `cargo test`), then
# run each cargo-fuzz target for UMON_FUZZ_SECONDS (default 20) under AddressSanitizer.
#
# cargo-fuzz needs a nightly toolchain and cargo-fuzz itself. Without them this fails, unless
# UMON_FUZZ_OPTIONAL=1, when it says why and exits 0 (the corpus replay still runs).
# Run as root, the fuzz binaries drop to nobody (setpriv): the syscall target writes to a
# scratch volume on the host, and a confinement bug must not reach anything else.
set -euo pipefail
cd "$(dirname "$0")"
secs=${UMON_FUZZ_SECONDS:-20}

echo "fuzz/ci.sh: replaying the committed corpus (cargo test)"
cargo test --quiet

unavailable() {
    echo "fuzz/ci.sh: $1"
    if [ "${UMON_FUZZ_OPTIONAL:-0}" = 1 ]; then
        echo "fuzz/ci.sh: UMON_FUZZ_OPTIONAL=1: skipping the fuzz run"
        exit 0
    fi
    echo "fuzz/ci.sh: set UMON_FUZZ_OPTIONAL=1 to skip the fuzz run instead of failing"
    exit 1
}
rustup toolchain list 2>/dev/null | grep -q '^nightly' ||
    unavailable "no nightly toolchain (cargo-fuzz needs one: rustup toolchain install nightly)"
cargo +nightly fuzz --version >/dev/null 2>&1 ||
    unavailable "cargo-fuzz is missing (cargo install cargo-fuzz)"

echo "fuzz/ci.sh: building the targets (cargo +nightly fuzz build: release, ASan, debug assertions)"
cargo +nightly fuzz build
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bins="$PWD/target/$host/release"

# New corpus entries and crash artifacts go to a scratch directory, never into corpus/.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_as=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chown 65534:65534 "$work"
    if ! "${run_as[@]}" test -x "$bins/syscall"; then
        echo "fuzz/ci.sh: nobody cannot reach $bins; the fuzzers run as root"
        run_as=()
    fi
fi

status=0
for target in elf_plan syscall hypercall; do
    limit=512
    [ "$target" = elf_plan ] && limit=64 # an input is at most a few KiB: no big allocations
    ${run_as[@]+"${run_as[@]}"} mkdir -p "$work/$target/new" "$work/$target/artifacts" "$work/$target/fixture"
    log="$work/$target.log"
    rc=0
    ${run_as[@]+"${run_as[@]}"} env UMON_FUZZ_DIR="$work/$target/fixture" "$bins/$target" \
        -max_total_time="$secs" -malloc_limit_mb="$limit" -print_final_stats=1 \
        -artifact_prefix="$work/$target/artifacts/" "$work/$target/new" "corpus/$target" \
        >"$log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz/ci.sh: $target: ${runs:-?} executions in ${secs} s, no crash"
    else
        status=1
        # Above 128: killed by signal rc-128 (no libFuzzer report then).
        echo "fuzz/ci.sh: $target FAILED with exit status $rc; its log without progress lines:"
        { grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)' "$log" || true; } | tail -n 80
        mkdir -p artifacts/"$target"
        cp "$work/$target/artifacts/"* artifacts/"$target"/ 2>/dev/null || true
        echo "fuzz/ci.sh: crash inputs copied to fuzz/artifacts/$target/ (not committed);"
        echo "fuzz/ci.sh: reproduce with: cargo +nightly fuzz run $target fuzz/artifacts/$target/<file>"
    fi
done
exit "$status"
