//! Malformed traffic (`--malformed FRACTION`): the inputs, how a live
//! server's answer to one is classified, and which inputs coincided with a
//! failure and are worth saving for replay.
//!
//! Inputs come from two sources, both drawn from a ChaCha stream that
//! depends only on the seed, the connection slot and the input's number on
//! that slot, so any input can be produced again after the run: a built-in
//! list of known-malformed requests (the same shapes as the seeds in
//! `fuzz/corpus/http_connection`: CL+TE, bad chunk sizes, NUL in a header,
//! oversized heads, duplicate Content-Length, ...) and fresh mutations of a
//! valid request (byte flips, truncations, inserted control bytes, length
//! lies, injected framing headers). Every input is checked against
//! `floodgate_proto`'s connection in memory before it is used: it must make
//! the reference count a protocol error and answer nothing with a 2xx, so a
//! 2xx from a live server is a finding, not a mutation that happened to
//! stay valid.
//!
//! Sockets live in `conn` (each input goes on its own connection, then the
//! client half-closes); counting in `measure`; writing saved inputs to disk
//! is the binary's.

use std::sync::Arc;
use std::time::Instant;

use floodgate_proto::{Limits, memory};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::http::{Expect, Framing, Prepared, Progress, ResponseParser};

/// How far apart (in ms) a malformed exchange and a valid request's failure
/// may be and still count as coinciding.
pub const COINCIDENCE_MS: u32 = 100;

/// The most inputs the binary writes to `--malformed-save`.
pub const MAX_SAVED: usize = 1000;

/// The most malformed exchanges one thread remembers for the coincidence
/// check; later ones are counted but not remembered (`log_dropped`).
const MAX_LOG: usize = 1 << 20;

/// The most valid-request failures one thread remembers.
const MAX_FAILURES: usize = 1 << 18;

/// The share of valid requests sent as `POST /echo` with a unique token, to
/// check that no connection receives a reply meant for another.
pub const PROBE_SHARE: f64 = 0.125;

/// The most reply bytes kept from one malformed exchange for classifying.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Where an input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// One of the built-in known-malformed requests.
    Known,
    /// A valid request with bytes xor-ed.
    ByteFlip,
    /// A valid request cut short.
    Truncate,
    /// A valid request with CR, LF, NUL or another control byte inserted.
    InsertControl,
    /// A valid request whose Content-Length or chunk size lies.
    LengthLie,
    /// A valid request with a conflicting framing header added.
    HeaderInjection,
}

impl Source {
    pub const ALL: [Source; 6] = [
        Source::Known,
        Source::ByteFlip,
        Source::Truncate,
        Source::InsertControl,
        Source::LengthLie,
        Source::HeaderInjection,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::Known => "known",
            Source::ByteFlip => "byte_flip",
            Source::Truncate => "truncate",
            Source::InsertControl => "insert_control",
            Source::LengthLie => "length_lie",
            Source::HeaderInjection => "header_injection",
        }
    }
}

/// How one malformed exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedOutcome {
    /// Every response was 4xx or 5xx, then the server closed.
    AnsweredError,
    /// The server closed (FIN or RST) without a response.
    ClosedWithoutAnswer,
    /// Unexpected: a response with a status below 400 (a 2xx to a request
    /// the reference refuses).
    AnsweredSuccess,
    /// Unexpected: neither an answer nor a close within `--read-timeout`,
    /// although the client had half-closed.
    Hung,
    /// Unexpected: the reply did not parse as HTTP/1.1.
    BadResponse,
    /// The connect failed: not sent.
    ConnectFailed,
    /// The generator was late (open loop): not sent.
    GeneratorLagged,
    /// Still in flight or due when the run stopped.
    Cancelled,
}

