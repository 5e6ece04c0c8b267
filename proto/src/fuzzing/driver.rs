//! The in-memory glue: [`Driver`] runs one [`Connection`] the way the server
//! glue does, with fabricated time, and hands back what the peer saw as an
//! [`Outcome`]; also the limits the harnesses choose from.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::alloc::{COUNTING, heap_bound, measured};
use super::responses::ResponseStream;
use crate::{Close, Connection, Event, Limits, Stats};

/// The largest single read the in-memory glue performs, like the server's
/// read buffer.
pub(super) const READ_CHUNK: usize = 4096;

/// The most deadlines a connection may need to reach its end once its peer
/// stops sending; far above any legitimate count for the inputs fuzzed here.
const MAX_SETTLE_STEPS: usize = 20_000;

/// Limits small enough that a fuzzer reaches every limit within a few
/// kilobytes of input, plus the defaults.
pub(super) fn limits_for(choice: u8) -> Limits {
    let default = Limits::default();
    match choice % 4 {
        0 => default,
        1 => Limits {
            max_head_bytes: 1024,
            max_headers: 16,
            max_body_bytes: 2048,
            max_pending_output: 4096,
            ..default
        },
        2 => Limits {
            max_head_bytes: 256,
            max_headers: 4,
            max_body_bytes: 64,
            max_pending_output: 256,
            ..default
        },
        _ => Limits {
            max_head_bytes: 512,
            max_headers: 8,
            max_body_bytes: 512,
            max_pending_output: 1024,
            ..default
        },
    }
}

/// How a run treats time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clock {
    /// Time moves only when the script says so, and deadlines fire then.
    Scripted,
    /// Time stands still until the peer has sent everything, so that runs
    /// that differ only in how bytes are split must produce the same output.
    Frozen,
}

/// One connection driven in memory the way the server glue drives it.
pub(super) struct Driver {
    conn: Connection,
    stats: Arc<Stats>,
    limits: Limits,
    now: Instant,
    clock: Clock,
    /// Bytes the peer has sent, of which the glue has read `inbox_read`.
    inbox: Vec<u8>,
    /// How much of `inbox` the glue has read.
    inbox_read: usize,
    /// The peer has half-closed; the glue reports EOF once the inbox is empty.
    pub(super) peer_done: bool,
    eof_delivered: bool,
    /// Every byte written to the peer, in order.
    out: Vec<u8>,
    events: Vec<Event>,
    closed: Option<Close>,
    /// Net heap bytes the connection holds, summed over every call into it.
    held: isize,
    heap_bound: isize,
    max_read: usize,
    /// Whether the peer reads everything offered at once (otherwise only
    /// when the script says so, or when the glue needs room to read).
    eager_writes: bool,
}

impl Driver {
    pub(super) fn new(limits: Limits, clock: Clock, max_read: usize) -> Self {
        let stats = Arc::new(Stats::default());
        // A fixed, fabricated origin: nothing here may depend on the real clock.
        let now = fixed_origin();
        let (conn, held, _) = measured(|| Connection::new(limits, stats.clone(), now));
        Driver {
            conn,
            stats,
            limits,
            now,
            clock,
            inbox: Vec::new(),
            inbox_read: 0,
            peer_done: false,
            eof_delivered: false,
            out: Vec::new(),
            events: Vec::new(),
            closed: None,
            held,
            heap_bound: heap_bound(&limits, max_read) as isize,
            max_read,
            eager_writes: false,
        }
    }

    /// Calls into the connection, accounting for the heap it keeps and
    /// checking the bound at its peak.
    fn call<R>(&mut self, f: impl FnOnce(&mut Connection, Instant) -> R) -> R {
        let now = self.now;
        let conn = &mut self.conn;
        let (r, net, peak) = measured(|| f(conn, now));
        self.check_heap(peak);
        self.held += net;
        r
    }

