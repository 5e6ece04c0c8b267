#!/usr/bin/env bash
# bench/server.sh: floodgate serve against nginx (one worker), same machine,
# same run. Not a timed test; figures go in notes, as ratios.
#
#   1. keep-alive GET /, wrk -t1 -c50 and then `floodgate load -c50 -t1`,
#      each server pinned to core 0 and the client to core 1, RUNS
#      interleaved pairs; each run's req/s and the median ratio
#      floodgate/nginx.
#   2. the same with 16 pipelined requests per write (a wrk Lua script);
#      then keep-alive GET / with wrk for each other `floodgate serve
#      --model` in MODELS.
#   3. what TLS and token auth cost: keep-alive GET / with wrk against
#      `floodgate serve --tls-cert` (over https) and against `floodgate serve
#      --auth-token-file` (wrk sending the token), each paired with the
#      plain server: the median ratio secured/plain; and floodgate's TLS
#      against nginx's TLS (same certificate, ssl_protocols TLSv1.3).
#   4. user-space memory per idle keep-alive connection: IDLE connections
#      that each served one request, RSS delta / IDLE, for each server, for
#      floodgate over TLS and for each model in MODELS.
#
# Usage: bench/server.sh            (RUNS=5 DURATION=10s IDLE=10000 to change;
#                                    SECTIONS="peers security idle" to pick)
# Needs: wrk, nginx, openssl, python3, taskset (apt-get install -y wrk nginx openssl).
# Stops only the processes it started.

set -euo pipefail

RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
IDLE=${IDLE:-10000}
SECTIONS=${SECTIONS:-peers security idle}
MODELS=${MODELS:-reuseport threads}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

missing=()
for tool in wrk nginx openssl python3 taskset; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "bench/server.sh: missing ${missing[*]}; install with: apt-get install -y wrk nginx openssl" >&2
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

