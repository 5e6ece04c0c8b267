//! The harnesses' in-memory glue: [`Driver`] runs one [`Connection`] on the
//! shared [`memory::Driver`], with fabricated time, the heap measured on
//! every call and the checks a run ends with, and hands back what the peer
//! saw as an [`Outcome`]; also the limits the harnesses choose from.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::alloc::{Heap, measured};
use super::responses::ResponseStream;
use crate::access::{Access, AuthScope, Policy, Rate, Token};
use crate::memory::{self, Hooks};
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
    // Bit 3 closes the admin endpoints; bit 2 is the harnesses' own.
    let default = Limits {
        admin: choice & 8 == 0,
        ..Limits::default()
    };
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

/// The secret of the token the harnesses' access policies ask for.
pub(super) const FUZZ_TOKEN: &[u8] = b"fuzz-token";

/// The access policy a harness input chooses (two bits): none (the
/// connection judges nothing), the token on every endpoint but /health,
/// the token on /admin/* and a per-client rate of one request a second
/// with bursts of 3, or both the token everywhere and a rate of one an
/// hour with bursts of 2.
pub(super) fn policy_for(choice: u8) -> Option<Policy> {
    let token = Token::new(FUZZ_TOKEN);
    let rate = |per_s, burst| Rate::per_second(per_s, std::num::NonZeroU32::new(burst)?);
    let (auth_scope, per_ip_rate) = match choice & 3 {
        0 => return None,
        1 => (AuthScope::All, None),
        2 => (AuthScope::Admin, rate(1.0, 3)),
        _ => (AuthScope::All, rate(1.0 / 3600.0, 2)),
    };
    Some(Policy {
        token,
        auth_scope,
        per_ip_rate,
        ..Policy::default()
    })
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

/// One connection driven in memory the way the server glue drives it: the
/// shared [`memory::Driver`], with every call into the connection measured
/// against the heap bound, time that a [`Clock`] may freeze, and the checks
/// a run ends with.
pub(super) struct Driver {
    peer: memory::Driver<Checks>,
    clock: Clock,
    /// The per-client rate the connection's policy sets, if any.
    rate: Option<Rate>,
}

/// What is checked on every call into the connection: the heap it holds,
/// and that a graceful close leaves nothing unwritten.
struct Checks(Heap);

impl Hooks for Checks {
    fn call<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.0.measure(f)
    }

    fn graceful_close(&mut self, pending: usize) {
        assert_eq!(
            pending, 0,
            "poll_close offered Graceful with {pending} bytes still to write"
        );
    }
}

impl Driver {
    pub(super) fn new(limits: Limits, clock: Clock, max_read: usize) -> Self {
        Driver::with_policy(limits, None, clock, max_read)
    }

