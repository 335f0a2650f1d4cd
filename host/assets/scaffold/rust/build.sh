#!/usr/bin/env bash
# Builds {{name}}.wasm: a WebAssembly component for the `{{world}}` world of weir:plugin.
# Needs the wasm32-wasip2 target (`rustup target add wasm32-wasip2`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cargo build --quiet --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{ident}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm"
