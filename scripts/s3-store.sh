#!/usr/bin/env bash
# An S3-compatible object store on loopback (moto's server, pinned, from PyPI), for the Kafka
# test broker's durable storage: a broker that keeps its topics, records and group offsets
# there survives being stopped and started again, which the broker-restart test needs.
# Idempotent.
#
#   s3-store.sh install   install the server into .tools/s3/venv
#   s3-store.sh start     start one server with the bucket `weir`; print its URL
#   s3-store.sh stop      stop the server `start` started (its contents go with it)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MOTO_VERSION=5.2.5
BUCKET=weir
dir="$TOOLS/s3"
venv="$dir/venv"
run="$dir/run"

install() {
    if compgen -G "$venv/lib/python3*/site-packages/moto-$MOTO_VERSION.dist-info" >/dev/null; then
        return
    fi
    # Debian splits ensurepip, which `python3 -m venv` needs, into python3-venv.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        say "installing python3-venv"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    say "installing the S3 test store (moto[server] $MOTO_VERSION) into $venv"
    mkdir -p "$dir"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "moto[server]==$MOTO_VERSION"
}

start() {
    install
    mkdir -p "$run"
    if server_running "$run"; then
        echo "http://127.0.0.1:$(cat "$run/port")"
        return
    fi
    local port url
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$run/server.log" 2>&1 &
    await_server "$run" "$port" "$run/server.log" "$!" || exit 1
    if ! AWS_ACCESS_KEY_ID=weir AWS_SECRET_ACCESS_KEY=weir "$venv/bin/python" - "$url" "$BUCKET" <<'EOF'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").create_bucket(Bucket=sys.argv[2])
EOF
    then
        say "s3-store: cannot create the bucket $BUCKET; its log:"
        tail -20 "$run/server.log" >&2
        stop_server "$run"
        exit 1
    fi
    echo "$url"
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
