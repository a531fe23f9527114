#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: Debian's Chromium
# (browser end-to-end tests), libopus and pkg-config (the simulator's real Opus
# voice links the system libopus) and the npm packages of tests/browser. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists opus 2>/dev/null || need+=(libopus-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]} with apt-get" >&2
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -d "$root/tests/browser/node_modules/playwright-core" ]; then
  echo "install-deps: npm install in tests/browser" >&2
  (cd "$root/tests/browser" && npm install --no-audit --no-fund --silent)
fi
