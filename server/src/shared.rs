//! State every task of one server shares: the shutdown phase, the count of
//! open connections with its permit guard, the accept pause, and the accept
//! error that stopped the server, if one did. The tasks
//! that act on this state live in `accept.rs` and `conn.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};
use floodgate_proto::{Limits, Stats};

/// How far the server is into shutting down. Only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Accepting and serving.
    Running = 0,
    /// Listeners are closed; connections finish what is in flight.
    Draining = 1,
    /// The grace ran out: every connection aborts now.
    Forced = 2,
}

/// Server-wide state, one per [`crate::Server::run`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) stats: Arc<Stats>,
    pub(crate) accept_delay: Option<Duration>,
    /// `None` means unlimited.
    max_connections: Option<usize>,
    /// Connections holding a [`Permit`]. This one count serves as the
    /// max-connections semaphore and as the drain condition, so the two can
    /// never disagree.
    open: AtomicUsize,
    /// Notified when `open` drops to zero, to end the drain.
    all_closed: Event,
    /// The [`Phase`] as a number; read by every connection at each wake-up.
    phase: AtomicU8,
    /// Notified on every phase change; each connection keeps one listener on
    /// it for its whole life, so a shutdown reaches idle connections at once.
    phase_changed: Event,
    /// The end of an accept pause, in nanoseconds since `epoch` (0: none). An
    /// atomic so connections can extend it without a lock.
    pause_until_ns: AtomicU64,
    /// Notified when a pause starts, so an accept loop already waiting for
    /// the listener to become readable re-checks before accepting.
    pause_changed: Event,
    epoch: Instant,
    /// The first accept(2) error no retry could fix, with the listener's
    /// address: set by the accept loop that saw it, which also starts the
    /// shutdown; read once the drain is over, to report why the server ended.
    accept_failure: Mutex<Option<(SocketAddr, Option<i32>)>>,
    /// TLS termination for every connection, if the server does it.
    pub(crate) tls: Option<crate::tls::Tls>,
    /// The access policy with its per-client state, if any control is set.
    pub(crate) access: Option<Arc<floodgate_proto::access::Access>>,
    /// With the threads model: the pipes that wake blocked connection
    /// threads on a phase change (and mark that model).
    pub(crate) pipes: Option<crate::threads::PhasePipes>,
}

impl Shared {
    pub(crate) fn new(
        limits: Limits,
        stats: Arc<Stats>,
        accept_delay: Option<Duration>,
        max_connections: Option<usize>,
    ) -> Shared {
        Shared {
            limits,
            stats,
            accept_delay,
            max_connections,
            open: AtomicUsize::new(0),
            all_closed: Event::new(),
            phase: AtomicU8::new(Phase::Running as u8),
            phase_changed: Event::new(),
            pause_until_ns: AtomicU64::new(0),
            pause_changed: Event::new(),
            epoch: Instant::now(),
            accept_failure: Mutex::new(None),
            tls: None,
            access: None,
            pipes: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Draining,
            _ => Phase::Forced,
        }
    }

    /// Moves the phase forward (never back) and wakes every waiter.
    pub(crate) fn advance(&self, to: Phase) {
        self.phase.fetch_max(to as u8, Ordering::AcqRel);
        self.phase_changed.notify(usize::MAX);
        if let Some(pipes) = &self.pipes {
            pipes.signal(to);
        }
    }

    /// Waits until the phase has left [`Phase::Running`].
    pub(crate) async fn stopped_running(&self) {
        loop {
            let listener = self.listen_phase();
            if self.phase() != Phase::Running {
                return;
            }
            listener.await;
        }
    }

    /// Records that accept(2) on `addr` failed for good, and starts the
    /// shutdown: a server that cannot accept on one of its listeners stops
    /// rather than serve on in part.
    pub(crate) fn fail_accept(&self, addr: SocketAddr, err: &std::io::Error) {
        let mut failure = self
            .accept_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert((addr, err.raw_os_error()));
        drop(failure);
        self.advance(Phase::Draining);
    }