impl MalformedOutcome {
    pub const ALL: [MalformedOutcome; 8] = [
        MalformedOutcome::AnsweredError,
        MalformedOutcome::ClosedWithoutAnswer,
        MalformedOutcome::AnsweredSuccess,
        MalformedOutcome::Hung,
        MalformedOutcome::BadResponse,
        MalformedOutcome::ConnectFailed,
        MalformedOutcome::GeneratorLagged,
        MalformedOutcome::Cancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MalformedOutcome::AnsweredError => "answered_error",
            MalformedOutcome::ClosedWithoutAnswer => "closed_without_answer",
            MalformedOutcome::AnsweredSuccess => "answered_success",
            MalformedOutcome::Hung => "hung",
            MalformedOutcome::BadResponse => "bad_response",
            MalformedOutcome::ConnectFailed => "connect_failed",
            MalformedOutcome::GeneratorLagged => "generator_lagged",
            MalformedOutcome::Cancelled => "cancelled",
        }
    }

    /// What the reference server never does with a malformed input.
    pub fn unexpected(self) -> bool {
        matches!(
            self,
            MalformedOutcome::AnsweredSuccess
                | MalformedOutcome::Hung
                | MalformedOutcome::BadResponse
        )
    }
}

/// One malformed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub bytes: Vec<u8>,
    pub source: Source,
    /// The known request's name, or the template the mutation started from.
    pub name: &'static str,
}

/// Produces malformed inputs. Cheap to clone; shared by every slot.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    known: Arc<Vec<(&'static str, Vec<u8>)>>,
}

