#!/usr/bin/env bash
# Builds {{name}}.wasm: a WebAssembly component for the `{{world}}` world of weir:plugin.
#
# Needs on PATH: clang with wasi-libc for wasm32-wasi (Debian: clang lld wasi-libc
# libclang-rt-dev-wasm32), wit-bindgen (cargo install wit-bindgen-cli) and wasm-tools
# (cargo install wasm-tools); and in WEIR_WASI_ADAPTER the path of the WASI preview1 reactor
# adapter, wasi_snapshot_preview1.reactor.wasm (shipped in the crates.io crate
# wasi-preview1-component-adapter-provider).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
adapter="${WEIR_WASI_ADAPTER:?set WEIR_WASI_ADAPTER to wasi_snapshot_preview1.reactor.wasm}"

# The bindings follow the contract in wit/, so they are generated on every build rather than
# kept beside the sources.
rm -rf build
mkdir -p build/bindings
if ! log="$(wit-bindgen c --world {{world}} wit --out-dir build/bindings 2>&1)"; then
    printf '%s\n' "$log" >&2
    exit 1
fi
# clang builds a WASI preview1 module (a reactor: no main, only exports) ...
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Wl,--strip-debug \
    -I build/bindings -I sdk -o build/{{name}}.core.wasm \
    ./*.c build/bindings/{{world}}.c build/bindings/{{world}}_component_type.o
# ... which the adapter turns into a component on WASI 0.2, the only kind the host loads.
wasm-tools component new build/{{name}}.core.wasm \
    --adapt "wasi_snapshot_preview1=$adapter" -o {{name}}.wasm
echo "built {{name}}.wasm"
