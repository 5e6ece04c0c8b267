//! Tests of what a connection refuses: request smuggling and every other
//! malformation (400 and close, typed and counted), the head and body
//! limits exactly at and one past their bounds, and the per-connection caps
//! on error responses and requests.

use super::*;

#[test]
fn smuggling_attempts_get_400_and_close() {
    let follow = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases = [
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3a\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcde\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
        "GET /\r\n\r\n",
        "\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        // RFC 9112 §3.2: Host and the request-target forms.
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET abc HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST 9echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
    ];
    for case in cases {
        let input = format!("{case}{follow}");
        check(&input, &[(400, "bad request\n")], GRACEFUL);
    }
    check(
        "GET / HTTP/3.0\r\n\r\n",
        &[(505, "HTTP version not supported\n")],
        GRACEFUL,
    );
}

#[test]
fn protocol_errors_are_typed_and_counted() {
    let mut h = Harness::new(limits());
    h.exchange(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        h.at(0.0),
    );
    assert_eq!(
        h.conn.protocol_error(),
        Some(ProtocolError::BothLengthAndChunked)
    );
    let snap = h.stats.snapshot();
    assert_eq!((snap.requests, snap.protocol_errors), (1, 1));
    assert_eq!(snap.status.get("400"), Some(&1));
    // Nothing more is parsed or sent, whatever arrives.
    assert!(
        h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(0.0))
            .is_empty()
    );
    assert!(!h.conn.wants_read());
    assert_eq!(h.conn.poll_close(), GRACEFUL);
}

#[test]
fn head_limits_exactly_at_and_one_past_the_bound() {
    let limits = Limits {
        max_head_bytes: 100,
        max_headers: 4,
        ..Limits::default()
    };
    let head = |len: usize| {
        let mut s = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_string();
        s.push_str(&"p".repeat(len - s.len() - 4));
        s.push_str("\r\n\r\n");
        assert_eq!(s.len(), len);
        s
    };
    check_with(&head(100), limits, &[(200, ROOT_BODY)], None);
    let too_large = (431, "request header fields too large\n");
    check_with(&head(101), limits, &[too_large], GRACEFUL);
    // `n` fields, the Host one of them.
    let headers = |n: usize| {
        let mut s = "GET / HTTP/1.1\r\nHost: x\r\n".to_string();
        for i in 1..n {
            s.push_str(&format!("H{i}: v\r\n"));
        }
        s + "\r\n"
    };
    check_with(&headers(4), limits, &[(200, ROOT_BODY)], None);
    check_with(&headers(5), limits, &[too_large], GRACEFUL);
}

#[test]
fn body_limits_exactly_at_and_one_past_the_bound() {
    let limits = Limits {
        max_body_bytes: 8,
        ..Limits::default()
    };
    let too_large = (413, "content too large\n");
    check_with(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n12345678",
        limits,
        &[(200, "12345678")],
        None,
    );
    check_with(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789",
        limits,
        &[too_large],
        GRACEFUL,
    );
    check_with(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n4\r\n5678\r\n0\r\n\r\n",
        limits,
        &[(200, "12345678")],
        None,
    );
    check_with(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n5\r\n56789\r\n0\r\n\r\n",
        limits,
        &[too_large],
        GRACEFUL,
    );
    // Discarded bodies count against the limit too.
    check_with(
        "POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n",
        limits,
        &[too_large],
        GRACEFUL,
    );
}

#[test]
fn a_flood_of_error_responses_is_cut_at_the_cap() {
    let capped = Limits {
        max_errors_per_connection: 3,
        ..limits()
    };
    // Valid requests in between do not reset the count; the third error
    // response carries close, and nothing after it is answered.
    let input = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
                 GET / HTTP/1.1\r\nHost: x\r\n\r\n\
                 GET /echo HTTP/1.1\r\nHost: x\r\n\r\n\
                 GET /bytes/x HTTP/1.1\r\nHost: x\r\n\r\n\
                 GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    check_with(
        input,
        capped,
        &[
            (404, "not found\n"),
            (200, ROOT_BODY),
            (405, "method not allowed\n"),
            (400, "bad path or query\n"),
        ],
        GRACEFUL,
    );
    // 10,000 pipelined 404s under the default cap: 100 answered, then close.
    let flood = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10_000);
    let (out, close) = output_of(&[flood.as_bytes()], limits());
    let answered = parse_all(&out, &[]);
    assert_eq!(answered.len(), 100);
    assert_eq!(answered.last().unwrap().header("connection"), Some("close"));
    assert_eq!(close, GRACEFUL);
}

#[test]
fn the_request_cap_closes_after_the_last_request() {
    let capped = Limits {
        max_requests_per_connection: std::num::NonZeroU32::new(2),
        ..limits()
    };
    let input = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3);
    check_with(
        &input,
        capped,
        &[(200, ROOT_BODY), (200, ROOT_BODY)],
        GRACEFUL,
    );
}
