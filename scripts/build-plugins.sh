#!/usr/bin/env bash
# Builds every example plugin into target/plugins/<folder name>.wasm: the Rust ones (for
# wasm32-wasip2, installing the target when missing) and the Python ones (componentize-py).
# Idempotent: cargo and the Python build skip what is up to date.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    say "installing the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
fi

mkdir -p "$PLUGIN_OUT"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$ROOT/plugins/rust/Cargo.toml"
built="$CARGO_TARGET_DIR/wasm32-wasip2/release"
for manifest in "$ROOT"/plugins/rust/*/Cargo.toml "$ROOT"/plugins/rust/testing/*/Cargo.toml; do
    dir="$(dirname "$manifest")"
    name="$(basename "$dir")"
    [ "$name" = rust ] && continue
    artifact="$built/${name//-/_}.wasm"
    if [ ! -f "$PLUGIN_OUT/$name.wasm" ] || ! cmp -s "$artifact" "$PLUGIN_OUT/$name.wasm"; then
        cp "$artifact" "$PLUGIN_OUT/$name.wasm"
        say "built $PLUGIN_OUT/$name.wasm"
    fi
done

if [ -x "$ROOT/scripts/build-python-plugins.sh" ]; then
    "$ROOT/scripts/build-python-plugins.sh"
fi
