#!/usr/bin/env bash
# The whole test suite: installs what the browser test needs, then every Rust test
# (unit, integration with the real binary, headless Chromium end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked
# Benchmarks run briefly as a smoke check, so they cannot rot: the micro-benchmarks
# once each, the load benchmark one short step (debug build: figures meaningless).
cargo test -p relay-core --bench forward --locked
cargo test -p classroom-relay --bench load --locked
# The soak benchmark's 2-minute form: 4 lessons, a sample every 20 s; fails when the
# relay's memory grows 5 % or more after 60 s, sessions or file descriptors change,
# forwarding stalls or voice is lost.
cargo test -p classroom-relay --bench soak --locked
# 40 sessions that never connect: they must expire and give back their descriptors.
cargo test -p classroom-relay --bench idle_sessions --locked
# The side-by-side with Janus, one short step (installs Debian's janus; needs root
# for its network namespace).
cargo test -p classroom-relay --bench load --locked -- --janus
