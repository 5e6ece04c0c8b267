#!/usr/bin/env bash
# Client benchmark for `floodgate load` (issue 3, "Performance"): nginx with
# one worker pinned to core 0 is the target; wrk, oha and
# `floodgate load --closed` take turns on core 1 with the same connections
# and duration, interleaved, RUNS times each. Reports requests/s and CPU time
# per request (user+sys of the client process / requests), their medians and
# the ratios floodgate/wrk and floodgate/oha. Not a timed test.
#
# Then open loop at 80% of floodgate's closed-loop rate (achieved vs asked),
# and connect mode: `floodgate load --mode connect --closed` against a
# minimal blocking connect+close loop in Rust (bench/connect_loop.rs), both
# on core 1, connections/s, medians and the ratio.
#
# Usage: bench/load.sh            (RUNS=5 CONNS=50 DURATION=5 CONNECT_CONNS=8 by default)
#        RUNS=7 CONNS=100 DURATION=10 bench/load.sh
# Needs: wrk, nginx (apt-get install -y wrk nginx), oha (cargo install --locked oha),
#        python3, taskset; a release build of floodgate (built if missing).
set -euo pipefail

RUNS=${RUNS:-5}
CONNS=${CONNS:-50}
DURATION=${DURATION:-5}
CONNECT_CONNS=${CONNECT_CONNS:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLOODGATE=${FLOODGATE:-$ROOT/target/release/floodgate}

missing=0
for tool in wrk nginx oha python3 taskset; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "missing: $tool" >&2
        missing=1
    fi
done
if [ "$missing" = 1 ]; then
    echo "install the peers with: apt-get install -y wrk nginx && cargo install --locked oha" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "needs 2 cores: nginx on core 0, the client on core 1" >&2
    exit 1
fi
if [ ! -x "$FLOODGATE" ]; then
    (cd "$ROOT" && cargo build --release --bin floodgate)
fi

WORK=$(mktemp -d /tmp/floodgate-bench-load.XXXXXX)
NGINX_PID=""
cleanup() {
    # Stops only the nginx this script started, by its PID.
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID"
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free port on loopback, chosen by the kernel.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / { return 200 "hello from nginx\n"; }
    }
}
EOF
# master_process off: the single process is the worker, pinned to core 0.
taskset -c 0 nginx -p "$WORK" -c "$WORK/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.1)" 2>/dev/null; then break; fi
    sleep 0.05
done
URL="http://127.0.0.1:$PORT/"
echo "nginx (pid $NGINX_PID) on $URL, core 0; clients on core 1; $CONNS connections, ${DURATION}s, $RUNS runs each"

# Runs a client on core 1 and prints "requests cpu_seconds" (user+sys of the
# client and its threads, from rusage of the waited-for child).
measure() {
    local kind=$1
    shift
    python3 - "$kind" "$WORK" "$@" <<'PY'
import json, re, resource, subprocess, sys
kind, work, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
p = subprocess.run(["taskset", "-c", "1"] + argv, capture_output=True, text=True)
if p.returncode != 0:
    sys.stderr.write(p.stderr)
    sys.exit(f"{kind} failed with {p.returncode}")
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
if kind == "wrk":
    m = re.search(r"(\d+) requests in", p.stdout)
    n = int(m.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
    assert errors is None, p.stdout
elif kind == "oha":
    doc = json.loads(p.stdout)
    n = sum(doc["statusCodeDistribution"].values())
else:
    doc = json.load(open(f"{work}/floodgate.json"))
    n = doc["outcomes"]["ok"]
    assert doc["scheduled"] == sum(doc["outcomes"].values())
print(n, cpu)
PY
}

: >"$WORK/results"
for run in $(seq "$RUNS"); do
    # The order rotates each run so no tool always follows the same one.
    tools=(wrk oha floodgate)
    for i in 0 1 2; do
        tool=${tools[$(((i + run) % 3))]}
        case $tool in
        wrk) line=$(measure wrk wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL") ;;
        oha) line=$(measure oha oha --no-tui --output-format json -z "${DURATION}s" -c "$CONNS" "$URL") ;;
        floodgate) line=$(RUST_LOG=warn measure floodgate "$FLOODGATE" load --target "$URL" --closed \
            --connections "$CONNS" --duration "${DURATION}s" --threads 1 --out "$WORK/floodgate.json") ;;
        esac
        echo "run $run $tool $line" | tee -a "$WORK/results"
    done
