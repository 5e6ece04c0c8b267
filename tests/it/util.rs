//! Starting the `floodgate` binary as a child process and stopping it by PID.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with stderr piped and gives its exit code and stderr, or
/// `None` for the code if it was still running after `limit` (then it is
/// killed, by its own PID). For commands that must be refused: they check
/// their input and exit, nothing more.
pub fn exit_within(cmd: &mut Command, limit: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("try_wait on the child") {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // Polling for the exit, bounded by `limit` above: std has no wait
        // with a timeout on a child.
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (code, stderr)
}

/// The `floodgate` binary cargo built for these tests.
pub fn floodgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodgate"))
}

/// A `floodgate serve` child; killed (by its own PID) when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
    pub stdout: BufReader<ChildStdout>,
}

impl ServeProcess {
    /// Starts `floodgate serve --listen 127.0.0.1:0 ARGS...` and waits for
    /// its `listening on ADDR` lines (one per `--listen`).
    pub fn start(args: &[&str]) -> ServeProcess {
        ServeProcess::start_with(args, |_| {})
    }

    /// Like [`ServeProcess::start`], letting the caller adjust the command
    /// before it is spawned (environment, resource limits via `pre_exec`).
    pub fn start_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> ServeProcess {
        let mut cmd = floodgate();
        configure(&mut cmd);
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let listens = args.iter().filter(|a| **a == "--listen").count().max(1);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start floodgate serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut addrs = Vec::new();
        while addrs.len() < listens {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).expect("read serve stdout");
            assert!(n > 0, "floodgate serve exited before listening");
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                addrs.push(addr.parse().expect("listening on <socket addr>"));
            }
        }
        ServeProcess {
            child,
            addrs,
            stdout,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits up to `timeout` for the child to exit; `None` if it has not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child's resident set size in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line in /proc/PID/status")
    }

    /// CPU time the child has used, user plus system, in clock ticks
    /// (fields 14 and 15 of /proc/PID/stat).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // The command name (field 2) may contain spaces; fields after it
        // start past the last ')'.
        let after_comm = &stat[stat.rfind(')').expect("comm in /proc/PID/stat") + 2..];
        let fields: Vec<&str> = after_comm.split(' ').collect();
        // after_comm starts at field 3, so field n is at index n - 3.
        let utime: u64 = fields[14 - 3].parse().expect("utime");
        let stime: u64 = fields[15 - 3].parse().expect("stime");
        utime + stime
    }

    /// Sends a signal to this child only.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal blocking HTTP/1.1 client: raw request bytes in, parsed
/// responses out (Content-Length, chunked, or until EOF), and bounded waits.
/// One file, shared with the server crate's integration tests.
#[path = "../../server/tests/it/http.rs"]
pub mod http;

/// Runs `f` on a thread that has moved into a fresh network namespace
/// (root) with `lo` up; processes it starts inherit the namespace, so kernel
/// counters describe this test alone.
pub fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    floodgate_kernel::lab::in_fresh_netns(&[], f).expect("a fresh network namespace (root)")
}

/// Tests that put a machine-sized load on it (`floodgate run`'s) and tests
/// whose figures such a load would distort (a 1 ms latency bound) take
/// turns: on a 2-core runner, two at once starve each other.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for this test's turn; the turn lasts as long as the guard.
pub fn heavy_turn() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}
