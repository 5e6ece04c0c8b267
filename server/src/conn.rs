//! The per-connection task: moves bytes, deadlines and the shutdown signal
//! between one socket and one `floodgate_proto::Connection`, and ends the
//! socket the way the connection asks. It makes no protocol decisions; the
//! only things decided here are IO matters (a reset peer ends the task, a
//! panicking task is caught and logged). Also the refusal of a connection
//! over `--max-connections`.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use floodgate_proto::{Close, Connection, Event};
use futures_lite::future;

use crate::shared::{Permit, Phase, PhaseWatch, Shared};
use crate::transport::Transport;

/// The most bytes taken from the socket in one read.
const READ_CHUNK: usize = 64 * 1024;

/// How long a graceful close waits for the peer's EOF after our FIN, so
/// that the peer reads our last response instead of a reset caused by
/// request bytes still arriving.
const LINGER: Duration = Duration::from_secs(2);

/// Writes done before the task yields to others, so one fast reader of a
/// 16 MiB body cannot hold an executor thread.
const WRITES_PER_TURN: usize = 32;

thread_local! {
    /// Read buffer shared by every connection on this executor thread. A read
    /// fills it and hands it to `Connection::handle_read` without an await in
    /// between, so a connection holds no read buffer while it waits; an idle
    /// keep-alive connection costs its state, not 64 KiB.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Serves `stream` on the executor. The task owns `permit` and drops it when
/// it ends in any way, including a panic, which is caught here so one bad
/// connection cannot take the server down.
pub(crate) fn spawn(
    stream: TcpStream,
    permit: Permit,
    shared: Arc<Shared>,
    client: Option<floodgate_proto::access::Client>,
) {
    if shared.pipes.is_some() && shared.tls.is_none() {
        crate::threads::spawn(stream, permit, shared, client);
        return;
    }
    let fd = stream.as_raw_fd();
    let Some(stream) = register(stream) else {
        return;
    };
    // Two task types, so a plain connection's task is no larger for the
    // TLS path it does not take.
    if shared.tls.is_some() {
        spawn_guarded(permit, fd, crate::tls::serve(stream, shared, client));
    } else {
        spawn_guarded(permit, fd, drive(stream, shared, client));
    }
}

/// Runs `task`, which owns the socket `fd`, on the executor, holding
/// `permit` until it ends, and logs a panic instead of propagating it.
pub(crate) fn spawn_guarded(
    permit: Permit,
    fd: RawFd,
    task: impl Future<Output = ()> + Send + 'static,
) -> async_std::task::JoinHandle<()> {
    async_std::task::spawn(Guarded {
        task,
        _permit: permit,
        fd,
    })
}

/// A connection task with its permit and a panic guard.
///
/// A struct rather than an `async` block: an `async move` block that awaits
/// a captured future keeps room for the capture and for the future being
/// awaited, doubling every connection's task allocation.
struct Guarded<F> {
    /// Structurally pinned: never moved out of `Guarded`.
    task: F,
    /// Released when the executor drops the finished (or panicked) task.
    _permit: Permit,
    /// The socket `task` owns, to name the peer if it panics. The number,
    /// not the address: 4 bytes instead of 32 in every connection's task.
    fd: RawFd,
}

impl<F: Future<Output = ()>> Future for Guarded<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `task` is pinned along with `self`: it is only ever
        // reached through this projection, never moved, and `Guarded` has no
        // Drop impl and is not Unpin unless `F` is.
        let this = unsafe { self.get_unchecked_mut() };
        let task = unsafe { Pin::new_unchecked(&mut this.task) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| task.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(non-string panic payload)");
                let peer = peer_of(this.fd);
                tracing::error!(
                    peer,
                    message,
                    "connection task panicked; connection dropped"
                );
                // Never polled again; the executor drops it, and the permit
                // with it.
                Poll::Ready(())
            }
        }
    }
}

/// The peer address of socket `fd`, for a log line.
fn peer_of(fd: RawFd) -> String {
    // SAFETY: called while the panicked task, which owns the socket, is
    // still alive (it is dropped only after `poll` returns), so `fd` is open
    // for the duration of this borrow. The task's state survives the unwind.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    match socket2::SockRef::from(&fd).peer_addr() {
        Ok(addr) => addr
            .as_socket()
            .map_or_else(|| "(not an IP peer)".to_string(), |a| a.to_string()),
        Err(err) => format!("(unknown: {err})"),
    }
}

/// Refuses a connection because `--max-connections` are open: one
/// non-blocking write of the 503, then close. A refused connection costs no
/// task and never waits on the client.
pub(crate) fn reject(stream: TcpStream, response: &[u8]) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = (&stream).write(response);
    let _ = stream.shutdown(Shutdown::Write);
    // Discard what the client already sent: closing with unread bytes makes
    // the kernel send a reset instead of the FIN.
    SCRATCH.with_borrow_mut(|buf| {
        let _ = (&stream).read(buf);
    });
}

/// What ended a wait.
enum Wake {
    /// A read was handed to the connection.
    Read(ReadOutcome),
    Writable,
    Timer,
    Phase,
}

