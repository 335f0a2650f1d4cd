# Shared by the scripts: paths and small helpers. Source it, do not run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
# One target directory for the workspace and the plugins, unless the caller chose one.
# Absolute, since the plugin builds run from other folders.
CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"
export CARGO_TARGET_DIR
PLUGIN_OUT="$CARGO_TARGET_DIR/plugins"

say() { printf '%s\n' "$*" >&2; }

# C libraries the bundled librdkafka builds against (TLS for SASL_SSL, zlib), from Debian.
ensure_build_deps() {
    if pkg-config --exists openssl zlib 2>/dev/null; then
        return
    fi
    say "installing libssl-dev, zlib1g-dev and pkg-config for librdkafka"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev zlib1g-dev pkg-config >/dev/null
}
