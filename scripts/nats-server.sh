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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    local bin port
    bin="$(install)"
    mkdir -p "$run"
    if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
        echo "nats://127.0.0.1:$(cat "$run/port")"
        return
    fi
    port="$(free_port)"
    rm -rf "$run/store"
    mkdir -p "$run/store"
    "$bin" -js -a 127.0.0.1 -p "$port" -sd "$run/store" >"$run/server.log" 2>&1 &
    echo $! >"$run/pid"
    echo "$port" >"$run/port"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "nats://127.0.0.1:$port"
            return
        fi
        sleep 0.1
    done
    say "nats-server: the server did not listen on 127.0.0.1:$port within 10 s; its log:"
    tail -20 "$run/server.log" >&2
    stop
    exit 1
}

stop() {
    if [ -f "$run/pid" ]; then
        kill "$(cat "$run/pid")" 2>/dev/null || true
        rm -f "$run/pid" "$run/port"
    fi
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
