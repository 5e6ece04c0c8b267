//! How a target is stopped from accepting and let go again: the [`Pause`]
//! trait and its three ways, the reference server's `/admin/pause-accept`
//! endpoint ([`PauseEndpoint`]), SIGSTOP/SIGCONT of a process with a watchdog
//! that continues it should the probe die ([`StopSignal`],
//! [`process_stopped`]), and an in-process listener that does not accept
//! until resumed ([`HeldListener`]).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::ProbeError;
use crate::check::{Reply, exchange, request};

/// A way to stop a target from accepting and to let it accept again.
pub trait Pause {
    /// How the target is paused, for the report (`SIGSTOP pid 42`).
    fn describe(&self) -> String;
    /// Stops accepting. When this returns, no accept(2) will happen until
    /// [`Pause::resume`] (or, for a timed pause, until [`Pause::deadline`]).
    fn pause(&mut self) -> Result<(), ProbeError>;
    /// For a pause that ends by itself, when it ends.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Accepts again. Must be safe to call more than once.
    fn resume(&mut self) -> Result<(), ProbeError>;
}

/// Pauses the reference server with `POST /admin/pause-accept?ms=N` on one
/// keep-alive connection. The pause ends by itself after `pause`; the server
/// cannot end it early, so resuming means waiting for it to run out.
pub struct PauseEndpoint {
    addr: SocketAddr,
    pause: Duration,
    until: Option<Instant>,
    /// The `Authorization` value sent with the pause request.
    authorization: Option<String>,
}

impl PauseEndpoint {
    pub fn new(addr: SocketAddr, pause: Duration) -> PauseEndpoint {
        PauseEndpoint {
            addr,
            pause,
            until: None,
            authorization: None,
        }
    }

    /// Sends `value` (`Bearer TOKEN`) as the pause request's
    /// `Authorization`, for a server whose admin endpoints need a token.
    pub fn with_authorization(self, value: Option<String>) -> PauseEndpoint {
        PauseEndpoint {
            authorization: value,
            ..self
        }
    }

    fn endpoint(&self) -> String {
        format!(
            "http://{}/admin/pause-accept?ms={}",
            self.addr,
            self.pause.as_millis()
        )
    }
}

impl Pause for PauseEndpoint {
    fn describe(&self) -> String {
        format!("POST {}", self.endpoint())
    }

    fn pause(&mut self) -> Result<(), ProbeError> {
        let fail = |reason: String| ProbeError::PauseEndpoint {
            endpoint: self.endpoint(),
            reason,
        };
        let pause = request(format!(
            "POST /admin/pause-accept?ms={} HTTP/1.1\r\nHost: {}\r\n{}Content-Length: 0\r\n\r\n",
            self.pause.as_millis(),
            self.addr,
            self.authorization
                .as_ref()
                .map(|value| format!("Authorization: {value}\r\n"))
                .unwrap_or_default()
        ));
        // A second request on the same connection, sent only after the first
        // response: the reference server applies a pause after flushing its
        // response, so the burst could otherwise start before the pause does.
        // It reads the next request only once the pause is applied, so the
        // second response proves the pause is in force.
        let fence = request(format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ));
        let asked = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut stream =
            TcpStream::connect_timeout(&self.addr, timeout).map_err(|e| fail(e.to_string()))?;
        let status = match exchange(&mut stream, &pause, timeout) {
            Reply::Complete(answer) => answer.status,
            Reply::Head => return Err(fail("the response was cut short".into())),
            Reply::Nothing(why) => return Err(fail(why)),
        };
        if status == 401 {
            return Err(fail(
                "answered 401: the server's admin endpoints need its bearer token".into(),
            ));
        }
        if status == 404 {
            return Err(fail(
                "answered 404: the reference server serves /admin/* only with \
                 `floodgate serve --admin`"
                    .into(),
            ));
        }
        if !(200..300).contains(&status) {
            return Err(fail(format!(
                "answered {status}; is the target floodgate's reference server?"
            )));
        }
        if let Reply::Nothing(why) = exchange(&mut stream, &fence, timeout) {
            return Err(fail(format!(
                "no response to GET /health after the pause ({why}); keep-alive is needed"
            )));
        }
        // The server counts the pause from when it handled the request,
        // which is after `asked`: measuring from `asked` is conservative.
        self.until = Some(asked + self.pause);
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        self.until
    }

    fn resume(&mut self) -> Result<(), ProbeError> {
        // The pause cannot be cut short; the serve check waits it out.
        Ok(())
    }
}

/// Stops a process with SIGSTOP and continues it with SIGCONT: in
/// [`Pause::resume`], and again in `Drop`, so an error or a panic between
/// the two never leaves the process stopped. While it is stopped, a
/// watchdog process continues it should the probe itself die without doing
/// so (SIGKILL, an abort).
pub struct StopSignal {
    pid: i32,
    /// Set between a successful SIGSTOP and a successful SIGCONT, so `Drop`
    /// knows whether it still owes the process a SIGCONT.
    stopped: bool,
    /// Runs from just before the SIGSTOP until the SIGCONT.
    watchdog: Option<Child>,
}