done

python3 - "$WORK/results" "$DURATION" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
duration = float(sys.argv[2])
by = {}
for _, _, tool, n, cpu in rows:
    by.setdefault(tool, []).append((int(n), float(cpu)))
med = {}
print()
print(f"{'client':<10}{'req/s (median)':>16}{'CPU µs/req (median)':>22}")
for tool in ("wrk", "oha", "floodgate"):
    rps = statistics.median(n / duration for n, _ in by[tool])
    us = statistics.median(cpu / n * 1e6 for n, cpu in by[tool])
    med[tool] = (rps, us)
    print(f"{tool:<10}{rps:>16.0f}{us:>22.2f}")
for peer in ("wrk", "oha"):
    print(f"floodgate/{peer}: req/s {med['floodgate'][0] / med[peer][0]:.2f}x, "
          f"CPU per request {med['floodgate'][1] / med[peer][1]:.2f}x (ratio of medians)")
# This machine's speed drifts over minutes, and a run's CPU per request
# moves with it (it falls as requests/s rise). The tools of one run are
# measured back to back, so the ratio within each run is less exposed to
# that drift; its median and range across runs show the noise.
print()
for peer in ("wrk", "oha"):
    per_run = {}
    for _, run, tool, n, cpu in rows:
        if tool in (peer, "floodgate"):
            per_run.setdefault(run, {})[tool] = (int(n), float(cpu))
    rps, us = [], []
    for pair in per_run.values():
        (fn, fc), (pn, pc) = pair["floodgate"], pair[peer]
        rps.append(fn / pn)
        us.append((fc / fn) / (pc / pn))
    print(f"floodgate/{peer} within each run: req/s median {statistics.median(rps):.2f}x "
          f"(range {min(rps):.2f}-{max(rps):.2f}), CPU per request median "
          f"{statistics.median(us):.2f}x (range {min(us):.2f}-{max(us):.2f})")
PY

# Open loop at 80% of floodgate's closed-loop median: achieved vs asked.
RATE=$(python3 - "$WORK/results" "$DURATION" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.split()[2] == "floodgate"]
print(int(0.8 * statistics.median(int(r[3]) / float(sys.argv[2]) for r in rows)))
PY
)
echo
for run in $(seq 3); do
    RUST_LOG=warn taskset -c 1 "$FLOODGATE" load --target "$URL" --rate "$RATE" \
        --connections "$CONNS" --duration "${DURATION}s" --threads 1 --out "$WORK/open.json" >/dev/null
    python3 -c "import json; d=json.load(open('$WORK/open.json')); a=d['achieved_rate_per_s']; print(f'open loop run $run: asked {d[\"asked_rate_per_s\"]:.0f}/s, achieved {a:.0f}/s ({100*a/d[\"asked_rate_per_s\"]:.2f}%), generator_lagged {d[\"outcomes\"][\"generator_lagged\"]}')"
done

# Connect mode against a minimal blocking connect+close loop.
rustc -O -o "$WORK/connect_loop" "$ROOT/bench/connect_loop.rs"
: >"$WORK/connects"
for run in $(seq "$RUNS"); do
    read -r n secs < <(taskset -c 1 "$WORK/connect_loop" "127.0.0.1:$PORT" "$DURATION")
    echo "connect run $run loop $n $secs" | tee -a "$WORK/connects"
    RUST_LOG=warn taskset -c 1 "$FLOODGATE" load --target "$URL" --mode connect --closed \
        --connections "$CONNECT_CONNS" --duration "${DURATION}s" --threads 1 \
        --out "$WORK/connect.json" >/dev/null
    n=$(python3 -c "import json; d=json.load(open('$WORK/connect.json')); print(d['outcomes']['ok'], d['window_s'])")
    echo "connect run $run floodgate $n" | tee -a "$WORK/connects"
done
python3 - "$WORK/connects" <<'PY'
import statistics, sys
by = {}
for l in open(sys.argv[1]):
    _, _, _, tool, n, secs = l.split()
    by.setdefault(tool, []).append(int(n) / float(secs))
loop, fg = statistics.median(by["loop"]), statistics.median(by["floodgate"])
print()
print(f"connect+close per second (median): blocking loop {loop:.0f}, floodgate --mode connect {fg:.0f}; floodgate/loop {fg / loop:.2f}x")
PY
