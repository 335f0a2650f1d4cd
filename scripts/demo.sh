#!/usr/bin/env bash
# The quick start: builds the example plugins and the binary, then runs the pipeline of
# examples/quickstart.toml (generator -> wasm threshold -> wasm enrich -> stdout and a file, and
# per-user windows with built-in and plugin aggregations)
# for about 15 seconds, with metrics and the pipeline's state served on localhost.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/build-plugins.sh" rust
ensure_build_deps
cargo build --quiet --release -p weir
weir="$CARGO_TARGET_DIR/release/weir"

rm -rf out
say "== weir run examples/quickstart.toml"
say "   dashboard: http://127.0.0.1:9464/"
say "   metrics:   http://127.0.0.1:9464/metrics"
say "   pipeline:  http://127.0.0.1:9464/api/v1/pipeline"
say "   output:    out/payments.jsonl (dead letters: out/dead-letters.jsonl)"
WEIR_PLUGIN_DIR="$PLUGIN_OUT" "$weir" run examples/quickstart.toml
say "== done: $(wc -l < out/payments.jsonl) events with amount > 50 in out/payments.jsonl"
