//! What the connection driver in `conn` needs of a byte stream, so one
//! driver serves both a plain socket and a TLS stream: non-blocking reads
//! and writes that register the task's waker when they cannot progress, a
//! flush for bytes the transport holds itself, a graceful close, and the
//! socket underneath, given up for aborts and the linger. The plain socket's impl is
//! here; the TLS one is in `tls`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::task::{Context, Poll};

use async_io::Async;

/// A connection's byte stream. Every `poll_*` registers `cx`'s waker when
/// it returns `Pending`.
pub(crate) trait Transport: Unpin {
    /// Gives the TCP socket up, for an abort or the linger after a close.
    fn into_socket(self) -> Async<TcpStream>;

    /// Reads into `buf` whatever has arrived; `Ready(Ok(0))` is the peer's
    /// EOF, and `Ready(Err(WouldBlock))` a spurious readiness (poll again).
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Takes some of `buf`; `Pending` when nothing can be taken now.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Sends what the transport itself still holds of what it took.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ready when a write that returned `Pending` may make progress.
    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ends our side: everything taken is sent, then the FIN.
    fn poll_close_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A plain socket. Reads wait for readiness before the read(2), so a
/// connection that is woken for anything else costs no syscall.
impl Transport for Async<TcpStream> {
    fn into_socket(self) -> Async<TcpStream> {
        self
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match Async::poll_readable(self, cx) {
            Poll::Ready(_) => Poll::Ready(self.get_ref().read(buf)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.get_ref().write(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
            if Async::poll_writable(self, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is held: every write went to the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Async::poll_writable(self, cx)
    }

    fn poll_close_write(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown(Shutdown::Write))
    }
}
