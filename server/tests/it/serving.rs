//! Keep-alive and pipelining over a real socket.

use std::sync::atomic::Ordering::Relaxed;

use crate::http::Client;
use crate::{addr, config, start};

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = start(config());
    let mut c = Client::connect(addr(&server));
    for _ in 0..3 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert!(!r.closes());
        assert!(!r.body.is_empty());
    }
    assert_eq!(server.stats().accepted.load(Relaxed), 1);
    assert_eq!(server.stats().requests.load(Relaxed), 3);
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = start(config());
    let mut c = Client::connect(addr(&server));
    let lengths = [5usize, 70_000, 1, 300];
    let mut batch = Vec::new();
    for n in lengths {
        batch.extend_from_slice(format!("GET /bytes/{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    c.send(&batch);
    for n in lengths {
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), n);
        let expected: Vec<u8> = (0..n as u64)
            .map(floodgate_proto::bytes_endpoint_byte)
            .collect();
        assert!(r.body == expected, "body of /bytes/{n}");
    }
}

#[test]
fn a_hundred_pipelined_requests_get_a_hundred_responses() {
    let server = start(config());
    let mut c = Client::connect(addr(&server));
    c.send(&b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(100));
    for i in 0..100 {
        assert_eq!(c.response().status, 200, "response {i}");
    }
    // The connection is still usable afterwards.
    assert_eq!(c.get("/health").status, 200);
}

#[test]
fn echo_returns_the_posted_body() {
    let server = start(config());
    let mut c = Client::connect(addr(&server));
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello world");
}
