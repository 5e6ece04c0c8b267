//! Tests that need exact kernel counters: each runs on a thread that has
//! moved into a fresh network namespace of its own (unshare(CLONE_NEWNET),
//! root only), so no other traffic on the machine moves the counters. Only
//! that thread, and threads it starts, live in the namespace; it is freed
//! when they exit.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::{Counters, Evidence, tcp_info};
use crate::verdict::{self, ClientSignals, Diagnosis, Inputs};

/// Runs `f` on a new thread inside a fresh network namespace with `lo` up.
fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) with a constant flag; it affects only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) needs root: {}",
            io::Error::last_os_error()
        );
        loopback_up().expect("bring lo up in the new namespace");
        f()
    })
    .join()
    .unwrap()
}

/// `ip link set lo up`, by SIOCSIFFLAGS on a `struct ifreq` (16-byte name,
/// then the flags as a short).
fn loopback_up() -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    let mut ifreq = [0u8; 40];
    ifreq[..2].copy_from_slice(b"lo");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: `ifreq` is a 40-byte buffer, the size of `struct ifreq`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, ifreq.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = i16::from_ne_bytes([ifreq[16], ifreq[17]]) | libc::IFF_UP as i16;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: as above.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, ifreq.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn never_accepting_listener(backlog: i32) -> (Socket, SocketAddr) {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&any.into()).unwrap();
    sock.listen(backlog).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    (sock, addr)
}

fn connect_nonblocking(addr: SocketAddr) -> Socket {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_nonblocking(true).unwrap();
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => panic!("connect {addr}: {e}"),
    }
    sock
}

#[test]
fn listen_overflows_equal_failed_connects_times_one_plus_syn_retransmits() {
    in_fresh_netns(|| {
        let (_listener, addr) = never_accepting_listener(2);
        let recorder = Evidence::start(Some(addr.port()), Duration::from_millis(20)).unwrap();
        let before = Counters::read().unwrap();
        let clients: Vec<Socket> = (0..10).map(|_| connect_nonblocking(addr)).collect();

        // 3 fit the queue (backlog 2 + 1); the other 7 stay in SYN_SENT. Wait
        // (bounded, past the first retransmit at 1 s and before the second
        // at 3 s) until each has retransmitted its SYN once.
        let deadline = Instant::now() + Duration::from_millis(2500);
        let failed = loop {
            let infos: Vec<_> = clients.iter().map(|c| tcp_info(c).unwrap()).collect();
            let stuck: Vec<_> = infos
                .iter()
                .filter(|i| i.state != super::STATE_ESTABLISHED)
                .collect();
            let overflows = Counters::read().unwrap().since(&before).listen_overflows;
            let expected: u64 = stuck.iter().map(|i| 1 + u64::from(i.total_retrans)).sum();
            if stuck.len() == 7
                && stuck.iter().all(|i| i.total_retrans == 1)
                && overflows == expected
            {
                break stuck.len() as u64;
            }
            assert!(
                Instant::now() < deadline,
                "{} stuck, retransmits {:?}, ListenOverflows +{overflows}, expected +{expected}",
                stuck.len(),
                stuck.iter().map(|i| i.total_retrans).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let report = recorder.finish();
        let delta = report.counters;
        assert_eq!(delta.listen_overflows, failed * 2);
        assert_eq!(delta.listen_drops, failed * 2);
        assert_eq!(delta.tcp_syn_retrans, failed);
        assert_eq!(report.max_queue_depth, 3);
        assert_eq!(report.backlog, Some(2));
        assert!(report.full_ms > 0);

        let verdict = verdict::diagnose(&Inputs::from_evidence(
            Some(&report),
            ClientSignals {
                connects: 10,
                connect_timeouts: failed,
                ..ClientSignals::default()
            },
        ));
        assert_eq!(verdict.diagnosis, Diagnosis::AcceptQueueOverflow);
        assert!(
            verdict
                .summary
                .starts_with("accept queue overflowed: 14 SYNs dropped (ListenOverflows +14), 7 connects timed out; queue pinned at 3 of 3 for "),
            "{}",
            verdict.summary
        );
    });
}

#[test]
fn an_idle_namespace_gets_a_no_overflow_verdict() {
    in_fresh_netns(|| {
        let (listener, addr) = never_accepting_listener(8);
        let recorder = Evidence::start(Some(addr.port()), Duration::from_millis(20)).unwrap();
        let clients: Vec<_> = (0..4)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let accepted: Vec<_> = (0..4).map(|_| listener.accept().unwrap()).collect();
        let report = recorder.finish();
        drop((clients, accepted));
        let verdict = verdict::diagnose(&Inputs::from_evidence(
            Some(&report),
            ClientSignals {
                connects: 4,
                ..ClientSignals::default()
            },
        ));
        assert_eq!(
            verdict.diagnosis,
            Diagnosis::NoOverflow,
            "{}",
            verdict.summary
        );
        assert_eq!(report.counters.listen_overflows, 0);
        assert_eq!(report.counters.active_opens, 4);
        assert_eq!(report.counters.passive_opens, 4);
    });
}

/// Writes a `net.*` sysctl of the calling thread's namespace.
fn sysctl(key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {path}: {e}"));
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), value);
}

