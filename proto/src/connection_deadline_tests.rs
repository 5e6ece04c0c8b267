//! Tests of the first request's deadline: a new connection waits for its
//! first head under the header timeout, counted from accept, and only
//! between later requests does the idle timeout apply.

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
