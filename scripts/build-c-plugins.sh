#!/usr/bin/env bash
# Builds each C plugin (plugins/c/<name>/*.c, world = `kind` in its weir-plugin.toml) into
# target/plugins/<name>.wasm: wit-bindgen's C bindings of the world, clang to a wasm32-wasi
# (preview1) module, then wasm-tools to a component through the WASI preview1 reactor adapter.
# Skips plugins whose output is newer than every input.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/install-c-toolchain.sh"
export PATH="$TOOLS/bin:$PATH"
adapter="$TOOLS/wasi_snapshot_preview1.reactor.wasm"
# The host's `plugin check` catches imports it does not provide; skipped before it is built.
weir="$CARGO_TARGET_DIR/debug/weir"
CFLAGS=(--target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror
    -Wl,--strip-debug)

mkdir -p "$PLUGIN_OUT"
for dir in "$ROOT"/plugins/c/*/; do
    name="$(basename "$dir")"
    out="$PLUGIN_OUT/$name.wasm"
    if [ -f "$out" ] && [ -z "$(find "$dir" "$ROOT/plugin-sdk/c" "$ROOT/wit" "$adapter" \
            "${BASH_SOURCE[0]}" "$TOOLS/bin/wit-bindgen" "$TOOLS/bin/wasm-tools" \
            -newer "$out" -type f -print -quit)" ]; then
        continue
    fi
    kind="$(sed -n 's/^kind *= *"\([a-z]*\)".*/\1/p' "$dir/weir-plugin.toml")"
    case "$kind" in
        handler | aggregator | pattern) ;;
        *)
            say "$dir/weir-plugin.toml: kind must be handler, aggregator or pattern"
            exit 1
            ;;
    esac
    # Bindings are generated per build, never committed: they follow the contract in wit/.
    build="$CARGO_TARGET_DIR/c-plugins/$name"
    rm -rf "$build"
    mkdir -p "$build/bindings"
    if ! log="$(wit-bindgen c --world "$kind" "$ROOT/wit" --out-dir "$build/bindings" 2>&1)"; then
        say "$log"
        exit 1
    fi
    clang "${CFLAGS[@]}" -I "$build/bindings" -I "$ROOT/plugin-sdk/c" -o "$build/$name.core.wasm" \
        "$dir"/*.c "$build/bindings/$kind.c" "$build/bindings/${kind}_component_type.o"
    wasm-tools component new "$build/$name.core.wasm" \
        --adapt "wasi_snapshot_preview1=$adapter" -o "$build/$name.wasm"
    if [ -x "$weir" ]; then
        "$weir" plugin check --no-cache "$build/$name.wasm" >/dev/null
    fi
    mv "$build/$name.wasm" "$out"
    say "built $out"
done
