//! libFuzzer entry point for
//! `floodgate_runner::scenario::fuzzing::fuzz_scenario_file`: any bytes
//! parsed and validated as a scenario file. The harness lives there so its
//! unit tests run the same code.
#![no_main]

#[path = "shared/asan_options.rs"]
mod asan_options;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| floodgate_runner::scenario::fuzzing::fuzz_scenario_file(data));
