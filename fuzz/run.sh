#!/usr/bin/env bash
# Run one fuzz target under libFuzzer for a while, on one core, from the repository
# root: fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
# The working corpus grows in fuzz/libfuzzer/corpus/TARGET (seeded from
# fuzz/corpus/TARGET), crashes land in fuzz/libfuzzer/artifacts/TARGET/, and
# libFuzzer's log (with its final stats) in fuzz/libfuzzer/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."
t=$1
secs=$2
shift 2
mkdir -p "fuzz/regressions/$t" "fuzz/libfuzzer/corpus/$t" "fuzz/libfuzzer/artifacts/$t" fuzz/libfuzzer/logs
# Stable toolchain: cargo-fuzz needs -Z flags, which RUSTC_BOOTSTRAP allows.
# No sanitizer (the crates forbid unsafe code), debug assertions and overflow
# checks on.
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz/libfuzzer -s none -a "$t" \
    "fuzz/libfuzzer/corpus/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -max_len=16384 \
    -artifact_prefix="fuzz/libfuzzer/artifacts/$t/" "$@" \
    > "fuzz/libfuzzer/logs/$t.log" 2>&1