    /// The accept error that stopped the server, if one did.
    pub(crate) fn accept_failure(&self) -> Option<(SocketAddr, Option<i32>)> {
        *self
            .accept_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A listener for the next phase change. Create it before reading
    /// [`Shared::phase`], so a change in between is not missed.
    pub(crate) fn listen_phase(&self) -> EventListener {
        self.phase_changed.listen()
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until no connection holds a permit.
    pub(crate) async fn all_closed(&self) {
        loop {
            let listener = self.all_closed.listen();
            if self.open_connections() == 0 {
                return;
            }
            listener.await;
        }
    }

    /// A permit for one more connection, or `None` when `max_connections`
    /// are open.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut open = self.open.load(Ordering::Relaxed);
        loop {
            if self.max_connections.is_some_and(|max| open >= max) {
                return None;
            }
            match self.open.compare_exchange_weak(
                open,
                open + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => open = actual,
            }
        }
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        Some(Permit {
            shared: self.clone(),
        })
    }

    /// Stops the accept loops until `d` from now (or later, if a longer
    /// pause is already running).
    pub(crate) fn pause_accept(&self, d: Duration) {
        let until = Instant::now() + d;
        let ns = u64::try_from(until.duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.pause_until_ns.fetch_max(ns, Ordering::AcqRel);
        self.pause_changed.notify(usize::MAX);
    }

    /// The end of the current accept pause, if one is running at `now`.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        let ns = self.pause_until_ns.load(Ordering::Acquire);
        if ns == 0 {
            return None;
        }
        let until = self.epoch + Duration::from_nanos(ns);
        (until > now).then_some(until)
    }

    pub(crate) fn listen_pause(&self) -> EventListener {
        self.pause_changed.listen()
    }
}

/// A connection's view of the shutdown phase: which phase it has acted on,
/// and a way to wait for the next.
///
/// Polling an `EventListener` takes the event's lock, and every connection
/// waits on the same event; a wait per request would put that lock on the
/// hot path. So the listener is polled only to register this task's waker
/// (once per task, in practice), and later polls read the phase atomic.
#[derive(Debug)]
pub(crate) struct PhaseWatch {
    seen: Phase,
    listener: EventListener,
    /// The waker the listener holds, if it holds one.
    registered: Option<Waker>,
}

impl PhaseWatch {
    pub(crate) fn new(shared: &Shared) -> PhaseWatch {
        PhaseWatch {
            // The listener exists before the first phase read, so a change
            // in between is not missed.
            listener: shared.listen_phase(),
            seen: Phase::Running,
            registered: None,
        }
    }

    /// The phase, if it moved since the last call; it is then marked seen.
    pub(crate) fn take_change(&mut self, shared: &Shared) -> Option<Phase> {
        let phase = shared.phase();
        if phase == self.seen {
            return None;
        }
        self.seen = phase;
        self.listener = shared.listen_phase();
        self.registered = None;
        Some(phase)
    }

    /// Ready when the phase differs from the one last seen.
    pub(crate) fn poll_changed(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if shared.phase() != self.seen {
                return Poll::Ready(());
            }
            if self
                .registered
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
            match Pin::new(&mut self.listener).poll(cx) {
                Poll::Pending => {
                    self.registered = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                // Notified: the phase has moved (it is stored before the
                // notification), or the wake was spurious; either way listen
                // again and re-check.
                Poll::Ready(()) => {
                    self.listener = shared.listen_phase();
                    self.registered = None;
                }
            }
        }
    }
}

/// One connection's claim on the server: counts it in `open` and in
/// `Stats::active` for as long as it lives. It is owned by the connection
/// task and released in `Drop`, so every way a connection ends (clean close,
/// reset, protocol error, timeout, abort, panic) gives the slot back.
#[derive(Debug)]
pub(crate) struct Permit {
    shared: Arc<Shared>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.stats.active.fetch_sub(1, Ordering::Relaxed);
        if self.shared.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.all_closed.notify(usize::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(max: Option<usize>) -> Arc<Shared> {
        Arc::new(Shared::new(Limits::default(), Arc::default(), None, max))
    }

    #[test]
    fn permits_stop_at_the_maximum_and_come_back_on_drop() {
        let s = shared(Some(2));
        let a = s.try_acquire().unwrap();
        let b = s.try_acquire().unwrap();
        assert!(s.try_acquire().is_none());
        assert_eq!(s.stats.active.load(Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(s.open_connections(), 1);
        assert_eq!(s.stats.active.load(Ordering::Relaxed), 1);
        let _c = s.try_acquire().unwrap();
        drop(b);
        assert_eq!(s.open_connections(), 1);
    }

    #[test]
    fn phase_only_moves_forward() {
        let s = shared(None);
        s.advance(Phase::Forced);
        s.advance(Phase::Draining);
        assert_eq!(s.phase(), Phase::Forced);
    }

    #[test]
    fn a_pause_is_extended_never_shortened() {
        let s = shared(None);
        let now = Instant::now();
        assert_eq!(s.paused_until(now), None);
        s.pause_accept(Duration::from_secs(60));
        s.pause_accept(Duration::from_millis(1));
        let until = s.paused_until(now).unwrap();
        assert!(until >= now + Duration::from_secs(59));
    }
}