/// What a read came to.
enum ReadOutcome {
    /// Bytes, handed to the connection; or none, the readiness was spurious.
    Bytes,
    /// The peer's EOF.
    Eof,
    /// A reset or another error: the peer will read nothing more from us.
    Failed,
}

/// What ended a wait in the linger.
enum LingerWake {
    Readable,
    Timer,
    Phase,
}

/// What writing everything `poll_transmit` had came to.
enum Flush {
    /// Nothing is left to write.
    Done,
    /// The socket buffer is full: wait until writable.
    Blocked,
    /// Output is left, but this task has written enough for one turn.
    Yield,
}

/// The accepted socket, set up and registered with the reactor.
fn register(stream: TcpStream) -> Option<Async<TcpStream>> {
    // Responses are written whole; Nagle would only delay the last segment.
    let _ = stream.set_nodelay(true);
    match Async::new(stream) {
        Ok(stream) => Some(stream),
        Err(err) => {
            tracing::warn!(%err, "cannot register an accepted connection with the reactor");
            None
        }
    }
}

/// The connection loop, over a plain socket or a TLS stream alike: every
/// protocol-facing step (events, output, close, deadlines, input, EOF,
/// shutdown) is this one function's.
pub(crate) async fn drive<T: Transport>(
    mut stream: T,
    shared: Arc<Shared>,
    client: Option<floodgate_proto::access::Client>,
) {
    let shared = &*shared;
    let mut conn =
        Connection::with_client(shared.limits, shared.stats.clone(), client, Instant::now());
    let mut watch = PhaseWatch::new(shared);
    let mut told = false;
    // One timer for the connection's life, armed lazily: it is moved earlier
    // when the connection's deadline moves earlier, but left alone when the
    // deadline moves later (the usual case: each request pushes the idle
    // deadline out). Firing early is harmless, since the deadline is checked
    // against the clock; this keeps the reactor's timer queue out of the
    // per-request path.
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;
    let mut peer_closed = false;
    // Whether any output was ever due: a close of a connection that was
    // never sent a byte needs no linger, as a reset could lose it nothing.
    let mut answered = false;

    loop {
        if let Some(phase) = watch.take_change(shared) {
            if !told {
                told = true;
                conn.handle_shutdown(Instant::now());
            }
            if phase == Phase::Forced {
                abort(stream.into_socket());
                return;
            }
        }

        // Events first: a pause must be in force before the client reads
        // the response that confirms it.
        while let Some(event) = conn.poll_event() {
            match event {
                Event::PauseAccept(d) => shared.pause_accept(d),
            }
        }
        answered |= !conn.poll_transmit().is_empty();
        // A poll_fn only lends the task's context to the writes: it never
        // suspends.
        let flushed =
            match future::poll_fn(|cx| Poll::Ready(flush(cx, &mut stream, &mut conn))).await {
                Ok(flushed) => flushed,
                // The peer is gone (reset, broken pipe): nothing more can be sent.
                Err(_) => return,
            };
        match conn.poll_close() {
            Some(Close::Abort) => {
                abort(stream.into_socket());
                return;
            }
            // Bytes the transport still holds (TLS records) go out first.
            Some(Close::Graceful) if !matches!(flushed, Flush::Blocked) => {
                // Boxed: a connection lingers once, at its end, and an
                // unboxed linger would enlarge every idle connection's state.
                drop(conn);
                Box::pin(linger(stream, shared, watch, peer_closed || !answered)).await;
                return;
            }
            _ => {}
        }
        if let Flush::Yield = flushed {
            future::yield_now().await;
            continue;
        }

        let deadline = conn.poll_timeout();
        if let Some(d) = deadline {
            if armed.is_none_or(|a| d < a) {
                timer.set_at(d);
                armed = Some(d);
            }
        }
        let want_read = conn.wants_read() && !peer_closed;
        let want_write = matches!(flushed, Flush::Blocked);
        let wake = if deadline.is_some_and(|d| d <= Instant::now()) {
            Wake::Timer
        } else {
            // One poll_fn over the transport's own waker slots, the timer
            // and the phase: no per-wait future state or waker list, which
            // keeps an idle connection small (see the crate docs on memory).
            // A read is handed to the connection inside it, while the
            // thread's scratch buffer is borrowed.
            future::poll_fn(|cx| {
                if want_read {
                    if let Poll::Ready(read) = read_once(cx, &mut stream, &mut conn) {
                        return Poll::Ready(Wake::Read(read));
                    }
                }
                if want_write && stream.poll_writable(cx).is_ready() {
                    return Poll::Ready(Wake::Writable);
                }
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                if watch.poll_changed(shared, cx).is_ready() {
                    return Poll::Ready(Wake::Phase);
                }
                Poll::Pending
            })
            .await
        };

        let now = Instant::now();
        match wake {
            Wake::Read(ReadOutcome::Eof) => {
                peer_closed = true;
                conn.handle_eof(now);
            }
            Wake::Read(ReadOutcome::Bytes) => {}
            Wake::Read(ReadOutcome::Failed) => return,
            // The next turn of the loop writes.
            Wake::Writable => {}
            Wake::Timer => armed = None,
            // The next turn of the loop acts on it.
            Wake::Phase => {}
        }
        if conn.poll_timeout().is_some_and(|d| d <= now) {
            conn.handle_timeout(now);
        }
    }
}

