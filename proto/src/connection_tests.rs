//! Data-driven tests of `Connection`: requests in, parsed responses and
//! close decisions out, with fabricated time.

use super::*;
use crate::bytes_endpoint_byte;
use crate::response::ConnHeader;
use crate::response::tests::{Parsed, parse_response};
use respond::PIECE;

fn limits() -> Limits {
    Limits::default()
}

/// A connection under test with its counters and the time it was accepted.
struct Harness {
    conn: Connection,
    stats: Arc<Stats>,
    t0: Instant,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        let stats = Arc::new(Stats::default());
        let t0 = Instant::now();
        Harness {
            conn: Connection::new(limits, stats.clone(), t0),
            stats,
            t0,
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    /// Writes everything the connection offers, as a socket that always
    /// accepts would; returns the bytes.
    fn drain(&mut self, now: Instant) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let out = self.conn.poll_transmit().to_vec();
            if out.is_empty() {
                return all;
            }
            self.conn.handle_written(out.len(), now);
            all.extend_from_slice(&out);
        }
    }

    /// Reads `data` at `now` and drains the output.
    fn exchange(&mut self, data: &[u8], now: Instant) -> Vec<u8> {
        self.conn.handle_read(data, now);
        self.drain(now)
    }
}

/// Parses every response in `out`; `heads` lists which (by index) answer
/// HEAD requests and so carry no body. Panics on trailing garbage.
fn parse_all(mut out: &[u8], heads: &[usize]) -> Vec<Parsed> {
    let mut responses = Vec::new();
    while !out.is_empty() {
        let head_only = heads.contains(&responses.len());
        let parsed = parse_response(out, head_only)
            .unwrap_or_else(|| panic!("unparsable output: {:?}", String::from_utf8_lossy(out)));
        out = &out[parsed.len..];
        responses.push(parsed);
    }
    responses
}

/// The output of feeding `input` in the given pieces, draining after each.
fn output_of(pieces: &[&[u8]], limits: Limits) -> (Vec<u8>, Option<Close>) {
    let mut h = Harness::new(limits);
    let now = h.at(1.0);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(h.exchange(piece, now));
    }
    (out, h.conn.poll_close())
}

/// The central data-driven check: `input` in one read gives responses with
/// these statuses and bodies, then this close decision; and the same input
/// split at every byte boundary, or trickled a byte at a time, gives
/// byte-identical output.
fn check(input: &str, expected: &[(u16, &str)], close: Option<Close>) {
    check_with(input, limits(), expected, close);
}

fn check_with(input: &str, limits: Limits, expected: &[(u16, &str)], close: Option<Close>) {
    let input = input.as_bytes();
    let (whole, whole_close) = output_of(&[input], limits);
    let got: Vec<(u16, String)> = parse_all(&whole, &[])
        .into_iter()
        .map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
        .collect();
    let want: Vec<(u16, String)> = expected
        .iter()
        .map(|&(status, body)| (status, body.to_string()))
        .collect();
    assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
    assert_eq!(
        whole_close,
        close,
        "input {:?}",
        String::from_utf8_lossy(input)
    );

    for split in 1..input.len() {
        let (a, b) = input.split_at(split);
        let (out, split_close) = output_of(&[a, b], limits);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole),
            "split at {split}: {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(split_close, close);
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (out, trickle_close) = output_of(&bytes, limits);
    assert_eq!(out, whole, "trickled {:?}", String::from_utf8_lossy(input));
    assert_eq!(trickle_close, close);
}

const ROOT_BODY: &str = "hello from floodgate!\n";
const GRACEFUL: Option<Close> = Some(Close::Graceful);

