//! find-capacity's search: which rate each step runs at, and what the steps
//! so far say the capacity is. This is a pure state machine over the steps'
//! verdicts; running a step (settle, measure, cooldown, health check),
//! judging it against the SLO, the clock behind `max_duration` and the
//! report all belong to its driver.
//!
//! The search grows from `start` by `growth` per step until a step fails
//! or `max` passes (the last growth step is clamped to `max`), bisects
//! between the last pass and the first fail until the bracket is within
//! `precision` of the passing rate, then re-runs the best pass `confirm`
//! times. A failed confirm makes that rate a fail, and the search carries
//! on below it. An inconclusive step (the generator could not hold the
//! schedule) is an upper bound the search cannot measure past: it bisects
//! below it and reports the capacity as "at least".
//!
//! Every decision is a function of the steps recorded so far, so
//! [`Search::next_step`] may be called again without recording and gives the
//! same step.

use std::fmt;

use floodgate_loadgen::plan::Mode;
pub use floodgate_reports::scenario::CapacityFinding;

use crate::scenario::model::FindCapacity;

#[cfg(test)]
mod tests;

/// What one measured step showed.
#[derive(Debug, Clone, PartialEq)]
pub enum StepVerdict {
    /// Every SLO term held.
    Pass,
    /// An SLO term failed; `why` names it with the measured value, e.g.
    /// "latency.p99 < 10ms measured 14.2 ms".
    Fail { why: String },
    /// The generator lagged or ran out of ports or descriptors: the step
    /// says nothing about the server.
    Inconclusive { why: String },
}

/// One step for the driver to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub rate_per_s: f64,
    /// A re-run of the best passing rate, which must pass again.
    pub confirm: bool,
}

/// Why a search ended before it was over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `max_steps` ran out; the steps it left were spent confirming the
    /// best pass, so the bracket may be wider than `precision`.
    MaxSteps,
    /// `max_duration` was reached.
    MaxDuration,
    /// The run was interrupted.
    Interrupted,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stopped::MaxSteps => "max_steps reached",
            Stopped::MaxDuration => "max_duration reached",
            Stopped::Interrupted => "interrupted",
        })
    }
}

/// A find-capacity search in progress.
#[derive(Debug, Clone)]
pub struct Search {
    start_per_s: f64,
    max_per_s: f64,
    growth: f64,
    precision: f64,
    confirm: u32,
    max_steps: u32,
    mode: Mode,
    steps: Vec<(Step, StepVerdict)>,
    stopped: Option<Stopped>,
}

/// What the steps so far ask for next, before the step budget is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    /// A growth or bisection step at this rate.
    Explore(f64),
    /// A confirm of the best pass, at this rate.
    Confirm(f64),
    /// Nothing is left to learn.
    Done,
}

/// What the steps so far show, derived from them alone.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    /// The lowest failing rate.
    first_fail: Option<f64>,
    /// The lowest inconclusive rate.
    ceiling: Option<f64>,
    /// The highest pass below both.
    last_pass: Option<f64>,
}

impl Bounds {
    /// The lowest rate the search may not step to.
    fn upper(&self) -> Option<f64> {
        match (self.first_fail, self.ceiling) {
            (Some(f), Some(c)) => Some(f.min(c)),
            (f, c) => f.or(c),
        }
    }
}

impl Search {
    /// A search with `spec`'s bounds. Validation keeps `start < max`,
    /// `growth > 1` and `precision > 0`; values outside those still give a
    /// search that ends (within `max_steps`) without panicking.
    pub fn new(spec: &FindCapacity) -> Search {
        let growth = if spec.growth > 1.0 { spec.growth } else { 2.0 };
        Search {
            start_per_s: spec.start_per_s,
            max_per_s: spec.max_per_s.max(spec.start_per_s),
            growth,
            precision: spec.precision.max(0.0),
            confirm: spec.confirm,
            max_steps: spec.max_steps,
            mode: spec.mode,
            steps: Vec::new(),
            stopped: None,
        }
    }

