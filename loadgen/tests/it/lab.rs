//! Load runs against listeners in a lab namespace of their own
//! (`floodgate_kernel::lab`, root), where the kernel counters move only with
//! the test's own traffic.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use floodgate_loadgen::Outcome;
use floodgate_loadgen::kernel::{self, lab};
use floodgate_loadgen::plan::{Plan, PlanInput};
use floodgate_loadgen::report::build;

/// Polls `ready` every 5 ms, failing the test after 3 s.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `request_unacked` end to end: a whole load run's requests meet an accept
/// queue that fills between their handshake and their first bytes. The
/// listener defers accept (TCP_DEFER_ACCEPT), so a connection joins the
/// queue only with its first data. The queue (backlog 8, room for 9) starts
/// full, so the run's 6 SYNs are dropped; once they are, 3 queued
/// connections are accepted. About a second later the 6 connects retransmit
/// their SYNs together, all find room, and all 6 send: 3 requests take the
/// last places (and are never answered: read_timeout), the other 3 are
/// dropped with their handshake and never acknowledged: request_unacked.
#[test]
fn a_request_dropped_with_its_handshake_is_request_unacked() {
    let sysctls = [("net.ipv4.tcp_abort_on_overflow".into(), "0".into())];
    lab::in_fresh_netns(&sysctls, || {
        let (listener, addr) = lab::deferring_listener(8).unwrap();
        let queued: Vec<_> = (0..9)
            .map(|_| {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.write_all(b"x").unwrap();
                c
            })
            .collect();
        wait_for("a full queue", || {
            kernel::port_state(addr.port()).unwrap().queue_depth() == 9
        });
        let plan = Plan::new(PlanInput {
            target: Some(format!("http://{addr}/")),
            connections: 6,
            requests: Some(6),
            threads: 1,
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(1),
            lag_threshold: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            ..PlanInput::default()
        })
        .unwrap();
        let base = kernel::read_counters().unwrap().listen_overflows;
        let run = std::thread::spawn(move || {
            let ran = floodgate_loadgen::run(&plan, &Arc::new(AtomicBool::new(false)), |_| {});
            build(&plan, &ran)
        });
        wait_for("the run's 6 SYNs dropped", || {
            kernel::read_counters().unwrap().listen_overflows - base == 6
        });
        let accepted: Vec<_> = (0..3).map(|_| listener.accept().unwrap()).collect();
        let result = run.join().unwrap();
        let count = |o: Outcome| result.outcomes[&o];
        assert_eq!(count(Outcome::RequestUnacked), 3, "{:?}", result.outcomes);
        assert_eq!(count(Outcome::ReadTimeout), 3, "{:?}", result.outcomes);
        drop((queued, accepted));
    })
    .expect("a fresh network namespace (root)");
}
