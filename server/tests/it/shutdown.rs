//! `RunningServer::shutdown`: listeners close at once, idle connections
//! close, in-flight requests finish with `Connection: close`, and a request
//! that outlives the grace is reset.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use floodgate_server::{Config, Outcome};

use crate::http::{Client, wait_until};
use crate::{addr, config, start, wait_active};

#[test]
fn shutdown_drains_an_in_flight_delay_and_refuses_new_connects() {
    let server = start(config());
    let addr = addr(&server);
    let stats = server.stats();
    let mut idle = Client::connect(addr);
    assert_eq!(idle.get("/").status, 200);
    let mut busy = Client::connect(addr);
    busy.send(b"GET /delay/700 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until(
        Duration::from_secs(5),
        "the delay request to be read",
        || stats.requests.load(Relaxed) == 2,
    );

    let started = Instant::now();
    let shutting_down = std::thread::spawn(move || server.shutdown());
    // The idle connection is closed at once, long before the delay ends.
    let (extra, end) = idle.drain();
    assert_eq!((extra, end.is_ok()), (0, true));
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "idle close took {:?}",
        started.elapsed()
    );
    // New connects are refused, not left waiting in a queue.
    wait_until(
        Duration::from_millis(600),
        "connect to be refused",
        || matches!(TcpStream::connect(addr), Err(e) if e.kind() == ErrorKind::ConnectionRefused),
    );

    let r = busy.response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "the drained response carries Connection: close");
    let (extra, end) = busy.drain();
    assert_eq!((extra, end.is_ok()), (0, true));
    assert_eq!(shutting_down.join().unwrap(), Outcome::Drained);
}

#[test]
fn shutdown_resets_what_outlives_the_grace() {
    let server = start(Config {
        shutdown_grace: Duration::from_millis(300),
        ..config()
    });
    let stats = server.stats();
    let mut busy = Client::connect(addr(&server));
    busy.send(b"GET /delay/10000 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until(
        Duration::from_secs(5),
        "the delay request to be read",
        || stats.requests.load(Relaxed) == 1,
    );
    let started = Instant::now();
    assert_eq!(
        server.shutdown(),
        Outcome::Forced {
            open_connections: 1
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let (received, end) = busy.drain();
    assert_eq!(received, 0);
    assert_eq!(end.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
    assert_eq!(stats.active.load(Relaxed), 0);
}

#[test]
fn shutdown_with_no_connections_is_immediate() {
    let server = start(config());
    let started = Instant::now();
    assert_eq!(server.shutdown(), Outcome::Drained);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_connection_that_closes_itself_during_the_drain_counts_as_drained() {
    let server = start(config());
    let mut c = Client::connect(addr(&server));
    assert_eq!(c.get("/").status, 200);
    wait_active(&server, 1);
    drop(c);
    assert_eq!(server.shutdown(), Outcome::Drained);
}
