#!/usr/bin/env bash
# Installs componentize-py (pinned) into the ignored virtualenv .tools/venv, linked from
# .tools/bin. Idempotent, and instant once installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPONENTIZE_PY_VERSION=0.25.1
venv="$TOOLS/venv"

link() {
    if [ ! -L "$TOOLS/bin/componentize-py" ]; then
        mkdir -p "$TOOLS/bin"
        ln -sfn ../venv/bin/componentize-py "$TOOLS/bin/componentize-py"
    fi
}

# The installed version is in the name of its dist-info folder: checking that takes no
# interpreter start (`pip show` takes half a second, on every build).
if [ -x "$venv/bin/componentize-py" ] && compgen -G \
        "$venv/lib/python3*/site-packages/componentize_py-$COMPONENTIZE_PY_VERSION.dist-info" \
        >/dev/null; then
    link
    exit 0
fi
# Debian splits ensurepip, which `python3 -m venv` needs, into python3-venv.
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    say "installing python3 and python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
say "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
mkdir -p "$TOOLS"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
link
