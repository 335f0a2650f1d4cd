#!/usr/bin/env bash
# The whole test suite: installs the toolchains it needs (wasm target, componentize-py),
# builds every plugin, builds the binary, and runs every test of the workspace.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/build-plugins.sh"
export WEIR_PLUGIN_DIR="$PLUGIN_OUT"
# A cache of compiled components private to this run, so cache tests start cold.
WEIR_CACHE_DIR="$(mktemp -d)"
export WEIR_CACHE_DIR
trap 'rm -rf "$WEIR_CACHE_DIR"' EXIT

cargo build --workspace --bins
cargo test --workspace --no-fail-fast
