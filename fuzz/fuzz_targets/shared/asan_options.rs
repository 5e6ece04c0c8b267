//! AddressSanitizer's runtime options, built into every fuzz target so they
//! hold however the binary is started (`fuzz/run.sh`, `cargo fuzz run`,
//! ClusterFuzzLite, a crash reproduced by hand). `ASAN_OPTIONS` still wins,
//! option by option.
//!
//! Off: stack-use-after-return detection (every frame with a local whose
//! address is taken moves to a fake stack) and filling each allocation with
//! a pattern. Together they cost a third of the execution time
//! (`bench/fuzz.sh`) and find nothing in safe Rust: proto has no `unsafe`.
//! Heap checks (overflows, use after free, double free) and leak detection
//! stay on. `detect_odr_violation=0` is what `cargo fuzz run` sets: Rust
//! crates may legitimately define the same global twice.

/// Read once by the ASan runtime as it starts, before `ASAN_OPTIONS`.
#[unsafe(no_mangle)]
extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"detect_stack_use_after_return=0:max_malloc_fill_size=0:detect_odr_violation=0".as_ptr()
}
