//! The backlog probe: stop a listener from accepting, fire a bounded burst
//! of concurrent connects, count how many complete inside the first SYN
//! timeout (that is the accept queue's capacity, backlog + 1), read the queue
//! through sock_diag as corroboration, resume the listener and check that
//! every held connection is then served.
//!
//! How the target is stopped is a [`Pause`]: the reference server's
//! `/admin/pause-accept` endpoint ([`PauseEndpoint`]), SIGSTOP/SIGCONT of a
//! process ([`StopSignal`], which resumes the process in `Drop` so no exit
//! path leaves it stopped), or an in-process listener that simply does not
//! accept until told to ([`HeldListener`]). Starting a reference server,
//! namespaces and flags belong to the `floodgate` binary, not here.
//!
//! The probe runs on the calling thread: connects are non-blocking and
//! polled with poll(2); the only other thread is the evidence recorder
//! (`floodgate_kernel::Evidence`), and [`HeldListener`] starts one accept thread
//! when it is resumed.

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

use floodgate_kernel::{self as kernel, CounterDelta, Evidence, EvidenceReport};
use floodgate_reports::ProbeReport;
use floodgate_reports::verdict;

/// The most connects one burst may fire: enough for somaxconn 4096 + 1 plus
/// a margin, small enough to stay a probe rather than a flood.
pub const MAX_CONNECTS: usize = 5000;

/// Why a probe failed. Every variant leaves the target resumed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connects must be between 2 and {MAX_CONNECTS}, got {0}")]
    Connects(usize),
    #[error(
        "the window must be between 10 ms and 950 ms (inside the first 1 s SYN timeout), got {0:?}"
    )]
    Window(Duration),
    #[error("cannot pause the target through {endpoint}: {reason}")]
    PauseEndpoint { endpoint: String, reason: String },
    #[error("cannot signal process {pid}: {error}")]
    Signal { pid: i32, error: io::Error },
    #[error("process {pid} did not stop within {waited:?} after SIGSTOP")]
    NotStopped { pid: i32, waited: Duration },
    #[error(
        "{0} connections were already waiting in the accept queue of {1} before the burst; is the target really paused?"
    )]
    QueueNotEmpty(u32, SocketAddr),
    #[error(
        "the accept pause ran out before the burst was counted, so the count would include \
         accepted connections; the machine may be too busy, or the burst too large (try fewer \
         connects)"
    )]
    PauseExpired,
    #[error("cannot open a client socket: {0}")]
    Socket(io::Error),
    #[error(
        "cannot raise the descriptor limit to {wanted}: {error}; raise the hard limit or fire \
         fewer connects"
    )]
    FdLimit { wanted: u64, error: io::Error },
    #[error("interrupted")]
    Interrupted,
}

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
}

