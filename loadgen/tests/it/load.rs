//! Runs of the load generator against misbehaving test servers: the books
//! balance, stalls show in intended-time latency, --verify catches a
//! corrupted echo, connect storms against a full accept queue never count ok.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use floodgate_loadgen::plan::{Mode, PlanInput};
use floodgate_loadgen::report::build;
use floodgate_loadgen::{Outcome, Plan, run};
use floodgate_reports::Run;

use crate::util::{TestServer, input, ok, plan};

fn run_plan(plan: &Plan) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let ran = run(plan, &stop, |_| {});
    let result = build(plan, &ran);
    assert_eq!(
        result.outcomes_total(),
        result.scheduled,
        "the books balance: {:?}",
        result.outcomes
    );
    result
}

fn count(r: &Run, o: Outcome) -> u64 {
    r.outcomes[&o]
}

#[test]
fn closed_loop_requests_all_ok_and_balance() {
    let server = TestServer::start(|_, _| ok(b"hello"));
    let r = run_plan(&plan(PlanInput {
        requests: Some(200),
        closed: true,
        connections: 4,
        threads: 2,
        ..input(&server.url("/"))
    }));
    assert_eq!(r.scheduled, 200);
    assert_eq!(count(&r, Outcome::Ok), 200);
    assert_eq!(r.latency_us.count, 200);
    assert_eq!(r.connects, 4, "keep-alive: one connect per connection");
}

#[test]
fn http_errors_are_counted_by_class() {
    let server = TestServer::start(|n, _| {
        if n % 2 == 0 {
            ok(b"x")
        } else {
            b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
    });
    let r = run_plan(&plan(PlanInput {
        requests: Some(40),
        connections: 1,
        ..input(&server.url("/"))
    }));
    assert_eq!(count(&r, Outcome::Ok), 20);
    assert_eq!(count(&r, Outcome::Http5xx), 20);
}

/// Coordinated omission: one 500 ms stall under open-loop load must show in
/// the response time (from intended send times) of every request queued
/// behind it, not only in the one stalled request's service time.
#[test]
fn a_stall_shows_in_intended_time_percentiles() {
    let server = TestServer::start(|n, _| {
        if n == 50 {
            // The stall under test: the server's reply is late on purpose.
            std::thread::sleep(Duration::from_millis(500));
        }
        ok(b"ok")
    });
    let r = run_plan(&plan(PlanInput {
        rate_per_s: Some(200.0),
        duration: Some(Duration::from_secs(2)),
        connections: 1,
        ..input(&server.url("/"))
    }));
    assert!(count(&r, Outcome::Ok) >= 350, "{:?}", r.outcomes);
    assert!(
        r.latency_us.p99 > 200_000,
        "response p99 {} µs should include the queue behind the stall",
        r.latency_us.p99
    );
    // Only one request stalled: the 99th percentile of some 400 service
    // times is not it, so it stays under half the stall however slow the
    // machine is at answering the rest.
    assert!(
        r.service_time_us.p99 < 250_000,
        "service p99 {} µs: only one request stalled",
        r.service_time_us.p99
    );
    assert!(r.service_time_us.max >= 500_000);
}

#[test]
fn verify_catches_a_corrupted_echo() {
    let flip = |n: u64, body: &[u8]| {
        let mut body = body.to_vec();
        if n % 4 == 3 {
            body[17] ^= 0x01;
        }
        ok(&body)
    };
    let server = TestServer::start(flip);
    let verified = run_plan(&plan(PlanInput {
        requests: Some(40),
        connections: 1,
        method: Some("POST".into()),
        body_bytes: 100,
        verify: true,
        ..input(&server.url("/echo"))
    }));
    assert_eq!(count(&verified, Outcome::VerifyMismatch), 10);
    assert_eq!(count(&verified, Outcome::Ok), 30);
    // Without --verify the same replies all count as ok.
    let unverified = run_plan(&plan(PlanInput {
        requests: Some(40),
        connections: 1,
        method: Some("POST".into()),
        body_bytes: 100,
        ..input(&server.url("/echo"))
    }));
    assert_eq!(count(&unverified, Outcome::Ok), 40);
}

#[test]
fn server_closing_mid_response_is_eof_before_response() {
    // Promises 10 bytes, sends 3, then closes the connection.
    let server = TestServer::start_closing(|_, _| {
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()
    });
    let r = run_plan(&plan(PlanInput {
        requests: Some(5),
        connections: 1,
        ..input(&server.url("/"))
    }));
    assert_eq!(count(&r, Outcome::EofBeforeResponse), 5, "{:?}", r.outcomes);
    assert_eq!(r.connects, 5, "a new connection after each close");
}

#[test]
fn refused_connects_are_connect_refused() {
    // A port that was just free: bind, note it, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = run_plan(&plan(PlanInput {
        requests: Some(10),
        connections: 2,
        ..input(&format!("http://{addr}/"))
    }));
    assert_eq!(count(&r, Outcome::ConnectRefused), 10, "{:?}", r.outcomes);
}

