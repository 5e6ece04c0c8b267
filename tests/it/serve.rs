//! End-to-end tests of `floodgate serve`: its output, flags, signals and exit
//! codes, and the behaviours that need a separate process to observe (RSS,
//! CPU time, descriptor limits, the kernel's view of the listener).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::ServeProcess;
use crate::util::http::{Client, get, stats, wait_until};

/// Sends `request` on a new connection and waits until the server has parsed
/// its head, using `/stats` from other connections: each poll adds one
/// request of its own, so the in-flight one shows as one more than the polls
/// explain, whether or not a snapshot counts the request asking for it.
fn send_and_wait_until_read(addr: SocketAddr, request: &[u8]) -> Client {
    let base = stats(addr)["requests"].as_u64().unwrap();
    let mut c = Client::connect(addr);
    c.send(request);
    let mut polls = 0;
    wait_until(Duration::from_secs(5), "the request to be read", || {
        polls += 1;
        stats(addr)["requests"].as_u64().unwrap() > base + polls
    });
    c
}

fn connect_refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[test]
fn serve_prints_a_listening_line_per_address_and_serves_each() {
    let server = ServeProcess::start(&["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    assert_eq!(server.addrs.len(), 2);
    assert_ne!(server.addrs[0], server.addrs[1]);
    for addr in &server.addrs {
        assert_eq!(get(*addr, "/health").status, 200);
    }
}

#[test]
fn serve_keeps_connections_alive_and_answers_pipelined_requests_in_order() {
    let server = ServeProcess::start(&[]);
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/").status, 200);
    c.send(b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\n\r\nGET /bytes/30000 HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().body.len(), 3);
    assert_eq!(c.response().body.len(), 30000);
    assert_eq!(c.response().status, 200);
    assert_eq!(stats(server.addr())["accepted"].as_u64(), Some(2));
}

#[test]
fn an_address_in_use_fails_with_its_name() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = crate::util::floodgate()
        .args(["serve", "--no-reuse-address", "--listen", &addr])
        .output()
        .unwrap();
    // Could not run.
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn backlog_77_is_the_listeners_backlog_in_the_kernel() {
    let server = ServeProcess::start(&["--backlog", "77"]);
    let port = server.addr().port();
    // For a listening socket, ss's Send-Q is the accept queue's capacity.
    let out = std::process::Command::new("/usr/bin/ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("run /usr/bin/ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"LISTEN"), "{text}");
    assert_eq!(fields.get(2), Some(&"77"), "Send-Q of {text}");
}

#[test]
fn max_connections_flag_refuses_with_503() {
    let server = ServeProcess::start(&["--max-connections", "1"]);
    let mut held = Client::connect(server.addr());
    assert_eq!(held.get("/").status, 200);
    let mut refused = Client::connect(server.addr());
    refused.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = refused.response();
    assert_eq!(r.status, 503);
    assert!(r.closes());
    drop(held);
    // Each probe holds the only slot until its own close reaches the
    // server, so the next one may still be refused; retry until served.
    let mut rejected = None;
    wait_until(Duration::from_secs(5), "the slot to be released", || {
        let r = get(server.addr(), "/stats");
        if r.status == 200 {
            let stats: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            rejected = stats["rejected_by_limit"].as_u64();
        }
        r.status == 200
    });
    assert!(rejected >= Some(1), "rejected_by_limit {rejected:?}");
}

/// `--header-timeout` runs from a request's first byte, however the rest
/// trickles in: a head that keeps making progress is still cut, with a 408,
/// at the header timeout, not a header timeout after its last byte.
#[test]
fn header_timeout_flag_cuts_a_trickled_head_with_408() {
    let header_timeout = Duration::from_secs(2);
    let server = ServeProcess::start(&["--header-timeout", "2s"]);
    let mut c = Client::connect(server.addr());
    // Each piece leaves at once, not held back by Nagle's algorithm.
    c.stream().set_nodelay(true).unwrap();
    let first_byte = Instant::now();
    c.send(b"GET / HTTP/1.1\r\n");
    // Eight more pieces 200 ms apart: the last at 1.6 s, inside the timeout,
    // so each write reaches a connection that is still reading.
    let pieces: [&[u8]; 8] = [b"X-Slow", b": ", b"a", b"b", b"c", b"d", b"e", b"f"];
    for piece in pieces {
        // The pause is what the test sends: a head that trickles.
        std::thread::sleep(Duration::from_millis(200));
        c.send(piece);
    }
    let last_byte = first_byte.elapsed();
    assert!(
        last_byte < header_timeout,
        "the trickle took {last_byte:?}: too slow to test the timeout"
    );
    let r = c.response();
    let cut_at = first_byte.elapsed();
    assert_eq!(r.status, 408);
    assert!(r.closes(), "a 408 carries Connection: close");
    // From the first byte: a deadline moved by each piece would cut at
    // least a header timeout after the last one.
    assert!(
        cut_at >= header_timeout - Duration::from_millis(100)
            && cut_at < last_byte + header_timeout,
        "408 after {cut_at:?}, the last byte sent after {last_byte:?}"
    );
}

#[test]
fn a_client_that_never_reads_is_cut_at_the_write_timeout_with_flat_memory() {
    let server = ServeProcess::start(&["--write-timeout", "2s"]);
    let addr = server.addr();
    // Warm up so the baseline includes the executor threads and buffers.
    assert_eq!(get(addr, "/bytes/1000000").body.len(), 1_000_000);
    let baseline_kib = server.rss_kib();
    let clients = 8;
    let per_client = 4;
    let big = floodgate_proto::MAX_BYTES_ENDPOINT;
    let request = format!("GET /bytes/{big} HTTP/1.1\r\nHost: t\r\n\r\n").repeat(per_client);
    let sent = Instant::now();
    let mut stalled: Vec<Client> = (0..clients)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.send(request.as_bytes());
            c
        })
        .collect();
    let mut peak_kib = baseline_kib;
    wait_until(
        Duration::from_secs(12),
        "every stalled client to be cut",
        || {
            peak_kib = peak_kib.max(server.rss_kib());
            stats(addr)["timeouts"].as_u64().unwrap() >= clients as u64
        },
    );
    let cut_after = sent.elapsed();
    assert!(
        cut_after >= Duration::from_secs(2),
        "cut after {cut_after:?}"
    );
    let asked_kib = clients as u64 * per_client as u64 * big / 1024;
    let grew_kib = peak_kib.saturating_sub(baseline_kib);
    eprintln!("RSS {baseline_kib} KiB, peak +{grew_kib} KiB; cut after {cut_after:?}");
    assert!(
        grew_kib < 32 * 1024,
        "RSS grew {grew_kib} KiB (from {baseline_kib} KiB) while clients asked for {asked_kib} KiB"
    );
    for c in &mut stalled {
        let (received, end) = c.drain();
        assert!((received as u64) < big, "received {received} bytes");
        assert_eq!(end.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
    }
}

