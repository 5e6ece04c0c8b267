//! An in-memory peer for one [`Connection`]: [`Driver`] feeds it bytes,
//! collects what it transmits, its events and its close decision, and
//! delivers EOF, shutdown and deadlines, the way the server glue does with
//! a socket.
//!
//! Shared by everything that runs a connection without a socket: the fuzz
//! harnesses (`fuzzing`, which add their clock, heap accounting and oracles
//! through [`Hooks`] and on top of the driver) and the load generator's
//! check that a malformed request is refused by the reference
//! (`floodgate_loadgen::malformed::is_malformed`). It reads no clock: time
//! is the `now` it is given and moves only when its owner moves it.
//!
//! The glue's rules, as the driver applies them: bytes are read only while
//! [`Connection::wants_read`] says so, at most `max_read` at a time; EOF is
//! reported once the peer has half-closed and every byte it sent has been
//! read; events and the close decision are collected after every call that
//! may produce them; once the connection has decided to close, nothing more
//! is read or written.

use std::sync::Arc;
use std::time::Instant;

use crate::{Close, Connection, Event, Limits, Stats};

/// What a [`Driver`]'s owner adds to it: a wrapper around every call into
/// the connection, and a look at each graceful close as it is offered. Both
/// defaults do nothing, which is what `()` uses.
pub trait Hooks {
    /// Runs `f`, one call into the connection (or the copy of bytes it
    /// offers into the driver's output), and returns its result. A fuzz
    /// harness measures the heap here.
    fn call<R>(&mut self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// [`Connection::poll_close`] offered [`Close::Graceful`] while
    /// [`Connection::poll_transmit`] still had `pending` bytes to write;
    /// the connection promises `pending` is 0.
    fn graceful_close(&mut self, pending: usize) {
        let _ = pending;
    }
}

impl Hooks for () {}

/// One connection and its peer, in memory.
#[derive(Debug)]
pub struct Driver<H = ()> {
    conn: Connection,
    stats: Arc<Stats>,
    now: Instant,
    /// Bytes the peer has sent, of which the glue has read `inbox_read`.
    inbox: Vec<u8>,
    /// How much of `inbox` the glue has read.
    inbox_read: usize,
    /// The peer has half-closed; the glue reports EOF once the inbox is empty.
    peer_done: bool,
    eof_delivered: bool,
    /// Every byte written to the peer, in order.
    out: Vec<u8>,
    events: Vec<Event>,
    closed: Option<Close>,
    max_read: usize,
    /// The most bytes the peer reads in all.
    reply_limit: usize,
    /// Whether the peer reads everything offered at once (otherwise only
    /// when told to, or when the glue needs room to read).
    eager_writes: bool,
    hooks: H,
}

impl Driver {
    /// A new connection with these limits, accepted at `now`, whose peer's
    /// bytes are read at most `max_read` at a time.
    pub fn new(limits: Limits, now: Instant, max_read: usize) -> Self {
        let stats = Arc::new(Stats::default());
        let conn = Connection::new(limits, stats.clone(), now);
        Driver::with_hooks(conn, stats, now, max_read, ())
    }
}

impl<H: Hooks> Driver<H> {
    /// Drives `conn`, made with `stats` as its counters, from `now`, with
    /// `hooks` around every call into it. (The owner makes the connection,
    /// so it can measure that too.)
    pub fn with_hooks(
        conn: Connection,
        stats: Arc<Stats>,
        now: Instant,
        max_read: usize,
        hooks: H,
    ) -> Self {
        Driver {
            conn,
            stats,
            now,
            inbox: Vec::new(),
            inbox_read: 0,
            peer_done: false,
            eof_delivered: false,
            out: Vec::new(),
            events: Vec::new(),
            closed: None,
            max_read,
            reply_limit: usize::MAX,
            eager_writes: false,
            hooks,
        }
    }

    /// Whether the peer reads everything the connection offers as soon as
    /// it is offered (by default it reads only when told to, through
    /// [`Driver::peer_reads`] and the like).
    pub fn set_eager_writes(&mut self, eager: bool) {
        self.eager_writes = eager;
    }

    /// The peer reads at most `limit` bytes of output in all; what the
    /// connection offers beyond them stays unwritten. Unlimited by default.
    pub fn set_reply_limit(&mut self, limit: usize) {
        self.reply_limit = limit;
    }

    /// Calls into the connection through the hooks.
    fn call<R>(&mut self, f: impl FnOnce(&mut Connection, Instant) -> R) -> R {
        let now = self.now;
        let conn = &mut self.conn;
        self.hooks.call(|| f(conn, now))
    }

