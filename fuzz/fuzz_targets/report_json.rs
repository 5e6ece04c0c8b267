//! libFuzzer entry point for `floodgate_reports::read::fuzz_report_json`:
//! any bytes read as a `floodgate load --out` result file, histograms
//! included. The harness lives there so its unit tests run the same code.
#![no_main]

#[path = "shared/asan_options.rs"]
mod asan_options;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| floodgate_reports::read::fuzz_report_json(data));
