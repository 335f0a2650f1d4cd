#!/usr/bin/env bash
# The quick start: builds the example plugins and the binary, then runs the `threshold`
# plugin over a bundled sample, keeping events whose amount is over 50.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/build-plugins.sh"
cargo build --quiet --release -p weir
weir="$CARGO_TARGET_DIR/release/weir"

say "== weir plugin check $PLUGIN_OUT/threshold.wasm"
"$weir" plugin check "$PLUGIN_OUT/threshold.wasm"
say "== events of examples/sample-events.jsonl with amount > 50:"
"$weir" plugin run "$PLUGIN_OUT/threshold.wasm" --config field=amount --config min=50 \
    --input examples/sample-events.jsonl
