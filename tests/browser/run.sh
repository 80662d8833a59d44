#!/bin/sh
# Browser tests of static/index.html against the real build/wshub.
# Installs what is missing (Debian's chromium and nodejs with apt-get when run
# as root; playwright-core with npm into tests/browser/node_modules), then runs
#   node --test tests/browser/chat.test.mjs tests/browser/tls.test.mjs tests/browser/auth.test.mjs
# from the repo root and exits with its status.
# Environment: WSHUB_BIN (default build/wshub), CHROMIUM (default /usr/bin/chromium).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

chromium_bin=${CHROMIUM:-/usr/bin/chromium}
missing=""
[ -x "$chromium_bin" ] || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing:$missing"
        (apt-get update -qq || true) &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || {
                echo "apt-get install -y$missing failed" >&2; exit 1; }
    else
        echo "missing Debian packages for the browser tests; run:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
        [ -d "$here/node_modules/playwright-core" ] || echo "  (cd tests/browser && npm ci)" >&2
        exit 1
    fi
fi

if [ ! -d "$here/node_modules/playwright-core" ]; then
    echo "installing playwright-core into tests/browser/node_modules"
    if [ -f "$here/package-lock.json" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
            (cd "$here" && npm install --no-audit --no-fund --loglevel=error) || {
                echo "npm install in tests/browser failed" >&2; exit 1; }
    else
        (cd "$here" && npm install --no-audit --no-fund --loglevel=error) || {
            echo "npm install in tests/browser failed" >&2; exit 1; }
    fi
fi

bin=${WSHUB_BIN:-build/wshub}
if [ ! -x "$bin" ]; then
    echo "$bin is missing: run make first (or set WSHUB_BIN)" >&2
    exit 1
fi

node --test tests/browser/chat.test.mjs tests/browser/tls.test.mjs tests/browser/auth.test.mjs
exit $?
