#!/usr/bin/env bash
# Builds each Python plugin (plugins/python/<name>/app.py) into target/plugins/<name>.wasm
# with componentize-py, for the world named by `kind` in its weir-plugin.toml. Skips plugins
# whose output is newer than every input (its folder, the SDK, the contract, the tool).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/install-python-toolchain.sh"
componentize="$TOOLS/venv/bin/componentize-py"
sdk="$ROOT/plugin-sdk/python"
mkdir -p "$PLUGIN_OUT"

# The world a plugin is built for: `kind = "..."` in its manifest.
kind_of() {
    local manifest="$1/weir-plugin.toml" kind
    [ -f "$manifest" ] || { say "$manifest: missing"; return 1; }
    kind="$(sed -n 's/^[[:space:]]*kind[[:space:]]*=[[:space:]]*"\([a-z]*\)".*/\1/p' "$manifest")"
    case "$kind" in
        handler | aggregator | pattern) printf '%s\n' "$kind" ;;
        *) say "$manifest: kind must be handler, aggregator or pattern"; return 1 ;;
    esac
}

# componentize-py leaves __pycache__ folders in the sources it reads: they are outputs too.
up_to_date() {
    local out="$1" dir="$2"
    [ -f "$out" ] && [ -z "$(find "$dir" "$sdk/weir_plugin" "$ROOT/wit" "$componentize" \
        "${BASH_SOURCE[0]}" -newer "$out" -type f -not -path '*/__pycache__/*' -print -quit)" ]
}

pids=()
names=()
# A failed build stops the others, which are this script's own children.
failed() {
    say "$1: build failed"
    kill "${pids[@]}" 2>/dev/null || true
    exit 1
}
for dir in "$ROOT"/plugins/python/*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    out="$PLUGIN_OUT/$name.wasm"
    up_to_date "$out" "$dir" && continue
    kind="$(kind_of "$dir")"
    # One build per core at most: each one is a single-threaded interpreter snapshot plus
    # a compression pass, so two at a time roughly halves the wall time on two cores.
    (
        cd "$dir"
        "$componentize" -d "$ROOT/wit" -w "$kind" componentize -p "$sdk" -p "$dir" app \
            -o "$out.tmp" >/dev/null
        mv "$out.tmp" "$out"
        say "built $out ($kind)"
    ) &
    pids+=("$!")
    names+=("$name")
    if [ "${#pids[@]}" -ge "$(nproc)" ]; then
        wait "${pids[0]}" || failed "${names[0]}"
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed "${names[$i]}"
done
