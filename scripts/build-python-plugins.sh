#!/usr/bin/env bash
# Builds each Python plugin (plugins/python/<name>/app.py) into target/plugins/<name>.wasm
# with componentize-py; skips plugins whose output is newer than every input.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/install-python-toolchain.sh"
mkdir -p "$PLUGIN_OUT"
for dir in "$ROOT"/plugins/python/*/; do
    name="$(basename "$dir")"
    out="$PLUGIN_OUT/$name.wasm"
    if [ -f "$out" ] && [ -z "$(find "$dir" "$ROOT/plugin-sdk/python/weir_plugin" "$ROOT/wit" \
            -newer "$out" -type f -print -quit)" ]; then
        continue
    fi
    (cd "$dir" && "$TOOLS/venv/bin/componentize-py" -d "$ROOT/wit" -w handler componentize \
        -p "$ROOT/plugin-sdk/python" -p "$dir" app -o "$out.tmp" >/dev/null)
    mv "$out.tmp" "$out"
    say "built $out"
done
