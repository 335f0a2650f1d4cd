#!/usr/bin/env bash
# The whole test suite: installs the toolchains it needs (wasm target, componentize-py,
# componentize-js, clang with wasi-libc, wit-bindgen and wasm-tools, chromium and the browser
# test's node packages),
# starts the Kafka-protocol test broker, an S3 store for its durable twin, and nats-server
# with JetStream, builds every
# plugin, builds the binary, runs every test of the workspace, and stops the brokers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_build_deps
"$ROOT/scripts/build-plugins.sh"
export WEIR_PLUGIN_DIR="$PLUGIN_OUT"
# A cache of compiled components private to this run, so cache tests start cold.
WEIR_CACHE_DIR="$(mktemp -d)"
export WEIR_CACHE_DIR
trap 'rm -rf "$WEIR_CACHE_DIR"' EXIT

# The brokers the connector tests use, stopped however the run ends. The S3 store holds
# the data of the broker the broker-restart test stops and starts again.
trap 'rm -rf "$WEIR_CACHE_DIR"; "$ROOT/scripts/kafka-broker.sh" stop; "$ROOT/scripts/nats-server.sh" stop; "$ROOT/scripts/s3-store.sh" stop' EXIT
WEIR_KAFKA_BROKERS="$("$ROOT/scripts/kafka-broker.sh" start)"
export WEIR_KAFKA_BROKERS
WEIR_S3_URL="$("$ROOT/scripts/s3-store.sh" start)"
export WEIR_S3_URL
WEIR_NATS_URL="$("$ROOT/scripts/nats-server.sh" start)"
export WEIR_NATS_URL

# Debian's chromium and the browser test's node packages, for the dashboard test.
"$ROOT/scripts/install-browser.sh" >/dev/null

# The Python SDK's own tests, natively (the plugins built from it are tested through weir).
python3 -m unittest discover --start-directory "$ROOT/plugin-sdk/python/tests" --quiet

cargo build --workspace --bins
cargo test --workspace --no-fail-fast