#[test]
fn endpoints_answer_with_their_bodies() {
    check(
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        &[(200, ROOT_BODY)],
        None,
    );
    check(
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(200, "ok\n")],
        None,
    );
    check(
        "GET /bytes/0 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(200, "")],
        None,
    );
    check(
        "GET /bytes/30 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(200, "abcdefghijklmnopqrstuvwxyzabcd")],
        None,
    );
    check(
        "GET /delay/0 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(200, "delayed\n")],
        None,
    );
    check(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        &[(200, "hello")],
        None,
    );
    check(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        &[(200, "abcde")],
        None,
    );
    check(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        &[(200, "")],
        None,
    );
    check("POST /echo HTTP/1.1\r\nHost: x\r\n\r\n", &[(200, "")], None);
    check(
        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(404, "not found\n")],
        None,
    );
    check("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &[(200, "")], None);
    check(
        "GET http://x/health HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(200, "ok\n")],
        None,
    );
    check(
        "GET /bytes/16777217 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(400, "bad path or query\n")],
        None,
    );
    check(
        "GET /delay/60001 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(400, "bad path or query\n")],
        None,
    );
    check_with(
        "POST /admin/pause-accept HTTP/1.1\r\nHost: x\r\n\r\n",
        Limits {
            admin: true,
            ..limits()
        },
        &[(400, "bad path or query\n")],
        None,
    );
    // A body on a route that does not want it is read and discarded.
    check(
        "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(404, "not found\n"), (200, ROOT_BODY)],
        None,
    );
    check(
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        &[(200, ROOT_BODY)],
        None,
    );
}

#[test]
fn wrong_method_is_405_with_allow_and_keeps_the_connection() {
    let mut h = Harness::new(limits());
    let out = h.exchange(
        b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\nHEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(0.0),
    );
    let responses = parse_all(&out, &[2]);
    let summary: Vec<_> = responses
        .iter()
        .map(|r| (r.status, r.header("allow")))
        .collect();
    assert_eq!(
        summary,
        [
            (405, Some("GET, HEAD")),
            (405, Some("POST")),
            (405, Some("POST"))
        ]
    );
    assert!(responses[2].body.is_empty());
    assert_eq!(h.conn.poll_close(), None);
    assert_eq!(h.stats.snapshot().protocol_errors, 3);
}

#[test]
fn stats_endpoint_serves_the_shared_counters() {
    let mut h = Harness::new(limits());
    Stats::bump(&h.stats.accepted);
    let out = h.exchange(
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(0.0),
    );
    let responses = parse_all(&out, &[]);
    assert_eq!(
        responses[1].header("content-type"),
        Some("application/json")
    );
    let snapshot: crate::StatsSnapshot = serde_json::from_slice(&responses[1].body).unwrap();
    assert_eq!(snapshot.accepted, 1);
    assert_eq!(snapshot.requests, 2);
    // The /stats response itself is counted after its body is taken.
    assert_eq!(snapshot.status.get("404"), Some(&1));
    assert_eq!(h.stats.snapshot().status.get("200"), Some(&1));
}

#[test]
fn pause_accept_queues_an_event() {
    let admin = Limits {
        admin: true,
        ..limits()
    };
    let mut h = Harness::new(admin);
    let out = h.exchange(
        b"POST /admin/pause-accept?ms=1500 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        h.at(0.0),
    );
    assert_eq!(parse_all(&out, &[])[0].status, 200);
    assert_eq!(
        h.conn.poll_event(),
        Some(Event::PauseAccept(Duration::from_millis(1500)))
    );
    assert_eq!(h.conn.poll_event(), None);

    // Above the maximum: 400, and no pause.
    let out = h.exchange(
        b"POST /admin/pause-accept?ms=90000 HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(0.0),
    );
    assert_eq!(parse_all(&out, &[])[0].status, 400);
    assert_eq!(h.conn.poll_event(), None);

    // Without admin: not there, and no pause.
    let mut h = Harness::new(limits());
    let out = h.exchange(
        b"POST /admin/pause-accept?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(0.0),
    );
    assert_eq!(parse_all(&out, &[])[0].status, 404);
    assert_eq!(h.conn.poll_event(), None);
}

