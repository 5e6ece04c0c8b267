//! Data-driven tests of `head::parse`: request heads in, framing, keep-alive
//! and refusals out, including the RFC 9112 §3.2 Host and target rules.

use super::*;

/// Parses `input` with default limits and compares the outcome; a
/// complete head is summarised as (framing, keep-alive, expect, length).
fn check(input: &str, expected: Result<Option<(BodyFraming, bool, bool, usize)>, ProtocolError>) {
    let got = parse(input.as_bytes(), &Limits::default()).map(|parsed| {
        parsed.map(|(head, len)| (head.body, head.keep_alive, head.expect_continue, len))
    });
    assert_eq!(got, expected, "{input:?}");
}

fn complete(input: &str, body: BodyFraming, keep_alive: bool) {
    check(input, Ok(Some((body, keep_alive, false, input.len()))));
}

#[test]
fn framing_and_keep_alive() {
    use BodyFraming::*;
    complete("GET / HTTP/1.1\r\nHost: x\r\n\r\n", None, true);
    complete("GET / HTTP/1.1\nHost: x\n\n", None, true);
    complete(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        None,
        false,
    );
    complete(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
        None,
        false,
    );
    complete("GET / HTTP/1.0\r\n\r\n", None, false);
    complete(
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        None,
        true,
    );
    complete(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
        Length(5),
        true,
    );
    complete(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  0 \r\n\r\n",
        None,
        true,
    );
    complete(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
        Chunked,
        true,
    );
    check(
        "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        Ok(Some((Length(1), true, true, 69))),
    );
    // HTTP/1.0 has no 100 Continue.
    check(
        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        Ok(Some((Length(1), false, false, 60))),
    );
    check("GET / HTTP/1.1\r\nHost: x\r\n", Ok(Option::None));
    check("GET / HTTP/1.1\r\nHost: x\r", Ok(Option::None));
}

/// RFC 9112 §3.2: the Host rules and the four request-target forms.
#[test]
fn host_and_request_target_forms() {
    use ProtocolError::*;
    let ok = |input: &str| {
        assert!(
            matches!(parse(input.as_bytes(), &Limits::default()), Ok(Some(_))),
            "{input:?} refused"
        );
    };
    let refused = |input: &str, why: ProtocolError| {
        let got = parse(input.as_bytes(), &Limits::default());
        assert_eq!(got, Err(why), "{input:?}");
    };
    for input in [
        // An empty Host is valid for origin-form; HTTP/1.0 needs none.
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: ex-ample.com\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: %41b.c\r\n\r\n",
        // absolute-form, its authority the Host's.
        "GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET HTTP://A.example:80 HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET https://a.example:443/?q HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET http://a.example/x HTTP/1.0\r\n\r\n",
        // authority-form for CONNECT, asterisk-form for OPTIONS.
        "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        ok(input);
    }
    for (input, why) in [
        ("GET / HTTP/1.1\r\n\r\n", MissingHost),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            DuplicateHost,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: b\r\n\r\n",
            DuplicateHost,
        ),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BadHost),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BadHost),
        ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", BadHost),
        ("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", BadHost),
        ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", BadHost),
        ("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", BadHost),
        ("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", BadHost),
        ("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", BadHost),
        (
            "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
            BadHost,
        ),
        ("GET abc HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        ("POST 9echo HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        ("GET * HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        ("GET a.example:443 HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        ("CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        ("CONNECT a.example HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (
            "GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
            BadTarget,
        ),
        ("GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (
            "GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
            BadTarget,
        ),
    ] {
        refused(input, why);
    }
}

#[test]
fn smuggling_defences() {
    use ProtocolError::*;
    let cases: &[(&str, ProtocolError)] = &[
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            BothLengthAndChunked,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            BothLengthAndChunked,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            UnknownTransferCoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            UnknownTransferCoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            UnknownTransferCoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            UnknownTransferCoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
            UnknownTransferCoding,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            UnknownTransferCoding,
        ),
        // Whitespace before the colon and obsolete line folding are
        // classic smuggling vectors.
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
            BadHeader,
        ),
        ("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", BadHeader),
        ("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", BadHeader),
        ("GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", BadHeader),
        ("GET  / HTTP/1.1\r\n\r\n", BadRequestLine),
        ("GET /\r\n\r\n", BadRequestLine),
        ("GET / FOO\r\n\r\n", BadRequestLine),
        ("G(T / HTTP/1.1\r\n\r\n", BadRequestLine),
        ("GET / HTTP/2.0\r\n\r\n", BadVersion),
        ("GET / HTTP/1.2\r\n\r\n", MissingHost),
        ("GET / HTTP/1.2x\r\nHost: x\r\n\r\n", BadVersion),
        ("GET / HTTP/0.9\r\nHost: x\r\n\r\n", BadVersion),
        ("GET / HTTP/3.0 x\r\n\r\n", BadVersion),
        ("GET / HTTP/3", BadVersion),
        ("GET / HTTPS/1.1\r\n\r\n", BadRequestLine),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
            BodyTooLarge,
        ),
    ];
    for &(input, error) in cases {
        check(input, Err(error));
    }
    complete(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
        BodyFraming::Length(1 << 20),
        true,
    );
}