/// A listener with TCP_DEFER_ACCEPT: a handshake's bare final ACK is
/// ignored, so each connection stays a SYN-RECV request socket until its
/// client sends data. That lets a test choose the moment each handshake
/// completes into the accept queue, and so overflow the queue at ACK time
/// deterministically.
fn deferring_listener(backlog: i32) -> (Socket, SocketAddr) {
    let (sock, addr) = never_accepting_listener(backlog);
    let secs: libc::c_int = 30;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const secs).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "TCP_DEFER_ACCEPT: {}", io::Error::last_os_error());
    (sock, addr)
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Backlog 8 (room for 9). 6 handshakes are completed into the queue, then
/// 6 more are left as SYN-RECV and completed one by one: 3 fit, and the last
/// 3 overflow the queue at ACK time.
fn overflow_at_ack_time(
    port_addr: SocketAddr,
) -> (Vec<std::net::TcpStream>, Vec<std::net::TcpStream>) {
    use std::io::Write;
    let port = port_addr.port();
    let state = || super::port_state(port).unwrap();
    let first: Vec<_> = (0..6)
        .map(|_| std::net::TcpStream::connect(port_addr).unwrap())
        .collect();
    wait_for("6 SYN-RECV", || state().syn_recv == 6);
    assert_eq!(state().queue_depth(), 0);
    for mut c in &first {
        c.write_all(b"x").unwrap();
    }
    wait_for("6 queued", || {
        state().queue_depth() == 6 && state().syn_recv == 0
    });
    let second: Vec<_> = (0..6)
        .map(|_| std::net::TcpStream::connect(port_addr).unwrap())
        .collect();
    wait_for("6 more SYN-RECV", || state().syn_recv == 6);
    for (i, mut c) in second.iter().enumerate() {
        c.write_all(b"x").unwrap();
        let want = (7 + i as u32).min(9);
        wait_for("the queue to take the handshake", || {
            state().queue_depth() == want
        });
    }
    (first, second)
}

#[test]
fn abort_on_overflow_resets_handshakes_completing_into_a_full_queue() {
    in_fresh_netns(|| {
        sysctl("net.ipv4.tcp_abort_on_overflow", "1");
        let (_listener, addr) = deferring_listener(8);
        let recorder = Evidence::start(Some(addr.port()), Duration::from_millis(10)).unwrap();
        let (_first, second) = overflow_at_ack_time(addr);
        // The three that overflowed were reset; the six before them were not.
        let mut resets = 0u64;
        wait_for("3 resets", || {
            resets = second[3..]
                .iter()
                .filter(|c| tcp_info(*c).unwrap().state != super::STATE_ESTABLISHED)
                .count() as u64;
            resets == 3
        });
        assert!(
            second[..3]
                .iter()
                .all(|c| tcp_info(c).unwrap().state == super::STATE_ESTABLISHED)
        );
        let report = recorder.finish();
        assert_eq!(report.counters.embryonic_rsts, 3);
        assert_eq!(report.counters.listen_overflows, 3);
        // The queue stays full to the end, and `finish` takes a last sample.
        // (The SYN-RECV peak is checked directly in `overflow_at_ack_time`;
        // a 10 ms sampler may fall between its moments.)
        assert_eq!(report.max_queue_depth, 9);

        let verdict = verdict::diagnose(&Inputs::from_evidence(
            Some(&report),
            ClientSignals {
                connects: 12,
                resets,
                ..ClientSignals::default()
            },
        ));
        assert_eq!(verdict.diagnosis, Diagnosis::AbortOnOverflowResets);
        assert!(
            verdict.summary.starts_with(
                "accept queue overflowed and handshakes were reset (tcp_abort_on_overflow): \
                 EmbryonicRsts +3, ListenOverflows +3, 3 connections reset; queue pinned at 9 of 9"
            ),
            "{}",
            verdict.summary
        );
    });
}

#[test]
fn without_abort_on_overflow_the_request_stays_unacknowledged() {
    in_fresh_netns(|| {
        sysctl("net.ipv4.tcp_abort_on_overflow", "0");
        let (_listener, addr) = deferring_listener(8);
        let (_first, second) = overflow_at_ack_time(addr);
        // The client believes all 12 are connected; the last 3 have their
        // byte unacknowledged, and the server still holds them as SYN-RECV.
        for c in &second {
            assert_eq!(tcp_info(c).unwrap().state, super::STATE_ESTABLISHED);
        }
        assert!(
            second[..3]
                .iter()
                .all(|c| tcp_info(c).unwrap().unacked == 0)
        );
        assert!(
            second[3..]
                .iter()
                .all(|c| tcp_info(c).unwrap().unacked == 1)
        );
        let state = super::port_state(addr.port()).unwrap();
        assert_eq!(state.syn_recv, 3);
        assert_eq!(state.queue_depth(), 9);
    });
}

