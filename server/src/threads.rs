//! The `threads` model: one OS thread per connection, which blocks in
//! poll(2) on its own socket and on the server's phase pipes, and moves
//! bytes and deadlines between the socket and `floodgate_proto::Connection`
//! as the async task does (`conn::drive`). No protocol decision is made
//! here. The accept loop, its permits (the thread bound is
//! `--max-connections`) and the access policy are the async model's.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_proto::{Close, Connection, Event};

use crate::shared::{Permit, Phase, Shared};

/// The most bytes taken from the socket in one read; each connection's
/// thread owns its buffer.
const READ_CHUNK: usize = 16 * 1024;

/// A connection thread's stack: a connection needs a few KiB of it; the
/// rest only bounds what a thread may reserve.
const STACK: usize = 256 * 1024;

/// How long a graceful close waits for the peer's EOF after our FIN (as the
/// async model's linger does).
const LINGER: Duration = Duration::from_secs(2);

/// The connections' bound when `--max-connections` is not given: each is a
/// thread.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Two pipes that become readable, and stay so, when the server starts to
/// drain and when it forces the rest closed: what a blocked connection
/// thread polls besides its socket, so a phase change reaches it at once.
#[derive(Debug)]
pub(crate) struct PhasePipes {
    draining: (OwnedFd, OwnedFd),
    forced: (OwnedFd, OwnedFd),
}

impl PhasePipes {
    pub(crate) fn new() -> io::Result<PhasePipes> {
        Ok(PhasePipes {
            draining: pipe()?,
            forced: pipe()?,
        })
    }

    /// Makes the pipe of `phase` readable.
    pub(crate) fn signal(&self, phase: Phase) {
        let fd = match phase {
            Phase::Running => return,
            Phase::Draining => &self.draining.1,
            Phase::Forced => &self.forced.1,
        };
        // SAFETY: a one-byte write from a live buffer to an open pipe.
        unsafe { libc::write(fd.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nothing else.
    Ok(unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    })
}

/// Serves `stream` on a thread of its own, which holds `permit` until it
/// ends in any way; a panic is caught and logged.
pub(crate) fn spawn(
    stream: TcpStream,
    permit: Permit,
    shared: Arc<Shared>,
    client: Option<floodgate_proto::access::Client>,
) {
    // Named for the port it was accepted on, as `top -H` shows it.
    let port = stream.local_addr().map_or(0, |a| a.port());
    let spawned = std::thread::Builder::new()
        .name(format!("conn {port}"))
        .stack_size(STACK)
        .spawn(move || {
            let _permit = permit;
            let peer = stream.peer_addr();
            if std::panic::catch_unwind(AssertUnwindSafe(|| serve(stream, &shared, client)))
                .is_err()
            {
                tracing::error!(?peer, "connection thread panicked; connection dropped");
            }
        });
    if let Err(err) = spawned {
        // The closure, with the socket and the permit, is dropped.
        tracing::warn!(%err, "cannot start a connection thread; connection closed");
    }
}

/// The connection loop: events, output, close, deadlines, input, EOF and
/// the server's phase, in the order `conn::drive` takes them.
fn serve(stream: TcpStream, shared: &Shared, client: Option<floodgate_proto::access::Client>) {
    let pipes = shared
        .pipes
        .as_ref()
        .expect("the threads model has its pipes");
    let _ = stream.set_nodelay(true);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut conn =
        Connection::with_client(shared.limits, shared.stats.clone(), client, Instant::now());
    let mut buf = vec![0u8; READ_CHUNK];
    let mut told = false;
    let mut peer_closed = false;
    let mut answered = false;
    loop {
        let phase = shared.phase();
        if phase != Phase::Running && !told {
            told = true;
            conn.handle_shutdown(Instant::now());
        }
        if phase == Phase::Forced {
            abort(&stream);
            return;
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::PauseAccept(d) => shared.pause_accept(d),
            }
        }
        answered |= !conn.poll_transmit().is_empty();
        let blocked = match flush(&stream, &mut conn) {
            Ok(blocked) => blocked,
            Err(_) => return,
        };
        match conn.poll_close() {
            Some(Close::Abort) => {
                abort(&stream);
                return;
            }
            Some(Close::Graceful) if !blocked => {
                linger(stream, shared, pipes, peer_closed || !answered);
                return;
            }
            _ => {}
        }
        let now = Instant::now();
        let deadline = conn.poll_timeout();
        if deadline.is_none_or(|d| d > now) {
            let want_read = conn.wants_read() && !peer_closed;
            let phase_fd = if told {
                &pipes.forced.0
            } else {
                &pipes.draining.0
            };
            let readable = match wait(
                stream.as_raw_fd(),
                want_read,
                blocked,
                phase_fd.as_raw_fd(),
                deadline.map(|d| d - now),
            ) {
                Ok(readable) => readable,
                Err(_) => return,
            };
            // Writable, a phase change or the deadline: the next turn acts.
            if readable {
                match (&stream).read(&mut buf) {
                    Ok(0) => {
                        peer_closed = true;
                        conn.handle_eof(Instant::now());
                    }
                    Ok(n) => conn.handle_read(&buf[..n], Instant::now()),
                    Err(err) if is_transient(&err) => {}
                    Err(_) => return,
                }
            }
        }
        let now = Instant::now();
        if conn.poll_timeout().is_some_and(|d| d <= now) {
            conn.handle_timeout(now);
        }
    }
}

/// Writes what the connection has pending until it is all written or the
/// socket is full (`Ok(true)`).
fn flush(stream: &TcpStream, conn: &mut Connection) -> io::Result<bool> {
    let now = Instant::now();
    loop {
        let out = conn.poll_transmit();
        if out.is_empty() {
            return Ok(false);
        }
        match (&*stream).write(out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.handle_written(n, now),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Blocks in poll(2) until the socket is readable (when `read`), writable
/// (when `write`), `phase_fd` is readable, or `timeout` passes (`None`:
/// no deadline); whether the socket has something to read.
fn wait(
    socket: RawFd,
    read: bool,
    write: bool,
    phase_fd: RawFd,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    let mut fds = [
        libc::pollfd {
            fd: socket,
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: phase_fd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Rounded up, so a deadline is never polled for 0 ms before it is due.
    let ms = timeout.map_or(-1, |t| {
        i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    loop {
        // SAFETY: `fds` is a live array of two pollfd structs.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if rc >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    // An error or hang-up shows as readable: the read says which.
    Ok(read && fds[0].revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
}

fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Ends the connection with a reset (SO_LINGER 0), discarding unsent output.
fn abort(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Ends the connection gracefully: our FIN, then read and discard until
/// the peer's EOF, [`LINGER`] or a forced shutdown; with `at_once`, right
/// after the FIN.
fn linger(stream: TcpStream, shared: &Shared, pipes: &PhasePipes, at_once: bool) {
    if stream.shutdown(Shutdown::Write).is_err() || at_once {
        return;
    }
    let until = Instant::now() + LINGER;
    let mut buf = [0u8; 4096];
    loop {
        if shared.phase() == Phase::Forced {
            abort(&stream);
            return;
        }
        let now = Instant::now();
        if now >= until {
            return;
        }
        let readable = match wait(
            stream.as_raw_fd(),
            true,
            false,
            pipes.forced.0.as_raw_fd(),
            Some(until - now),
        ) {
            Ok(readable) => readable,
            Err(_) => return,
        };
        if readable {
            match (&stream).read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if is_transient(&err) => {}
                Err(_) => return,
            }
        }
    }
}
