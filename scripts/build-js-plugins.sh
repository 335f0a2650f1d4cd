#!/usr/bin/env bash
# Builds each JavaScript plugin (plugins/js/<name>/app.js) into target/plugins/<name>.wasm
# with componentize-js, for the world named by `kind` in its weir-plugin.toml; skips plugins
# whose output is newer than every input.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# What the host does not provide (outbound HTTP, an HTTP server) or plugins should not use
# (the host offers now-ms; random would make replays differ) is left out of the engine.
# stdio stays: console output and uncaught errors reach the host's log.
DISABLE=(http fetch-event random clocks)

"$ROOT/scripts/install-js-toolchain.sh"
mkdir -p "$PLUGIN_OUT"
for dir in "$ROOT"/plugins/js/*/; do
    name="$(basename "$dir")"
    out="$PLUGIN_OUT/$name.wasm"
    if [ -f "$out" ] && [ -z "$(find "$dir" "$ROOT/plugin-sdk/js" "$ROOT/wit" \
            "$TOOLS/js/package.json" "${BASH_SOURCE[0]}" -newer "$out" -type f -print -quit)" ]; then
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
    # The module loader only sees the working directory: run from the root so that a plugin
    # can import the SDK by its relative path.
    (cd "$ROOT" && "$TOOLS/bin/componentize-js" "plugins/js/$name/app.js" --wit wit \
        --world-name "$kind" --disable "${DISABLE[@]}" -o "$out.tmp" >/dev/null)
    mv "$out.tmp" "$out"
    say "built $out"
done
