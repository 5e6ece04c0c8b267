#!/usr/bin/env bash
# bench/server.sh: floodgate serve against nginx (one worker), same machine,
# same run. Not a timed test; figures go in notes, as ratios.
#
#   1. keep-alive GET /, wrk -t1 -c50 and then `floodgate load -c50 -t1`,
#      each server pinned to core 0 and the client to core 1, RUNS
#      interleaved pairs; each run's req/s and the median ratio
#      floodgate/nginx.
#   2. the same with 16 pipelined requests per write (a wrk Lua script).
#   3. user-space memory per idle keep-alive connection: IDLE connections
#      that each served one request, RSS delta / IDLE, for each server.
#
# Usage: bench/server.sh            (RUNS=5 DURATION=10s IDLE=10000 to change)
# Needs: wrk, nginx, python3, taskset (apt-get install -y wrk nginx).
# Stops only the processes it started.

set -euo pipefail

RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
IDLE=${IDLE:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

missing=()
for tool in wrk nginx python3 taskset; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "bench/server.sh: missing ${missing[*]}; install with: apt-get install -y wrk nginx" >&2
    exit 1
fi

cd "$(dirname "$0")/.."
cargo build --release --bin floodgate
FLOODGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/floodgate

WORK=$(mktemp -d -t floodgate-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Both servers and the idle-connection client need many descriptors; ask
# for what IDLE needs, up to the hard limit.
NOFILE=$((IDLE * 2 + 1024))
HARD=$(ulimit -Hn)
if [[ $HARD != unlimited ]] && ((HARD < NOFILE)); then
    NOFILE=$HARD
fi
ulimit -n "$NOFILE"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until a TCP connect to 127.0.0.1:$1 succeeds (at most 10 s).
wait_port() {
    python3 - "$1" <<'EOF'
import socket, sys, time
deadline = time.time() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(f"nothing listening on port {sys.argv[1]}")
        time.sleep(0.05)
EOF
}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# nginx: one worker, a body of the same size as floodgate's GET /.
start_nginx() {
    local port=$1
    mkdir -p "$WORK/nginx/logs"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
master_process on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections $((IDLE + 1024)); }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {
        listen 127.0.0.1:$port backlog=1024;
        location = / {
            default_type text/plain;
            return 200 "hello from floodgate!\n";
        }
    }
}
EOF
    taskset -c "$SERVER_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_port "$port"
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

start_floodgate() {
    local out=$WORK/floodgate.out
    : >"$out"
    taskset -c "$SERVER_CPU" "$FLOODGATE" serve --listen 127.0.0.1:0 --idle-timeout 600s \
        >"$out" 2>"$WORK/floodgate.err" &
    FLOODGATE_PID=$!
    PIDS+=("$FLOODGATE_PID")
    for _ in $(seq 100); do
        grep -q '^listening on ' "$out" && break
        sleep 0.05
    done
    FLOODGATE_PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$out")
    [[ -n $FLOODGATE_PORT ]] || { echo "floodgate serve did not start" >&2; cat "$WORK/floodgate.err" >&2; exit 1; }
}

cat >"$WORK/pipeline.lua" <<'EOF'
-- 16 requests per write; wrk counts each response.
init = function(args)
    local r = {}
    for i = 1, 16 do
        r[i] = wrk.format(nil, "/")
    end
    req = table.concat(r)
end
request = function()
    return req
end
EOF

# Prints the req/s of one wrk run.
wrk_rps() {
    local port=$1
    shift
    taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"$DURATION" "$@" "http://127.0.0.1:$port/" |
        awk '/^Requests\/sec:/ {print $2}'
}

# Prints the req/s of one run of floodgate's own client (closed loop, like wrk).
load_rps() {
    local port=$1
    shift
    taskset -c "$CLIENT_CPU" "$FLOODGATE" load --target "http://127.0.0.1:$port/" \
        -c 50 -d "$DURATION" -t 1 "$@" 2>/dev/null |
        sed -n 's|^  rate: \([0-9.]*\)/s.*|\1|p'
}

median() {
    python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

# Runs RUNS interleaved pairs (alternating which server goes first) and
# prints each run and the median ratio.
# compare LABEL CLIENT [CLIENT ARGS...], CLIENT being wrk_rps or load_rps.
compare() {
    local label=$1 client=$2
    shift 2
    local f n fs=() ns=() ratios=()
    echo "== $label: $client -c50 -d$DURATION $*, servers on core $SERVER_CPU, client on core $CLIENT_CPU"
    for i in $(seq "$RUNS"); do
        if ((i % 2)); then
            n=$("$client" "$NGINX_PORT" "$@")
            f=$("$client" "$FLOODGATE_PORT" "$@")
        else
            f=$("$client" "$FLOODGATE_PORT" "$@")
            n=$("$client" "$NGINX_PORT" "$@")
        fi
        fs+=("$f")
        ns+=("$n")
        ratios+=("$(python3 -c "print($f / $n)")")
        printf 'run %d: floodgate %10.0f req/s   nginx %10.0f req/s   ratio %.3f\n' "$i" "$f" "$n" "${ratios[-1]}"
    done
    printf 'median: floodgate %.0f req/s, nginx %.0f req/s, median of per-pair ratios %.3f\n' \
        "$(median "${fs[@]}")" "$(median "${ns[@]}")" "$(median "${ratios[@]}")"
}

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"
start_floodgate
echo "nginx on 127.0.0.1:$NGINX_PORT, floodgate on 127.0.0.1:$FLOODGATE_PORT"
curl -s "http://127.0.0.1:$NGINX_PORT/" | cmp -s - <(curl -s "http://127.0.0.1:$FLOODGATE_PORT/") ||
    echo "warning: the two GET / bodies differ" >&2

compare "keep-alive GET /, wrk" wrk_rps
compare "keep-alive GET /, floodgate load" load_rps
compare "pipelined GET / (16 per write), wrk" wrk_rps -s "$WORK/pipeline.lua"

stop_pid "$FLOODGATE_PID"
stop_pid "$NGINX_PID"

# Idle memory: fresh servers, one request per connection, then hold them.
cat >"$WORK/idle.py" <<'EOF'
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got or not got.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("server closed a connection")
        got += chunk
    conns.append(s)
print("ready", flush=True)
sys.stdin.read()
EOF

# Prints RSS delta per connection (bytes) for the server process $1 on port $2.
idle_cost() {
    local pid=$1 port=$2
    # Warm up so buffers and thread-local state exist before the baseline.
    for _ in $(seq 20); do curl -s "http://127.0.0.1:$port/" >/dev/null; done
    local before after
    before=$(rss_kib "$pid")
    mkfifo "$WORK/idle.in"
    python3 "$WORK/idle.py" "$port" "$IDLE" <"$WORK/idle.in" >"$WORK/idle.out" &
    local client=$!
    PIDS+=("$client")
    exec 9>"$WORK/idle.in"
    while ! grep -q ready "$WORK/idle.out"; do
        kill -0 "$client" 2>/dev/null || { echo "idle client failed" >&2; exit 1; }
        sleep 0.1
    done
    after=$(rss_kib "$pid")
    exec 9>&-
    wait "$client" || true
    rm -f "$WORK/idle.in"
    python3 -c "print(f'{($after - $before) * 1024 / $IDLE:.0f} B per connection (RSS {$before} KiB -> {$after} KiB)')"
}

echo "== user-space memory per idle keep-alive connection ($IDLE connections)"
start_floodgate
printf 'floodgate: %s\n' "$(idle_cost "$FLOODGATE_PID" "$FLOODGATE_PORT")"
stop_pid "$FLOODGATE_PID"

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
printf 'nginx worker: %s\n' "$(idle_cost "$NGINX_WORKER" "$NGINX_PORT")"
stop_pid "$NGINX_PID"