    /// A connection from one admitted client of a fresh [`Access`] with
    /// `policy` (none: the connection judges nothing), so every run starts
    /// from the same limiter state.
    pub(super) fn with_policy(
        limits: Limits,
        policy: Option<Policy>,
        clock: Clock,
        max_read: usize,
    ) -> Self {
        let stats = zeroed_stats();
        // A fixed, fabricated origin: nothing here may depend on the real clock.
        let now = fixed_origin();
        let rate = policy.as_ref().and_then(|p| p.per_ip_rate);
        let client = policy.map(|policy| {
            let access = Arc::new(Access::new(policy, now));
            let peer = std::net::IpAddr::from([192, 0, 2, 1]);
            access
                .admit(peer, &stats)
                .expect("a policy without an allowlist or a connection cap admits everyone")
        });
        let (conn, held, _) =
            measured(|| Connection::with_client(limits, stats.clone(), client, now));
        let checks = Checks(Heap::new(limits, max_read, held));
        Driver {
            peer: memory::Driver::with_hooks(conn, stats, now, max_read, checks),
            clock,
            rate,
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Whether the peer has half-closed.
    pub(super) fn peer_done(&self) -> bool {
        self.peer.peer_done()
    }

    /// The peer reads up to `limit` bytes; room in the output may let the
    /// glue read again, as a writable-then-readable socket would.
    pub(super) fn peer_reads(&mut self, limit: usize) {
        self.peer.peer_reads(limit);
    }

    /// The peer sends `bytes`; the glue reads whatever the connection wants.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        self.peer.send(bytes);
    }

    pub(super) fn half_close(&mut self) {
        self.peer.half_close();
    }

    pub(super) fn shutdown(&mut self) {
        self.peer.shutdown();
    }

    /// `handle_timeout` before any deadline: documented as harmless.
    pub(super) fn early_timeout(&mut self) {
        if !self.is_closed() {
            self.peer.handle_timeout();
            self.peer.pump();
        }
    }

    /// Time passes by `by`; every deadline reached on the way fires at its
    /// own instant, as a glue waiting on a timer would fire it.
    pub(super) fn advance(&mut self, by: Duration) {
        if self.clock == Clock::Frozen {
            return;
        }
        let target = self.peer.now() + by;
        for _ in 0..MAX_SETTLE_STEPS {
            if self.is_closed() {
                break;
            }
            match self.peer.poll_timeout() {
                Some(deadline) if deadline <= target => {
                    self.peer.advance_to(deadline);
                    self.peer.handle_timeout();
                    self.peer.pump();
                }
                _ => break,
            }
        }
        self.peer.advance_to(target);
    }

    /// Time jumps to the next deadline, if there is one, and it fires.
    pub(super) fn until_deadline(&mut self) {
        if self.clock == Clock::Frozen || self.is_closed() {
            return;
        }
        if let Some(deadline) = self.peer.poll_timeout() {
            self.peer.advance_to(deadline);
            self.peer.handle_timeout();
            self.peer.pump();
        }
    }

    /// The peer stops sending and reads everything; time runs from deadline
    /// to deadline until the connection closes. Every connection must end:
    /// one that neither closes nor asks to be woken would live forever.
    pub(super) fn settle(&mut self, half_close: bool) {
        self.peer.set_eager_writes(true);
        if half_close {
            self.peer.half_close();
        } else {
            self.peer.pump();
        }
        let mut checked_error_close = false;
        for _ in 0..MAX_SETTLE_STEPS {
            self.peer.pump();
            if self.is_closed() {
                return;
            }
            if !checked_error_close {
                checked_error_close = true;
                // Everything sent so far has been read by the peer; if the
                // last response said it closes, it must already be closing.
                if let Some(last) = ResponseStream::parse_lenient(self.peer.output())
                    .responses
                    .last()
                {
                    assert!(
                        !last.close,
                        "connection stays open after a {} with Connection: close",
                        last.status
                    );
                }
            }
            match self.peer.poll_timeout() {
                Some(deadline) => {
                    self.peer.advance_to(deadline);
                    self.peer.handle_timeout();
                }
                None => panic!(
                    "connection neither closes nor has a deadline after the peer went quiet \
                     (wants_read: {}, inbox: {} bytes, eof delivered: {})",
                    self.peer.wants_read(),
                    self.peer.unread(),
                    self.peer.eof_delivered()
                ),
            }
        }
        panic!("connection still open after {MAX_SETTLE_STEPS} deadlines");
    }

    pub(super) fn finish(self) -> Outcome {
        let stats = Arc::clone(self.peer.stats());
        let counters = [
            &stats.requests,
            &stats.protocol_errors,
            &stats.timeouts,
            &stats.unauthorized,
            &stats.rate_limited,
        ]
        .map(|c| c.load(Relaxed));
        if let Some(rate) = self.rate {
            // The rate limit holds: no more requests got past it than the
            // burst and what the time that passed earned.
            let elapsed = self.peer.now() - fixed_origin();
            let earned = (elapsed.as_nanos() / rate.interval.as_nanos()) as u64;
            let passed = counters[0] - counters[4];
            assert!(
                passed <= u64::from(rate.burst.get()) + earned,
                "{passed} requests passed a limit of {} a burst and one per {:?} in {elapsed:?}",
                rate.burst,
                rate.interval
            );
        }
        // Drops the connection, and with it the other handle on `stats`.
        let (out, events, closed) = self.peer.into_parts();
        SPARE_STATS.set(Some(stats));
        Outcome {
            out,
            events,
            closed,
            counters,
        }
    }
}

thread_local! {
    /// The counters of this thread's last finished run, kept for the next:
    /// a `Stats` is 4 KiB, and a fresh one per run (up to three per input)
    /// cost a tenth of every execution under AddressSanitizer, in the
    /// allocation, the zeroing and the page faults on memory the allocator's
    /// quarantine had not yet recycled.
    static SPARE_STATS: Cell<Option<Arc<Stats>>> = const { Cell::new(None) };
}

/// Counters for a new connection, all zero, as `Stats::default()` gives
/// (a `/stats` answer shows them, so a run must not see another's); the
/// spare's memory when no other handle on it is left.
fn zeroed_stats() -> Arc<Stats> {
    match SPARE_STATS.take() {
        Some(mut spare) => match Arc::get_mut(&mut spare) {
            Some(stats) => {
                *stats = Stats::default();
                spare
            }
            None => Arc::new(Stats::default()),
        },
        None => Arc::new(Stats::default()),
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
    /// Requests, protocol errors, timeouts, 401s and 429s counted.
    /// (Statuses are in the output already; a full snapshot costs more than
    /// the rest of a run.)
    pub(super) counters: [u64; 5],
}
