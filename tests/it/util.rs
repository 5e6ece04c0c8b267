//! Starting the `floodgate` binary as a child process and stopping it by PID.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
pub mod http {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    /// Longest any single read in a test may block, so a broken server fails the
    /// test instead of hanging it.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

    #[derive(Debug)]
    pub struct Response {
        pub status: u16,
        /// Header names in lower case.
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// Whether the server announced it will close the connection.
        pub fn closes(&self) -> bool {
            self.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        }
    }

    /// Reads one response. `Ok(None)` on a clean EOF before its first byte.
    pub fn read_response(r: &mut impl BufRead) -> io::Result<Option<Response>> {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        assert!(version.starts_with("HTTP/1."), "status line {line:?}");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line has a colon");
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().expect("numeric Content-Length");
            response.body.resize(len, 0);
            r.read_exact(&mut response.body)?;
        } else if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                r.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .expect("chunk size");
                let mut chunk = vec![0; size + 2];
                r.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                response.body.extend_from_slice(&chunk[..size]);
            }
        } else if !matches!(status, 100..=199 | 204 | 304) {
            r.read_to_end(&mut response.body)?;
        }
        Ok(Some(response))
    }

    /// One client connection.
    pub struct Client {
        pub reader: BufReader<TcpStream>,
    }

    impl Client {
        pub fn connect(addr: SocketAddr) -> Client {
            let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            Client {
                reader: BufReader::new(stream),
            }
        }

        pub fn stream(&self) -> &TcpStream {
            self.reader.get_ref()
        }

        pub fn send(&mut self, bytes: &[u8]) {
            self.reader
                .get_mut()
                .write_all(bytes)
                .expect("send request");
        }

        pub fn response(&mut self) -> Response {
            read_response(&mut self.reader)
                .expect("read response")
                .expect("a response, not EOF")
        }

        /// Sends `GET path` (keep-alive) and reads its response.
        pub fn get(&mut self, path: &str) -> Response {
            self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
            self.response()
        }

        /// Reads until EOF or an error, returning how many bytes came and how
        /// the stream ended.
        pub fn drain(&mut self) -> (usize, io::Result<()>) {
            let mut total = 0;
            let mut buf = [0u8; 64 * 1024];
            loop {
                match self.reader.read(&mut buf) {
                    Ok(0) => return (total, Ok(())),
                    Ok(n) => total += n,
                    Err(e) => return (total, Err(e)),
                }
            }
        }
    }

    /// `GET path` on a new connection with `Connection: close`.
    pub fn get(addr: SocketAddr, path: &str) -> Response {
        let mut c = Client::connect(addr);
        c.send(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        c.response()
    }

    /// The server's `GET /stats` counters.
    pub fn stats(addr: SocketAddr) -> serde_json::Value {
        let r = get(addr, "/stats");
        assert_eq!(r.status, 200, "GET /stats");
        serde_json::from_slice(&r.body).expect("GET /stats is JSON")
    }

    /// Polls `condition` until it holds, failing the test after `timeout`.
    pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs `f` on a thread that has moved into a fresh network namespace
/// (unshare(CLONE_NEWNET), root) with `lo` up; processes it starts inherit
/// the namespace, so kernel counters describe this test alone.
pub fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) with a constant flag; it affects only this
        // thread and the processes it starts.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare(CLONE_NEWNET) needs root");
        let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("iproute2's ip is installed");
        // `ip` started from this thread runs in the new namespace too.
        let ok = std::process::Command::new(ip)
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link set lo up");
        f()
    })
    .join()
    .unwrap()
}
