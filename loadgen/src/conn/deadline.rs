//! A slot's read deadline: a cell armed per request and fired by the
//! thread's sweeper every `SWEEP_TICK`, and the future that waits for it.
//! Running the sweeper is `run`'s job; what a fired deadline means for a
//! request (a read timeout, a hung malformed exchange) is the caller's.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A slot's read deadline. Per-request reactor timers cost system calls
/// (an eventfd notify, a timerfd update and a re-arm, a few per request);
/// one sweeper per thread checking these cells every `SWEEP_TICK` costs
/// none, at the price of timeouts firing up to one tick late.
#[derive(Default)]
pub(crate) struct Deadline {
    at: Cell<Option<Instant>>,
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// How often the sweeper checks read deadlines: the slack of `--read-timeout`.
pub(crate) const SWEEP_TICK: Duration = Duration::from_millis(20);

impl Deadline {
    pub(super) fn arm(&self, at: Instant) {
        self.fired.set(false);
        self.at.set(Some(at));
    }

    pub(super) fn disarm(&self) {
        self.at.set(None);
    }

    /// Fires the deadline if it has passed; called by the sweeper.
    pub(crate) fn sweep(&self, now: Instant) {
        if self.at.get().is_some_and(|at| now >= at) {
            self.at.set(None);
            self.fired.set(true);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Completes once the armed deadline has fired.
    pub(super) fn expired(&self) -> Expired<'_> {
        Expired(self)
    }
}

/// Waits for a [`Deadline`] to fire.
pub(super) struct Expired<'a>(&'a Deadline);

impl Future for Expired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.get() {
            return Poll::Ready(());
        }
        let mut w = self.0.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
