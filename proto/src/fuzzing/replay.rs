//! Replays every committed fuzz input (`fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`) through the same harness functions the fuzz
//! targets call, on stable Rust, in every `cargo test`. Named regression
//! tests for crashes the fuzzers found live here too.

use std::path::{Path, PathBuf};

/// A harness function, as a fuzz target calls it.
type Harness = fn(&[u8]);

/// The fuzz targets whose inputs are replayed, and the harness each calls.
const TARGETS: [(&str, Harness); 3] = [
    ("http_connection", super::http_connection),
    ("http_sequence", super::http_sequence_bytes),
    ("chunked_body", super::chunked_body),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file directly under `dir`, sorted so failures list stably; none if
/// the folder does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    files
}

/// Runs `harness` on every input in `kind/<target>/` for every target and
/// fails naming each input that panicked.
fn replay(kind: &str) -> usize {
    let mut count = 0;
    let mut failures = Vec::new();
    for (target, harness) in TARGETS {
        for path in inputs(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&path).expect("read a fuzz input");
            count += 1;
            if std::panic::catch_unwind(|| harness(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} {kind} inputs fail (each panic message is printed above):\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

#[test]
fn corpus_replays_cleanly() {
    // Every target has a seed corpus; an empty replay would prove nothing.
    for (target, _) in TARGETS {
        let files = inputs(&fuzz_dir().join("corpus").join(target));
        assert!(!files.is_empty(), "fuzz/corpus/{target}/ has no inputs");
    }
    replay("corpus");
}

#[test]
fn regressions_replay_cleanly() {
    replay("regressions");
}

/// The harness drives a real connection: a plain request through the driver
/// comes back as a 200 with the endpoint's body, so the oracles above are
/// checking real traffic, not an empty stream.
#[test]
fn driver_sees_real_responses() {
    use super::driver::{Clock, Driver, READ_CHUNK};
    use super::responses::{HeadKnowledge, check_common};
    let mut d = Driver::new(crate::Limits::default(), Clock::Scripted, READ_CHUNK);
    d.send(b"GET /bytes/5 HTTP/1.1\r\nHost: fuzz\r\n\r\nPOST /echo HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 2\r\n\r\nhi");
    d.settle(true);
    let outcome = d.finish();
    let stream = check_common(&outcome, |_| HeadKnowledge::No);
    let got: Vec<(u16, &[u8])> = stream
        .responses
        .iter()
        .map(|r| (r.status, &*r.body))
        .collect();
    assert_eq!(got, [(200, &b"abcde"[..]), (200, &b"hi"[..])]);
}
