#!/usr/bin/env bash
# Builds {{name}}.wasm: a WebAssembly component for the `{{world}}` world of weir:plugin.
# Needs componentize-js on PATH (`npm install -g @bytecodealliance/componentize-js@0.23.0`).
# The contract is in wit/ and the SDK in sdk/; the component embeds a JavaScript engine with
# app.js already loaded, so it needs nothing else at run time. Written in TypeScript? Compile
# to app.js first (`tsc --target es2022 --module es2022 app.ts`): sdk/ has the declarations.
set -euo pipefail
# The engine's module loader sees only the working directory: app.js imports ./sdk/ from it.
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v componentize-js >/dev/null; then
    echo "componentize-js not found: npm install -g @bytecodealliance/componentize-js@0.23.0" >&2
    exit 1
fi
# Leave out what the host does not provide (HTTP) or a plugin should not use: the host's
# nowMs() is the clock, and randomness would make replays differ.
componentize-js app.js --wit wit --world-name {{world}} \
    --disable http fetch-event random clocks -o {{name}}.wasm
echo "built {{name}}.wasm"
