#!/usr/bin/env bash
# Fuzz smoke test, run by CI (.ci/run): builds every fuzz target, fuzzes each
# for a bounded time from the committed corpus, then builds proto with its
# planted `canary` bug and checks that libFuzzer, starting from the same
# corpus, finds it within a deadline.
# A fuzzer that cannot find a planted bug is not testing anything, so that
# failing is a failure of this script.
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 30)
#   CANARY_SECONDS  deadline for finding the canary (default 60)
#   CANARY_TARGET   target run on the canary build (default http_connection)
#   SMOKE_TARGETS   space-separated targets to fuzz (default: all)
#
# Nothing is written into the repository: new corpus entries, crash
# artifacts and logs go to a temporary directory, kept (and printed) only
# when something fails.
set -euo pipefail

cd "$(dirname "$0")"
fuzz_dir=$(pwd)

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
CANARY_SECONDS=${CANARY_SECONDS:-60}
CANARY_TARGET=${CANARY_TARGET:-http_connection}
read -r -a targets <<<"${SMOKE_TARGETS:-http_connection http_sequence chunked_body report_json scenario_file}"

# cargo-fuzz needs nightly-only compiler flags. With a nightly toolchain use
# it; otherwise let stable accept them (this keeps AddressSanitizer). Each
# toolchain gets its own target directory so neither invalidates the other.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
    target_dir=$fuzz_dir/target/nightly
    echo "fuzz smoke: nightly toolchain"
else
    toolchain=()
    target_dir=$fuzz_dir/target/stable
    # A cached `rustc -vV` from a run without RUSTC_BOOTSTRAP would make
    # cargo think the compiler cannot take the flags.
    unset CARGO_CACHE_RUSTC_INFO
    export RUSTC_BOOTSTRAP=1
    echo "fuzz smoke: no nightly toolchain; stable with RUSTC_BOOTSTRAP=1"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

work=$(mktemp -d -t floodgate-fuzz-smoke.XXXXXX)
keep_work=0
cleanup() {
    if [ "$keep_work" = 1 ]; then
        echo "fuzz smoke: logs and artifacts kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

triple=$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')

# AddressSanitizer checks memory through calls into its runtime rather than
# inline: cargo-fuzz's coverage pass runs after ASan, so every inline shadow
# check would become a traced comparison and an edge of its own. Measured
# here on http_connection: ~5k execs/s inline, ~10k through calls (see
# bench/fuzz.sh). Stack-use-after-return detection and malloc filling cost
# another third and find nothing in safe Rust; a user's ASAN_OPTIONS wins.
export RUSTFLAGS="${RUSTFLAGS:-} -Cllvm-args=-asan-instrumentation-with-call-threshold=0"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:max_malloc_fill_size=0}

# build TARGET_DIR [cargo fuzz build args...]: cargo-fuzz's default build,
# optimised, with AddressSanitizer unless the args say `-s none`.
build() {
    local dir=$1
    shift
    cargo "${toolchain[@]}" fuzz build --target-dir "$dir" "$@"
}

# A scratch corpus per run: the committed seeds and regressions are read
# from copies, and whatever libFuzzer adds stays out of the repository.
scratch_corpus() {
    local target=$1 dest=$2
    shift 2
    mkdir -p "$dest"
    for src in "$@"; do
        [ -d "$src" ] || continue
        find "$src" -maxdepth 1 -type f ! -name '*.md' -exec cp {} "$dest/" \;
    done
}

# fuzz BINARY TARGET SECONDS LOG SEED_DIRS...; returns libFuzzer's exit
# status.
fuzz() {
    local bin=$1 target=$2 seconds=$3 log=$4
    shift 4
    local corpus=$work/corpus-$(basename "$log" .log)
    scratch_corpus "$target" "$corpus" "$@"
    mkdir -p "$work/artifacts"
    # A target's own dictionary (<target>.dict) if it has one, else HTTP's.
    local dict=$fuzz_dir/http.dict
    [ -f "$fuzz_dir/$target.dict" ] && dict=$fuzz_dir/$target.dict
    "$bin" "$corpus" \
        -max_total_time="$seconds" \
        -timeout=25 \
        -rss_limit_mb=2048 \
        -dict="$dict" \
        -artifact_prefix="$work/artifacts/$target-" \
        -print_final_stats=1 \
        >"$log" 2>&1
}

# summary LOG: "N execs/s, cov C, ft F" from libFuzzer's output.
summary() {
    local log=$1
    local eps cov ft
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
    echo "${eps:-?} execs/s, cov ${cov:-?}, ft ${ft:-?}"
}

echo "fuzz smoke: building ${targets[*]}"
build "$target_dir"
failed=0
for target in "${targets[@]}"; do
    bin=$target_dir/$triple/release/$target
    log=$work/$target.log
    if fuzz "$bin" "$target" "$FUZZ_SECONDS" "$log" "corpus/$target" "regressions/$target"; then
        echo "fuzz smoke: $target: ok for ${FUZZ_SECONDS}s: $(summary "$log")"
    else
        failed=1
        keep_work=1
        echo "fuzz smoke: $target: FAILED: $(summary "$log")"
        grep -E -A12 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 60 || tail -n 40 "$log"
        ls -1 "$work/artifacts" 2>/dev/null | sed 's/^/  artifact: /'
    fi
done

# The canary: proto built with a planted panic on a `Content-Length` trailer
# field after a chunked body, fuzzed from the ordinary corpus and
# regressions, none of which carries the trigger. libFuzzer must find it by
# searching (coverage feedback, the dictionary, mutations) within the
# deadline: a fuzzer that cannot is not testing anything. A crash before
# libFuzzer has finished loading the corpus would mean a committed input
# carries the trigger, which proves nothing, so that fails too.
#
# The canary build has no sanitizer: the planted bug is a panic, which needs
# none, and at ASan's speed the time to find (median 30 s, up to 48 s over
# five seeds, bench/fuzz.sh) sits too close to the deadline for a check
# that must not flake. Without it: median 6.5 s, at most 13 s.
echo "fuzz smoke: building the canary ($CANARY_TARGET with proto/canary, no sanitizer)"
build "$target_dir-canary" -s none --no-default-features --features canary "$CANARY_TARGET"
bin=$target_dir-canary/$triple/release/$CANARY_TARGET
log=$work/canary.log
start=$(date +%s)
if fuzz "$bin" "$CANARY_TARGET" "$CANARY_SECONDS" "$log" "corpus/$CANARY_TARGET" "regressions/$CANARY_TARGET"; then
    failed=1
    keep_work=1
    echo "fuzz smoke: canary: NOT FOUND within ${CANARY_SECONDS}s: $(summary "$log")"
elif ! grep -q 'canary: Content-Length trailer' "$log"; then
    failed=1
    keep_work=1
    echo "fuzz smoke: canary: the canary build failed on something else:"
    grep -E -A12 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 60 || tail -n 40 "$log"
elif ! grep -q 'INITED' "$log"; then
    failed=1
    keep_work=1
    echo "fuzz smoke: canary: crashed while loading the corpus: a committed input carries the trigger"
else
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n1 | tr -d '#')
    echo "fuzz smoke: canary: found by search in $(($(date +%s) - start))s (~${execs:-?} execs): $(summary "$log")"
fi

if [ "$failed" != 0 ]; then
    echo "fuzz smoke: FAILED"
    exit 1
fi
echo "fuzz smoke: passed"
