# Shared by the scripts: paths and small helpers. Source it, do not run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
# One target directory for the workspace and the plugins, unless the caller chose one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PLUGIN_OUT="$CARGO_TARGET_DIR/plugins"

say() { printf '%s\n' "$*" >&2; }
