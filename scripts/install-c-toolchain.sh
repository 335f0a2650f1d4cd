#!/usr/bin/env bash
# Installs what C plugins are built with, pinned: Debian's clang, wasm-ld and wasi-libc (C to a
# wasm32-wasi preview1 module), wit-bindgen (C bindings of the contract) and wasm-tools (module
# to component) under .tools/bin, and the WASI preview1 reactor adapter at
# .tools/wasi_snapshot_preview1.reactor.wasm. Idempotent: a no-op once everything is there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wit-bindgen matches the Rust SDK's wit-bindgen 0.61; wasm-tools the wit-component release
# that wit-bindgen 0.61 is built on; the adapter the wasmtime release the host embeds (an
# adapter from a newer wasmtime may import WASI versions the host does not offer).
WIT_BINDGEN_VERSION=0.61.1
WASM_TOOLS_VERSION=1.258.3
ADAPTER_VERSION=48.0.8
APT_PACKAGES=(clang lld wasi-libc libclang-rt-dev-wasm32)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# `tool --version` prints "name X.Y.Z (...)": compare the second word.
has_version() {
    local found
    found="$("$TOOLS/bin/$1" --version 2>/dev/null || true)"
    [ "$(cut -d' ' -f2 <<<"$found")" = "$2" ]
}

# Only the parts in use are compiled: a full build of either takes several times as long on
# two cores. The builds keep a directory of their own inside the target directory, away from
# the workspace's builds; where the target directory outlives the checkout (as in CI), a
# fresh checkout installs the tools from it in seconds instead of minutes.
cargo_install() {
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR/tools" cargo install --quiet --locked --root "$TOOLS" "$@"
}

mkdir -p "$TOOLS/bin"
if ! has_version wit-bindgen "$WIT_BINDGEN_VERSION"; then
    say "installing wit-bindgen $WIT_BINDGEN_VERSION into $TOOLS/bin"
    cargo_install wit-bindgen-cli --version "=$WIT_BINDGEN_VERSION" \
        --no-default-features --features c
fi
if ! has_version wasm-tools "$WASM_TOOLS_VERSION"; then
    say "installing wasm-tools $WASM_TOOLS_VERSION into $TOOLS/bin"
    cargo_install wasm-tools --version "=$WASM_TOOLS_VERSION" \
        --no-default-features --features component
fi

adapter="$TOOLS/wasi_snapshot_preview1.reactor.wasm"
stamp="$adapter.version"
if [ ! -f "$adapter" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$ADAPTER_VERSION" ]; then
    say "fetching the WASI preview1 reactor adapter $ADAPTER_VERSION"
    # The adapters ship inside the crate's source: fetch it through a throwaway manifest and
    # copy the file out of cargo's registry cache.
    fetch="$TOOLS/adapter-fetch"
    mkdir -p "$fetch/src"
    cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "src/lib.rs"

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_VERSION"

[workspace]
EOF
    : >"$fetch/src/lib.rs"
    cargo fetch --quiet --manifest-path "$fetch/Cargo.toml"
    crate="wasi-preview1-component-adapter-provider-$ADAPTER_VERSION"
    found=("${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate"/artefacts/wasi_snapshot_preview1.reactor.wasm)
    if [ ! -f "${found[0]}" ]; then
        say "the adapter is not in cargo's registry after fetching $crate"
        exit 1
    fi
    cp "${found[0]}" "$adapter.tmp"
    mv "$adapter.tmp" "$adapter"
    echo "$ADAPTER_VERSION" >"$stamp"
    rm -rf "$fetch"
fi
