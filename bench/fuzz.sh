#!/usr/bin/env bash
# Fuzzing figures for issue 4 (a benchmark, not a test), on one core each:
#
# 1. Executions per second of a target, from a scratch copy of its committed
#    corpus: the build `fuzz/run.sh TARGET` fuzzes (what users, CI and
#    ClusterFuzzLite run: AddressSanitizer through runtime calls, the ASan
#    options built into the targets), on all inputs and on small ones
#    (-max_len=64); the same without a sanitizer; and the peer, cargo-fuzz's
#    default build with its default ASan options (checks inline, what a bare
#    `cargo fuzz run` would give). RUNS runs each, interleaved; medians, the
#    runs' range, and each build's ratio to the peer.
# 2. Edges (libFuzzer's `cov`) of http_connection after EDGE_SECONDS, with
#    and without fuzz/http.dict, on fuzz/run.sh's build (the two run side by
#    side, one per core).
# 3. The canary: seconds to find its planted bug from the ordinary corpus,
#    over SEEDS seeds, median and maximum, for the smoke's canary build (no
#    sanitizer) and for the same canary under fuzz/run.sh's ASan build.
#
# Usage: bench/fuzz.sh     (RUNS=3 SECONDS_PER_RUN=20 EDGE_SECONDS=300 SEEDS=5 TARGET=http_connection
#                          PARTS="eps edges canary" by default)
# Needs: a nightly toolchain, cargo-fuzz (cargo install --locked cargo-fuzz),
#        taskset, python3. Writes only under fuzz/target/ and a temporary folder.
set -euo pipefail

RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
EDGE_SECONDS=${EDGE_SECONDS:-300}
SEEDS=${SEEDS:-5}
TARGET=${TARGET:-http_connection}
PARTS=" ${PARTS:-eps edges canary} "
FUZZ=$(cd "$(dirname "$0")/../fuzz" && pwd)
cd "$FUZZ"

for tool in taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
cargo +nightly fuzz --version >/dev/null 2>&1 || {
    echo "needs a nightly toolchain and cargo-fuzz (cargo install --locked cargo-fuzz)" >&2
    exit 1
}

work=$(mktemp -d -t floodgate-fuzz-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
# cargo-fuzz's own ASan defaults, which the options built into the targets
# (fuzz_targets/shared/asan_options.rs) would otherwise replace: the peer
# runs as a bare `cargo fuzz run` of a target without them would.
peer_asan=detect_stack_use_after_return=1:max_malloc_fill_size=4096:detect_odr_violation=0

# build NAME [fuzz/run.sh build args...]: one variant, in its own target
# directory. Only the target measured: --no-default-features leaves out
# report_json's floodgate-loadgen build.
build() {
    local name=$1
    shift
    echo "building $name" >&2
    FUZZ_TARGET_DIR=$FUZZ/target/bench-$name ./run.sh build --no-default-features "$@" "$TARGET" \
        >/dev/null 2>&1 || { echo "build $name failed" >&2; exit 1; }
}
bin() { echo "target/bench-$1/$triple/release/$TARGET"; }

build run
build none -s none
build canary -s none --features canary
build canary-asan --features canary
# The peer: cargo-fuzz's default build, without fuzz/run.sh's flags.
echo "building peer" >&2
cargo +nightly fuzz build --target-dir target/bench-peer --no-default-features "$TARGET" >/dev/null 2>&1 ||
    { echo "build peer failed" >&2; exit 1; }

# fuzz CORE BINARY SECONDS LOG [libFuzzer args...]: one run from a fresh
# scratch corpus. (The binaries fuzz/run.sh built, started directly so that
# taskset pins libFuzzer alone.)
fuzz() {
    local core=$1 bin=$2 seconds=$3 log=$4
    shift 4
    local corpus
    corpus=$(mktemp -d -p "$work")
    cp "corpus/$TARGET"/* "$corpus/"
    taskset -c "$core" "$bin" "$corpus" -max_total_time="$seconds" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "$@" >"$log" 2>&1 || true
}
eps() { sed -n 's/^stat::average_exec_per_sec: *//p' "$1" | tail -n1; }
cov() { grep -o 'cov: [0-9]*' "$1" | tail -n1 | cut -d' ' -f2; }

if [[ $PARTS == *" eps "* ]]; then
echo "== execs/s of $TARGET on one core: $RUNS x ${SECONDS_PER_RUN}s per build, interleaved"
: >"$work/eps"
for run in $(seq "$RUNS"); do
    for variant in peer run run-small none none-small; do
        log=$work/eps-$variant-$run.log
        case $variant in
        peer) ASAN_OPTIONS=$peer_asan fuzz 0 "$(bin peer)" "$SECONDS_PER_RUN" "$log" -dict=http.dict ;;
        run) fuzz 0 "$(bin run)" "$SECONDS_PER_RUN" "$log" -dict=http.dict ;;
        run-small) fuzz 0 "$(bin run)" "$SECONDS_PER_RUN" "$log" -dict=http.dict -max_len=64 ;;
        none) fuzz 0 "$(bin none)" "$SECONDS_PER_RUN" "$log" -dict=http.dict ;;
        none-small) fuzz 0 "$(bin none)" "$SECONDS_PER_RUN" "$log" -dict=http.dict -max_len=64 ;;
        esac
        echo "$variant $(eps "$log")" | tee -a "$work/eps"
    done