    /// The next step to run, or `None` when the search is over.
    ///
    /// When only enough of `max_steps` is left for the best pass's
    /// confirms, the search stops exploring and spends them on the
    /// confirms, so that a search cut short still has a confirmed rate.
    pub fn next_step(&mut self) -> Option<Step> {
        if matches!(
            self.stopped,
            Some(Stopped::MaxDuration | Stopped::Interrupted)
        ) {
            return None;
        }
        let left = self.max_steps.saturating_sub(self.steps_run());
        let bounds = self.bounds();
        let confirms_owed = bounds
            .last_pass
            .map_or(0, |r| self.confirm.saturating_sub(self.confirms_passed(r)));
        let step = match self.plan(&bounds) {
            Plan::Done => return None,
            Plan::Explore(rate) if left > confirms_owed => Step {
                rate_per_s: rate,
                confirm: false,
            },
            Plan::Explore(_) => {
                self.stopped = Some(Stopped::MaxSteps);
                match bounds.last_pass {
                    Some(rate) if left > 0 && confirms_owed > 0 => Step {
                        rate_per_s: rate,
                        confirm: true,
                    },
                    _ => return None,
                }
            }
            Plan::Confirm(rate) if left > 0 => Step {
                rate_per_s: rate,
                confirm: true,
            },
            Plan::Confirm(_) => {
                self.stopped = Some(Stopped::MaxSteps);
                return None;
            }
        };
        Some(step)
    }

    /// Records what `step`, as [`Search::next_step`] gave it, showed.
    pub fn record(&mut self, step: Step, verdict: StepVerdict) {
        self.steps.push((step, verdict));
    }

    /// Ends the search before it is over (`max_duration` reached,
    /// interrupted): the result is of the steps recorded so far. A search
    /// that was already over keeps its result as it was.
    pub fn stop(&mut self, why: Stopped) {
        let over = match self.stopped {
            Some(Stopped::MaxDuration | Stopped::Interrupted) => true,
            _ => self.steps_run() >= self.max_steps || self.plan(&self.bounds()) == Plan::Done,
        };
        if !over {
            self.stopped = Some(why);
        }
    }

    /// What the steps so far show.
    pub fn result(&self) -> CapacityResult {
        let bounds = self.bounds();
        let upper = bounds.upper();
        let below = |r: f64| upper.is_none_or(|u| r < u);
        let capacity = self
            .passes()
            .filter(|&r| below(r) && self.confirms_passed(r) >= self.confirm)
            .fold(None, |best: Option<f64>, r| {
                Some(best.map_or(r, |b| b.max(r)))
            });
        let generator_bound = self.steps.iter().any(|(s, v)| {
            matches!(v, StepVerdict::Inconclusive { .. })
                && capacity.is_none_or(|c| s.rate_per_s > c)
                && bounds.first_fail.is_none_or(|f| s.rate_per_s < f)
        });
        let unstable = bounds
            .first_fail
            .is_some_and(|f| self.passes().any(|r| r > f));
        let first_fail_why = bounds.first_fail.and_then(|f| {
            self.steps.iter().find_map(|(s, v)| match v {
                StepVerdict::Fail { why } if s.rate_per_s == f => Some(why.clone()),
                _ => None,
            })
        });
        CapacityResult {
            finding: CapacityFinding {
                capacity_per_s: capacity,
                generator_bound,
                last_pass_per_s: bounds.last_pass,
                first_fail_per_s: bounds.first_fail,
                unstable,
                reached_max: bounds.last_pass == Some(self.max_per_s),
                first_fail_why,
            },
            steps: self.steps.clone(),
            stopped: self.stopped,
            start_per_s: self.start_per_s,
            mode: self.mode,
        }
    }

