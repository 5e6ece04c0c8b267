//! Tests of a connection's time: the first request's deadline (a new
//! connection waits for its first head under the header timeout, counted
//! from accept, and only between later requests does the idle timeout
//! apply), the head, idle, body and write deadlines, shutdown, delays, and
//! how the peer's EOF ends a connection.

use super::*;

#[test]
fn a_connection_that_never_sends_a_byte_closes_silently_at_the_header_deadline() {
    let mut h = Harness::new(limits());
    // Counted from accept: the header timeout (10 s), not the idle one (60 s).
    assert_eq!(h.conn.poll_timeout(), Some(h.at(10.0)));
    h.conn.handle_timeout(h.at(9.9));
    assert_eq!(h.conn.poll_close(), None);
    h.conn.handle_timeout(h.at(10.0));
    // No request began, so there is nothing to answer: a silent close.
    assert_eq!(h.drain(h.at(10.0)), b"");
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert!(!h.conn.wants_read());
    let stats = h.stats.snapshot();
    assert_eq!((stats.timeouts, stats.requests), (1, 0));
}

#[test]
fn the_first_heads_deadline_runs_from_accept_not_from_its_first_byte() {
    let mut h = Harness::new(limits());
    h.exchange(b"GET / HT", h.at(4.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(10.0)));
    h.exchange(b"TP/1.1\r\n", h.at(9.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(10.0)));
    h.conn.handle_timeout(h.at(10.0));
    let r = parse_all(&h.drain(h.at(10.0)), &[]);
    assert_eq!((r.len(), r[0].status), (1, 408));
    assert_eq!(h.conn.poll_close(), GRACEFUL);
}

#[test]
fn after_the_first_request_the_idle_timeout_applies_then_the_header_timeout() {
    let mut h = Harness::new(limits());
    let r = parse_all(
        &h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(9.0)),
        &[],
    );
    assert_eq!(r[0].status, 200);
    // Between requests: idle, from when the response was written.
    assert_eq!(h.conn.poll_timeout(), Some(h.at(69.0)));
    h.conn.handle_timeout(h.at(30.0));
    assert_eq!(h.conn.poll_close(), None);
    // The first byte of the next head starts its own header deadline.
    h.exchange(b"GE", h.at(50.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(60.0)));
}

#[test]
fn shutdown_closes_a_connection_that_never_sent_a_byte_at_once() {
    let mut h = Harness::new(limits());
    h.conn.handle_shutdown(h.at(0.5));
    assert_eq!(h.drain(h.at(0.5)), b"");
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn head_deadline_cuts_a_one_byte_trickle() {
    let mut h = Harness::new(limits());
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".repeat(10);
    // A second request (the first is due from accept): its first byte at
    // 1 s, so its head must be complete by 11 s.
    assert_eq!(
        parse_all(
            &h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(0.5)),
            &[]
        )
        .len(),
        1
    );
    let mut sent = 0;
    for (i, b) in request.iter().enumerate() {
        let now = h.at(1.0 + i as f64 * 0.5);
        if now >= h.at(11.0) {
            break;
        }
        assert!(h.exchange(&[*b], now).is_empty());
        assert_eq!(
            h.conn.poll_timeout(),
            Some(h.at(11.0)),
            "trickling cannot extend it"
        );
        sent += 1;
    }
    assert!(sent > 10);
    h.conn.handle_timeout(h.at(10.9));
    assert_eq!(h.drain(h.at(10.9)), b"");
    h.conn.handle_timeout(h.at(11.0));
    let out = h.drain(h.at(11.0));
    let r = parse_all(&out, &[]);
    assert_eq!((r.len(), r[0].status), (1, 408));
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert_eq!(h.stats.snapshot().timeouts, 1);
}

