//! The response parser's tests: every reply fed whole and split at every
//! byte, framing, keep-alive reuse, malformations and `--verify`.

use super::*;

fn get() -> Prepared {
    Prepared {
        wire: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        framing: Framing::Http {
            head_request: false,
        },
        expect: Expect::Anything,
    }
}

/// Feeds `input` split at every byte boundary and checks the result is
/// the same as one feed.
fn check(input: &[u8], req: &Prepared, verify: bool, expected: Result<Complete, ResponseError>) {
    for split in 0..=input.len() {
        let mut p = ResponseParser::default();
        p.start(req);
        let mut buf = Vec::new();
        let mut got = None;
        for part in [&input[..split], &input[split..]] {
            buf.extend_from_slice(part);
            match p.feed(&buf, req, verify) {
                Ok((n, prog)) => {
                    buf.drain(..n);
                    if let Progress::Done(c) = prog {
                        got = Some(Ok(c));
                        break;
                    }
                }
                Err(e) => {
                    got = Some(Err(e));
                    break;
                }
            }
        }
        let got = got.or_else(|| p.eof(req, verify).map(Ok));
        assert_eq!(got, Some(expected), "split at {split}");
    }
}

fn ok(status: u16, close: bool) -> Result<Complete, ResponseError> {
    Ok(Complete {
        status,
        close,
        mismatch: false,
    })
}

#[test]
fn content_length() {
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        &get(),
        false,
        ok(200, false),
    );
    check(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        &get(),
        false,
        ok(404, true),
    );
}

#[test]
fn chunked_with_trailer() {
    check(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        &get(),
        false,
        ok(200, false),
    );
}

#[test]
fn many_headers_still_parse() {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..40 {
        head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
    check(&head, &get(), false, ok(200, false));
}

/// One parser through a keep-alive stream: repeated heads are reused,
/// and a head that only starts like the last one is parsed afresh.
#[test]
fn a_repeated_head_reads_as_it_did_and_a_new_one_is_parsed() {
    let head_req = Prepared {
        wire: b"HEAD / HTTP/1.1\r\n\r\n".to_vec(),
        framing: Framing::Http { head_request: true },
        expect: Expect::Anything,
    };
    let a = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".as_slice();
    let b = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n".as_slice();
    let c = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n".as_slice();
    let body50 = [b'x'; 50];
    let steps: [(&Prepared, Vec<u8>, Complete); 5] = [
        (&get(), [a, b"hello"].concat(), ok(200, false).unwrap()),
        (&get(), [a, b"hello"].concat(), ok(200, false).unwrap()),
        (&head_req, a.to_vec(), ok(200, false).unwrap()),
        (&get(), [b, &body50].concat(), ok(200, false).unwrap()),
        (&get(), [c, b"hello"].concat(), ok(200, true).unwrap()),
    ];
    let mut p = ResponseParser::default();
    for (i, (req, response, expected)) in steps.into_iter().enumerate() {
        // Pipelined bytes of the next response must stay unconsumed.
        let wire = [&response[..], b"HTTP/1.1"].concat();
        p.start(req);
        let (n, progress) = p.feed(&wire, req, false).unwrap();
        assert_eq!(n, response.len(), "step {i}");
        assert_eq!(progress, Progress::Done(expected), "step {i}");
    }
}

#[test]
fn close_delimited_body_completes_at_eof() {
    check(b"HTTP/1.1 200 OK\r\n\r\nabc", &get(), false, ok(200, true));
}

#[test]
fn malformed_head_and_length() {
    check(
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        &get(),
        false,
        Err(ResponseError::Head),
    );
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        &get(),
        false,
        Err(ResponseError::ContentLength),
    );
}

#[test]
fn verify_echo_catches_one_flipped_byte() {
    let req = Prepared {
        expect: Expect::Echo(b"hello".to_vec()),
        ..get()
    };
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        &req,
        true,
        ok(200, false),
    );
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhellp",
        &req,
        true,
        Ok(Complete {
            status: 200,
            close: false,
            mismatch: true,
        }),
    );
    // A short body is a mismatch too.
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell",
        &req,
        true,
        Ok(Complete {
            status: 200,
            close: false,
            mismatch: true,
        }),
    );
}

#[test]
fn verify_bytes_endpoint() {
    let req = Prepared {
        expect: Expect::Bytes(30),
        ..get()
    };
    let mut good = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n".to_vec();
    good.extend((0..30).map(crate::bytes_endpoint_byte));
    check(&good, &req, true, ok(200, false));
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    check(
        &bad,
        &req,
        true,
        Ok(Complete {
            status: 200,
            close: false,
            mismatch: true,
        }),
    );
}

#[test]
fn raw_tcp_by_count_and_delimiter() {
    let by_count = Prepared {
        wire: b"ping".to_vec(),
        framing: Framing::Bytes(4),
        expect: Expect::Anything,
    };
    check(b"pong", &by_count, false, ok(200, false));
    let by_delim = Prepared {
        wire: b"ping".to_vec(),
        framing: Framing::Delimiter(b"\r\n".to_vec()),
        expect: Expect::Anything,
    };
    check(b"pong\r\n", &by_delim, false, ok(200, false));
}
