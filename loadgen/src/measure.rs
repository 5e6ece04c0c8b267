//! What a run measures, per thread then merged: HDR histograms in
//! microseconds (1 µs to 60 s, 3 significant digits, constant memory however
//! long the run) and the outcome counts. Response time runs from each
//! request's intended send time, service time from the actual send, connect
//! time per connect, and generator lag is kept apart from all three.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::malformed::MalformedRecorder;
use crate::outcome::{Outcome, OutcomeCounts};

/// Highest trackable value: 60 s in µs.
pub const MAX_US: u64 = 60_000_000;

/// A new histogram with the run's bounds.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// One thread's measurements, merged into the run's at the end.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// From intended send time to complete response.
    pub response: Histogram<u64>,
    /// From actual send to complete response.
    pub service: Histogram<u64>,
    /// From socket creation to established.
    pub connect: Histogram<u64>,
    /// How late an idle connection started a send, past its intended time.
    pub lag: Histogram<u64>,
    pub outcomes: OutcomeCounts,
    /// Requests that became due (open loop) or were started (closed loop).
    pub scheduled: u64,
    /// `scheduled` by request kind (index into `Plan::kinds`).
    pub scheduled_by_kind: Vec<u64>,
    /// Connects attempted.
    pub connects: u64,
    /// Most connections open at once (hold mode's "held").
    pub open_max: u64,
    open_now: u64,
    /// `--malformed`: malformed exchanges, echo probes and, for the
    /// coincidence check, when valid requests failed.
    pub malformed: MalformedRecorder,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            response: histogram(),
            service: histogram(),
            connect: histogram(),
            lag: histogram(),
            outcomes: OutcomeCounts::default(),
            scheduled: 0,
            scheduled_by_kind: Vec::new(),
            connects: 0,
            open_max: 0,
            open_now: 0,
            malformed: MalformedRecorder::default(),
        }
    }
}

/// Records a duration in µs, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, MAX_US);
    h.saturating_record(us);
}

impl Recorder {
    pub fn outcome(&mut self, o: Outcome) {
        self.outcomes.add(o, 1);
    }

    /// Counts one scheduled request of kind `kind`.
    pub fn schedule(&mut self, kind: usize) {
        self.scheduled += 1;
        if self.scheduled_by_kind.len() <= kind {
            self.scheduled_by_kind.resize(kind + 1, 0);
        }
        self.scheduled_by_kind[kind] += 1;
    }

    /// Counts one scheduled request: a valid one by its kind, or a
    /// malformed one in the malformed books.
    pub fn schedule_slot(&mut self, slot: &crate::schedule::Slot) {
        if slot.malformed {
            self.malformed.scheduled += 1;
        } else {
            self.schedule(slot.kind);
        }
    }

    pub fn opened(&mut self) {
        self.open_now += 1;
        self.open_max = self.open_max.max(self.open_now);
    }

    pub fn closed(&mut self) {
        self.open_now = self.open_now.saturating_sub(1);
    }

    /// Adds another thread's measurements. Per-thread `open_max` values add
    /// up to an upper bound, which is exact in hold mode (nothing closes).
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.response.add(&other.response);
        let _ = self.service.add(&other.service);
        let _ = self.connect.add(&other.connect);
        let _ = self.lag.add(&other.lag);
        self.outcomes.merge(&other.outcomes);
        self.scheduled += other.scheduled;
        if self.scheduled_by_kind.len() < other.scheduled_by_kind.len() {
            self.scheduled_by_kind
                .resize(other.scheduled_by_kind.len(), 0);
        }
        for (a, b) in self
            .scheduled_by_kind
            .iter_mut()
            .zip(&other.scheduled_by_kind)
        {
            *a += b;
        }
        self.connects += other.connects;
        self.open_max += other.open_max;
        self.malformed.merge(&other.malformed);
    }
}
