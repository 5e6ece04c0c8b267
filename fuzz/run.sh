#!/usr/bin/env bash
# The one way floodgate's fuzz targets are built and run: by hand, by CI
# (fuzz/smoke.sh), by bench/fuzz.sh and by ClusterFuzzLite
# (.clusterfuzzlite/build.sh). It is `cargo fuzz` with this project's build
# flags, so every caller fuzzes the same fast build.
#
# Usage:
#   fuzz/run.sh TARGET [libFuzzer args...]
#       Builds TARGET and fuzzes it. The arguments go to libFuzzer as they
#       are; without a corpus directory among them it fuzzes
#       fuzz/corpus/TARGET (adding what it finds there, as `cargo fuzz run`
#       does), and without -dict= it uses the target's dictionary
#       (fuzz/TARGET.dict, else fuzz/http.dict); crashes go to
#       fuzz/artifacts/TARGET/ unless -artifact_prefix= says otherwise.
#   fuzz/run.sh build [cargo fuzz build args...]
#       Builds (every target, or the one named) and prints nothing else.
#   fuzz/run.sh cmin|tmin|coverage ARGS...
#       That cargo-fuzz subcommand, on the same build.
#
# Environment:
#   FUZZ_TARGET_DIR  cargo's target directory (default fuzz/target/nightly,
#                    or fuzz/target/stable without a nightly toolchain)
#   FUZZ_BUILD_ARGS  extra `cargo fuzz build` arguments for a TARGET run,
#                    e.g. "-s none --features canary" (fuzz/smoke.sh's canary)
#   RUSTFLAGS        added after this script's flags
#   ASAN_OPTIONS     wins over the defaults built into each target
#
# The build is cargo-fuzz's (optimised, AddressSanitizer, trace-compares)
# with one change: AddressSanitizer checks memory through calls into its
# runtime rather than inline. cargo-fuzz's coverage pass runs after ASan, so
# every inline shadow check would become a traced comparison and an edge of
# its own (measured with bench/fuzz.sh: about twice as fast). The runtime
# options the targets are fast with (no stack-use-after-return detection, no
# malloc filling: they cost a third and find nothing in safe Rust) are built
# into each target (fuzz/fuzz_targets/shared/asan_options.rs), so they hold
# however the binary is started.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)

usage() {
    echo "usage: fuzz/run.sh TARGET [libFuzzer args...] | build [cargo fuzz build args...] | cmin|tmin|coverage ARGS..." >&2
    echo "targets: $(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v '^floodgate-fuzz$' | tr '\n' ' ')" >&2
    exit 2
}
[ $# -ge 1 ] || usage

# cargo-fuzz needs nightly-only compiler flags: the toolchain in use if it
# is a nightly (ClusterFuzzLite's image), else an installed `nightly` (not
# a dated one, which `+nightly` does not name), else
# stable told to accept them (this keeps AddressSanitizer). Each gets its
# own target directory so neither invalidates the other.
if rustc -V 2>/dev/null | grep -q nightly; then
    toolchain=()
    default_dir=$fuzz_dir/target/nightly
elif rustup toolchain list 2>/dev/null | grep -Eq '^nightly-[^0-9]'; then
    toolchain=(+nightly)
    default_dir=$fuzz_dir/target/nightly
else
    toolchain=()
    default_dir=$fuzz_dir/target/stable
    # A cached `rustc -vV` from a run without RUSTC_BOOTSTRAP would make
    # cargo think the compiler cannot take the flags.
    unset CARGO_CACHE_RUSTC_INFO
    export RUSTC_BOOTSTRAP=1
fi
target_dir=${FUZZ_TARGET_DIR:-$default_dir}
export RUSTFLAGS="-Cllvm-args=-asan-instrumentation-with-call-threshold=0 ${RUSTFLAGS:-}"
# libFuzzer itself (C++, built by libfuzzer-sys through the cc crate) stays
# uninstrumented, as clang's own -fsanitize=fuzzer links it: cc passes
# rustc's -Zsanitizer=address on to C and C++ code, and an instrumented
# libFuzzer spent a quarter of every execution poisoning its own stack
# frames (measured: 22k -> 31k execs/s on small inputs, 17k -> 24k on the
# corpus). C code (ring, for the report and scenario targets) keeps ASan.
export CXXFLAGS="-fno-sanitize=address ${CXXFLAGS:-}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

case $1 in
build)
    shift
    exec cargo "${toolchain[@]}" fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" "$@"
    ;;
cmin | tmin | coverage)
    sub=$1
    shift
    exec cargo "${toolchain[@]}" fuzz "$sub" --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" "$@"
    ;;
-* | help) usage ;;
esac

target=$1
shift
[ -f "$fuzz_dir/fuzz_targets/$target.rs" ] || { echo "fuzz/run.sh: no target $target" >&2; usage; }
read -r -a build_args <<<"${FUZZ_BUILD_ARGS:-}"
cargo "${toolchain[@]}" fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" "${build_args[@]}" "$target" >&2
triple=$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')

has_corpus=0 has_dict=0 has_artifacts=0
for arg in "$@"; do
    case $arg in
    -dict=*) has_dict=1 ;;
    -artifact_prefix=*) has_artifacts=1 ;;
    -*) ;;
    *) has_corpus=1 ;;
    esac
done
defaults=()
if [ "$has_corpus" = 0 ]; then
    mkdir -p "$fuzz_dir/corpus/$target"
    defaults+=("$fuzz_dir/corpus/$target")
fi
if [ "$has_dict" = 0 ]; then
    dict=$fuzz_dir/http.dict
    [ -f "$fuzz_dir/$target.dict" ] && dict=$fuzz_dir/$target.dict
    defaults+=("-dict=$dict")
fi
if [ "$has_artifacts" = 0 ]; then
    mkdir -p "$fuzz_dir/artifacts/$target"
    defaults+=("-artifact_prefix=$fuzz_dir/artifacts/$target/")
fi
exec "$target_dir/$triple/release/$target" "${defaults[@]}" "$@"