/// Valid requests that mutations start from.
const TEMPLATES: [(&str, &[u8]); 3] = [
    ("get", b"GET / HTTP/1.1\r\nHost: floodgate\r\n\r\n"),
    (
        "post_echo",
        b"POST /echo HTTP/1.1\r\nHost: floodgate\r\nContent-Length: 11\r\n\r\nhello world",
    ),
    (
        "post_chunked",
        b"POST /echo HTTP/1.1\r\nHost: floodgate\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    ),
];

/// The built-in known-malformed requests.
fn known() -> Vec<(&'static str, Vec<u8>)> {
    let post = |headers: &str, body: &str| {
        format!("POST /echo HTTP/1.1\r\nHost: floodgate\r\n{headers}\r\n{body}").into_bytes()
    };
    let chunked = |body: &str| post("Transfer-Encoding: chunked\r\n", body);
    let mut oversized = b"GET / HTTP/1.1\r\nHost: floodgate\r\nX-Pad: ".to_vec();
    oversized.extend(std::iter::repeat_n(b'p', 9000));
    oversized.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET / HTTP/1.1\r\nHost: floodgate\r\n".to_vec();
    for i in 0..120 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    vec![
        (
            "cl_te",
            post(
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\nGET / HTTP/1.1\r\nHost: floodgate\r\n\r\n",
            ),
        ),
        ("bad_chunk_size", chunked("zz\r\nhello\r\n0\r\n\r\n")),
        (
            "chunk_size_overflow",
            chunked("fffffffffffffffffff1\r\nx\r\n0\r\n\r\n"),
        ),
        ("chunk_missing_crlf", chunked("5\r\nhelloXY0\r\n\r\n")),
        ("chunk_truncated", chunked("5\r\nhel")),
        (
            "nul_in_header",
            b"GET / HTTP/1.1\r\nHost: floodgate\r\nX-A: a\0b\r\n\r\n".to_vec(),
        ),
        ("oversized_head", oversized),
        ("too_many_headers", many),
        (
            "invalid_method_chars",
            b"G(T / HTTP/1.1\r\nHost: floodgate\r\n\r\n".to_vec(),
        ),
        (
            "high_bit_method",
            b"G\xffT / HTTP/1.1\r\nHost: floodgate\r\n\r\n".to_vec(),
        ),
        (
            "bare_cr",
            b"GET / HTTP/1.1\rHost: floodgate\r\n\r\n".to_vec(),
        ),
        (
            "duplicate_content_length",
            post("Content-Length: 1\r\nContent-Length: 2\r\n", "ab"),
        ),
        (
            "duplicate_content_length_agreeing",
            post("Content-Length: 2\r\nContent-Length: 2\r\n", "ab"),
        ),
        (
            "negative_content_length",
            post("Content-Length: -1\r\n", ""),
        ),
        (
            "signed_content_length",
            post("Content-Length: +2\r\n", "ab"),
        ),
        (
            "content_length_overflow",
            post("Content-Length: 99999999999999999999999\r\n", "ab"),
        ),
        ("body_too_large", post("Content-Length: 2000000\r\n", "ab")),
        (
            "unknown_transfer_coding",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
        ),
        (
            "chunked_on_http10",
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "bad_version",
            b"GET / HTTP/2.0\r\nHost: floodgate\r\n\r\n".to_vec(),
        ),
        (
            "garbage_version",
            b"GET / HTTP/1.x\r\nHost: floodgate\r\n\r\n".to_vec(),
        ),
        (
            "header_without_colon",
            b"GET / HTTP/1.1\r\nHost floodgate\r\n\r\n".to_vec(),
        ),
        (
            "space_before_colon",
            b"GET / HTTP/1.1\r\nHost : floodgate\r\n\r\n".to_vec(),
        ),
        (
            "method_not_allowed",
            b"BREW / HTTP/1.1\r\nHost: floodgate\r\n\r\n".to_vec(),
        ),
        ("truncated_head", b"GET / HTTP/1.1\r\nHost: flood".to_vec()),
        ("truncated_body", post("Content-Length: 10\r\n", "abc")),
        (
            "binary_noise",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
    ]
}

/// Mixes the seed, slot and input number into one RNG seed (splitmix64 steps).
fn draw_seed(seed: u64, slot: u64, n: u64) -> u64 {
    let mut x = seed;
    for v in [slot, n] {
        x = x.wrapping_add(v).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let known: Vec<_> = known()
            .into_iter()
            .filter(|(_, bytes)| is_malformed(bytes))
            .collect();
        Generator {
            seed,
            known: Arc::new(known),
        }
    }

    /// The names of the known-malformed requests in use.
    pub fn known_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.known.iter().map(|(n, _)| *n)
    }

    /// Malformed input number `n` of connection slot `slot`: the same for the
    /// same seed, slot and number, whenever it is asked for.
    pub fn input(&self, slot: usize, n: u64) -> Input {
        let mut rng = ChaCha8Rng::seed_from_u64(draw_seed(self.seed, slot as u64, n));
        // Half known requests, half mutations; a mutation that the
        // reference would accept is drawn again, a few times at most.
        if rng.random_bool(0.5) {
            for _ in 0..8 {
                let (name, template) = TEMPLATES[rng.random_range(0..TEMPLATES.len())];
                let source = Source::ALL[rng.random_range(1..Source::ALL.len())];
                let bytes = mutate(&mut rng, template, source);
                if is_malformed(&bytes) {
                    return Input {
                        bytes,
                        source,
                        name,
                    };
                }
            }
        }
        let (name, bytes) = &self.known[rng.random_range(0..self.known.len())];
        Input {
            bytes: bytes.clone(),
            source: Source::Known,
            name,
        }
    }
}

/// Applies one mutation of kind `source` to a valid request.
fn mutate(rng: &mut ChaCha8Rng, template: &[u8], source: Source) -> Vec<u8> {
    let mut b = template.to_vec();
    match source {
        Source::Known | Source::ByteFlip => {
            for _ in 0..rng.random_range(1..=3) {
                let i = rng.random_range(0..b.len());
                b[i] ^= rng.random_range(1..=255u8);
            }
        }
        Source::Truncate => {
            b.truncate(rng.random_range(1..b.len()));
        }
        Source::InsertControl => {
            const CONTROL: &[u8] = b"\r\n\0\x7f\xff\x0b\x0c \t:";
            for _ in 0..rng.random_range(1..=2) {
                let i = rng.random_range(0..=b.len());
                b.insert(i, CONTROL[rng.random_range(0..CONTROL.len())]);
            }
        }
        Source::LengthLie => {
            let lie = rng.random_range(0..10_000u32).to_string();
            if let Some(at) = find(&b, b"Content-Length: ") {
                let start = at + b"Content-Length: ".len();
                let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
                b.splice(start..end, lie.bytes());
            } else if let Some(at) = find(&b, b"chunked\r\n\r\n") {
                // The first chunk size line follows the head.
                let start = at + b"chunked\r\n\r\n".len();
                let end = start
                    + b[start..]
                        .iter()
                        .take_while(|c| c.is_ascii_hexdigit())
                        .count();
                let hex = format!("{:x}", rng.random_range(0..10_000u32));
                b.splice(start..end, hex.bytes());
            } else {
                // No body: claim one that never comes.
                let at = b.len() - 2;
                b.splice(at..at, format!("Content-Length: {lie}\r\n").bytes());
            }
        }
        Source::HeaderInjection => {
            const LINES: [&[u8]; 6] = [
                b"Transfer-Encoding: chunked\r\n",
                b"Content-Length: 3\r\n",
                b"Content-Length: x\r\n",
                b"Transfer-Encoding: identity\r\n",
                b"Transfer-Encoding: chunked, chunked\r\n",
                b"Content-Length: 1, 1\r\n",
            ];
            let line = LINES[rng.random_range(0..LINES.len())];
            // After the request line, before any other header.
            let at = find(&b, b"\r\n").map_or(0, |i| i + 2);
            b.splice(at..at, line.iter().copied());
        }
    }
    b
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// True when the reference connection, given `input` and then the peer's
/// EOF (the client half-closes after a malformed input), counts a protocol
/// error, answers nothing with a status below 400, raises no event (such as
/// pausing its accept loop), writes at most [`MAX_REPLY_BYTES`] and closes.
///
/// The connection runs on [`memory::Driver`] with time standing still: its
/// output is read as soon as it is offered (up to one byte more than
/// [`MAX_REPLY_BYTES`]), the input is fed 4 KiB at a time while it wants to
/// read, then EOF. A connection left waiting on a timer (`/delay`) or stuck
/// has not closed, so the input is not a sharp one.
pub fn is_malformed(input: &[u8]) -> bool {
    let mut peer = memory::Driver::new(Limits::default(), Instant::now(), 4096);
    peer.set_eager_writes(true);
    peer.set_reply_limit(MAX_REPLY_BYTES + 1);
    peer.send(input);
    peer.half_close();
    if peer.output().len() > MAX_REPLY_BYTES || !peer.events().is_empty() {
        return false;
    }
    let snap = peer.stats().snapshot();
    let below_400 = snap
        .status
        .keys()
        .any(|code| code.parse::<u16>().is_ok_and(|c| c < 400));
    peer.is_closed() && snap.protocol_errors > 0 && !below_400
}

/// Classifies a live server's reply to a malformed input: the bytes it
/// sent (at most [`MAX_REPLY_BYTES`] kept; `truncated` if there were more)
/// before it closed.
pub fn classify(reply: &[u8], truncated: bool) -> MalformedOutcome {
    let req = Prepared {
        wire: Vec::new(),
        framing: Framing::Http {
            head_request: false,
        },
        expect: Expect::Anything,
    };
    let mut parser = ResponseParser::default();
    let mut rest = reply;
    let mut answered = false;
    loop {
        if rest.is_empty() {
            break;
        }
        parser.start(&req);
        match parser.feed(rest, &req, false) {
            Ok((n, Progress::Done(c))) => {
                if c.status < 400 {
                    return MalformedOutcome::AnsweredSuccess;
                }
                answered = true;
                rest = &rest[n..];
            }
            Ok((_, Progress::NeedMore)) => {
                // A close-delimited body ends here; anything else is cut short.
                match parser.eof(&req, false) {
                    Some(c) if c.status < 400 => return MalformedOutcome::AnsweredSuccess,
                    Some(_) => answered = true,
                    None if truncated => {}
                    None => return MalformedOutcome::BadResponse,
                }
                break;
            }
            Err(_) => return MalformedOutcome::BadResponse,
        }
    }
    if answered {
        MalformedOutcome::AnsweredError
    } else {
        MalformedOutcome::ClosedWithoutAnswer
    }
}

/// One malformed exchange, remembered for the coincidence check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub slot: u32,
    /// The input's number on its slot (see [`Generator::input`]).
    pub n: u64,
    /// From the start of the run, in ms: when it was sent and when it ended.
    pub start_ms: u32,
    pub end_ms: u32,
    pub unexpected: bool,
}

/// What one thread measured of malformed traffic.
#[derive(Debug, Clone, Default)]
pub struct MalformedRecorder {
    pub scheduled: u64,
    pub outcomes: [u64; MalformedOutcome::ALL.len()],
    pub by_source: [u64; Source::ALL.len()],
    /// Valid `POST /echo` requests carrying a unique token.
    pub echo_checks: u64,
    /// Of those, how many came back with another body.
    pub echo_mismatches: u64,
    pub sent: Vec<Sent>,
    /// Exchanges not remembered because the log was full.
    pub log_dropped: u64,
    /// Valid requests that failed: (intended send, end) in ms from the start.
    pub failures: Vec<(u32, u32)>,
}

impl MalformedRecorder {
    pub fn outcome(&mut self, o: MalformedOutcome) {
        self.outcomes[o as usize] += 1;
    }

    pub fn get(&self, o: MalformedOutcome) -> u64 {
        self.outcomes[o as usize]
    }

    pub fn remember(&mut self, sent: Sent) {
        if self.sent.len() < MAX_LOG {
            self.sent.push(sent);
        } else {
            self.log_dropped += 1;
        }
    }

    pub fn failure(&mut self, start_ms: u32, end_ms: u32) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push((start_ms, end_ms));
        }
    }

    pub fn merge(&mut self, other: &MalformedRecorder) {
        self.scheduled += other.scheduled;
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
        for (a, b) in self.by_source.iter_mut().zip(other.by_source) {
            *a += b;
        }
        self.echo_checks += other.echo_checks;
        self.echo_mismatches += other.echo_mismatches;
        self.sent.extend_from_slice(&other.sent);
        self.log_dropped += other.log_dropped;
        self.failures.extend_from_slice(&other.failures);
    }

    /// The exchanges that coincided with a failure: an unexpected answer, or
    /// a valid request failing within [`COINCIDENCE_MS`] of the exchange.
    pub fn coinciding(&self) -> Vec<Sent> {
        let mut failures = self.failures.clone();
        failures.sort_unstable();
        // The latest end among failures starting at or before each index.
        let mut reach = Vec::with_capacity(failures.len());
        let mut max_end = 0;
        for &(_, end) in &failures {
            max_end = max_end.max(end);
            reach.push(max_end);
        }
        let mut hits: Vec<Sent> = self
            .sent
            .iter()
            .filter(|s| {
                if s.unexpected {
                    return true;
                }
                let before = failures.partition_point(|&(start, _)| {
                    start <= s.end_ms.saturating_add(COINCIDENCE_MS)
                });
                before > 0 && reach[before - 1].saturating_add(COINCIDENCE_MS) >= s.start_ms
            })
            .copied()
            .collect();
        hits.sort_unstable_by_key(|s| (s.start_ms, s.slot, s.n));
        hits
    }
}

