#!/usr/bin/env bash
# Builds {{name}}.wasm: a WebAssembly component for the `{{world}}` world of weir:plugin.
# Needs componentize-py on PATH (`pip install componentize-py==0.25.1`). The contract is in
# wit/ and the SDK (the weir_plugin package) in sdk/; the component embeds a Python
# interpreter with app.py and the SDK already imported, so it needs nothing else at run time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
componentize-py -d wit -w {{world}} componentize -p sdk -p . app -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm"
