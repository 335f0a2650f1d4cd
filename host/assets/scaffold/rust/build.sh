#!/usr/bin/env bash
# Builds {{name}}.wasm: a WebAssembly component for the `{{world}}` world of weir:plugin.
# Needs the wasm32-wasip2 target (`rustup target add wasm32-wasip2`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# Set here, so that a target directory chosen in a cargo config elsewhere cannot move the
# output away from where it is copied from.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet --release --target wasm32-wasip2
cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/{{ident}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm"
