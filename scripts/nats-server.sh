#!/usr/bin/env bash
# The NATS server for the tests: Debian's nats-server with JetStream, on a free loopback
# port and a store directory of its own. Idempotent.
#
#   nats-server.sh install   install Debian's nats-server when missing; print its path
#   nats-server.sh start     start one server; print its URL (nats://127.0.0.1:PORT)
#   nats-server.sh stop      stop the server `start` started and remove its store
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run="$TOOLS/nats/run"

install() {
    local bin
    bin="$(command -v nats-server || true)"
    if [ -z "$bin" ] && [ -x /usr/sbin/nats-server ]; then
        bin=/usr/sbin/nats-server
    fi
    if [ -z "$bin" ]; then
        say "installing Debian's nats-server"
        # The package's service is not wanted: the tests start their own servers.
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
        bin=/usr/sbin/nats-server
    fi
    echo "$bin"
}

start() {
    local bin port
    bin="$(install)"
    mkdir -p "$run"
    if server_running "$run"; then
        echo "nats://127.0.0.1:$(cat "$run/port")"
        return
    fi
    port="$(free_port)"
    rm -rf "$run/store"
    mkdir -p "$run/store"
    "$bin" -js -a 127.0.0.1 -p "$port" -sd "$run/store" >"$run/server.log" 2>&1 &
    if ! await_server "$run" "$port" "$run/server.log" "$!"; then
        rm -rf "$run/store"
        exit 1
    fi
    echo "nats://127.0.0.1:$port"
}

stop() {
    stop_server "$run"
    rm -rf "$run/store"
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
