//! End-to-end tests of `floodgate probe backlog`. The capacity tests run in
//! a network namespace the probe creates itself (`--netns`, root), so the
//! kernel counters they compare against belong to that probe alone; the
//! `--pid` tests run against a `floodgate serve` child on 127.0.0.1:0.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{ServeProcess, exit_within, floodgate};

mod pid;
mod tcp;

/// A JSON report path unique to this test process and test.
fn out_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "floodgate-probe-{}-{name}.json",
        std::process::id()
    ))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run floodgate probe backlog");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `probe backlog --netns ARGS --out FILE` and returns the report.
fn probe_in_netns(name: &str, args: &[&str]) -> (Output, Value) {
    let path = out_path(name);
    let out = run(floodgate()
        .args(["probe", "backlog", "--netns"])
        .args(args)
        .arg("--out")
        .arg(&path));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    let report: Value = serde_json::from_str(&text).expect("report is JSON");
    crate::schema::assert_valid("probe.schema.json", &report);
    // The report reads back into the model it was written from, whole.
    let model: floodgate_reports::ProbeReport =
        serde_json::from_str(&text).expect("the report reads back as a ProbeReport");
    assert_eq!(serde_json::to_value(&model).unwrap(), report);
    (out, report)
}

/// The probe's lab namespace is gone once the probe has exited.
fn namespace_removed(report: &Value) {
    let name = report["netns"]
        .as_str()
        .expect("the report names its namespace");
    assert!(name.starts_with("floodgate-"), "{name}");
    let left = netns_list();
    assert!(
        !left
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name)),
        "namespace {name} left behind: {left}"
    );
}

fn netns_list() -> String {
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("iproute2's ip is installed");
    let out = Command::new(ip).args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn capacity_is_backlog_plus_one_in_a_fresh_namespace() {
    for backlog in [1u64, 8, 128] {
        let (out, r) = probe_in_netns(
            &format!("backlog-{backlog}"),
            &["--backlog", &backlog.to_string()],
        );
        assert!(out.status.success(), "backlog {backlog}: {:?}", out.status);
        assert_eq!(r["capacity"], backlog + 1, "backlog {backlog}");
        assert_eq!(r["implied_backlog"], backlog);
        // sock_diag corroborates from the server's side.
        assert_eq!(r["queue_depth"], backlog + 1);
        assert_eq!(r["kernel_backlog"], backlog);
        assert_eq!(r["served"], backlog + 1);
        assert_eq!(r["unserved"], 0);
        // The namespace is the probe's alone, so the kernel's arithmetic is
        // exact: ListenOverflows = timed-out connects x (1 + their SYN
        // retransmits). Retransmits are rare (the window closes before the
        // first one at 1 s) but a slow machine can stretch the burst.
        let timed_out = r["timed_out"].as_u64().unwrap();
        assert!(timed_out > 0, "the queue must have filled");
        let dropped = r["dropped_syns"].as_u64().unwrap();
        let retrans = r["counters"]["tcp_syn_retrans"].as_u64().unwrap();
        assert_eq!(dropped, timed_out + retrans, "{:#}", r["counters"]);
        assert_eq!(r["counters"]["listen_overflows"], dropped);
        assert_eq!(r["verdict"]["diagnosis"], "accept_queue_overflow");
        namespace_removed(&r);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("capacity: {}", backlog + 1)),
            "{stdout}"
        );
    }
}

#[test]
fn somaxconn_clamps_the_backlog_and_the_probe_says_so() {
    let (out, r) = probe_in_netns(
        "clamp",
        &["--sysctl", "net.core.somaxconn=64", "--backlog", "1024"],
    );
    assert!(out.status.success());
    assert_eq!(r["capacity"], 65);
    assert_eq!(r["implied_backlog"], 64);
    assert_eq!(r["configured_backlog"], 1024);
    assert_eq!(r["somaxconn"], 64);
    assert_eq!(r["clamped_backlog"], 64);
    let explained = r["explanation"].as_array().unwrap().iter().any(|l| {
        l.as_str().unwrap().contains("net.core.somaxconn is 64")
            && l.as_str().unwrap().contains("clamped it to 64")
    });
    assert!(explained, "{:#}", r["explanation"]);
}

