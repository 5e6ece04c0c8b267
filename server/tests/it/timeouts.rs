//! The deadlines proto asks for, enforced over real sockets: a trickled head
//! is cut at the header timeout with a 408, a connection that never sends a
//! byte at the header timeout too, an idle keep-alive connection at the idle
//! timeout, and a client that never reads at the write timeout.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use floodgate_proto::Limits;
use floodgate_server::Config;

use crate::http::{Client, read_response, wait_until};
use crate::{addr, config, start, wait_active};

fn with_limits(limits: Limits) -> Config {
    Config { limits, ..config() }
}

#[test]
fn slowloris_trickle_is_cut_at_the_header_deadline() {
    let header_timeout = Duration::from_secs(1);
    let server = start(with_limits(Limits {
        header_timeout,
        ..Limits::default()
    }));
    let mut c = Client::connect(addr(&server));
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nX-Slow: ");
    // One byte per read timeout, so the server always sees progress but the
    // head never ends; stop when the server answers or closes.
    let mut got = Vec::new();
    let cut_at = loop {
        assert!(
            started.elapsed() < header_timeout * 5,
            "still open after {:?}",
            started.elapsed()
        );
        if c.stream().write_all(b"a").is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 1024];
        match c.reader.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break started.elapsed(),
        }
    };
    assert!(
        cut_at >= header_timeout - Duration::from_millis(100),
        "cut after only {cut_at:?}"
    );
    // The cut is a 408 Request Timeout, never a silent close.
    let r = read_response(&mut &got[..])
        .expect("a response before the close")
        .unwrap_or_else(|| panic!("no response before the close, after {cut_at:?}"));
    assert_eq!(r.status, 408);
    assert!(r.closes(), "a 408 carries Connection: close");
    assert!(server.stats().timeouts.load(Relaxed) >= 1);
    wait_active(&server, 0);
}

#[test]
fn a_connection_that_never_sends_a_byte_is_closed_at_the_header_deadline() {
    let header_timeout = Duration::from_millis(500);
    let server = start(with_limits(Limits {
        header_timeout,
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    }));
    let mut c = Client::connect(addr(&server));
    let opened = Instant::now();
    // The client's read timeout (10 s) ends the wait if the server holds the
    // connection to the idle timeout instead.
    let (received, end) = c.drain();
    let closed_after = opened.elapsed();
    assert_eq!(received, 0, "a silent close: no request began");
    assert!(
        end.is_ok(),
        "closed, not held: {end:?} after {closed_after:?}"
    );
    assert!(
        closed_after >= header_timeout - Duration::from_millis(100),
        "closed after only {closed_after:?}"
    );
    assert_eq!(server.stats().timeouts.load(Relaxed), 1);
    wait_active(&server, 0);
}

#[test]
fn idle_keep_alive_connection_is_closed_at_the_idle_deadline() {
    let idle_timeout = Duration::from_secs(1);
    let server = start(with_limits(Limits {
        idle_timeout,
        ..Limits::default()
    }));
    let mut c = Client::connect(addr(&server));
    assert_eq!(c.get("/").status, 200);
    let idle_since = Instant::now();
    let (extra, end) = c.drain();
    let closed_after = idle_since.elapsed();
    assert_eq!(extra, 0, "no bytes after the response");
    assert!(end.is_ok(), "a clean close, not {end:?}");
    assert!(
        closed_after >= idle_timeout - Duration::from_millis(100)
            && closed_after < idle_timeout * 4,
        "closed after {closed_after:?}"
    );
    wait_active(&server, 0);
}

#[test]
fn a_client_that_never_reads_is_reset_at_the_write_deadline() {
    let write_timeout = Duration::from_secs(1);
    let server = start(with_limits(Limits {
        write_timeout,
        ..Limits::default()
    }));
    let mut c = Client::connect(addr(&server));
    let requests = 4;
    let asked = requests * floodgate_proto::MAX_BYTES_ENDPOINT as usize;
    let path = format!(
        "GET /bytes/{} HTTP/1.1\r\nHost: t\r\n\r\n",
        floodgate_proto::MAX_BYTES_ENDPOINT
    );
    let sent = Instant::now();
    c.send(path.repeat(requests).as_bytes());
    // Without reading, the socket buffers fill and writes stall; after the
    // write timeout of no progress the server gives up on the connection.
    let stats = server.stats();
    wait_until(
        write_timeout * 5,
        "the stalled connection to be cut",
        || stats.timeouts.load(Relaxed) >= 1 && stats.active.load(Relaxed) == 0,
    );
    assert!(
        sent.elapsed() >= write_timeout,
        "cut after only {:?}",
        sent.elapsed()
    );
    // The client finds what the buffers held, then a reset, far short of
    // what it asked for.
    let (received, end) = c.drain();
    assert!(received < asked / 2, "received {received} of {asked} bytes");
    assert_eq!(end.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
}
