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

/// Runs `harness` on every input in `kind/<target>/` for every target,
/// fails naming each input that panicked, and fails if a target had no
/// input at all: an empty replay would prove nothing. Gives how many
/// inputs each target replayed.
fn replay(kind: &str) -> Vec<(&'static str, usize)> {
    let mut counts = Vec::new();
    let mut failures = Vec::new();
    for (target, harness) in TARGETS {
        let files = inputs(&fuzz_dir().join(kind).join(target));
        for path in &files {
            let data = std::fs::read(path).expect("read a fuzz input");
            if std::panic::catch_unwind(|| harness(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
        counts.push((target, files.len()));
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    assert!(
        failures.is_empty(),
        "{} of {total} {kind} inputs fail (each panic message is printed above):\n{}",
        failures.len(),
        failures.join("\n")
    );
    let empty: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(t, _)| *t)
        .collect();
    assert!(
        empty.is_empty(),
        "fuzz/{kind}/<target>/ holds no input for {empty:?}: nothing was replayed"
    );
    counts
}

#[test]
fn corpus_replays_cleanly() {
    replay("corpus");
}

#[test]
fn regressions_replay_cleanly() {
    replay("regressions");
}

/// `fuzz/regressions/chunked_body/chunk_line_too_long`: a size line with a
/// long extension, past the decoder's bound and so refused, was predicted
/// `Complete` by the reference decoder, which failed the harness.
#[test]
fn an_over_long_chunk_size_line_gets_no_prediction() {
    use super::responses::{Chunked, reference_chunked};
    let mut body = b"5;".to_vec();
    body.extend([b'x'; 1100]);
    body.extend(b"\r\nhello\r\n0\r\n\r\n");
    assert_eq!(reference_chunked(&body, 1 << 20), Chunked::Ambiguous);
    super::chunked_body(&[&[0][..], &body].concat());
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

/// The access policies the harness chooses are judged on real requests:
/// with the token everywhere and a rate of 2 a burst, a request without the
/// token is refused 401, /health needs none, and a third request is 429.
#[test]
fn driver_judges_real_requests_by_the_policy() {
    use super::driver::{Clock, Driver, READ_CHUNK, policy_for};
    use super::responses::{HeadKnowledge, check_common};
    let mut d = Driver::with_policy(
        crate::Limits::default(),
        policy_for(3),
        Clock::Frozen,
        READ_CHUNK,
    );
    d.send(
        b"GET / HTTP/1.1\r\nHost: fuzz\r\n\r\n\
          GET /health HTTP/1.1\r\nHost: fuzz\r\n\r\n\
          GET / HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer fuzz-token\r\n\r\n",
    );
    d.settle(true);
    let outcome = d.finish();
    let stream = check_common(&outcome, |_| HeadKnowledge::No);
    let got: Vec<u16> = stream.responses.iter().map(|r| r.status).collect();
    assert_eq!(got, [401, 200, 429]);
    // Requests, errors, timeouts, 401s, 429s.
    assert_eq!(outcome.counters, [3, 0, 0, 1, 1]);
}