impl StopSignal {
    pub fn new(pid: i32) -> StopSignal {
        StopSignal {
            pid,
            stopped: false,
            watchdog: None,
        }
    }

    /// Starts a shell that waits on a pipe whose only writer is this
    /// process (the descriptor is close-on-exec), then sends the process
    /// SIGCONT. The pipe reaches end of file when this process ends, however
    /// it ends. The shell has a process group of its own, so a Ctrl-C at the
    /// terminal leaves it running and the probe stops it after resuming.
    fn start_watchdog(&mut self) {
        // A second pause before a resume keeps the watchdog it has.
        if self.watchdog.is_some() {
            return;
        }
        let spawned = Command::new("/bin/sh")
            .args([
                "-c",
                "read -r line; kill -CONT \"$1\"",
                "floodgate-watchdog",
            ])
            .arg(self.pid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        match spawned {
            Ok(child) => self.watchdog = Some(child),
            Err(e) => tracing::warn!(
                "no watchdog for process {}: it stays stopped if this probe is killed: {e}",
                self.pid
            ),
        }
    }

    /// Stops the watchdog (the probe's own child, by its PID) before it
    /// could send a SIGCONT of its own.
    fn stop_watchdog(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn send(&self, sig: libc::c_int) -> Result<(), ProbeError> {
        // SAFETY: kill(2) on the PID the user named; no memory is involved.
        if unsafe { libc::kill(self.pid, sig) } != 0 {
            return Err(ProbeError::Signal {
                pid: self.pid,
                error: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

impl Pause for StopSignal {
    fn describe(&self) -> String {
        format!("SIGSTOP/SIGCONT of process {}", self.pid)
    }

    fn pause(&mut self) -> Result<(), ProbeError> {
        // kill(2) reads 0 and negative numbers as process groups (-1: every
        // process): never a target. Callers check the PID further.
        if self.pid <= 0 {
            return Err(ProbeError::Signal {
                pid: self.pid,
                error: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        self.start_watchdog();
        self.send(libc::SIGSTOP)?;
        self.stopped = true;
        // SIGSTOP is delivered asynchronously; wait (bounded) until the
        // kernel shows every thread of the process stopped.
        let waited = Duration::from_secs(2);
        let deadline = Instant::now() + waited;
        while !process_stopped(self.pid) {
            if Instant::now() > deadline {
                return Err(ProbeError::NotStopped {
                    pid: self.pid,
                    waited,
                });
            }
            std::thread::yield_now();
        }
        Ok(())
    }

    fn resume(&mut self) -> Result<(), ProbeError> {
        if self.stopped {
            self.send(libc::SIGCONT)?;
            self.stopped = false;
        }
        self.stop_watchdog();
        Ok(())
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        if self.stopped {
            // SAFETY: as in `send`; nothing more can be done about a failure.
            unsafe { libc::kill(self.pid, libc::SIGCONT) };
        }
        self.stop_watchdog();
    }
}

/// Whether `/proc/PID/stat` shows the process stopped (`T`) in every thread.
pub fn process_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            return false;
        };
        // The state follows the `(comm)` field, which may itself hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if state != Some("T") {
            return false;
        }
        any = true;
    }
    any
}

/// A listener in this process with a given backlog that accepts nothing
/// until resumed, then answers every connection with a small `200 OK`. The
/// purest probe subject: no server code between the kernel and the probe.
pub struct HeldListener {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HeldListener {
    /// Binds `addr` (port 0 for any) and listens with `backlog`.
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<HeldListener> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        sock.listen(backlog)?;
        let listener: TcpListener = sock.into();
        let addr = listener.local_addr()?;
        Ok(HeldListener {
            listener: Some(listener),
            addr,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Pause for HeldListener {
    fn describe(&self) -> String {
        format!(
            "in-process listener on {} held without accepting",
            self.addr
        )
    }

    fn pause(&mut self) -> Result<(), ProbeError> {
        Ok(())
    }

    fn resume(&mut self) -> Result<(), ProbeError> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name("floodgate-held-listener".into())
            .spawn(move || {
                listener.set_nonblocking(true).ok();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => answer_ok(stream),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            wait_readable(listener.as_raw_fd(), Duration::from_millis(50));
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(ProbeError::Socket)?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for HeldListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer_ok(mut stream: TcpStream) {
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    // Read the request head, so closing does not reset unread bytes.
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.len() > 8192 {
            return;
        }
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
}

fn wait_readable(fd: i32, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signal_resumes_in_drop() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        {
            let mut stop = StopSignal::new(pid);
            stop.pause().unwrap();
            assert!(process_stopped(pid));
        }
        // SIGCONT is delivered asynchronously too: wait for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(2);
        while process_stopped(pid) {
            assert!(Instant::now() < deadline, "process {pid} still stopped");
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
