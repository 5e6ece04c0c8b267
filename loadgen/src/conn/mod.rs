//! One connection slot at run time: a task on its thread's executor that
//! takes requests from its [`Schedule`], waits for their intended times,
//! connects, writes the prepared bytes, reads the reply (readiness first,
//! then one non-blocking read) and records exactly one outcome per request.
//! In a closed loop over plain HTTP, an open connection's later requests
//! are run by the reactor itself (`KeepAlive`: read, parse, record, send the
//! next) until anything but an `ok` on a kept connection happens; the slot's
//! task then takes the request over where the handler left it.
//! With `--malformed`, a slot sends each malformed input on a connection of
//! its own (never on its keep-alive one) and turns a share of its valid
//! requests into `POST /echo` probes with a unique token.
//! Classifying failures is `outcome`'s job and parsing replies is `http`'s;
//! threads, stopping and merging live in `run`.
//!
//! This file holds what the slots of a thread share, a slot's books
//! (`Guard`, which also takes each request from the schedule) and the slot
//! task, which runs one mode to the end. The rest is by job: `connect`
//! (connecting, TLS included), `buffer` (the read buffer), `deadline` (read
//! deadlines and their sweep), `exchange` (the request modes' lifecycle,
//! outcome reclassification included), `keepalive` (the reactor-run
//! keep-alive handler), `malformed` (the malformed exchange and the
//! coincidence log) and `modes` (the connect and hold modes).

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::malformed::MalformedOutcome;
use crate::measure::{Recorder, record};
use crate::outcome::Outcome;
use crate::plan::{Mode, Plan};
use crate::reactor::Reactor;
use crate::schedule::{Schedule, Slot};

mod buffer;
mod connect;
mod deadline;
mod exchange;
mod keepalive;
mod malformed;
mod modes;

pub(crate) use deadline::{Deadline, SWEEP_TICK};
use exchange::requests;
use modes::{connects, hold};

/// Live counters of one thread, read by the progress reporter on another.
/// Aligned so that threads never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LiveSlot {
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    /// This thread's response-time p99 so far, refreshed once a second.
    pub p99_us: AtomicU64,
}

/// Adds `n` (wrapping: `u64::MAX` subtracts one) to a live counter. Only
/// the owning thread writes its counters, so a plain load and store is
/// enough and avoids a locked instruction per request.
fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Counts the outcome of a request intended at `intended` in the thread's
/// books and live counters.
fn count_finish(sh: &Shared, intended: Instant, o: Outcome) {
    sh.rec(intended).outcome(o, sh.offset(intended));
    add(&sh.live.in_flight, u64::MAX);
    add(&sh.live.done, 1);
    if o != Outcome::Ok {
        add(&sh.live.errors, 1);
    }
}

/// What the slots of one thread share.
pub(crate) struct Shared {
    pub plan: Arc<Plan>,
    /// Offsets in schedules count from here.
    pub start: Instant,
    /// No request is scheduled at or after this.
    pub end: Option<Instant>,
    /// Set by Ctrl-C: stop scheduling.
    pub stop: Arc<AtomicBool>,
    /// The books, one per phase of the plan's profile (one without).
    pub recs: RefCell<Vec<Recorder>>,
    pub live: Arc<LiveSlot>,
    /// This thread's event loop.
    pub reactor: Rc<Reactor>,
    /// Every slot's read deadline, checked by the thread's sweeper.
    pub deadlines: RefCell<Vec<Rc<Deadline>>>,
    /// Where completed intervals are published while the run goes on.
    pub series: Option<Arc<crate::measure::LiveSeries>>,
    /// Per phase, how many intervals this thread has published.
    pub published: RefCell<Vec<usize>>,
}