#[test]
fn head_deadline_starts_at_the_first_byte_of_each_request() {
    let mut h = Harness::new(limits());
    // A request, then the start of the next: its deadline counts from its
    // own first byte.
    h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGE", h.at(5.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(15.0)));
    h.exchange(b"T / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(14.0));
    // Complete: now idle, from the time the response was written.
    assert_eq!(h.conn.poll_timeout(), Some(h.at(74.0)));
}

#[test]
fn idle_deadline_closes_silently() {
    let mut h = Harness::new(limits());
    h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(5.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(65.0)));
    h.conn.handle_timeout(h.at(64.0));
    assert_eq!(h.conn.poll_close(), None);
    h.conn.handle_timeout(h.at(65.0));
    assert_eq!(h.drain(h.at(65.0)), b"");
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert!(!h.conn.wants_read());
    assert_eq!(h.stats.snapshot().timeouts, 1);
}

#[test]
fn idle_deadline_waits_for_output_to_drain() {
    let mut h = Harness::new(limits());
    h.conn
        .handle_read(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(1.0));
    // Unwritten output: only the write deadline applies.
    assert_eq!(h.conn.poll_timeout(), Some(h.at(31.0)));
    let n = h.conn.poll_transmit().len();
    h.conn.handle_written(n - 1, h.at(20.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(50.0)));
    h.conn.handle_written(1, h.at(45.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(105.0)));
}

#[test]
fn body_deadline_counts_from_the_last_body_byte() {
    let mut h = Harness::new(limits());
    h.exchange(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12",
        h.at(1.0),
    );
    assert_eq!(h.conn.poll_timeout(), Some(h.at(11.0)));
    h.exchange(b"34", h.at(8.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(18.0)));
    h.conn.handle_timeout(h.at(18.0));
    let r = parse_all(&h.drain(h.at(18.0)), &[]);
    assert_eq!(r[0].status, 408);
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert_eq!(h.stats.snapshot().timeouts, 1);
}

#[test]
fn body_deadline_applies_to_chunked_bodies() {
    let mut h = Harness::new(limits());
    h.exchange(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        h.at(1.0),
    );
    assert_eq!(h.conn.poll_timeout(), Some(h.at(11.0)));
    h.conn.handle_timeout(h.at(11.0));
    assert_eq!(parse_all(&h.drain(h.at(11.0)), &[])[0].status, 408);
}

#[test]
fn write_deadline_aborts_a_peer_that_never_reads() {
    let mut h = Harness::new(limits());
    h.conn.handle_read(
        b"GET /bytes/10000000 HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(1.0),
    );
    assert_eq!(h.conn.poll_timeout(), Some(h.at(31.0)));
    // A little progress pushes it back.
    h.conn.handle_written(100, h.at(20.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(50.0)));
    // No progress: a zero-byte write does not.
    h.conn.handle_written(0, h.at(40.0));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(50.0)));
    h.conn.handle_timeout(h.at(50.0));
    assert_eq!(h.conn.poll_close(), Some(Close::Abort));
    assert!(h.conn.poll_transmit().is_empty());
    assert!(!h.conn.wants_read());
    assert_eq!(h.conn.poll_timeout(), None);
    assert_eq!(h.stats.snapshot().timeouts, 1);
}

#[test]
fn shutdown_closes_an_idle_connection_at_once() {
    let mut h = Harness::new(limits());
    h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(1.0));
    h.conn.handle_shutdown(h.at(2.0));
    assert!(h.conn.poll_transmit().is_empty());
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert_eq!(h.stats.snapshot().timeouts, 0);
}

#[test]
fn shutdown_lets_an_in_flight_delay_finish_with_close() {
    let mut h = Harness::new(limits());
    h.exchange(
        b"GET /delay/500 HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(1.0),
    );
    assert_eq!(h.conn.poll_timeout(), Some(h.at(1.5)));
    h.conn.handle_shutdown(h.at(1.2));
    assert_eq!(h.conn.poll_close(), None);
    h.conn.handle_timeout(h.at(1.5));
    let r = parse_all(&h.drain(h.at(1.5)), &[]);
    assert_eq!(r.len(), 1, "the pipelined request is not answered");
    assert_eq!(r[0].body, b"delayed\n");
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_eq!(h.conn.poll_close(), GRACEFUL);
}

