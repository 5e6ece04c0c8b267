//! `max_connections`: the policy when full (503, Connection: close, counted)
//! and the release of a connection's slot on every way it can end.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use floodgate_proto::Limits;
use floodgate_server::{Config, RunningServer};

use crate::http::Client;
use crate::{addr, config, start, wait_active};

fn limited(max: usize) -> RunningServer {
    start(Config {
        max_connections: Some(max),
        limits: Limits {
            header_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..config()
    })
}

/// A served connection, proven open by one answered request.
fn open(server: &RunningServer) -> Client {
    let mut c = Client::connect(addr(server));
    assert_eq!(c.get("/").status, 200);
    c
}

/// A new connection is refused with the documented 503.
fn assert_refused(server: &RunningServer) {
    let before = server.stats().rejected_by_limit.load(Relaxed);
    let status_before = server.stats().snapshot().status.get("503").copied();
    let mut c = Client::connect(addr(server));
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 503);
    assert!(r.closes(), "503 carries Connection: close");
    assert_eq!(r.body, b"connection limit hit\n");
    assert_eq!(server.stats().rejected_by_limit.load(Relaxed), before + 1);
    // Counted by status in /stats like every other response.
    let status = server.stats().snapshot().status.get("503").copied();
    assert_eq!(status, Some(status_before.unwrap_or(0) + 1));
}

#[test]
fn over_the_limit_a_connection_is_answered_503_and_closed() {
    let server = limited(2);
    let _a = open(&server);
    let _b = open(&server);
    assert_refused(&server);
    assert_eq!(server.stats().active.load(Relaxed), 2);
    assert_eq!(server.stats().accepted.load(Relaxed), 3);
}

/// Fills the server to its limit of 2 with `a` and `b`, ends `a` with `end`,
/// and checks that its slot came back: a new connection is served.
fn check_release(end: impl FnOnce(Client)) {
    let server = limited(2);
    let a = open(&server);
    let _b = open(&server);
    assert_refused(&server);
    end(a);
    wait_active(&server, 1);
    let mut c = open(&server);
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn slot_is_released_on_clean_close() {
    check_release(drop);
}

#[test]
fn slot_is_released_on_connection_close_request() {
    check_release(|mut c| {
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert!(c.response().closes());
    });
}

#[test]
fn slot_is_released_on_reset() {
    check_release(|c| {
        // SO_LINGER 0: close(2) sends RST instead of FIN.
        socket2::SockRef::from(c.stream())
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
    });
}

#[test]
fn slot_is_released_on_parse_error() {
    check_release(|mut c| {
        c.send(b"NOT HTTP AT ALL\r\n\r\n");
        let r = c.response();
        assert_eq!(r.status, 400);
    });
}

#[test]
fn slot_is_released_on_header_timeout() {
    check_release(|mut c| {
        // Half a head, then silence: the server answers 408 and closes
        // while the client still holds its socket.
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
        assert_eq!(c.response().status, 408);
        let (extra, _) = c.drain();
        assert_eq!(extra, 0);
    });
}