impl Shared {
    /// What slots of a thread share, with empty books for each phase.
    pub(crate) fn new(
        plan: Arc<Plan>,
        start: Instant,
        end: Option<Instant>,
        stop: Arc<AtomicBool>,
        live: Arc<LiveSlot>,
        reactor: Rc<Reactor>,
    ) -> Shared {
        let recs = match &plan.profile {
            Some(p) => p.starts().iter().map(|s| Recorder::for_phase(*s)).collect(),
            None => vec![Recorder::default()],
        };
        Shared {
            plan,
            start,
            end,
            stop,
            recs: RefCell::new(recs),
            live,
            reactor,
            deadlines: RefCell::default(),
            series: None,
            published: RefCell::default(),
        }
    }

    /// `t` as an offset from the run's start.
    pub(crate) fn offset(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// The books of the phase a request intended at `t` belongs to.
    pub(crate) fn rec(&self, t: Instant) -> RefMut<'_, Recorder> {
        let k = match &self.plan.profile {
            Some(p) => p.segment_at(self.offset(t)),
            None => 0,
        };
        RefMut::map(self.recs.borrow_mut(), |r| &mut r[k])
    }
}

/// A slot's accounting; its `Drop` makes the books balance even when the
/// executor drops the task mid-request at the end of the grace period.
struct Guard {
    sh: Rc<Shared>,
    /// `None` while a keep-alive connection's inline handler holds it.
    schedule: Option<Schedule>,
    /// A slot taken from the schedule whose intended time has not come.
    pending: Option<Slot>,
    /// A scheduled request has no outcome yet.
    in_flight: bool,
    /// Whether due-but-unsent requests count as cancelled on drop (not in
    /// hold mode, whose schedule is one connect per slot).
    drain: bool,
    /// A malformed exchange has no outcome yet.
    malformed_in_flight: bool,
    /// Closed loop: when the last request ended, which is when the next one
    /// is due, so the clock is read once per request, not twice.
    ended_at: Option<Instant>,
    /// The intended send time of the request taken last: its phase's books
    /// get its outcome.
    intended: Instant,
}

impl Guard {
    fn finish(&mut self, o: Outcome) {
        count_finish(&self.sh, self.intended, o);
        self.in_flight = false;
    }

    fn begin(&mut self) {
        self.in_flight = true;
        add(&self.sh.live.in_flight, 1);
    }

    fn begin_malformed(&mut self) {
        self.malformed_in_flight = true;
        add(&self.sh.live.in_flight, 1);
    }

    fn finish_malformed(&mut self, o: MalformedOutcome) {
        self.sh.rec(self.intended).malformed.outcome(o);
        self.malformed_in_flight = false;
        add(&self.sh.live.in_flight, u64::MAX);
        add(&self.sh.live.done, 1);
        if o.unexpected() {
            add(&self.sh.live.errors, 1);
        }
    }

    /// Waits until `t`, or until the stop flag is set (the thread's loop
    /// then fires every timer, see `Reactor::fire_all_timers`).
    async fn wait_until(&mut self, t: Instant) {
        if !self.sh.stop.load(Ordering::Relaxed) {
            self.sh.reactor.sleep_until(t).await;
        }
    }