#[test]
fn shutdown_lets_a_partial_request_finish_with_close() {
    let mut h = Harness::new(limits());
    h.exchange(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
        h.at(1.0),
    );
    h.conn.handle_shutdown(h.at(1.1));
    assert_eq!(h.conn.poll_close(), None);
    let r = parse_all(&h.exchange(b"ok", h.at(1.2)), &[]);
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_eq!(h.conn.poll_close(), GRACEFUL);
}

#[test]
fn delay_answers_later_and_pipelined_requests_follow_in_order() {
    let mut h = Harness::new(limits());
    let out = h.exchange(
        b"GET /delay/250 HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(1.0),
    );
    assert!(out.is_empty());
    assert_eq!(h.conn.poll_timeout(), Some(h.at(1.25)));
    h.conn.handle_timeout(h.at(1.2));
    assert!(h.drain(h.at(1.2)).is_empty());
    h.conn.handle_timeout(h.at(1.25));
    let bodies: Vec<Vec<u8>> = parse_all(&h.drain(h.at(1.25)), &[])
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(
        bodies,
        [
            b"delayed\n".to_vec(),
            b"ok\n".to_vec(),
            ROOT_BODY.as_bytes().to_vec()
        ]
    );
    assert_eq!(h.conn.poll_close(), None);
}

#[test]
fn eof_while_idle_closes_gracefully() {
    let mut h = Harness::new(limits());
    h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", h.at(1.0));
    h.conn.handle_eof(h.at(2.0));
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert_eq!(h.stats.snapshot().protocol_errors, 0);
}

#[test]
fn eof_after_stray_line_endings_is_not_an_error() {
    let mut h = Harness::new(limits());
    h.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n", h.at(1.0));
    h.conn.handle_eof(h.at(2.0));
    assert_eq!(h.conn.poll_close(), GRACEFUL);
    assert_eq!(h.stats.snapshot().protocol_errors, 0);
}

#[test]
fn eof_mid_request_closes_without_a_response() {
    for partial in [
        &b"GET / HTTP/1.1\r\nHost"[..],
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
    ] {
        let mut h = Harness::new(limits());
        h.exchange(partial, h.at(1.0));
        h.conn.handle_eof(h.at(2.0));
        assert!(h.drain(h.at(2.0)).is_empty());
        assert_eq!(h.conn.poll_close(), GRACEFUL);
        assert_eq!(h.stats.snapshot().protocol_errors, 1);
    }
}

#[test]
fn eof_after_a_complete_request_still_answers_it_then_closes() {
    let mut h = Harness::new(limits());
    h.exchange(b"GET /delay/100 HTTP/1.1\r\nHost: x\r\n\r\n", h.at(1.0));
    h.conn.handle_eof(h.at(1.05));
    assert_eq!(h.conn.poll_close(), None);
    assert!(!h.conn.wants_read());
    h.conn.handle_timeout(h.at(1.1));
    let r = parse_all(&h.drain(h.at(1.1)), &[]);
    assert_eq!(r[0].body, b"delayed\n");
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_eq!(h.conn.poll_close(), GRACEFUL);

    // Pipelined requests and then EOF in the same breath: all answered,
    // the last one with close.
    let mut h = Harness::new(limits());
    h.conn.handle_read(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /delay/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        h.at(1.0),
    );
    h.conn.handle_eof(h.at(1.0));
    h.conn.handle_timeout(h.at(1.001));
    let r = parse_all(&h.drain(h.at(1.001)), &[]);
    let summary: Vec<_> = r.iter().map(|r| r.header("connection")).collect();
    assert_eq!(summary, [None, None, Some("close")]);
    assert_eq!(h.conn.poll_close(), GRACEFUL);
}
