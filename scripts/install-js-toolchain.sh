#!/usr/bin/env bash
# Installs componentize-js and jco (pinned) from npm into the ignored .tools/js, with links in
# .tools/bin. Idempotent: returns at once when the pinned versions are in place.
#
# componentize-js turns an ES module (and what it imports) into a component by snapshotting
# a SpiderMonkey embedding (StarlingMonkey) with the module loaded; its components link
# against wasmtime 48. The plugin builds use it directly. jco is pinned to 1.15.4: it
# satisfies componentize-js's own dependency on jco without the large toolchain newer
# releases bring, and its `jco componentize` works where 1.35's fails to read a WIT folder.
# That command runs the componentize-js 0.19 jco depends on and passes the source as text,
# so it suits single-module components only; jco's other commands (wit, print, transpile)
# are what it is here for.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMPONENTIZE_JS_VERSION=0.23.0
JCO_VERSION=1.15.4
dir="$TOOLS/js"
modules="$dir/node_modules/@bytecodealliance"

installed_version() {
    sed -n 's/^  "version": "\(.*\)",$/\1/p' "$modules/$1/package.json" 2>/dev/null || true
}

link_tools() {
    mkdir -p "$TOOLS/bin"
    ln -sfn "$dir/node_modules/.bin/componentize-js" "$TOOLS/bin/componentize-js"
    ln -sfn "$dir/node_modules/.bin/jco" "$TOOLS/bin/jco"
}

if [ "$(installed_version componentize-js)" = "$COMPONENTIZE_JS_VERSION" ] &&
    [ "$(installed_version jco)" = "$JCO_VERSION" ]; then
    [ -e "$TOOLS/bin/componentize-js" ] && [ -e "$TOOLS/bin/jco" ] || link_tools
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
    say "componentize-js needs Node.js 18 or later; found $(node --version)"
    exit 1
fi

say "installing componentize-js $COMPONENTIZE_JS_VERSION and jco $JCO_VERSION into $dir"
mkdir -p "$dir"
cat >"$dir/package.json" <<JSON
{
  "private": true,
  "description": "Build tools of Weir's JavaScript plugins (scripts/install-js-toolchain.sh)",
  "dependencies": {
    "@bytecodealliance/componentize-js": "$COMPONENTIZE_JS_VERSION",
    "@bytecodealliance/jco": "$JCO_VERSION"
  }
}
JSON
rm -f "$dir/package-lock.json"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --omit=dev >/dev/null
link_tools