    /// Collects events and the close decision after any input.
    fn observe(&mut self) {
        while let Some(event) = self.call(|c, _| c.poll_event()) {
            self.events.push(event);
        }
        if self.closed.is_none() {
            let close = self.call(|c, _| c.poll_close());
            if close == Some(Close::Graceful) {
                let pending = self.call(|c, _| c.poll_transmit().len());
                self.hooks.graceful_close(pending);
            }
            self.closed = close;
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time moves on to `at` (never back). Nothing fires by itself: see
    /// [`Driver::handle_timeout`].
    pub fn advance_to(&mut self, at: Instant) {
        self.now = self.now.max(at);
    }

    /// The connection's [`Connection::poll_timeout`].
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.call(|c, _| c.poll_timeout())
    }

    /// The connection's [`Connection::wants_read`].
    pub fn wants_read(&mut self) -> bool {
        self.call(|c, _| c.wants_read())
    }

    /// Bytes the peer has sent that the glue has not read yet.
    pub fn unread(&self) -> usize {
        self.inbox.len() - self.inbox_read
    }

    /// Whether the peer has half-closed.
    pub fn peer_done(&self) -> bool {
        self.peer_done
    }

    /// Whether the connection has been told of the peer's EOF.
    pub fn eof_delivered(&self) -> bool {
        self.eof_delivered
    }

    /// How the connection decided to close, once it has.
    pub fn closed(&self) -> Option<Close> {
        self.closed
    }

    /// Whether the connection has decided to close.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Every byte written to the peer so far, in order.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Every event the connection raised so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The connection's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The peer reads up to `limit` bytes of what the connection offers.
    pub fn write(&mut self, limit: usize) {
        let mut left = limit.min(self.reply_limit.saturating_sub(self.out.len()));
        while left > 0 && !self.is_closed() {
            let n = self.call(|c, _| c.poll_transmit().len()).min(left);
            if n == 0 {
                break;
            }
            // Room in `out` is made outside the hooked call: the copy's
            // memory is the driver's, not the connection's. Asking again
            // gives the same bytes.
            self.out.reserve(n);
            let (conn, out) = (&mut self.conn, &mut self.out);
            self.hooks
                .call(|| out.extend_from_slice(&conn.poll_transmit()[..n]));
            self.call(|c, now| c.handle_written(n, now));
            left -= n;
            self.observe();
        }
    }

    /// The peer reads up to `limit` bytes; room in the output may let the
    /// glue read again, as a writable-then-readable socket would.
    pub fn peer_reads(&mut self, limit: usize) {
        self.write(limit);
        self.pump();
    }

    /// The peer reads everything the connection offers.
    pub fn write_all(&mut self) {
        self.write(usize::MAX);
    }

    /// The peer sends `bytes` (nothing once it has half-closed); the glue
    /// reads whatever the connection wants.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.peer_done {
            return;
        }
        self.inbox.extend_from_slice(bytes);
        self.pump();
    }

    /// Moves bytes between the peer and the connection until neither side
    /// can make progress without time passing.
    pub fn pump(&mut self) {
        loop {
            if self.is_closed() {
                return;
            }
            if self.eager_writes {
                self.write_all();
            }
            if !self.call(|c, _| c.wants_read()) {
                return;
            }
            if self.unread() > 0 {
                let start = self.inbox_read;
                let end = start + self.unread().min(self.max_read);
                self.inbox_read = end;
                // Lent out for the call, so the connection reads the bytes
                // in place; taking and restoring a `Vec` allocates nothing.
                let inbox = std::mem::take(&mut self.inbox);
                self.call(|c, now| c.handle_read(&inbox[start..end], now));
                self.inbox = inbox;
                if self.inbox_read == self.inbox.len() {
                    self.inbox.clear();
                    self.inbox_read = 0;
                }
                self.observe();
            } else if self.peer_done && !self.eof_delivered {
                self.eof_delivered = true;
                self.call(|c, now| c.handle_eof(now));
                self.observe();
            } else {
                return;
            }
        }
    }

    /// The peer half-closes: it sends nothing more, and EOF follows the
    /// bytes already sent.
    pub fn half_close(&mut self) {
        self.peer_done = true;
        self.pump();
    }

    /// The server shuts down ([`Connection::handle_shutdown`]), unless the
    /// connection has closed already.
    pub fn shutdown(&mut self) {
        if !self.is_closed() {
            self.call(|c, now| c.handle_shutdown(now));
            self.observe();
            self.pump();
        }
    }

    /// [`Connection::handle_timeout`] at the current time; nothing is read
    /// or written after it (see [`Driver::pump`]).
    pub fn handle_timeout(&mut self) {
        self.call(|c, now| c.handle_timeout(now));
        self.observe();
    }

    /// What the peer saw: every byte written to it, every event, and how
    /// the connection closed, if it has.
    pub fn into_parts(self) -> (Vec<u8>, Vec<Event>, Option<Close>) {
        (self.out, self.events, self.closed)
    }
}
