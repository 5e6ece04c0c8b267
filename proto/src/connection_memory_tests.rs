//! Tests of what a connection holds: backpressure, the `/bytes` stream in
//! bounded pieces, no buffers while idle, no allocation for a kept-alive
//! `GET /`, and the size of the state itself.

use super::*;

#[test]
fn backpressure_stops_reading_until_output_drains() {
    let limits = Limits {
        max_pending_output: 200,
        ..Limits::default()
    };
    let mut h = Harness::new(limits);
    let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10);
    h.conn.handle_read(&input, h.at(1.0));
    let one = response::ROOT.bytes(false, ConnHeader::Default).len();
    // Responses stop as soon as pending output passes the bound.
    let pending = h.conn.poll_transmit().len();
    assert_eq!(pending, one * (200 / one + 1));
    assert!(!h.conn.wants_read());
    // Draining resumes parsing of what was held back.
    let out = h.drain(h.at(2.0));
    assert_eq!(parse_all(&out, &[]).len(), 10);
    assert!(h.conn.wants_read());
}

#[test]
fn bytes_endpoint_streams_in_bounded_pieces() {
    let n: u64 = crate::MAX_BYTES_ENDPOINT;
    let mut h = Harness::new(limits());
    h.conn.handle_read(
        format!(
            "GET /bytes/{n} HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .as_bytes(),
        h.at(1.0),
    );
    let head_len = {
        let pending = h.conn.poll_transmit();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(pending) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!("{other:?}"),
        }
    };
    let mut received: u64 = 0;
    let mut first = true;
    let mut tail = Vec::new();
    loop {
        let now = h.at(2.0);
        let pending = h.conn.poll_transmit();
        if pending.is_empty() {
            break;
        }
        assert!(
            pending.len() <= 2 * PIECE + 200,
            "never more than two pieces pending: {}",
            pending.len()
        );
        // Write in odd-sized pieces, checking the body as it goes.
        let take = pending.len().min(10_007);
        let chunk = pending[..take].to_vec();
        let body = if first {
            &chunk[head_len..]
        } else {
            &chunk[..]
        };
        first = false;
        for &b in body {
            if received < n {
                assert_eq!(b, bytes_endpoint_byte(received), "byte {received}");
                received += 1;
            } else {
                tail.push(b);
            }
        }
        h.conn.handle_written(take, now);
    }
    assert_eq!(received, n);
    assert_eq!(parse_all(&tail, &[])[0].body, b"ok\n");
    assert_eq!(h.conn.buffered_capacity(), 0);
}

#[test]
fn idle_connection_holds_no_buffers() {
    let mut h = Harness::new(limits());
    assert_eq!(h.conn.buffered_capacity(), 0);
    let now = h.at(1.0);
    // A head split across reads is buffered only while unfinished.
    h.exchange(b"GET / HT", now);
    assert!(h.conn.buffered_capacity() > 0);
    h.exchange(b"TP/1.1\r\nHost: x\r\n\r\n", now);
    assert_eq!(h.conn.buffered_capacity(), 0);
    for request in [
        &b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n",
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50),
    ] {
        for piece in request.chunks(7) {
            h.exchange(piece, now);
        }
        assert_eq!(h.conn.buffered_capacity(), 0);
    }
    assert_eq!(h.stats.snapshot().requests, 55);
}

#[test]
fn keep_alive_get_root_needs_no_allocation() {
    // The whole response is a static slice; nothing is copied into a Vec.
    let mut h = Harness::new(limits());
    h.conn
        .handle_read(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(1.0));
    assert_eq!(h.conn.buffered_capacity(), 0);
    assert_eq!(
        h.conn.poll_transmit(),
        response::ROOT.bytes(false, ConnHeader::Default)
    );
}

#[test]
fn connection_stays_small() {
    println!("size_of::<Connection>() = {}", size_of::<Connection>());
    // Measured 256 bytes on x86_64 (Limits alone is 104, with the admin
    // switch and the per-connection caps); the bound keeps it from drifting.
    assert!(
        size_of::<Connection>() <= 288,
        "{}",
        size_of::<Connection>()
    );
}
