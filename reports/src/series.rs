//! A run's time series: one [`Interval`] per second of the run (or of the
//! phase the run is), each with the outcomes and the response-time
//! histogram of the requests intended in it, and the sliding windows over
//! them ([`windows`]) that `over WINDOW` thresholds are judged on, so a
//! short stall does not hide in a whole-run percentile.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::evidence::CounterDelta;
use crate::histogram::{self, HistogramError};
use crate::outcome::Outcome;
use crate::run::Percentiles;

/// The most intervals a result may hold: a day of seconds.
pub const MAX_INTERVALS: usize = 86_400;

/// One interval of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The interval's start, from the start of the run (or phase).
    pub start_s: f64,
    pub duration_s: f64,
    /// Requests due in the interval (open loop) or started in it (closed
    /// loop): the offered load.
    #[serde(default)]
    pub offered: u64,
    /// Requests intended in the interval that got a complete response, of
    /// any status: the achieved load.
    #[serde(default)]
    pub answered: u64,
    /// Requests intended in the interval whose outcome is `ok`.
    pub ok: u64,
    /// Requests intended in it with any other outcome.
    pub errors: u64,
    /// Outcome → count for the requests intended in the interval, the
    /// outcomes that occurred only; they sum to `ok + errors`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Their response times (µs, 2 significant digits), as
    /// [`histogram::encode`] writes them.
    pub response_time: String,
    /// The listener's accept queue over the interval: the evidence samples
    /// taken in it, matched by wall-clock time (`Run::fill_intervals`);
    /// absent when the target does not listen in this network namespace or
    /// no sample fell in the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_queue: Option<QueueInterval>,
    /// The kernel's counter changes read in the interval (the evidence's
    /// counter ticks, 250 ms apart); absent when the target does not listen
    /// in this network namespace or the interval lies outside the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<CounterDelta>,
}

/// The accept queue over one interval, from the evidence samples in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInterval {
    /// The deepest queue sampled in the interval.
    pub max_depth: u32,
    /// The listener's backlog, as sock_diag reported it.
    pub backlog: u32,
    /// Samples taken in the interval.
    pub samples: u32,
}

/// One sliding window's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start_s: f64,
    pub duration_s: f64,
    pub ok: u64,
    pub errors: u64,
    pub latency_us: Percentiles,
}

impl Window {
    /// The share of requests that were not `ok` (0 without requests).
    pub fn error_share(&self) -> f64 {
        match self.ok + self.errors {
            0 => 0.0,
            n => self.errors as f64 / n as f64,
        }
    }

    /// `ok` requests per second of the window.
    pub fn ok_per_s(&self) -> f64 {
        self.ok as f64 / self.duration_s.max(1e-9)
    }
}

impl Interval {
    /// An interval from its counts and histogram.
    pub fn new(
        start_s: f64,
        duration_s: f64,
        ok: u64,
        errors: u64,
        response: &Histogram<u64>,
    ) -> Result<Interval, HistogramError> {
        Ok(Interval {
            start_s,
            duration_s,
            offered: 0,
            answered: 0,
            ok,
            errors,
            outcomes: BTreeMap::new(),
            response_time: histogram::encode(response)?,
            accept_queue: None,
            kernel: None,
        })
    }
}

/// Every window of `width` consecutive intervals, sliding one interval at
/// a time (all of them as one window when there are fewer). Errors when an
/// interval's histogram does not decode.
pub fn windows(intervals: &[Interval], width: usize) -> Result<Vec<Window>, HistogramError> {
    let decoded: Vec<Histogram<u64>> = intervals
        .iter()
        .map(|i| histogram::decode(&i.response_time))
        .collect::<Result<_, _>>()?;
    let width = width.clamp(1, intervals.len().max(1));
    let mut out = Vec::new();
    for start in 0..=intervals.len().saturating_sub(width) {
        let span = &intervals[start..(start + width).min(intervals.len())];
        let Some(first) = span.first() else {
            break;
        };
        let mut h = decoded[start].clone();
        for d in &decoded[start + 1..start + span.len()] {
            // Every interval histogram has the same bounds; adding a
            // decoded one that does not fit only saturates.
            let _ = h.add(d);
        }
        out.push(Window {
            start_s: first.start_s,
            duration_s: span.iter().map(|i| i.duration_s).sum(),
            ok: span.iter().map(|i| i.ok).sum(),
            errors: span.iter().map(|i| i.errors).sum(),
            latency_us: Percentiles::of(&h),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(start_s: f64, latency_us: u64, n: u64) -> Interval {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        h.record_n(latency_us, n).unwrap();
        Interval::new(start_s, 1.0, n, 0, &h).unwrap()
    }

    #[test]
    fn a_stall_shows_in_the_windows_that_hold_it() {
        // Ten seconds at 1 ms, one at 2 s.
        let mut series: Vec<Interval> = (0..10).map(|s| interval(s as f64, 1_000, 100)).collect();
        series[6] = interval(6.0, 2_000_000, 100);
        let w = windows(&series, 2).unwrap();
        assert_eq!(w.len(), 9);
        let slow: Vec<f64> = w
            .iter()
            .filter(|w| w.latency_us.p90 > 1_000_000)
            .map(|w| w.start_s)
            .collect();
        assert_eq!(slow, [5.0, 6.0]);
        assert_eq!(w[0].ok, 200);
        assert_eq!(w[0].duration_s, 2.0);
        // Wider than the series: one window of all of it.
        assert_eq!(windows(&series, 20).unwrap().len(), 1);
    }
}