/// An input as a file for `fuzz/corpus/http_connection` or
/// `fuzz/regressions/http_connection`: the harness's config byte (default
/// limits, the peer half-closes at the end, as the live client did), an
/// empty script, then the bytes sent.
pub fn replay_file(input: &[u8]) -> Vec<u8> {
    let mut file = vec![4, 0];
    file.extend_from_slice(input);
    file
}

/// A file name for `file`: its FNV-1a 64-bit hash in hex, so the same input
/// saved twice is one file.
pub fn file_name(file: &[u8]) -> String {
    let hash = file.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("malformed-{hash:016x}")
}

/// The files to save for the inputs that coincided with a failure, at most
/// [`MAX_SAVED`], each `(name, contents)`, without duplicates.
pub fn files_to_save(generator: &Generator, rec: &MalformedRecorder) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for s in rec.coinciding() {
        if files.len() >= MAX_SAVED {
            break;
        }
        let file = replay_file(&generator.input(s.slot as usize, s.n).bytes);
        let name = file_name(&file);
        if !files.iter().any(|(n, _)| *n == name) {
            files.push((name, file));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_request_is_malformed_for_the_reference() {
        let rejected: Vec<&str> = known()
            .iter()
            .filter(|(_, b)| !is_malformed(b))
            .map(|(n, _)| *n)
            .collect();
        assert!(rejected.is_empty(), "not malformed: {rejected:?}");
    }

    #[test]
    fn valid_templates_are_not_malformed() {
        for (name, t) in TEMPLATES {
            assert!(!is_malformed(t), "{name}");
        }
    }

    #[test]
    fn the_generator_is_reproducible_for_a_seed() {
        let draw = |seed: u64| -> Vec<Input> {
            let g = Generator::new(seed);
            (0..4)
                .flat_map(|slot| (0..50).map(move |n| (slot, n)))
                .map(|(slot, n)| g.input(slot, n))
                .collect()
        };
        let a = draw(11);
        assert_eq!(a, draw(11));
        assert_ne!(a, draw(12));
        // Asking out of order gives the same input.
        assert_eq!(Generator::new(11).input(3, 49), a[a.len() - 1]);
        // Both sources are used, and every input is malformed.
        assert!(a.iter().any(|i| i.source == Source::Known));
        assert!(a.iter().any(|i| i.source != Source::Known));
        assert!(a.iter().all(|i| is_malformed(&i.bytes)));
    }

    #[test]
    fn replies_are_classified() {
        let c = |r: &[u8]| classify(r, false);
        assert_eq!(c(b""), MalformedOutcome::ClosedWithoutAnswer);
        assert_eq!(
            c(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            MalformedOutcome::AnsweredError
        );
        assert_eq!(
            c(b"HTTP/1.1 405 X\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\n"),
            MalformedOutcome::AnsweredError
        );
        assert_eq!(
            c(b"HTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            MalformedOutcome::AnsweredSuccess
        );
        assert_eq!(
            c(b"HTTP/1.1 400 X\r\nContent-Len"),
            MalformedOutcome::BadResponse
        );
        assert_eq!(c(b"garbage\r\n\r\n"), MalformedOutcome::BadResponse);
    }

    #[test]
    fn coincidence_is_within_the_window() {
        let mut rec = MalformedRecorder::default();
        let sent = |n, start_ms, end_ms, unexpected| Sent {
            slot: 0,
            n,
            start_ms,
            end_ms,
            unexpected,
        };
        rec.remember(sent(0, 1000, 1001, false));
        rec.remember(sent(1, 5000, 5002, false));
        rec.remember(sent(2, 9000, 9001, true));
        rec.remember(sent(3, 7000, 7001, false));
        // A failure 90 ms after the first exchange; a long one (a read
        // timeout) spanning the fourth; none near the second.
        rec.failure(1091, 1095);
        rec.failure(6000, 7500);
        let ns: Vec<u64> = rec.coinciding().iter().map(|s| s.n).collect();
        assert_eq!(ns, vec![0, 3, 2]);
    }

    #[test]
    fn saved_files_replay_the_input() {
        let g = Generator::new(5);
        let mut rec = MalformedRecorder::default();
        rec.remember(Sent {
            slot: 2,
            n: 7,
            start_ms: 0,
            end_ms: 1,
            unexpected: true,
        });
        let files = files_to_save(&g, &rec);
        assert_eq!(files.len(), 1);
        let (name, file) = &files[0];
        assert_eq!(&file[..2], &[4, 0]);
        assert_eq!(&file[2..], &g.input(2, 7).bytes[..]);
        assert_eq!(*name, file_name(file));
    }
}
