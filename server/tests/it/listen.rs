//! Listening sockets and the accept loop: address reuse, port sharing, the
//! backlog the kernel applied, `accept_delay` (and a client reset inside it)
//! and `Event::PauseAccept`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floodgate_server::{BindError, Config, Model, Server};

use crate::http::{Client, get};
use crate::{addr, config, start};

#[test]
fn binding_a_taken_port_names_the_address() {
    // Held without SO_REUSEPORT, so no model may join it.
    let first = Server::bind(Config {
        model: Model::Async,
        ..config()
    })
    .unwrap();
    let taken = first.local_addrs()[0];
    let err = Server::bind(Config {
        listen: vec![taken],
        ..config()
    })
    .unwrap_err();
    let BindError::Listen { addr, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*addr, taken);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {taken}: ")),
        "{err}"
    );
}

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    let shared = Config {
        reuse_port: true,
        ..config()
    };
    let first = Server::bind(shared.clone()).unwrap();
    let port = first.local_addrs()[0];
    let second = Server::bind(Config {
        listen: vec![port],
        ..shared
    })
    .unwrap();
    assert_eq!(second.local_addrs(), &[port]);
}

/// The listening TCP sockets on `port` in this network namespace, from
/// /proc/net/tcp (state 0A is LISTEN).
#[cfg(target_os = "linux")]
fn listening_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "0A"
        })
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn reuseport_listens_once_per_core_on_one_port_and_serves_every_connection() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server = Server::bind(Config {
        model: Model::ReusePort,
        ..config()
    })
    .unwrap();
    assert_eq!(server.listener_count(), cores);
    let port = server.local_addrs()[0].port();
    assert_eq!(server.local_addrs().len(), 1);
    assert_eq!(listening_sockets(port), cores);
    let server = server.start();
    // The kernel spreads connections over the listeners by their 4-tuple;
    // whichever takes one, it is served.
    for _ in 0..64 {
        assert_eq!(get(addr(&server), "/health").status, 200);
    }
    assert_eq!(
        server
            .stats()
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        64
    );
}

#[test]
fn every_listen_address_is_served() {
    let server = start(Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0)); 2],
        ..config()
    });
    let addrs = server.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1]);
    for a in addrs {
        assert_eq!(get(a, "/health").status, 200);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_kernel_backlog_is_reported() {
    let server = Server::bind(Config {
        backlog: 77,
        ..config()
    })
    .unwrap();
    assert_eq!(server.effective_backlogs(), vec![Some(77)]);
}

#[test]
fn accept_delay_holds_each_accept() {
    let delay = Duration::from_millis(300);
    let server = start(Config {
        accept_delay: Some(delay),
        ..config()
    });
    let started = Instant::now();
    assert_eq!(get(addr(&server), "/").status, 200);
    assert!(
        started.elapsed() >= delay,
        "served after {:?}",
        started.elapsed()
    );
}

#[test]
fn pause_accept_stops_accepting_for_the_requested_time() {
    let mut config = config();
    config.limits.admin = true;
    let server = start(config);
    let pause = Duration::from_millis(600);
    let mut admin = Client::connect(addr(&server));
    admin.send(
        format!(
            "POST /admin/pause-accept?ms={} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            pause.as_millis()
        )
        .as_bytes(),
    );
    let asked = Instant::now();
    assert_eq!(admin.response().status, 200);
    // The kernel completes the handshake; the request waits in the accept
    // queue until the pause ends.
    assert_eq!(get(addr(&server), "/").status, 200);
    let waited = asked.elapsed();
    assert!(
        waited >= pause - Duration::from_millis(50),
        "served after {waited:?}"
    );
    assert!(waited < pause * 4, "served after {waited:?}");
    // Connections already open are served during a pause.
    assert_eq!(admin.get("/").status, 200);
}

#[test]
fn without_admin_no_client_can_pause_accepting() {
    let server = start(config());
    let mut client = Client::connect(addr(&server));
    client
        .send(b"POST /admin/pause-accept?ms=5000 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(client.response().status, 404);
    // A new client is accepted and served at once.
    let asked = Instant::now();
    assert_eq!(get(addr(&server), "/").status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn a_client_reset_before_accept_costs_the_next_client_no_extra_delay() {
    let accept_delay = Duration::from_millis(300);
    let server = start(Config {
        accept_delay: Some(accept_delay),
        ..config()
    });
    let addr = addr(&server);
    let stats = server.stats();
    // Connected, then reset (SO_LINGER 0) while it waits in the accept
    // queue: the accept loop is still in its delay.
    let reset = std::net::TcpStream::connect(addr).unwrap();
    socket2::SockRef::from(&reset)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(reset);
    let asked = Instant::now();
    let r = get(addr, "/health");
    let took = asked.elapsed();
    assert_eq!(r.status, 200);
    // One accept delay for the reset connection, one for this one; a back-off
    // or a stop after the reset would show here.
    assert!(took >= accept_delay, "the window was not open: {took:?}");
    assert!(
        took < accept_delay * 2 + Duration::from_millis(500),
        "served after {took:?}"
    );
    let accepted = stats.accepted.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(accepted, 2, "the reset connection, then this one");
}