    /// What the steps so far ask for, before the step budget is counted.
    fn plan(&self, bounds: &Bounds) -> Plan {
        if self.steps.is_empty() {
            return Plan::Explore(self.start_per_s);
        }
        // Nothing passed below what failed or could not be measured: the
        // first step failed, or every pass was refuted; there is nothing
        // to bisect from.
        let Some(lo) = bounds.last_pass else {
            return Plan::Done;
        };
        let explore = match bounds.upper() {
            None if lo < self.max_per_s => Some((lo * self.growth).min(self.max_per_s)),
            None => None,
            Some(hi) => {
                let mid = lo + (hi - lo) / 2.0;
                // The second test ends a bisection that floating point (or
                // a precision of 0) can no longer split.
                let wide = hi - lo > self.precision * lo;
                (wide && mid > lo && mid < hi).then_some(mid)
            }
        };
        match explore {
            Some(rate) => Plan::Explore(rate),
            None if self.confirms_passed(lo) < self.confirm => Plan::Confirm(lo),
            None => Plan::Done,
        }
    }

    fn bounds(&self) -> Bounds {
        let lowest = |inconclusive: bool| {
            self.steps
                .iter()
                .filter(|(_, v)| match v {
                    StepVerdict::Pass => false,
                    StepVerdict::Fail { .. } => !inconclusive,
                    StepVerdict::Inconclusive { .. } => inconclusive,
                })
                .map(|(s, _)| s.rate_per_s)
                .reduce(f64::min)
        };
        let mut bounds = Bounds {
            first_fail: lowest(false),
            ceiling: lowest(true),
            last_pass: None,
        };
        let upper = bounds.upper();
        bounds.last_pass = self
            .passes()
            .filter(|&r| upper.is_none_or(|u| r < u))
            .reduce(f64::max);
        bounds
    }

    /// The rates of every passing step.
    fn passes(&self) -> impl Iterator<Item = f64> + '_ {
        self.steps
            .iter()
            .filter(|(_, v)| *v == StepVerdict::Pass)
            .map(|(s, _)| s.rate_per_s)
    }

    /// How many confirms of `rate` passed.
    fn confirms_passed(&self, rate: f64) -> u32 {
        let n = self
            .steps
            .iter()
            .filter(|(s, v)| s.confirm && s.rate_per_s == rate && *v == StepVerdict::Pass)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn steps_run(&self) -> u32 {
        u32::try_from(self.steps.len()).unwrap_or(u32::MAX)
    }
}

/// The rates a sharded find-capacity phase climbs, whatever its steps
/// show: `max_steps` rates from `start` to `max`, each the last times the
/// same factor. Shards cannot share verdicts while they run, so none may
/// pick its next rate from its own share; they all climb this ladder and
/// `floodgate report merge` judges every rung on the shards' figures
/// together ([`Search::replay`]).
pub fn ladder(spec: &FindCapacity) -> Vec<f64> {
    let n = spec.max_steps.max(1);
    let (start, max) = (spec.start_per_s, spec.max_per_s.max(spec.start_per_s));
    if n == 1 {
        return vec![start];
    }
    let factor = (max / start).powf(1.0 / f64::from(n - 1));
    (0..n)
        .map(|k| {
            if k == n - 1 {
                max
            } else {
                start * factor.powi(k as i32)
            }
        })
        .collect()
}

impl Search {
    /// A search that records a [`ladder`]'s rungs rather than choosing
    /// steps: it asks for no confirms, each rung being its own evidence.
    pub fn for_ladder(spec: &FindCapacity) -> Search {
        Search {
            confirm: 0,
            ..Search::new(spec)
        }
    }

    /// What `steps`, run and judged in this order, show about `spec`'s
    /// capacity: the result of a search that ran them (a fixed ladder's
    /// rungs, say), with its bracket and first failing step.
    pub fn replay(
        spec: &FindCapacity,
        steps: impl IntoIterator<Item = (f64, StepVerdict)>,
    ) -> CapacityResult {
        let mut search = Search::for_ladder(spec);
        for (rate_per_s, verdict) in steps {
            search.record(
                Step {
                    rate_per_s,
                    confirm: false,
                },
                verdict,
            );
        }
        search.result()
    }
}