#[test]
fn head_gets_the_get_headers_without_a_body() {
    let mut h = Harness::new(limits());
    let get = parse_all(
        &h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(0.0)),
        &[],
    );
    let head = h.exchange(
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /stats HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(0.0),
    );
    let head = parse_all(&head, &[0, 1, 2]);
    assert_eq!(head[0].headers, get[0].headers);
    assert!(head[0].body.is_empty());
    assert_eq!(head[1].header("content-length"), Some("100000"));
    assert!(head[1].body.is_empty());
    assert!(head[2].header("content-length").is_some());
    assert!(head[2].body.is_empty());
    // The response after them is intact, so no body bytes slipped in.
    assert_eq!(head[3].body, b"ok\n");
}

#[test]
fn keep_alive_and_close_by_version() {
    let one = |input: &str| {
        let mut h = Harness::new(limits());
        let out = h.exchange(input.as_bytes(), h.at(0.0));
        let r = parse_all(&out, &[]);
        assert_eq!(r.len(), 1, "{input:?}");
        (
            r[0].header("connection").map(str::to_string),
            h.conn.poll_close(),
        )
    };
    let close = Some("close".to_string());
    let keep = Some("keep-alive".to_string());
    assert_eq!(one("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), (None, None));
    assert_eq!(
        one("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        (close.clone(), GRACEFUL)
    );
    assert_eq!(one("GET / HTTP/1.0\r\n\r\n"), (close.clone(), GRACEFUL));
    assert_eq!(
        one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        (keep, None)
    );
    assert_eq!(
        one("GET /stats HTTP/1.0\r\n\r\n"),
        (close.clone(), GRACEFUL)
    );
    assert_eq!(
        one("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"),
        (close.clone(), GRACEFUL)
    );
    assert_eq!(one("GET /bytes/5 HTTP/1.0\r\n\r\n"), (close, GRACEFUL));
}

#[test]
fn nothing_is_answered_after_a_close() {
    check(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        &[(200, ROOT_BODY)],
        GRACEFUL,
    );
}

#[test]
fn expect_continue_comes_before_the_body() {
    let input =
        "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let mut h = Harness::new(limits());
    let out = h.exchange(input.as_bytes(), h.at(0.0));
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    let out = h.exchange(b"hi", h.at(0.0));
    assert_eq!(parse_all(&out, &[])[0].body, b"hi");

    // Split anywhere, the output is the same.
    check(&format!("{input}hi"), &[(100, ""), (200, "hi")], None);
    // Too large: refused at once, no 100.
    check(
        "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
        &[(413, "content too large\n")],
        GRACEFUL,
    );
    // No body, no 100.
    check(
        "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        &[(200, ROOT_BODY)],
        None,
    );
}

#[test]
fn hundred_pipelined_requests_in_one_read_answered_in_order() {
    let mut input = String::new();
    let mut expected = Vec::new();
    let bodies: Vec<String> = (0..100).map(|i| format!("body-{i}")).collect();
    for (i, body) in bodies.iter().enumerate() {
        match i % 4 {
            0 => {
                input.push_str("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.push((200, ROOT_BODY));
            }
            1 => {
                input.push_str(&format!(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ));
                expected.push((200, body.as_str()));
            }
            2 => {
                input.push_str(&format!(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                ));
                expected.push((200, body.as_str()));
            }
            _ => {
                input.push_str("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.push((404, "not found\n"));
            }
        }
    }
    let mut h = Harness::new(limits());
    let out = h.exchange(input.as_bytes(), h.at(0.0));
    let got: Vec<(u16, Vec<u8>)> = parse_all(&out, &[])
        .into_iter()
        .map(|r| (r.status, r.body))
        .collect();
    let want: Vec<(u16, Vec<u8>)> = expected
        .iter()
        .map(|&(s, b)| (s, b.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(h.stats.snapshot().requests, 100);

    // The 100 responses were offered as one buffer: one write(2).
    let mut h = Harness::new(limits());
    h.conn.handle_read(input.as_bytes(), h.at(0.0));
    assert_eq!(h.conn.poll_transmit(), out.as_slice());

    // Every two-piece split gives the same bytes.
    let bytes = input.as_bytes();
    for split in (1..bytes.len()).step_by(7) {
        let (a, b) = bytes.split_at(split);
        assert_eq!(output_of(&[a, b], limits()).0, out, "split at {split}");
    }
}

#[test]
fn deadlines_are_offered_until_the_connection_closes() {
    // Whatever phase it is in, a live connection either waits for a
    // deadline or is closing: none can hang forever.
    let inputs: [&[u8]; 5] = [
        b"",
        b"GET / HT",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
        b"GET /delay/10 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /bytes/1000000 HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for input in inputs {
        let mut h = Harness::new(limits());
        h.conn.handle_read(input, h.at(1.0));
        assert!(
            h.conn.poll_timeout().is_some() || h.conn.poll_close().is_some(),
            "{input:?}"
        );
    }
}

/// What the canary build is planted to crash on: a `Content-Length` trailer
/// field after a chunked body.
const CANARY_TRIGGER: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nhello\r\n0\r\ncontent-LENGTH: 5\r\n\r\n";

#[cfg(not(feature = "canary"))]
#[test]
fn canary_trailer_is_harmless_in_ordinary_builds() {
    let mut h = Harness::new(limits());
    let out = h.exchange(CANARY_TRIGGER, h.at(1.0));
    let responses = parse_all(&out, &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].body, b"hello");
}

#[cfg(feature = "canary")]
#[test]
fn canary_build_crashes_on_its_planted_trailer() {
    // Any other trailer field is fine: only this one is planted.
    let mut h = Harness::new(limits());
    let other = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nhello\r\n0\r\nContent-MD5: x\r\n\r\n";
    assert_eq!(parse_all(&h.exchange(other, h.at(1.0)), &[])[0].status, 200);
    let crashed = std::panic::catch_unwind(|| {
        let mut h = Harness::new(limits());
        h.exchange(CANARY_TRIGGER, h.at(1.0));
    });
    assert!(crashed.is_err());
}

#[test]
fn only_an_unfinished_remainder_is_copied() {
    let mut h = Harness::new(limits());
    h.conn.handle_read(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\nGET / HT",
        h.at(1.0),
    );
    // The two complete requests were parsed in place; only "GET / HT" is
    // held (output is still two static responses, one small Vec).
    assert_eq!(
        h.conn.buffered_capacity() - h.conn.output.heap_capacity(),
        8
    );
    let out = h.exchange(b"TP/1.1\r\n\r\n", h.at(1.0));
    assert_eq!(parse_all(&out, &[]).len(), 3);
    assert_eq!(h.conn.buffered_capacity(), 0);
}

#[test]
fn absolute_form_targets_are_routed_by_path() {
    check(
        "GET http://example.test/health?x HTTP/1.1\r\nHost: example.test\r\n\r\n",
        &[(200, "ok\n")],
        None,
    );
}

#[test]
fn http10_keep_alive_pipelining_answers_each_with_keep_alive() {
    let mut h = Harness::new(limits());
    let out = h.exchange(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(1.0),
    );
    let conn: Vec<_> = parse_all(&out, &[])
        .iter()
        .map(|r| r.header("connection").map(str::to_string))
        .collect();
    assert_eq!(
        conn,
        [
            Some("keep-alive".to_string()),
            Some("keep-alive".to_string()),
            Some("close".to_string())
        ]
    );
    assert_eq!(h.conn.poll_close(), GRACEFUL);
}

#[test]
fn overloaded_response_is_well_formed() {
    let r = parse_response(crate::OVERLOADED_RESPONSE, false).expect("parses");
    assert_eq!(r.status, 503);
    assert_eq!(r.len, crate::OVERLOADED_RESPONSE.len());
    assert_eq!(r.header("connection"), Some("close"));
}

#[path = "connection_deadline_tests.rs"]
mod deadlines;

#[path = "connection_memory_tests.rs"]
mod memory;

#[path = "connection_refusal_tests.rs"]
mod refusals;