#[test]
fn descriptor_exhaustion_backs_off_with_little_cpu_and_recovers() {
    descriptor_exhaustion(None);
}

/// With one executor thread the back-off must not block it: connections
/// already open are served while the accept loop waits.
#[test]
fn descriptor_exhaustion_with_one_executor_thread_still_serves_open_connections() {
    descriptor_exhaustion(Some("1"));
}

fn descriptor_exhaustion(executor_threads: Option<&str>) {
    const NOFILE: libc::rlim_t = 48;
    let mut server = ServeProcess::start_with(&[], |cmd| {
        use std::os::unix::process::CommandExt;
        if let Some(n) = executor_threads {
            cmd.env("ASYNC_STD_THREAD_COUNT", n);
        }
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: NOFILE,
                    rlim_max: NOFILE,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let addr = server.addr();
    // `/stats` on a connection opened first, which needs no new descriptor:
    // whether the server accepted each new connection or failed to for want
    // of a descriptor is read from its counters, not guessed from a silence.
    let mut observer = Client::connect(addr);
    let mut counters = || {
        let r = observer.get("/stats");
        assert_eq!(r.status, 200, "GET /stats on the observer connection");
        let s: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        (
            s["accepted"].as_u64().unwrap(),
            s["accept_errors"].as_u64().unwrap(),
        )
    };
    // Open connections, each proven served, until accept(2) fails: the
    // server is out of descriptors and that one waits in the accept queue.
    let mut held = Vec::new();
    let (starved, starved_errors) = loop {
        assert!(held.len() < 2 * NOFILE as usize, "never starved");
        let (accepted, errors) = counters();
        let mut c = Client::connect(addr);
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut now = (accepted, errors);
        wait_until(
            Duration::from_secs(10),
            "the connection to be accepted or its accept to fail",
            || {
                now = counters();
                now != (accepted, errors)
            },
        );
        if now.1 > errors {
            assert_eq!(now.0, accepted, "accepted and failed to accept at once");
            break (c, now.1);
        }
        assert_eq!(c.response().status, 200);
        held.push(c);
    };
    assert!(
        held.len() > 10,
        "starved after only {} connections",
        held.len()
    );

    // While starved, the accept loop backs off instead of spinning.
    // SAFETY: sysconf only reads a constant of the system.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let before = server.cpu_ticks();
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(2) {
        // The measurement window itself: CPU used over 2 s of starvation.
        std::thread::sleep(Duration::from_millis(100));
    }
    let used = server.cpu_ticks() - before;
    eprintln!(
        "starved after {} connections; {used} CPU ticks ({ticks_per_s}/s) in 2 s",
        held.len()
    );
    assert!(
        used * 10 <= ticks_per_s * 2,
        "used {used} ticks ({ticks_per_s}/s) in 2 s while starved"
    );
    assert!(server.wait_exit(Duration::ZERO).is_none(), "server exited");
    // Still starved (the back-off is at its longest, 1 s, by now), and the
    // connection already open is served at once, not after a back-off: the
    // wait must not hold the executor, even when it has one thread.
    for _ in 0..5 {
        let asked = Instant::now();
        let (_, errors) = counters();
        let took = asked.elapsed();
        assert!(errors > starved_errors, "no accept failed while starved");
        assert!(
            took < Duration::from_millis(300),
            "GET /stats took {took:?} while the accept loop backed off"
        );
    }

    // Freeing descriptors brings it back.
    drop(held);
    drop(starved);
    drop(observer);
    wait_until(Duration::from_secs(10), "the server to serve again", || {
        let mut c = Client::connect(addr);
        c.stream()
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        c.send(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        matches!(crate::util::http::read_response(&mut c.reader), Ok(Some(r)) if r.status == 200)
    });
    assert!(stats(addr)["accept_errors"].as_u64() >= Some(1));
}

#[test]
fn sigterm_drains_an_in_flight_delay_refuses_new_connects_and_exits_0() {
    let mut server = ServeProcess::start(&[]);
    let addr = server.addr();
    let mut idle = Client::connect(addr);
    assert_eq!(idle.get("/").status, 200);
    let mut busy = send_and_wait_until_read(addr, b"GET /delay/2000 HTTP/1.1\r\nHost: t\r\n\r\n");

    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    wait_until(
        Duration::from_millis(1500),
        "connects to be refused",
        || connect_refused(addr),
    );
    // The idle keep-alive connection is closed without waiting for the delay.
    let (extra, end) = idle.drain();
    assert_eq!((extra, end.is_ok()), (0, true));
    assert!(signalled.elapsed() < Duration::from_millis(1800));

    let r = busy.response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "a drained response carries Connection: close");
    let (extra, end) = busy.drain();
    assert_eq!((extra, end.is_ok()), (0, true));
    let status = server.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigint_with_a_short_grace_resets_the_rest_and_exits_3() {
    let mut server = ServeProcess::start(&["--shutdown-grace", "300ms"]);
    let addr = server.addr();
    let mut busy = send_and_wait_until_read(addr, b"GET /delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let signalled = Instant::now();
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(5)).expect("exit");
    assert_eq!(status.code(), Some(3));
    assert!(signalled.elapsed() >= Duration::from_millis(300));
    let (received, _) = busy.drain();
    assert_eq!(received, 0, "no response for the cut request");
}

#[test]
fn a_second_sigint_exits_at_once_without_waiting_for_the_grace() {
    let mut server = ServeProcess::start(&["--shutdown-grace", "30s"]);
    let addr = server.addr();
    let mut busy = send_and_wait_until_read(addr, b"GET /delay/30000 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.signal(libc::SIGINT);
    wait_until(
        Duration::from_millis(1500),
        "connects to be refused",
        || connect_refused(addr),
    );
    // Draining: the in-flight delay holds the exit for up to the 30 s grace.
    assert!(server.wait_exit(Duration::from_millis(200)).is_none());
    server.signal(libc::SIGINT);
    // Within 5 s, not the 30 s the grace would allow.
    let status = server.wait_exit(Duration::from_secs(5)).expect("exit");
    assert_eq!(status.code(), Some(3));
    let (received, _) = busy.drain();
    assert_eq!(received, 0, "no response for the abandoned request");
}

#[test]
fn a_connection_that_never_sends_a_byte_is_closed_at_the_header_timeout() {
    let server = ServeProcess::start(&["--header-timeout", "1s", "--idle-timeout", "30s"]);
    let mut silent = Client::connect(server.addr());
    let opened = Instant::now();
    // The client's read timeout (10 s) ends the wait if the server holds on
    // to the idle timeout instead.
    let (received, end) = silent.drain();
    let closed_after = opened.elapsed();
    assert_eq!(received, 0, "nothing to answer: no request began");
    assert!(
        end.is_ok(),
        "closed, not held: {end:?} after {closed_after:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}, before the 1 s header timeout"
    );
    assert_eq!(stats(server.addr())["timeouts"].as_u64(), Some(1));
}

#[test]
fn sigterm_closes_a_connection_that_never_sent_a_byte_at_once_and_exits_0() {
    let mut server = ServeProcess::start(&[]);
    let addr = server.addr();
    let mut silent = Client::connect(addr);
    // Accepted: it and the polling connection are both open.
    wait_until(
        Duration::from_secs(5),
        "the silent connection to be accepted",
        || stats(addr)["active"].as_u64() == Some(2),
    );
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let (received, end) = silent.drain();
    assert_eq!((received, end.is_ok()), (0, true));
    let status = server.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(0));
    // Not held for the 2 s linger of a connection that was answered.
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
}

/// Shuts down the reading side of `pid`'s listening socket on `port`, through
/// a duplicate taken with pidfd_getfd(2): accept(2) on it then fails with
/// EINVAL for good, a listener broken from outside the server.
fn break_listener_of(pid: i32, port: u16) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open(2) on a child this test started and has not reaped.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor pidfd_open just returned, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: pidfd_getfd(2) with a live pidfd; the result is checked.
        let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
        if dup < 0 {
            continue;
        }
        // SAFETY: a descriptor pidfd_getfd just returned, owned by nothing else.
        let dup = unsafe { OwnedFd::from_raw_fd(dup as i32) };
        let sock = socket2::SockRef::from(&dup);
        let on_port = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port);
        if on_port && sock.is_listener().unwrap_or(false) {
            sock.shutdown(std::net::Shutdown::Read)
                .expect("shutdown(SHUT_RD) on the listener");
            return;
        }
    }
    panic!("no listening socket on port {port} in process {pid}");
}

