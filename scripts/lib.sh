# Shared by the scripts: paths and small helpers. Source it, do not run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
# One target directory for the workspace and the plugins, unless the caller chose one.
# Absolute, since the plugin builds run from other folders.
CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"
export CARGO_TARGET_DIR
PLUGIN_OUT="$CARGO_TARGET_DIR/plugins"

say() { printf '%s\n' "$*" >&2; }

# For the scripts that run a test server in the background, with its pid and port in RUN_DIR.

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Whether the server in $1 (a run folder) is running; its port is then in $1/port.
server_running() {
    [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null
}

# Records the server just started in the background with pid $4 on port $2 in run folder
# $1, and waits up to 10 s for it to listen; on failure shows the tail of log $3 and stops it.
await_server() {
    local run="$1" port="$2" log="$3" pid="$4"
    echo "$pid" >"$run/pid"
    echo "$port" >"$run/port"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    say "$(basename "$0"): the server did not listen on 127.0.0.1:$port within 10 s; its log:"
    tail -20 "$log" >&2
    stop_server "$run"
    return 1
}

# Stops the server of run folder $1, if one runs, and waits up to 5 s for it to exit.
stop_server() {
    if [ -f "$1/pid" ]; then
        local pid
        pid="$(cat "$1/pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$1/pid" "$1/port"
    fi
}

# C libraries the bundled librdkafka builds against (TLS for SASL_SSL, zlib), from Debian.
ensure_build_deps() {
    if pkg-config --exists openssl zlib 2>/dev/null; then
        return
    fi
    say "installing libssl-dev, zlib1g-dev and pkg-config for librdkafka"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev zlib1g-dev pkg-config >/dev/null
}