# nginx: one worker, a body of the same size as floodgate's GET /; with a
# second argument `tls`, over TLS 1.3 with the bench certificate.
start_nginx() {
    local port=$1 listen="127.0.0.1:$1 backlog=1024" tls=""
    if [[ ${2:-} == tls ]]; then
        listen="$listen ssl"
        tls="ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem; ssl_protocols TLSv1.3;"
    fi
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
        listen $listen;
        $tls
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

# floodgate serve with extra flags ("$@"): FLOODGATE_PID, FLOODGATE_PORT.
start_floodgate() {
    local out=$WORK/floodgate.out
    : >"$out"
    taskset -c "$SERVER_CPU" "$FLOODGATE" serve --listen 127.0.0.1:0 --idle-timeout 600s "$@" \
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

# Prints the req/s of one wrk run against URL $1; a run with socket or
# HTTP errors (a refused token, say) prints nothing, which fails the pair.
wrk_rps() {
    local url=$1
    shift
    taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"$DURATION" "$@" "$url" >"$WORK/wrk.out"
    if grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.out"; then
        echo "wrk $url: $(grep -E 'Non-2xx|Socket errors' "$WORK/wrk.out")" >&2
        return 1
    fi
    awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out"
}

# Prints the req/s of one run of floodgate's own client (closed loop, like wrk).
load_rps() {
    local url=$1
    shift
    taskset -c "$CLIENT_CPU" "$FLOODGATE" load --target "$url" \
        -c 50 -d "$DURATION" -t 1 "$@" 2>/dev/null |
        sed -n 's|^  rate: \([0-9.]*\)/s.*|\1|p'
}

median() {
    python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

# Runs RUNS interleaved pairs (alternating which goes first) of CLIENT
# against two servers and prints each run and the median ratio A/B.
# pairs LABEL A_NAME A_URL B_NAME B_URL CLIENT [CLIENT ARGS...]; client
# arguments for A alone go in the array A_ARGS (emptied afterwards).
A_ARGS=()
pairs() {
    local label=$1 an=$2 au=$3 bn=$4 bu=$5 client=$6
    shift 6
    local a b as=() bs=() ratios=() aargs=("${A_ARGS[@]}") bargs=()
    A_ARGS=()
    echo "== $label: $client -c50 -d$DURATION $*, servers on core $SERVER_CPU, client on core $CLIENT_CPU"
    for i in $(seq "$RUNS"); do
        if ((i % 2)); then
            b=$("$client" "$bu" "$@" "${bargs[@]}")
            a=$("$client" "$au" "$@" "${aargs[@]}")
        else
            a=$("$client" "$au" "$@" "${aargs[@]}")
            b=$("$client" "$bu" "$@" "${bargs[@]}")
        fi
        as+=("$a")
        bs+=("$b")
        ratios+=("$(python3 -c "print($a / $b)")")
        printf 'run %d: %s %10.0f req/s   %s %10.0f req/s   ratio %.3f\n' "$i" "$an" "$a" "$bn" "$b" "${ratios[-1]}"
    done
    printf 'median: %s %.0f req/s, %s %.0f req/s, median of per-pair ratios %s/%s %.3f\n' \
        "$an" "$(median "${as[@]}")" "$bn" "$(median "${bs[@]}")" "$an" "$bn" "$(median "${ratios[@]}")"
}

# compare LABEL CLIENT [CLIENT ARGS...]: floodgate against nginx.
compare() {
    local label=$1 client=$2
    shift 2
    pairs "$label" floodgate "http://127.0.0.1:$FLOODGATE_PORT/" \
        nginx "http://127.0.0.1:$NGINX_PORT/" "$client" "$@"
}

section() {
    [[ " $SECTIONS " == *" $1 "* ]]
}

# The bench certificate (for 127.0.0.1) and token, made here, never kept.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
TOKEN=bench-$RANDOM$RANDOM
(umask 077 && echo "$TOKEN" >"$WORK/token")

if section peers; then
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

    for model in $MODELS; do
        start_floodgate --model "$model"
        compare "keep-alive GET /, wrk, floodgate serve --model $model" wrk_rps
        stop_pid "$FLOODGATE_PID"
    done
    stop_pid "$NGINX_PID"
fi

if section security; then
    # Three floodgate servers side by side (plain, TLS, token) and nginx
    # over TLS, all pinned to the server core; one is loaded at a time.
    start_floodgate
    PLAIN_PID=$FLOODGATE_PID PLAIN=http://127.0.0.1:$FLOODGATE_PORT/
    start_floodgate --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"
    TLS_PID=$FLOODGATE_PID TLS=https://127.0.0.1:$FLOODGATE_PORT/
    start_floodgate --auth-token-file "$WORK/token"
    AUTH_PID=$FLOODGATE_PID AUTH=http://127.0.0.1:$FLOODGATE_PORT/
    NGINX_PORT=$(free_port)
    start_nginx "$NGINX_PORT" tls
    NGINX_TLS=https://127.0.0.1:$NGINX_PORT/
    curl -sf --cacert "$WORK/cert.pem" "$TLS" >/dev/null || { echo "floodgate over TLS does not answer" >&2; exit 1; }
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$AUTH") == 401 ]] ||
        { echo "floodgate --auth-token-file let a request without the token in" >&2; exit 1; }

    pairs "TLS cost: keep-alive GET /, wrk" floodgate-tls "$TLS" floodgate-plain "$PLAIN" wrk_rps
    A_ARGS=(-H "Authorization: Bearer $TOKEN")
    pairs "auth cost: keep-alive GET /, wrk" floodgate-auth "$AUTH" floodgate-plain "$PLAIN" wrk_rps
    pairs "TLS against nginx TLS: keep-alive GET /, wrk" floodgate-tls "$TLS" nginx-tls "$NGINX_TLS" wrk_rps

    stop_pid "$PLAIN_PID"
    stop_pid "$TLS_PID"
    stop_pid "$AUTH_PID"
    stop_pid "$NGINX_PID"
fi

section idle || exit 0

# Idle memory: fresh servers, one request per connection, then hold them.
cat >"$WORK/idle.py" <<'EOF'
import socket, ssl, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
# With a third argument, a CA file: every connection is TLS.
tls = ssl.create_default_context(cafile=sys.argv[3]) if len(sys.argv) > 3 else None
conns = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        s = tls.wrap_socket(s, server_hostname="127.0.0.1")
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

# Prints RSS delta per connection (bytes) for the server process $1 on port
# $2; with a third argument `tls`, over TLS with the bench certificate.
idle_cost() {
    local pid=$1 port=$2 scheme=http tls_args=()
    if [[ ${3:-} == tls ]]; then
        scheme=https
        tls_args=("$WORK/cert.pem")
    fi
    # Warm up so buffers and thread-local state exist before the baseline.
    for _ in $(seq 20); do curl -s --cacert "$WORK/cert.pem" "$scheme://127.0.0.1:$port/" >/dev/null; done
    local before after
    before=$(rss_kib "$pid")
    mkfifo "$WORK/idle.in"
    python3 "$WORK/idle.py" "$port" "$IDLE" "${tls_args[@]}" <"$WORK/idle.in" >"$WORK/idle.out" &
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

start_floodgate --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"
printf 'floodgate over TLS: %s\n' "$(idle_cost "$FLOODGATE_PID" "$FLOODGATE_PORT" tls)"
stop_pid "$FLOODGATE_PID"

for model in $MODELS; do
    start_floodgate --model "$model" --max-connections $((IDLE + 1000))
    printf 'floodgate --model %s: %s\n' "$model" "$(idle_cost "$FLOODGATE_PID" "$FLOODGATE_PORT")"
    stop_pid "$FLOODGATE_PID"
done

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
printf 'nginx worker: %s\n' "$(idle_cost "$NGINX_WORKER" "$NGINX_PORT")"
stop_pid "$NGINX_PID"