#[test]
fn a_broken_listener_ends_the_server_with_its_cause_and_exit_3() {
    let mut child = crate::util::floodgate()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start floodgate serve");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut server = ServeProcess {
        child,
        addrs: vec![addr],
        stdout,
    };
    assert_eq!(get(addr, "/health").status, 200);

    break_listener_of(server.pid(), addr.port());
    // Not backing off forever: the server stops by itself.
    let status = server.wait_exit(Duration::from_secs(5)).expect("exit");
    assert_eq!(status.code(), Some(3));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut { stderr }, &mut log).unwrap();
    assert!(log.contains("accept failed"), "{log}");
    assert!(log.contains("Invalid argument"), "the cause, EINVAL: {log}");
    assert!(
        log.contains(&addr.to_string()),
        "the listener's address: {log}"
    );
}

#[test]
fn the_default_listen_address_is_loopback_port_8080() {
    // A fresh namespace, so the fixed port is free and nothing else sees it.
    let line = crate::util::in_fresh_netns(|| {
        let mut child = crate::util::floodgate()
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start floodgate serve");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        let server = ServeProcess {
            child,
            addrs: Vec::new(),
            stdout,
        };
        let served = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .map(|addr| get(addr, "/health").status);
        drop(server);
        (line, served)
    });
    assert_eq!(
        line,
        ("listening on 127.0.0.1:8080\n".to_string(), Some(200))
    );
}