/// What a find-capacity search found.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityResult {
    /// The capacity and its bracket, as the report carries them.
    pub finding: CapacityFinding,
    /// Every step, in the order they ran.
    pub steps: Vec<(Step, StepVerdict)>,
    /// Why the search ended before it was over, if it did.
    pub stopped: Option<Stopped>,
    /// The search's first rate, for the summary of a search that failed
    /// on it.
    pub start_per_s: f64,
    /// What the rates count: requests, or connects.
    pub mode: Mode,
}

impl CapacityResult {
    /// The result in plain words, e.g. "capacity 1,020 req/s (bracket
    /// 1,020–1,080/s, 9 steps); first failing step 1,080/s: latency.p99 <
    /// 10ms measured 14.2 ms".
    pub fn summary(&self) -> String {
        let unit = match self.mode {
            Mode::Connect => "connects/s",
            _ => "req/s",
        };
        let n = self.steps.len();
        let steps = format!("{n} step{}", if n == 1 { "" } else { "s" });
        let mut out = match (self.finding.capacity_per_s, self.finding.last_pass_per_s) {
            (Some(c), _) if self.finding.generator_bound => {
                format!("at least {} {unit} (generator-bound, {steps})", rate(c))
            }
            (Some(c), _) if self.finding.reached_max => {
                format!("at least {} {unit} (max reached, {steps})", rate(c))
            }
            (Some(c), _) => match self.finding.first_fail_per_s {
                Some(f) => format!(
                    "capacity {} {unit} (bracket {}–{}/s, {steps})",
                    rate(c),
                    rate(c),
                    rate(f)
                ),
                None => format!("at least {} {unit} (nothing failed, {steps})", rate(c)),
            },
            (None, Some(p)) => format!(
                "no confirmed capacity: the best pass, {}/s, was not confirmed ({steps})",
                rate(p)
            ),
            (None, None) if self.steps.is_empty() => "no capacity: no step ran".to_string(),
            (None, None) if self.finding.generator_bound => format!(
                "no capacity: the generator could not hold {}/s ({steps})",
                rate(self.start_per_s)
            ),
            (None, None) => format!(
                "no capacity: the first rate, {}/s, failed ({steps})",
                rate(self.start_per_s)
            ),
        };
        if let Some(f) = self.finding.first_fail_per_s {
            out.push_str(&format!("; first failing step {}/s", rate(f)));
            if let Some(why) = &self.finding.first_fail_why {
                out.push_str(&format!(": {why}"));
            }
        }
        if self.finding.generator_bound {
            // The lowest inconclusive rate is the one that bounds the search.
            let inconclusive = self
                .steps
                .iter()
                .filter_map(|(s, v)| match v {
                    StepVerdict::Inconclusive { why } => Some((s.rate_per_s, why)),
                    _ => None,
                })
                .reduce(|a, b| if b.0 < a.0 { b } else { a });
            if let Some((r, why)) = inconclusive {
                out.push_str(&format!("; inconclusive at {}/s: {why}", rate(r)));
            }
        }
        if self.finding.unstable {
            out.push_str("; unstable: a rate passed above one that failed");
        }
        if let Some(why) = self.stopped {
            out.push_str(&format!("; stopped early: {why}"));
        }
        out
    }
}

/// A rate as people read it: whole, with thousands separators, from 100/s
/// up; with up to two decimals below.
fn rate(r: f64) -> String {
    if !r.is_finite() {
        return r.to_string();
    }
    if r.abs() < 100.0 {
        let s = format!("{r:.2}");
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let digits = format!("{:.0}", r.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if r < 0.0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}
