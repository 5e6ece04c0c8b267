#!/usr/bin/env bash
# Fuzz smoke test, run by CI (.ci/run): builds every fuzz target, fuzzes each
# for a bounded time from the committed corpus, then builds proto with its
# planted `canary` bug and checks that libFuzzer, starting from the same
# corpus, finds it within a deadline. Every build and run goes through
# fuzz/run.sh, so CI fuzzes the very build a user's `fuzz/run.sh TARGET`
# does (its toolchain choice, flags and ASan options are described there).
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

# fuzz TARGET SECONDS LOG SEED_DIRS...: fuzz/run.sh's build of TARGET (the
# one everyone fuzzes, with the target's dictionary) from a scratch corpus;
# returns libFuzzer's exit status.
fuzz() {
    local target=$1 seconds=$2 log=$3
    shift 3
    local corpus=$work/corpus-$(basename "$log" .log)
    scratch_corpus "$target" "$corpus" "$@"
    mkdir -p "$work/artifacts"
    "$fuzz_dir/run.sh" "$target" "$corpus" \
        -max_total_time="$seconds" \
        -timeout=25 \
        -rss_limit_mb=2048 \
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

echo "fuzz smoke: building every target (fuzz/run.sh build)"
"$fuzz_dir/run.sh" build
failed=0
for target in "${targets[@]}"; do
    log=$work/$target.log
    if fuzz "$target" "$FUZZ_SECONDS" "$log" "corpus/$target" "regressions/$target"; then
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
export FUZZ_TARGET_DIR=$fuzz_dir/target/canary
export FUZZ_BUILD_ARGS="-s none --no-default-features --features canary"
# shellcheck disable=SC2086 # FUZZ_BUILD_ARGS is a list of words.
"$fuzz_dir/run.sh" build $FUZZ_BUILD_ARGS "$CANARY_TARGET"
log=$work/canary.log
start=$(date +%s)
if fuzz "$CANARY_TARGET" "$CANARY_SECONDS" "$log" "corpus/$CANARY_TARGET" "regressions/$CANARY_TARGET"; then
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