impl PauseEndpoint {
    pub fn new(addr: SocketAddr, pause: Duration) -> PauseEndpoint {
        PauseEndpoint {
            addr,
            pause,
            until: None,
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
        let pause = format!(
            "POST /admin/pause-accept?ms={} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            self.pause.as_millis(),
            self.addr
        );
        // A second request on the same connection, sent only after the first
        // response: the reference server applies a pause after flushing its
        // response, so the burst could otherwise start before the pause does.
        // It reads the next request only once the pause is applied, so the
        // second response proves the pause is in force.
        let fence = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let asked = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut stream =
            TcpStream::connect_timeout(&self.addr, timeout).map_err(|e| fail(e.to_string()))?;
        let response =
            exchange_on(&mut stream, &pause, timeout).map_err(|e| fail(e.to_string()))?;
        let status = status_code(&response).ok_or_else(|| fail("no HTTP response".into()))?;
        if !(200..300).contains(&status) {
            return Err(fail(format!(
                "answered {status}; is the target floodgate's reference server?"
            )));
        }
        let fenced = exchange_on(&mut stream, &fence, timeout).map_err(|e| fail(e.to_string()))?;
        if status_code(&fenced).is_none() {
            return Err(fail(
                "no response to GET /health after the pause; keep-alive is needed".into(),
            ));
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

/// What to probe and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: SocketAddr,
    /// Connects in the burst; more than the expected capacity.
    pub connects: usize,
    /// How long after the burst connects may complete and still count;
    /// below the 1 s initial SYN retransmission timeout, so a connect that
    /// completes in it was never dropped.
    pub window: Duration,
    /// How long held connections get to be served after the resume.
    pub serve_timeout: Duration,
    /// Path requested on every held connection after the resume.
    pub check_path: String,
    /// The backlog the listener was asked for, when known.
    pub configured_backlog: Option<u32>,
    /// `net.core.somaxconn` of the target's namespace, when known.
    pub somaxconn: Option<u32>,
}

impl Config {
    /// A default burst size: the expected capacity plus a margin when a
    /// backlog is known, else enough for the largest default somaxconn.
    pub fn default_connects(expected_backlog: Option<u32>) -> usize {
        match expected_backlog {
            Some(b) => (b as usize + 1 + 32).min(MAX_CONNECTS),
            None => 4096 + 1 + 32,
        }
    }
}

/// Runs one probe. `pause` is resumed on every path out of this function;
/// `interrupted` (set by a signal handler) makes it stop early with
/// [`ProbeError::Interrupted`], also after resuming.
pub fn run(
    config: &Config,
    pause: &mut dyn Pause,
    interrupted: &AtomicBool,
) -> Result<ProbeReport, ProbeError> {
    if !(2..=MAX_CONNECTS).contains(&config.connects) {
        return Err(ProbeError::Connects(config.connects));
    }
    if config.window < Duration::from_millis(10) || config.window > Duration::from_millis(950) {
        return Err(ProbeError::Window(config.window));
    }
    let wanted = config.connects as u64 + 64;
    kernel::raise_fd_limit(Some(wanted)).map_err(|error| ProbeError::FdLimit { wanted, error })?;

    let local = kernel::local_listener(config.target).is_some();
    let counters_before = if local {
        kernel::read_counters().ok()
    } else {
        None
    };
    let recorder = Evidence::for_target(config.target, Duration::from_millis(20))
        .ok()
        .flatten();

    let result = burst_and_check(config, pause, interrupted, local);
    // Resume on every path, including an error inside the burst.
    let resumed = pause.resume();
    let evidence = recorder.map(|r| r.finish());
    let mut burst = result?;
    resumed?;
    serve_check(config, &mut burst, pause.deadline(), interrupted)?;

    let counters = match (counters_before, kernel::read_counters().ok()) {
        (Some(b), Some(a)) if local => Some(a.since(&b)),
        _ => None,
    };
    Ok(build_report(
        config,
        pause.describe(),
        burst,
        local,
        counters,
        evidence,
    ))
}

/// What the burst found, before the serve check.
struct Burst {
    held: Vec<Socket>,
    connects: u64,
    timed_out: u64,
    refused: u64,
    reset: u64,
    other_errors: u64,
    syn_retransmitted: u64,
    dropped_syns: u64,
    queue_depth: Option<u32>,
    kernel_backlog: Option<u32>,
    syn_recv: Option<u32>,
    served: u64,
    unserved: u64,
}

fn burst_and_check(
    config: &Config,
    pause: &mut dyn Pause,
    interrupted: &AtomicBool,
    local: bool,
) -> Result<Burst, ProbeError> {
    let port = config.target.port();
    pause.pause()?;
    if local {
        if let Ok(state) = kernel::port_state(port) {
            if state.queue_depth() > 0 {
                return Err(ProbeError::QueueNotEmpty(
                    state.queue_depth(),
                    config.target,
                ));
            }
        }
    }

    let mut burst = Burst {
        held: Vec::new(),
        connects: 0,
        timed_out: 0,
        refused: 0,
        reset: 0,
        other_errors: 0,
        syn_retransmitted: 0,
        dropped_syns: 0,
        queue_depth: None,
        kernel_backlog: None,
        syn_recv: None,
        served: 0,
        unserved: 0,
    };
    // Fire every connect first, from one thread, so each SYN reaches the
    // listener after the previous one: the queue fills in order and no
    // handshake can overflow at ACK time.
    let mut pending: Vec<Socket> = Vec::with_capacity(config.connects);
    for _ in 0..config.connects {
        let sock = Socket::new(Domain::for_address(config.target), Type::STREAM, None)
            .map_err(ProbeError::Socket)?;
        sock.set_nonblocking(true).map_err(ProbeError::Socket)?;
        burst.connects += 1;
        match sock.connect(&config.target.into()) {
            Ok(()) => burst.held.push(sock),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => pending.push(sock),
            Err(e) => classify_error(&mut burst, &e),
        }
    }
    let deadline = Instant::now() + config.window;
    while !pending.is_empty() {
        if interrupted.load(Ordering::Relaxed) {
            return Err(ProbeError::Interrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(50));
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32,
            )
        };
        if n <= 0 {
            continue;
        }
        let mut still = Vec::with_capacity(pending.len());
        for (sock, fd) in pending.into_iter().zip(&fds) {
            if fd.revents == 0 {
                still.push(sock);
                continue;
            }
            match sock.take_error() {
                Ok(None) => burst.held.push(sock),
                Ok(Some(e)) | Err(e) => classify_error(&mut burst, &e),
            }
        }
        pending = still;
    }
    if local {
        if let Ok(state) = kernel::port_state(port) {
            burst.queue_depth = Some(state.queue_depth());
            burst.kernel_backlog = Some(state.backlog());
            burst.syn_recv = Some(state.syn_recv);
        }
    }
    if let Some(until) = pause.deadline() {
        if Instant::now() >= until {
            return Err(ProbeError::PauseExpired);
        }
    }
    burst.timed_out = pending.len() as u64;
    // Every SYN a connect sent and the listener dropped: the first one and
    // each retransmit of a connect that never completed, and the
    // retransmits of one that completed late.
    burst.dropped_syns = pending
        .iter()
        .filter_map(|s| kernel::tcp_info(s).ok())
        .map(|i| 1 + u64::from(i.total_retrans))
        .sum();
    // Close the connects still in SYN_SENT before resuming: otherwise their
    // retransmitted SYNs would join the queue after the resume and blur the
    // count. Closing a SYN_SENT socket sends nothing.
    drop(pending);
    for sock in &burst.held {
        if let Ok(info) = kernel::tcp_info(sock) {
            if info.total_retrans > 0 {
                burst.syn_retransmitted += 1;
                burst.dropped_syns += u64::from(info.total_retrans);
            }
        }
    }
    Ok(burst)
}

fn classify_error(burst: &mut Burst, e: &io::Error) {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => burst.refused += 1,
        Some(libc::ECONNRESET) => burst.reset += 1,
        Some(libc::ETIMEDOUT) => burst.timed_out += 1,
        _ => burst.other_errors += 1,
    }
}

/// Sends one request on every held connection and waits (bounded) for the
/// responses.
fn serve_check(
    config: &Config,
    burst: &mut Burst,
    pause_until: Option<Instant>,
    interrupted: &AtomicBool,
) -> Result<(), ProbeError> {
    let start = pause_until.unwrap_or_else(Instant::now).max(Instant::now());
    let deadline = start + config.serve_timeout;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        config.check_path, config.target
    );
    let mut streams = Vec::with_capacity(burst.held.len());
    for sock in burst.held.drain(..) {
        let mut stream: TcpStream = sock.into();
        let ok = stream.set_nonblocking(false).is_ok()
            && stream.set_write_timeout(Some(config.serve_timeout)).is_ok()
            && stream.write_all(request.as_bytes()).is_ok();
        if ok {
            streams.push(stream);
        } else {
            burst.unserved += 1;
        }
    }
    for mut stream in streams {
        if interrupted.load(Ordering::Relaxed) {
            return Err(ProbeError::Interrupted);
        }
        match read_response(&mut stream, deadline) {
            Some(_) => burst.served += 1,
            None => burst.unserved += 1,
        }
    }
    Ok(())
}

