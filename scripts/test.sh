#!/usr/bin/env bash
# The whole test suite: installs what the browser test needs, then every Rust test
# (unit, integration with the real binary, headless Chromium end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked
# Micro-benchmarks run once each as a smoke check, so they cannot rot.
cargo test -p relay-core --bench forward --locked