/// A listener that never accepts, its accept queue already full: SYNs are
/// dropped, so connects time out (or show SYN retransmissions), never ok.
#[test]
fn connect_mode_against_a_full_accept_queue_is_never_ok() {
    let (_listener, addr, held) = full_accept_queue();
    let r = run_plan(&plan(PlanInput {
        mode: Mode::Connect,
        rate_per_s: Some(20.0),
        requests: Some(6),
        connections: 3,
        connect_timeout: Duration::from_millis(300),
        ..input(&format!("http://{addr}/"))
    }));
    assert_eq!(count(&r, Outcome::Ok), 0, "{:?}", r.outcomes);
    assert_eq!(
        count(&r, Outcome::ConnectTimeout) + count(&r, Outcome::SynRetransmitted),
        6,
        "{:?}",
        r.outcomes
    );
    drop(held);
}

#[test]
fn raw_tcp_with_delimiter() {
    // The test server speaks HTTP framing on input; a tcp:// payload shaped
    // like a request gets a reply the delimiter ends.
    let server = TestServer::start(|_, _| b"PONG\r\n".to_vec());
    let r = run_plan(&plan(PlanInput {
        payload: Some(b"PING\r\n\r\n".to_vec()),
        expect_delimiter: Some(b"\r\n".to_vec()),
        requests: Some(30),
        ..input(&format!("tcp://{}", server.addr))
    }));
    assert_eq!(count(&r, Outcome::Ok), 30, "{:?}", r.outcomes);
}

#[test]
fn churn_mode_connects_per_request() {
    let server = TestServer::start(|_, _| ok(b"x"));
    let r = run_plan(&plan(PlanInput {
        mode: Mode::Churn,
        requests: Some(20),
        connections: 2,
        ..input(&server.url("/"))
    }));
    assert_eq!(count(&r, Outcome::Ok), 20, "{:?}", r.outcomes);
    assert_eq!(r.connects, 20);
}

#[test]
fn hold_mode_holds_its_connections() {
    let server = TestServer::start(|_, _| ok(b"x"));
    let r = run_plan(&plan(PlanInput {
        mode: Mode::Hold,
        connections: 20,
        duration: Some(Duration::from_millis(500)),
        ..input(&server.url("/"))
    }));
    assert_eq!(r.held_max, Some(20));
    assert_eq!(count(&r, Outcome::Ok), 20, "{:?}", r.outcomes);
}