/// Reads until the peer closes or the deadline; returns the status code of
/// the HTTP response read, if any.
fn read_response(stream: &mut TcpStream, deadline: Instant) -> Option<u16> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.len() > 64 * 1024 || response_complete(&seen) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    status_code(&seen)
}

/// Writes `request` on `stream` and reads one response (complete by
/// Content-Length, or by the peer closing), within `timeout`.
fn exchange_on(stream: &mut TcpStream, request: &str, timeout: Duration) -> io::Result<Vec<u8>> {
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if response_complete(&seen) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if seen.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(seen)
}

/// Whether `seen` holds a whole response with a Content-Length body. A
/// response without Content-Length is complete only when the peer closes.
fn response_complete(seen: &[u8]) -> bool {
    let Some(head_end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&seen[..head_end]);
    let length = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|len| seen.len() >= head_end + 4 + len)
}

fn status_code(response: &[u8]) -> Option<u16> {
    let line = response.split(|b| *b == b'\n').next()?;
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
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

fn build_report(
    config: &Config,
    pause: String,
    burst: Burst,
    local: bool,
    counters: Option<CounterDelta>,
    evidence: Option<EvidenceReport>,
) -> ProbeReport {
    let capacity = burst.served + burst.unserved;
    let clamped_backlog = match (config.configured_backlog, config.somaxconn) {
        (Some(c), Some(s)) => Some(c.min(s)),
        (Some(c), None) => Some(c),
        _ => None,
    };
    let mut report = ProbeReport {
        target: config.target,
        capacity,
        implied_backlog: capacity.saturating_sub(1),
        configured_backlog: config.configured_backlog,
        somaxconn: config.somaxconn,
        clamped_backlog,
        kernel_backlog: burst.kernel_backlog,
        queue_depth: burst.queue_depth,
        syn_recv: burst.syn_recv,
        pause,
        connects: burst.connects,
        timed_out: burst.timed_out,
        refused: burst.refused,
        reset: burst.reset,
        other_errors: burst.other_errors,
        syn_retransmitted: burst.syn_retransmitted,
        dropped_syns: burst.dropped_syns,
        window_ms: config.window.as_millis() as u64,
        served: burst.served,
        unserved: burst.unserved,
        local,
        counters,
        explanation: Vec::new(),
        verdict: verdict::diagnose(&verdict::Inputs::default()),
        evidence,
        netns: None,
    };
    report.conclude();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_held(backlog: i32, connects: usize) -> ProbeReport {
        let mut held = HeldListener::bind("127.0.0.1:0".parse().unwrap(), backlog).unwrap();
        let config = Config {
            target: held.local_addr(),
            connects,
            window: Duration::from_millis(300),
            serve_timeout: Duration::from_secs(5),
            check_path: "/health".into(),
            configured_backlog: Some(backlog as u32),
            somaxconn: None,
        };
        run(&config, &mut held, &AtomicBool::new(false)).unwrap()
    }

    #[test]
    fn held_listener_capacity_is_backlog_plus_one() {
        for backlog in [1, 8] {
            let r = probe_held(backlog, backlog as usize + 10);
            assert_eq!(r.capacity, backlog as u64 + 1, "{:#?}", r.explanation);
            assert_eq!(r.implied_backlog, backlog as u64);
            assert_eq!(r.timed_out, 9);
            assert_eq!(r.queue_depth, Some(backlog as u32 + 1));
            assert_eq!(r.kernel_backlog, Some(backlog as u32));
            assert_eq!(r.served, backlog as u64 + 1);
            assert_eq!(r.unserved, 0);
            assert!(r.local);
        }
    }

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

    #[test]
    fn response_completeness_follows_content_length() {
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        ));
        assert!(!response_complete(b"HTTP/1.1 200 OK\r\n\r\nok"));
    }

    fn remote_report() -> ProbeReport {
        let config = Config {
            target: "192.0.2.7:80".parse().unwrap(),
            connects: 200,
            window: Duration::from_millis(900),
            serve_timeout: Duration::from_secs(5),
            check_path: "/health".into(),
            configured_backlog: Some(1024),
            somaxconn: Some(128),
        };
        let burst = Burst {
            held: Vec::new(),
            connects: 200,
            timed_out: 71,
            refused: 0,
            reset: 0,
            other_errors: 0,
            syn_retransmitted: 0,
            dropped_syns: 71,
            queue_depth: None,
            kernel_backlog: None,
            syn_recv: None,
            served: 129,
            unserved: 0,
        };
        build_report(&config, "SIGSTOP".into(), burst, false, None, None)
    }

    #[test]
    fn remote_report_explains_the_clamp_and_its_missing_evidence() {
        let r = remote_report();
        assert_eq!(r.capacity, 129);
        assert_eq!(r.implied_backlog, 128);
        assert_eq!(r.clamped_backlog, Some(128));
        assert_eq!(
            r.explanation,
            [
                "the accept queue held 129 connections while the target was paused: backlog 128 + 1",
                "71 of 200 connects did not complete within 900 ms: their SYNs were dropped because \
                 the queue was full",
                "backlog 1024 was asked for, but net.core.somaxconn is 128 in the target's network \
                 namespace, so listen(2) clamped it to 128; the queue holds 128 + 1 = 129",
                "the target is not in this network namespace: no sock_diag or counter evidence, \
                 the count rests on the client side",
                "all 129 held connections were served after the target resumed",
            ]
        );
        assert_eq!(
            r.verdict.diagnosis,
            verdict::Diagnosis::DroppedSynsSuspected
        );
        assert!(r.verdict.notes[0].contains("rests on client-side signatures"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"SSH-2.0\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