    fn check_heap(&self, peak: isize) {
        if COUNTING.load(Relaxed) {
            let at_peak = self.held + peak;
            assert!(
                at_peak <= self.heap_bound,
                "connection held {at_peak} heap bytes, over the bound {} for {:?}",
                self.heap_bound,
                self.limits
            );
        }
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
                assert_eq!(
                    pending, 0,
                    "poll_close offered Graceful with {pending} bytes still to write"
                );
            }
            self.closed = close;
        }
    }

    /// Bytes the peer has sent that the glue has not read yet.
    fn unread(&self) -> usize {
        self.inbox.len() - self.inbox_read
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// The peer reads up to `limit` bytes of what the connection offers.
    fn write(&mut self, limit: usize) {
        let mut left = limit;
        while left > 0 && !self.is_closed() {
            let n = self.call(|c, _| c.poll_transmit().len()).min(left);
            if n == 0 {
                break;
            }
            // Room in `out` is made outside the measured call: the copy's
            // memory is the harness's, not the connection's. Asking again
            // gives the same bytes.
            self.out.reserve(n);
            let (conn, out) = (&mut self.conn, &mut self.out);
            let ((), net, peak) = measured(|| out.extend_from_slice(&conn.poll_transmit()[..n]));
            self.check_heap(peak);
            self.held += net;
            self.call(|c, now| c.handle_written(n, now));
            left -= n;
            self.observe();
        }
    }

    /// The peer reads up to `limit` bytes; room in the output may let the
    /// glue read again, as a writable-then-readable socket would.
    pub(super) fn peer_reads(&mut self, limit: usize) {
        self.write(limit);
        self.pump();
    }

    fn write_all(&mut self) {
        self.write(usize::MAX);
    }

    /// The peer sends `bytes`; the glue reads whatever the connection wants.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        if self.peer_done {
            return;
        }
        self.inbox.extend_from_slice(bytes);
        self.pump();
    }

    /// Moves bytes between the peer and the connection until neither side
    /// can make progress without time passing.
    fn pump(&mut self) {
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

    pub(super) fn half_close(&mut self) {
        self.peer_done = true;
        self.pump();
    }

    pub(super) fn shutdown(&mut self) {
        if !self.is_closed() {
            self.call(|c, now| c.handle_shutdown(now));
            self.observe();
            self.pump();
        }
    }

    /// `handle_timeout` before any deadline: documented as harmless.
    pub(super) fn early_timeout(&mut self) {
        if !self.is_closed() {
            self.call(|c, now| c.handle_timeout(now));
            self.observe();
            self.pump();
        }
    }

    /// Time passes by `by`; every deadline reached on the way fires at its
    /// own instant, as a glue waiting on a timer would fire it.
    pub(super) fn advance(&mut self, by: Duration) {
        if self.clock == Clock::Frozen {
            return;
        }
        let target = self.now + by;
        for _ in 0..MAX_SETTLE_STEPS {
            if self.is_closed() {
                break;
            }
            match self.call(|c, _| c.poll_timeout()) {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.call(|c, now| c.handle_timeout(now));
                    self.observe();
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = self.now.max(target);
    }

    /// Time jumps to the next deadline, if there is one, and it fires.
    pub(super) fn until_deadline(&mut self) {
        if self.clock == Clock::Frozen || self.is_closed() {
            return;
        }
        if let Some(deadline) = self.call(|c, _| c.poll_timeout()) {
            self.now = self.now.max(deadline);
            self.call(|c, now| c.handle_timeout(now));
            self.observe();
            self.pump();
        }
    }

    /// The peer stops sending and reads everything; time runs from deadline
    /// to deadline until the connection closes. Every connection must end:
    /// one that neither closes nor asks to be woken would live forever.
    pub(super) fn settle(&mut self, half_close: bool) {
        if half_close {
            self.peer_done = true;
        }
        self.eager_writes = true;
        self.pump();
        let mut checked_error_close = false;
        for _ in 0..MAX_SETTLE_STEPS {
            self.pump();
            if self.is_closed() {
                return;
            }
            if !checked_error_close {
                checked_error_close = true;
                // Everything sent so far has been read by the peer; if the
                // last response said it closes, it must already be closing.
                if let Some(last) = ResponseStream::parse_lenient(&self.out).responses.last() {
                    assert!(
                        !last.close,
                        "connection stays open after a {} with Connection: close",
                        last.status
                    );
                }
            }
            match self.call(|c, _| c.poll_timeout()) {
                Some(deadline) => {
                    self.now = self.now.max(deadline);
                    self.call(|c, now| c.handle_timeout(now));
                    self.observe();
                }
                None => panic!(
                    "connection neither closes nor has a deadline after the peer went quiet \
                     (wants_read: {}, inbox: {} bytes, eof delivered: {})",
                    self.call(|c, _| c.wants_read()),
                    self.unread(),
                    self.eof_delivered
                ),
            }
        }
        panic!("connection still open after {MAX_SETTLE_STEPS} deadlines");
    }

    pub(super) fn finish(self) -> Outcome {
        Outcome {
            out: self.out,
            events: self.events,
            closed: self.closed,
            counters: [
                &self.stats.requests,
                &self.stats.protocol_errors,
                &self.stats.timeouts,
            ]
            .map(|c| c.load(Relaxed)),
        }
    }
}

/// The instant every run starts at. `Instant` has no public constructor, so
/// the harness reads the clock once per process; from then on every instant
/// is this one plus fabricated durations, and only differences matter.
fn fixed_origin() -> Instant {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// What the peer saw of one connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) out: Vec<u8>,
    pub(super) events: Vec<Event>,
    pub(super) closed: Option<Close>,
    /// Requests, protocol errors and timeouts counted. (Statuses are in the
    /// output already; a full snapshot costs more than the rest of a run.)
    pub(super) counters: [u64; 3],
}
