//! `Connection`: one HTTP/1.1 server connection, driven by bytes, deadlines
//! and shutdown, producing bytes to write and when to close.
//!
//! SKELETON: the public API below is fixed; the bodies are being written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Limits, Stats};

/// Something the connection asks of the server beyond its own socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `POST /admin/pause-accept?ms=N`: stop accepting new connections for
    /// this long, so the kernel's accept queue fills.
    PauseAccept(Duration),
}

/// How the glue should end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// All output has been written: shut down the writing side, read and
    /// discard what the peer still sends for a short while, then close, so
    /// the peer sees the last response instead of a reset.
    Graceful,
    /// Close at once, discarding pending output (write timeout).
    Abort,
}

/// One server-side HTTP/1.1 connection.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    stats: Arc<Stats>,
    created: Instant,
}

impl Connection {
    /// A new connection accepted at `now`; the idle deadline starts now.
    pub fn new(limits: Limits, stats: Arc<Stats>, now: Instant) -> Self {
        Connection {
            limits,
            stats,
            created: now,
        }
    }

    /// Bytes arrived from the peer.
    pub fn handle_read(&mut self, data: &[u8], now: Instant) {
        let _ = (data, now, &self.limits, &self.stats, self.created);
    }

    /// The peer closed its sending side (a read returned 0 bytes).
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
    }

    /// Time has reached (or passed) [`Connection::poll_timeout`]: fire every
    /// expired deadline. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// The server is shutting down: an idle connection closes at once; a
    /// request in flight finishes and its response carries `Connection: close`.
    pub fn handle_shutdown(&mut self, now: Instant) {
        let _ = now;
    }

    /// Bytes to write to the peer now; empty when nothing is pending. Large
    /// bodies are produced lazily, a bounded piece at a time.
    pub fn poll_transmit(&mut self) -> &[u8] {
        &[]
    }

    /// `n` bytes from the front of [`Connection::poll_transmit`] were written.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        let _ = (n, now);
    }

    /// The earliest deadline the glue must wake up for, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The next request for the server itself, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        None
    }

    /// Whether the glue should read from the socket: false while responses
    /// are backed up beyond `max_pending_output`, and once reading is over.
    pub fn wants_read(&self) -> bool {
        true
    }

    /// Whether, and how, the glue should end the connection now.
    /// `Graceful` is only returned once all output has been written.
    pub fn poll_close(&self) -> Option<Close> {
        None
    }
}
