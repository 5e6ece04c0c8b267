//! libFuzzer entry point for `floodgate_proto::fuzzing::chunked_body`; the
//! harness and its oracles live there so the corpus replay test runs the
//! very same code on stable Rust.
#![no_main]

#[path = "shared/asan_options.rs"]
mod asan_options;

use floodgate_proto::fuzzing::{CountingAllocator, chunked_body};
use libfuzzer_sys::fuzz_target;

// Lets the harness check how much heap the connection holds.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fuzz_target!(|data: &[u8]| chunked_body(data));