done
python3 - "$work/eps" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, value = line.split()
    runs.setdefault(name, []).append(float(value))
base = statistics.median(runs["peer"])
labels = {
    "peer": "cargo-fuzz's default build (peer)",
    "run": "fuzz/run.sh (ASan)",
    "run-small": "fuzz/run.sh (ASan), -max_len=64",
    "none": "no sanitizer",
    "none-small": "no sanitizer, -max_len=64",
}
for name, values in runs.items():
    m = statistics.median(values)
    spread = f"{min(values):.0f}-{max(values):.0f}"
    print(f"  {labels[name]:34} median {m:8.0f} execs/s  (runs {spread})  {m / base:5.2f}x peer")
EOF

fi

if [[ $PARTS == *" edges "* ]]; then
echo "== edges of $TARGET after ${EDGE_SECONDS}s (fuzz/run.sh's build), with and without the dictionary"
fuzz 0 "$(bin run)" "$EDGE_SECONDS" "$work/dict.log" -dict=http.dict &
fuzz 1 "$(bin run)" "$EDGE_SECONDS" "$work/nodict.log" &
wait
echo "  with dictionary: cov $(cov "$work/dict.log") ($(eps "$work/dict.log") execs/s)"
echo "  without:         cov $(cov "$work/nodict.log") ($(eps "$work/nodict.log") execs/s)"

fi

if [[ $PARTS == *" canary "* ]]; then
for variant in canary canary-asan; do
    echo "== $variant: time to find from the ordinary corpus, $SEEDS seeds"
    : >"$work/$variant"
    for seed in $(seq "$SEEDS"); do
        log=$work/$variant-$seed.log
        start=$(date +%s.%N)
        fuzz 0 "$(bin "$variant")" 300 "$log" -seed="$seed" -dict=http.dict
        end=$(date +%s.%N)
        if grep -q 'canary: Content-Length trailer' "$log"; then
            t=$(python3 -c "print(f'{$end - $start:.1f}')")
            echo "  seed $seed: found in ${t}s"
        else
            t=300
            echo "  seed $seed: not found in 300s"
        fi
        echo "$t" >>"$work/$variant"
    done
    python3 -c "import statistics,sys; v=[float(l) for l in open(sys.argv[1])]; print(f'  median {statistics.median(v):.1f}s, max {max(v):.1f}s')" "$work/$variant"
done
fi