#[test]
fn pause_endpoint_measures_the_same_capacity_as_sigstop() {
    let (out, r) = probe_in_netns("endpoint", &["--pause-endpoint", "--backlog", "8"]);
    assert!(out.status.success());
    assert!(r["pause"].as_str().unwrap().contains("/admin/pause-accept"));
    assert_eq!(r["capacity"], 9);
    assert_eq!(r["queue_depth"], 9);
    assert_eq!(r["unserved"], 0);
}

#[test]
fn abort_on_overflow_does_not_reset_syn_time_overflows() {
    // SYNs arriving at a full accept queue are dropped silently even with
    // tcp_abort_on_overflow=1; only ACK-time overflows are reset.
    let (out, r) = probe_in_netns(
        "abort",
        &[
            "--sysctl",
            "net.ipv4.tcp_abort_on_overflow=1",
            "--backlog",
            "4",
        ],
    );
    assert!(out.status.success());
    assert_eq!(r["capacity"], 5);
    assert_eq!(r["reset"], 0);
    assert_eq!(r["counters"]["embryonic_rsts"], 0);
}

#[test]
fn sysctl_outside_net_is_refused() {
    let out = run(floodgate().args(["probe", "backlog", "--netns", "--sysctl", "vm.swappiness=1"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'vm.swappiness' is not allowed: only net.* sysctls"),
        "{stderr}"
    );
}

/// Writes the host's `net.core.somaxconn` back if a test changed it, so
/// that a regression in the test below cannot outlive the test.
struct RestoreSomaxconn(u32);

impl Drop for RestoreSomaxconn {
    fn drop(&mut self) {
        if floodgate_kernel::lab::somaxconn() != Some(self.0) {
            let _ = std::fs::write("/proc/sys/net/core/somaxconn", format!("{}\n", self.0));
        }
    }
}

/// `--inside-netns` is what `--netns` adds to the command it re-runs
/// inside the namespace; given by hand in the host's namespace, with a
/// `--sysctl`, it must be refused before anything starts and write nothing.
#[test]
fn inside_netns_in_the_host_namespace_is_refused_and_writes_no_sysctl() {
    let host = floodgate_kernel::lab::somaxconn().expect("somaxconn is readable");
    let restore = RestoreSomaxconn(host);
    // One above the host's value: a listen(2) elsewhere in the moment a
    // regression would leave it written sees no tighter clamp.
    let sysctl = format!("net.core.somaxconn={}", host + 1);
    let (code, stderr) = exit_within(
        floodgate().args([
            "probe",
            "backlog",
            "--subject",
            "socket",
            "--backlog",
            "1",
            "--connects",
            "4",
            "--inside-netns",
            "floodgate-not-a-lab",
            "--sysctl",
            &sysctl,
        ]),
        Duration::from_secs(10),
    );
    let after = floodgate_kernel::lab::somaxconn();
    drop(restore);
    assert_eq!(after, Some(host), "the host's somaxconn was written");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--inside-netns floodgate-not-a-lab: this is the host's network namespace"),
        "{stderr}"
    );
}

/// The state letter of `/proc/PID/stat` (`T` when stopped).
fn state(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn pid_mode_measures_and_resumes_the_process() {
    let server = ServeProcess::start(&["--backlog", "16"]);
    let path = out_path("pid");
    let out = run(floodgate()
        .args(["probe", "backlog", "--target"])
        .arg(server.addr().to_string())
        .args([
            "--pid",
            &server.pid().to_string(),
            "--backlog",
            "16",
            "--out",
        ])
        .arg(&path));
    assert_ne!(state(server.pid()), "T");
    assert!(out.status.success());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(r["capacity"], 17);
    assert_eq!(r["implied_backlog"], 16);
    assert_eq!(r["unserved"], 0);
}

#[test]
fn pause_endpoint_sends_the_token_of_auth_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let token = out_path("token");
    std::fs::write(&token, "probe-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = token.to_str().unwrap();
    let server = ServeProcess::start(&[
        "--admin",
        "--auth-token-file",
        token,
        "--auth-scope",
        "admin",
        "--backlog",
        "16",
    ]);
    let probe = |extra: &[&str]| {
        run(floodgate()
            .args(["probe", "backlog", "--target"])
            .arg(server.addr().to_string())
            .args(["--pause-endpoint", "--backlog", "16", "--window", "300ms"])
            .args(extra))
    };
    let without = probe(&[]);
    assert_eq!(without.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(stderr.contains("answered 401"), "{stderr}");
    let path = out_path("token-probe");
    let with = probe(&["--auth-token-file", token, "--out", path.to_str().unwrap()]);
    assert!(with.status.success());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(r["capacity"], 17);
    assert_eq!(r["unserved"], 0);
}

#[test]
fn pid_mode_resumes_the_process_when_the_probe_fails() {
    // A server that waits a minute before each accept, and a client it has
    // not accepted yet: the probe stops the server, finds a connection
    // already waiting in the accept queue, and fails after the stop.
    let server = ServeProcess::start(&["--accept-delay", "60s"]);
    let _queued = std::net::TcpStream::connect(server.addr()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while floodgate_kernel::port_state(server.addr().port())
        .unwrap()
        .queue_depth()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the client never reached the queue"
        );
        std::thread::yield_now();
    }
    let out = run(floodgate()
        .args(["probe", "backlog", "--target"])
        .arg(server.addr().to_string())
        .args(["--pid", &server.pid().to_string(), "--connects", "10"]));
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already waiting in the accept queue"),
        "{stderr}"
    );
    assert_ne!(state(server.pid()), "T");
}

/// Starts `probe backlog --pid` on `server` and returns once the server
/// is stopped (a bounded wait for that state), the probe still running.
fn probe_stopping(server: &ServeProcess) -> std::process::Child {
    let mut probe = floodgate()
        .args(["probe", "backlog", "--target"])
        .arg(server.addr().to_string())
        .args(["--pid", &server.pid().to_string(), "--window", "950ms"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(server.pid()) != "T" {
        assert!(
            Instant::now() < deadline,
            "the probe never stopped the server"
        );
        assert!(probe.try_wait().unwrap().is_none(), "the probe ended early");
        std::thread::yield_now();
    }
    probe
}

#[test]
fn pid_mode_resumes_the_process_on_ctrl_c() {
    let server = ServeProcess::start(&[]);
    let mut probe = probe_stopping(&server);
    // SAFETY: kill(2) on the PID of the probe this test started.
    assert_eq!(unsafe { libc::kill(probe.id() as i32, libc::SIGINT) }, 0);
    let status = probe.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_ne!(state(server.pid()), "T");
}

/// SIGKILL cannot be caught: the probe's watchdog process continues the
/// server once the probe is gone.
#[test]
fn pid_mode_resumes_the_process_when_the_probe_is_killed() {
    let server = ServeProcess::start(&[]);
    let mut probe = probe_stopping(&server);
    probe.kill().unwrap();
    let status = probe.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // The watchdog sees the probe's end of its pipe close and sends SIGCONT.
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(server.pid()) == "T" {
        assert!(
            Instant::now() < deadline,
            "the server is still stopped 10 s after the probe was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // And it serves again.
    let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(
        &mut conn,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn netns_is_removed_on_ctrl_c() {
    let mut probe = floodgate()
        .args(["probe", "backlog", "--netns", "--window", "950ms"])
        .spawn()
        .unwrap();
    let name = format!("floodgate-{}-0", probe.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !netns_list()
        .lines()
        .any(|l| l.split_whitespace().next() == Some(&name))
    {
        assert!(Instant::now() < deadline, "namespace {name} never appeared");
        assert!(probe.try_wait().unwrap().is_none(), "the probe ended early");
        std::thread::yield_now();
    }
    // SAFETY: kill(2) on the PID of the probe this test started.
    assert_eq!(unsafe { libc::kill(probe.id() as i32, libc::SIGINT) }, 0);
    let status = probe.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    let left = netns_list();
    assert!(
        !left
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)),
        "namespace {name} left behind: {left}"
    );
}

// Kernel evidence against the reference server. These run on a test thread
// that has moved into a fresh network namespace (unshare(CLONE_NEWNET),
// root); the server child started from that thread inherits it, so the
// counters describe this test alone.

mod evidence {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use floodgate_kernel::{Evidence, EvidenceReport, STATE_ESTABLISHED, tcp_info};
    use floodgate_reports::verdict::{self, ClientSignals, Diagnosis, Inputs, Verdict};
    use socket2::{Domain, Socket, Type};

    use crate::util::{ServeProcess, in_fresh_netns};

    /// Connects at `rate_per_s` for `duration` without sending anything and
    /// keeps every socket.
    fn connect_at_rate(addr: SocketAddr, rate_per_s: u32, duration: Duration) -> Vec<Socket> {
        let start = Instant::now();
        let interval = Duration::from_secs(1) / rate_per_s;
        let mut socks = Vec::new();
        let mut next = start;
        while next < start + duration {
            // Pacing an open-loop schedule, not waiting for a condition.
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&addr.into());
            socks.push(s);
            next += interval;
        }
        socks
    }

    /// Polls until every connect has completed, for at most `connect_timeout`
    /// (the client's own limit: a connect still pending then is a connect
    /// timeout). Returns (completed, still pending).
    fn settle(socks: Vec<Socket>, connect_timeout: Duration) -> (Vec<Socket>, Vec<Socket>) {
        let established = |s: &Socket| tcp_info(s).unwrap().state == STATE_ESTABLISHED;
        let deadline = Instant::now() + connect_timeout;
        while Instant::now() < deadline && !socks.iter().all(established) {
            std::thread::sleep(Duration::from_millis(5));
        }
        socks.into_iter().partition(established)
    }

    fn run(backlog: &str, connect_timeout: Duration) -> (EvidenceReport, Verdict, usize) {
        in_fresh_netns({
            let backlog = backlog.to_owned();
            move || {
                let server = ServeProcess::start(&["--backlog", &backlog, "--accept-delay", "20"]);
                let addr = server.addr();
                let recorder = Evidence::for_target(addr, Duration::from_millis(20))
                    .unwrap()
                    .expect("the server listens in this namespace");
                // 200 connects/s against an accept loop that manages 50/s.
                let socks = connect_at_rate(addr, 200, Duration::from_millis(800));
                let (done, pending) = settle(socks, connect_timeout);
                let report = recorder.finish();
                let client = ClientSignals {
                    connects: (done.len() + pending.len()) as u64,
                    connect_timeouts: pending.len() as u64,
                    syn_retransmitted: done
                        .iter()
                        .filter(|s| tcp_info(*s).unwrap().total_retrans > 0)
                        .count() as u64,
                    ..ClientSignals::default()
                };
                let v = verdict::diagnose(&Inputs::from_evidence(Some(&report), client));
                (report, v, pending.len())
            }
        })
    }

    #[test]
    fn slow_accept_above_its_rate_overflows_a_small_backlog() {
        // Connects dropped in the burst's last 300 ms retransmit their SYN
        // only after 1 s, so they are still pending at a 300 ms timeout.
        let (report, v, pending) = run("8", Duration::from_millis(300));
        eprintln!("{}", v.summary);
        assert_eq!(v.diagnosis, Diagnosis::AcceptQueueOverflow);
        assert!(report.counters.listen_overflows > 0);
        assert!(pending > 0);
        assert_eq!(report.backlog, Some(8));
        assert_eq!(report.max_queue_depth, 9);
        assert!(report.full_ms > 0);
        assert!(
            v.summary.contains("queue pinned at 9 of 9"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn the_same_load_against_an_adequate_backlog_does_not_overflow() {
        // Every connect completes; the bound only stops a broken run.
        let (report, v, pending) = run("1024", Duration::from_secs(10));
        eprintln!("{}", v.summary);
        assert_eq!(v.diagnosis, Diagnosis::NoOverflow, "{}", v.summary);
        assert_eq!(report.counters.listen_overflows, 0);
        assert_eq!(pending, 0);
        assert!(report.max_queue_depth > 0, "the queue never held anything");
    }
}
