//! The burst: with the target paused, fire every connect, count those that
//! complete inside the window and classify those that fail, read the queue
//! through sock_diag, and tell the SYNs the listener dropped from TCP_INFO.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use floodgate_kernel as kernel;
use socket2::{Domain, Socket, Type};

use crate::{Config, Pause, ProbeError};

/// What the burst found, before the serve check.
pub(crate) struct Burst {
    pub(crate) held: Vec<Socket>,
    pub(crate) connects: u64,
    pub(crate) timed_out: u64,
    pub(crate) refused: u64,
    pub(crate) reset: u64,
    pub(crate) other_errors: u64,
    pub(crate) syn_retransmitted: u64,
    pub(crate) dropped_syns: u64,
    pub(crate) queue_depth: Option<u32>,
    pub(crate) kernel_backlog: Option<u32>,
    pub(crate) syn_recv: Option<u32>,
    pub(crate) served: u64,
    pub(crate) unserved: u64,
}

/// Pauses the target, makes sure its accept queue starts empty (local
/// targets), fires the burst and counts it. The caller resumes the target,
/// whatever this returns.
pub(crate) fn fire(
    config: &Config,
    pause: &mut dyn Pause,
    interrupted: &AtomicBool,
    local: bool,
) -> Result<Burst, ProbeError> {
    let port = config.target().port();
    pause.pause()?;
    if local {
        if let Ok(state) = kernel::port_state(port) {
            if state.queue_depth() > 0 {
                return Err(ProbeError::QueueNotEmpty(
                    state.queue_depth(),
                    config.target(),
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
    let mut pending: Vec<Socket> = Vec::with_capacity(config.connects());
    for _ in 0..config.connects() {
        let sock = Socket::new(Domain::for_address(config.target()), Type::STREAM, None)
            .map_err(ProbeError::Socket)?;
        sock.set_nonblocking(true).map_err(ProbeError::Socket)?;
        burst.connects += 1;
        match sock.connect(&config.target().into()) {
            Ok(()) => burst.held.push(sock),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => pending.push(sock),
            Err(e) => classify_error(&mut burst, &e),
        }
    }
    let deadline = Instant::now() + config.window();
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
