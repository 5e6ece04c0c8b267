//! libFuzzer entry point for
//! `floodgate_runner::scenario::fuzzing::fuzz_scenario_file`: any bytes
//! parsed and validated as a scenario file. The harness lives there so its
//! unit tests run the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| floodgate_runner::scenario::fuzzing::fuzz_scenario_file(data));