    /// The next request: its intended send time and what it is; `None` to stop.
    async fn next(&mut self) -> Option<(Instant, Slot)> {
        let sh = self.sh.clone();
        loop {
            if sh.stop.load(Ordering::Relaxed) {
                return None;
            }
            let slot = match self.pending.take() {
                Some(s) => s,
                None => self.schedule.as_mut()?.next_slot()?,
            };
            if !sh.plan.is_open() {
                let now = self.ended_at.take().unwrap_or_else(Instant::now);
                if sh.end.is_some_and(|e| now >= e) {
                    return None;
                }
                sh.rec(now).schedule_slot(&slot, sh.offset(now));
                self.intended = now;
                return Some((now, slot));
            }
            let intended = sh.start + slot.offset;
            if Instant::now() < intended {
                // The connection is idle before the intended time, so any
                // lateness past it is the generator's own, not the server's.
                self.pending = Some(slot);
                self.wait_until(intended).await;
                if sh.stop.load(Ordering::Relaxed) {
                    return None;
                }
                self.pending = None;
                let late = Instant::now().saturating_duration_since(intended);
                self.intended = intended;
                let mut rec = sh.rec(intended);
                rec.schedule_slot(&slot, slot.offset);
                record(&mut rec.lag, late);
                // Hold mode opens each slot's one connection however late:
                // the point there is how many are held, not when.
                if late > sh.plan.lag_threshold && sh.plan.mode != Mode::Hold {
                    if slot.malformed {
                        rec.malformed.outcome(MalformedOutcome::GeneratorLagged);
                    } else {
                        rec.outcome(Outcome::GeneratorLagged, sh.offset(intended));
                    }
                    add(&sh.live.done, 1);
                    add(&sh.live.errors, 1);
                    continue;
                }
                return Some((intended, slot));
            }
            // Due already: the connection was busy, and the wait counts in
            // this request's response time (no coordinated omission).
            sh.rec(intended).schedule_slot(&slot, slot.offset);
            self.intended = intended;
            return Some((intended, slot));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let sh = self.sh.clone();
        {
            let mut rec = sh.rec(self.intended);
            if self.in_flight {
                rec.outcome(Outcome::Cancelled, sh.offset(self.intended));
                add(&sh.live.in_flight, u64::MAX);
            }
            if self.malformed_in_flight {
                rec.malformed.outcome(MalformedOutcome::Cancelled);
                add(&sh.live.in_flight, u64::MAX);
            }
        }
        if self.drain && self.sh.plan.is_open() {
            let now = Instant::now();
            let cutoff = self.sh.end.map_or(now, |e| e.min(now));
            let mut slot = self
                .pending
                .take()
                .or_else(|| self.schedule.as_mut()?.next_slot());
            while let Some(s) = slot {
                let at = self.sh.start + s.offset;
                if at > cutoff {
                    break;
                }
                let mut rec = sh.rec(at);
                rec.schedule_slot(&s, s.offset);
                if s.malformed {
                    rec.malformed.outcome(MalformedOutcome::Cancelled);
                } else {
                    rec.outcome(Outcome::Cancelled, s.offset);
                }
                drop(rec);
                slot = self.schedule.as_mut().and_then(Schedule::next_slot);
            }
        }
    }
}

/// Runs connection slot `index` until its schedule ends or the run stops.
pub(crate) async fn slot_task(sh: Rc<Shared>, index: usize) {
    let mut g = Guard {
        schedule: Some(Schedule::new(&sh.plan, index)),
        sh: sh.clone(),
        pending: None,
        in_flight: false,
        drain: sh.plan.mode != Mode::Hold,
        malformed_in_flight: false,
        ended_at: None,
        intended: sh.start,
    };
    let source =
        (!sh.plan.sources.is_empty()).then(|| sh.plan.sources[index % sh.plan.sources.len()]);
    match sh.plan.mode {
        Mode::Requests | Mode::Churn => requests(&mut g, index, source).await,
        Mode::Connect => connects(&mut g, source).await,
        Mode::Hold => hold(&mut g, source).await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plan::PlanInput;

    /// Every connection slot is one task, whatever the mode, and a task's
    /// state is as large as the largest state any of its modes can be in.
    /// A user holding 100,000 idle connections (`--mode hold`) pays that
    /// size 100,000 times, so a buffer inside a rarely taken path must live
    /// on the heap, not in the task.
    #[test]
    fn a_connection_slot_task_is_small() {
        let plan = Plan::new(PlanInput {
            target: Some("http://127.0.0.1:9/".into()),
            connections: 1,
            threads: 1,
            requests: Some(1),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            ..PlanInput::default()
        })
        .unwrap();
        let sh = Rc::new(Shared::new(
            Arc::new(plan),
            Instant::now(),
            None,
            Arc::default(),
            Arc::default(),
            Reactor::new().unwrap(),
        ));
        let task = slot_task(sh, 0);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "a slot task takes {size} bytes");
    }
}