#[test]
fn ctrl_c_stops_with_a_partial_balanced_result() {
    let server = TestServer::start(|_, _| ok(b"x"));
    let p = plan(PlanInput {
        rate_per_s: Some(500.0),
        duration: Some(Duration::from_secs(30)),
        ..input(&server.url("/"))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    let t0 = Instant::now();
    let ran = run(&p, &stop, move |s| {
        if s.done > 100 {
            stopper.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let r = build(&p, &ran);
    assert!(r.partial);
    assert!(t0.elapsed() < Duration::from_secs(10), "stopped promptly");
    assert_eq!(r.outcomes_total(), r.scheduled);
    assert!(count(&r, Outcome::Ok) > 100);
}

/// Closed loop: a connection's requests after its first are run by the
/// reactor itself. Stopping while requests hang past the grace must still
/// leave balanced books, the hanging requests counted as cancelled.
#[test]
fn ctrl_c_in_a_closed_loop_counts_hanging_requests_as_cancelled() {
    let server = TestServer::start(|n, _| {
        if n >= 100 {
            // The scenario: requests that hang past the grace.
            std::thread::sleep(Duration::from_secs(3));
        }
        ok(b"x")
    });
    let p = plan(PlanInput {
        closed: true,
        connections: 4,
        duration: Some(Duration::from_secs(30)),
        ..input(&server.url("/"))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    let t0 = Instant::now();
    let ran = run(&p, &stop, move |s| {
        if s.done >= 100 {
            stopper.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let r = build(&p, &ran);
    assert!(r.partial);
    assert!(t0.elapsed() < Duration::from_secs(10), "stopped promptly");
    assert_eq!(r.outcomes_total(), r.scheduled, "{:?}", r.outcomes);
    assert_eq!(count(&r, Outcome::Ok), 100);
    assert_eq!(count(&r, Outcome::Cancelled), 4, "{:?}", r.outcomes);
}

/// A server that stops answering on a kept-alive connection, after several
/// replies: the request waiting is read_timeout on time, and the slot goes
/// on with a new connection.
#[test]
fn a_server_going_silent_on_a_kept_connection_is_read_timeout() {
    let server = TestServer::start(|n, _| {
        if n == 5 {
            // The scenario: the server goes silent on this request.
            std::thread::sleep(Duration::from_secs(2));
        }
        ok(b"x")
    });
    let t0 = Instant::now();
    let r = run_plan(&plan(PlanInput {
        closed: true,
        requests: Some(8),
        connections: 1,
        read_timeout: Duration::from_millis(300),
        ..input(&server.url("/"))
    }));
    assert_eq!(count(&r, Outcome::Ok), 7, "{:?}", r.outcomes);
    assert_eq!(count(&r, Outcome::ReadTimeout), 1, "{:?}", r.outcomes);
    assert_eq!(r.connects, 2, "a new connection after the timeout");
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_silent_server_is_read_timeout_on_time() {
    let server = TestServer::start(|_, _| {
        // The scenario: a server that answers only after the read timeout.
        std::thread::sleep(Duration::from_secs(2));
        ok(b"late")
    });
    let t0 = Instant::now();
    let r = run_plan(&plan(PlanInput {
        requests: Some(2),
        connections: 2,
        read_timeout: Duration::from_millis(200),
        ..input(&server.url("/"))
    }));
    assert_eq!(count(&r, Outcome::ReadTimeout), 2, "{:?}", r.outcomes);
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
}

/// --source spreads connects over several loopback source addresses.
#[test]
fn sources_spread_connects_over_source_addresses() {
    let server = TestServer::start(|_, _| ok(b"x"));
    let sources: Vec<std::net::IpAddr> = vec![[127, 0, 0, 2].into(), [127, 0, 0, 3].into()];
    let r = run_plan(&plan(PlanInput {
        mode: Mode::Churn,
        requests: Some(10),
        connections: 2,
        sources: sources.clone(),
        ..input(&server.url("/"))
    }));
    assert_eq!(count(&r, Outcome::Ok), 10, "{:?}", r.outcomes);
    let peers = server.peers.lock().unwrap().clone();
    for ip in &sources {
        let n = peers.iter().filter(|p| p.ip() == *ip).count();
        assert_eq!(n, 5, "connections from {ip}: {peers:?}");
    }
}

/// A send that starts after its intended time on an idle connection is the
/// generator's own lateness: with a zero threshold every such request is
/// `generator_lagged`, not sent, and kept out of the latency histograms.
#[test]
fn late_sends_are_generator_lagged_not_latency() {
    let server = TestServer::start(|_, _| ok(b"x"));
    let r = run_plan(&plan(PlanInput {
        rate_per_s: Some(200.0),
        requests: Some(20),
        connections: 1,
        lag_threshold: Duration::ZERO,
        ..input(&server.url("/"))
    }));
    let lagged = count(&r, Outcome::GeneratorLagged);
    // The first request is due at once; the rest wait on a timer, which
    // never wakes exactly on time.
    assert!(lagged >= 15, "{:?}", r.outcomes);
    assert_eq!(count(&r, Outcome::Ok) + lagged, 20);
    assert_eq!(r.latency_us.count, count(&r, Outcome::Ok));
    assert!(r.generator_lag_us.count >= lagged);
}

/// https:// targets: verified against --ca, refused with the wrong root,
/// accepted without verification with --insecure.
#[test]
fn https_with_ca_insecure_and_an_untrusted_certificate() {
    let server = TestServer::start_tls(|_, body| ok(body));
    let target = format!("https://127.0.0.1:{}/echo", server.addr.port());
    let run_with = |ca: Option<&str>, insecure: bool| {
        run_plan(&plan(PlanInput {
            requests: Some(20),
            connections: 2,
            method: Some("POST".into()),
            body_bytes: 3000,
            verify: true,
            ca_pem: ca.map(|f| std::fs::read(crate::util::tls_file(f)).unwrap()),
            insecure,
            ..input(&target)
        }))
    };
    let trusted = run_with(Some("ca.pem"), false);
    assert_eq!(count(&trusted, Outcome::Ok), 20, "{:?}", trusted.outcomes);
    assert_eq!(trusted.connects, 2);
    let insecure = run_with(None, true);
    assert_eq!(count(&insecure, Outcome::Ok), 20, "{:?}", insecure.outcomes);
    // The server's own certificate is not a root that signed it.
    let untrusted = run_with(Some("server.pem"), false);
    assert_eq!(
        count(&untrusted, Outcome::TlsFailed),
        20,
        "{:?}",
        untrusted.outcomes
    );
}

/// A SYN dropped by a full accept queue and retransmitted once the queue has
/// room: the connect succeeds, and TCP_INFO shows the retransmission. In a
/// network namespace of its own (root), so ListenOverflows moves only with
/// this test's SYNs, not with other tests overflowing the host's queues.
#[test]
fn a_retransmitted_syn_is_syn_retransmitted() {
    use floodgate_loadgen::kernel::{lab, read_counters};
    lab::in_fresh_netns(&[], || {
        let (listener, addr, held) = full_accept_queue();
        // Once the kernel has dropped the run's first SYN (ListenOverflows
        // goes up), one accept makes room for the retransmitted SYN about
        // 1 s later. The freer thread inherits this thread's namespace.
        let before = read_counters().expect("read TcpExt counters");
        let freer = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(5);
            while read_counters().unwrap().listen_overflows == before.listen_overflows {
                assert!(Instant::now() < deadline, "no SYN was dropped");
                std::thread::sleep(Duration::from_millis(1));
            }
            listener.accept().expect("accept one queued connection");
            listener
        });
        let r = run_plan(&plan(PlanInput {
            mode: Mode::Connect,
            requests: Some(1),
            connections: 1,
            connect_timeout: Duration::from_secs(4),
            ..input(&format!("http://{addr}/"))
        }));
        assert_eq!(count(&r, Outcome::SynRetransmitted), 1, "{:?}", r.outcomes);
        assert!(r.connect_time_us.max >= 900_000, "{:?}", r.connect_time_us);
        drop((freer.join(), held));
    })
    .expect("a fresh network namespace (root)");
}

/// A listener with backlog 1 that never accepts, and the connections that
/// filled its accept queue: connect until a connect no longer completes.
fn full_accept_queue() -> (socket2::Socket, SocketAddr, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(1).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        held.push(s);
        assert!(Instant::now() < deadline, "the accept queue never filled");
    }
    (listener, addr, held)
}
