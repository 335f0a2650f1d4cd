#!/usr/bin/env bash
# Installs componentize-py (pinned) into the ignored virtualenv .tools/venv. Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPONENTIZE_PY_VERSION=0.25.1
venv="$TOOLS/venv"
# Read pip's answer whole: `grep -q` on a pipe would close it early and fail under pipefail.
installed="$("$venv/bin/python" -m pip show componentize-py 2>/dev/null || true)"
if [ -x "$venv/bin/componentize-py" ] && grep -qx "Version: $COMPONENTIZE_PY_VERSION" <<<"$installed"; then
    exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
    say "installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
say "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
mkdir -p "$TOOLS"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