/// One non-blocking read into the thread's scratch buffer, handed to the
/// connection at once.
fn read_once(
    cx: &mut Context<'_>,
    stream: &mut impl Transport,
    conn: &mut Connection,
) -> Poll<ReadOutcome> {
    SCRATCH.with_borrow_mut(|buf| match stream.poll_read(cx, buf) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Ok(0)) => Poll::Ready(ReadOutcome::Eof),
        Poll::Ready(Ok(n)) => {
            conn.handle_read(&buf[..n], Instant::now());
            Poll::Ready(ReadOutcome::Bytes)
        }
        Poll::Ready(Err(err)) if is_transient(&err) => Poll::Ready(ReadOutcome::Bytes),
        Poll::Ready(Err(_)) => Poll::Ready(ReadOutcome::Failed),
    })
}

/// Writes what the connection has pending until it is all written (and
/// flushed out of the transport), the socket is full, or this turn's budget
/// is spent.
fn flush(
    cx: &mut Context<'_>,
    stream: &mut impl Transport,
    conn: &mut Connection,
) -> io::Result<Flush> {
    // One clock read per turn: the write deadline needs progress to the
    // millisecond, not the nanosecond.
    let now = Instant::now();
    for _ in 0..WRITES_PER_TURN {
        let out = conn.poll_transmit();
        if out.is_empty() {
            return match stream.poll_flush(cx) {
                Poll::Ready(Ok(())) => Ok(Flush::Done),
                Poll::Ready(Err(err)) => Err(err),
                Poll::Pending => Ok(Flush::Blocked),
            };
        }
        match stream.poll_write(cx, out) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => conn.handle_written(n, now),
            Poll::Pending => return Ok(Flush::Blocked),
            Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(err)) => return Err(err),
        }
    }
    if conn.poll_transmit().is_empty() {
        Ok(Flush::Done)
    } else {
        Ok(Flush::Yield)
    }
}

fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Ends the connection with a reset, discarding unsent output: SO_LINGER 0
/// makes close(2) send RST at once instead of a FIN after the queued bytes.
fn abort(stream: Async<TcpStream>) {
    let _ = socket2::SockRef::from(stream.get_ref()).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Ends the connection gracefully: our side closed (for TLS, close_notify
/// first), then read and discard until the peer's EOF, [`LINGER`], or a
/// forced shutdown. With `at_once` (the peer has closed, or was never sent
/// anything, so there is no response a reset could destroy) it closes right
/// after the FIN; a connection that never sent a byte so does not hold up a
/// drain.
async fn linger<T: Transport>(
    mut stream: T,
    shared: &Shared,
    mut watch: PhaseWatch,
    at_once: bool,
) {
    let mut timer = Timer::after(LINGER);
    // The close itself may wait for the socket (the last TLS records), but
    // never past the linger or a forced shutdown.
    let closed = future::poll_fn(|cx| {
        if let Poll::Ready(r) = stream.poll_close_write(cx) {
            return Poll::Ready(r.is_ok());
        }
        if Pin::new(&mut timer).poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        if watch.poll_changed(shared, cx).is_ready() && shared.phase() == Phase::Forced {
            return Poll::Ready(false);
        }
        Poll::Pending
    })
    .await;
    let stream = stream.into_socket();
    if !closed {
        abort(stream);
        return;
    }
    if at_once {
        return;
    }
    loop {
        if watch.take_change(shared) == Some(Phase::Forced) {
            abort(stream);
            return;
        }
        let wake = future::poll_fn(|cx| {
            if stream.poll_readable(cx).is_ready() {
                return Poll::Ready(LingerWake::Readable);
            }
            if Pin::new(&mut timer).poll(cx).is_ready() {
                return Poll::Ready(LingerWake::Timer);
            }
            if watch.poll_changed(shared, cx).is_ready() {
                return Poll::Ready(LingerWake::Phase);
            }
            Poll::Pending
        })
        .await;
        match wake {
            // What the peer still sends is discarded.
            LingerWake::Readable => {
                let read = SCRATCH.with_borrow_mut(|buf| stream.get_ref().read(buf));
                match read {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(err) if is_transient(&err) => {}
                    Err(_) => return,
                }
            }
            LingerWake::Phase => {}
            LingerWake::Timer => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_proto::Limits;

    #[test]
    fn a_panicking_connection_task_releases_its_permit() {
        let shared = Arc::new(Shared::new(
            Limits::default(),
            Arc::default(),
            None,
            Some(1),
        ));
        let permit = shared.try_acquire().unwrap();
        assert!(shared.try_acquire().is_none());
        // Any open socket will do for the log line's peer lookup.
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let handle = spawn_guarded(permit, socket.as_raw_fd(), async { panic!("handler bug") });
        async_std::task::block_on(handle);
        assert_eq!(shared.open_connections(), 0);
        assert_eq!(
            shared
                .stats
                .active
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert!(shared.try_acquire().is_some());
    }
}
