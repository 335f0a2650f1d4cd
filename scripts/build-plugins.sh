#!/usr/bin/env bash
# Builds every example plugin into target/plugins/<folder name>.wasm: the Rust ones (for
# wasm32-wasip2, installing the target when missing), then the Python, JavaScript and C ones
# (each language's script installs its toolchain). `build-plugins.sh rust` builds the Rust
# ones only, which is all the demo needs. Idempotent: every build skips what is up to date.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
languages=("${@:-rust python js c}")
# shellcheck disable=SC2206 # the default is a word list
languages=(${languages[*]})

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

for lang in "${languages[@]}"; do
    case "$lang" in
        rust) ;;
        python | js | c) "$ROOT/scripts/build-$lang-plugins.sh" ;;
        *) say "unknown language $lang (rust, python, js, c)"; exit 2 ;;
    esac
done