/// RFC 9110 §2.5: HTTP/1.2 to 1.9 are answered as HTTP/1.1, whole or
/// cut anywhere; httparse itself parses only 1.0 and 1.1.
#[test]
fn later_minor_versions_are_read_as_http11() {
    let input = "POST /echo HTTP/1.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
    let parsed = parse(input.as_bytes(), &Limits::default());
    let Ok(Some((head, len))) = parsed else {
        panic!("{input:?}: {parsed:?}");
    };
    assert_eq!(
        (head.method, head.target, head.http10),
        ("POST", "/echo", false)
    );
    assert_eq!(
        (head.body, head.keep_alive, len),
        (BodyFraming::Length(2), true, input.len())
    );
    for cut in 0..input.len() {
        assert_eq!(
            parse(&input.as_bytes()[..cut], &Limits::default()),
            Ok(None),
            "{cut}"
        );
    }
    complete("\r\nGET / HTTP/1.2\nHost: x\n\n", BodyFraming::None, true);
    let limits = Limits {
        max_head_bytes: 32,
        ..Limits::default()
    };
    let long = format!("GET / HTTP/1.2\r\nHost: {}\r\n\r\n", "a".repeat(40));
    assert_eq!(
        parse(long.as_bytes(), &limits),
        Err(ProtocolError::TooLargeHead)
    );
    assert_eq!(parse(&long.as_bytes()[..32], &limits), Ok(None));
}

#[test]
fn head_and_header_limits_exactly_at_and_past_the_bound() {
    let limits = Limits {
        max_head_bytes: 64,
        max_headers: 3,
        ..Limits::default()
    };
    let head_of = |len: usize| {
        let mut head = "GET / HTTP/1.1\r\nHost: x\r\nX: ".to_string();
        head.push_str(&"a".repeat(len - head.len() - 4));
        head.push_str("\r\n\r\n");
        head
    };
    let at = head_of(64);
    assert_eq!(
        parse(at.as_bytes(), &limits).map(|p| p.map(|(_, n)| n)),
        Ok(Some(64))
    );
    let past = head_of(65);
    assert_eq!(
        parse(past.as_bytes(), &limits),
        Err(ProtocolError::TooLargeHead)
    );
    // Still incomplete at the bound: wait; one byte past: refuse.
    assert_eq!(parse(&past.as_bytes()[..64], &limits), Ok(None));
    assert_eq!(
        parse(&past.as_bytes()[..65], &limits),
        Err(ProtocolError::TooLargeHead)
    );

    let three = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(matches!(parse(three.as_bytes(), &limits), Ok(Some(_))));
    let four = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        parse(four.as_bytes(), &limits),
        Err(ProtocolError::TooManyHeaders)
    );
}

#[test]
fn many_header_slots_use_the_heap() {
    let limits = Limits {
        max_headers: STACK_HEADERS + 1,
        ..Limits::default()
    };
    let mut head = "GET / HTTP/1.1\r\nHost: x\r\n".to_string();
    for i in 1..=STACK_HEADERS {
        head.push_str(&format!("X-{i}: v\r\n"));
    }
    head.push_str("\r\n");
    assert_eq!(
        parse(head.as_bytes(), &limits).map(|p| p.map(|(_, n)| n)),
        Ok(Some(head.len()))
    );
    let fewer = Limits {
        max_headers: STACK_HEADERS,
        ..Limits::default()
    };
    assert_eq!(
        parse(head.as_bytes(), &fewer),
        Err(ProtocolError::TooManyHeaders)
    );
}

#[test]
fn decimal_parsing_is_bounded() {
    assert_eq!(parse_decimal(b"0"), Some(0));
    assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_decimal(b"18446744073709551616"), None);
    assert_eq!(parse_decimal(b""), None);
    assert_eq!(parse_decimal(b"1a"), None);
}