#[test]
fn a_restart_binds_the_same_port_at_once_while_old_connections_sit_in_time_wait() {
    let mut first = ServeProcess::start(&[]);
    let addr = first.addr();
    // Connection: close: the server closes first, so its side of each
    // connection goes to TIME_WAIT on the listening port.
    for _ in 0..3 {
        assert_eq!(get(addr, "/health").status, 200);
    }
    let mut idle = Client::connect(addr);
    assert_eq!(idle.get("/").status, 200);
    first.signal(libc::SIGTERM);
    assert_eq!(idle.drain().0, 0);
    drop(idle);
    let status = first.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(0));
    let out = std::process::Command::new("/usr/bin/ss")
        .args([
            "-tanH",
            "state",
            "time-wait",
            &format!("sport = :{}", addr.port()),
        ])
        .output()
        .expect("run /usr/bin/ss");
    let time_wait = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(time_wait >= 1, "no TIME_WAIT on the port to test against");

    // Without SO_REUSEADDR the port is still taken: the case is real...
    let listen = addr.to_string();
    let (code, stderr) = crate::util::exit_within(
        crate::util::floodgate().args(["serve", "--no-reuse-address", "--listen", &listen]),
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
    // ...and by default the restart binds it at once.
    let second = ServeProcess::start(&["--listen", &listen]);
    assert_eq!(second.addr(), addr);
    assert_eq!(get(addr, "/health").status, 200);
}
