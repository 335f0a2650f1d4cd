#!/usr/bin/env bash
# What the dashboard's browser test needs: Debian's chromium (Playwright's own browser
# download cannot reach its host here) and tests/browser's node packages, pinned by
# package-lock.json. Idempotent: each step runs only when its result is missing or stale.
#
#   install-browser.sh    install both; print the path of chromium
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

chromium=/usr/bin/chromium
browser_tests="$ROOT/tests/browser"

if [ ! -x "$chromium" ]; then
    say "installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# npm ci rewrites node_modules from the lock file, so run it only when that file changed
# since the last install (npm touches node_modules/.package-lock.json on each install).
modules="$browser_tests/node_modules"
if [ ! -d "$modules" ] || [ "$browser_tests/package-lock.json" -nt "$modules/.package-lock.json" ]; then
    say "installing the browser test's node packages"
    (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "$chromium"