/// Fills the SYN queue of a backlog-4 deferring listener, which like the
/// accept queue holds backlog + 1 (the kernel calls it full only when the
/// count exceeds the backlog), with 5 request sockets, then fires 2 more
/// connects, whose SYNs meet a full SYN queue.
fn fill_syn_queue(addr: SocketAddr) -> (Vec<std::net::TcpStream>, Vec<Socket>) {
    let port = addr.port();
    let held: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    wait_for("5 SYN-RECV", || {
        super::port_state(port).unwrap().syn_recv == 5
    });
    let extra: Vec<_> = (0..2).map(|_| connect_nonblocking(addr)).collect();
    (held, extra)
}

#[test]
fn a_full_syn_queue_is_answered_with_cookies() {
    in_fresh_netns(|| {
        sysctl("net.ipv4.tcp_syncookies", "1");
        let (_listener, addr) = deferring_listener(4);
        let recorder = Evidence::start(Some(addr.port()), Duration::from_millis(10)).unwrap();
        let (_held, extra) = fill_syn_queue(addr);
        wait_for("the cookie connects to complete", || {
            extra
                .iter()
                .all(|c| tcp_info(c).unwrap().state == super::STATE_ESTABLISHED)
        });
        let report = recorder.finish();
        let c = report.counters;
        assert_eq!(c.tcp_req_q_full_do_cookies, 2);
        assert_eq!(c.syncookies_sent, 2);
        assert_eq!(c.listen_overflows, 0);
        let verdict = verdict::diagnose(&Inputs::from_evidence(
            Some(&report),
            ClientSignals {
                connects: 7,
                ..ClientSignals::default()
            },
        ));
        assert_eq!(
            verdict.diagnosis,
            Diagnosis::SynQueueCookies,
            "{}",
            verdict.summary
        );
    });
}

#[test]
fn a_full_syn_queue_without_cookies_drops_syns() {
    in_fresh_netns(|| {
        sysctl("net.ipv4.tcp_syncookies", "0");
        let (_listener, addr) = deferring_listener(4);
        let before = Counters::read().unwrap();
        let (_held, extra) = fill_syn_queue(addr);
        wait_for("2 SYN drops", || {
            Counters::read().unwrap().since(&before).tcp_req_q_full_drop == 2
        });
        assert!(
            extra
                .iter()
                .all(|c| tcp_info(c).unwrap().state == super::STATE_SYN_SENT)
        );
        let delta = Counters::read().unwrap().since(&before);
        assert_eq!(delta.syncookies_sent, 0);
        let verdict = verdict::diagnose(&Inputs {
            counters: Some(delta),
            queue: None,
            client: ClientSignals {
                connects: 7,
                connect_timeouts: 2,
                ..ClientSignals::default()
            },
        });
        assert_eq!(verdict.diagnosis, Diagnosis::SynQueueDrops);
        assert_eq!(
            verdict.summary,
            "SYN queue overflowed without SYN cookies: 2 SYNs dropped (TCPReqQFullDrop +2), 2 \
             connects timed out."
        );
    });
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
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use crate::plan::{Plan, PlanInput};
    use crate::{LoadResult, Outcome};

    in_fresh_netns(|| {
        sysctl("net.ipv4.tcp_abort_on_overflow", "0");
        let (listener, addr) = deferring_listener(8);
        let queued: Vec<_> = (0..9)
            .map(|_| {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.write_all(b"x").unwrap();
                c
            })
            .collect();
        wait_for("a full queue", || {
            super::port_state(addr.port()).unwrap().queue_depth() == 9
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
        let base = Counters::read().unwrap().listen_overflows;
        let run = std::thread::spawn(move || {
            let ran = crate::run(&plan, &Arc::new(AtomicBool::new(false)), |_| {});
            LoadResult::new(&plan, &ran)
        });
        wait_for("the run's 6 SYNs dropped", || {
            Counters::read().unwrap().listen_overflows - base == 6
        });
        let accepted: Vec<_> = (0..3).map(|_| listener.accept().unwrap()).collect();
        let result = run.join().unwrap();
        let count = |o: Outcome| result.outcomes[o.name()];
        assert_eq!(count(Outcome::RequestUnacked), 3, "{:?}", result.outcomes);
        assert_eq!(count(Outcome::ReadTimeout), 3, "{:?}", result.outcomes);
        drop((queued, accepted));
    });
}
