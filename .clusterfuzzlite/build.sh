#!/bin/bash -eu
# Builds every fuzz target in fuzz/ with fuzz/run.sh, the build everyone
# fuzzes (cargo-fuzz adds the sanitizer and coverage flags the builder image
# asks for; run.sh its own), and copies each binary to $OUT with its seed
# corpus and its dictionary (fuzz/<target>.dict, else the HTTP one) beside it.
cd "$SRC/floodgate"
FUZZ_TARGET_DIR=$PWD/fuzz/target fuzz/run.sh build -O
release=fuzz/target/x86_64-unknown-linux-gnu/release
for src in fuzz/fuzz_targets/*.rs; do
    target=$(basename "$src" .rs)
    cp "$release/$target" "$OUT/"
    dict=fuzz/http.dict
    [ -f "fuzz/$target.dict" ] && dict=fuzz/$target.dict
    cp "$dict" "$OUT/$target.dict"
    if [ -d "fuzz/corpus/$target" ]; then
        (cd "fuzz/corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
    fi
done
