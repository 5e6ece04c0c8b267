//! A run compared with its baseline (`floodgate report compare`,
//! `floodgate run --baseline`): phase by phase (matched by name) and metric
//! by metric, the base runs' figures against the new run's, and whether a
//! change counts as a regression. Pure: the reports come in read, the
//! [`Comparison`] goes out; reading files, printing and exit codes are the
//! binary's.
//!
//! A figure is the median of a run's per-interval values (latency p50 and
//! p99 from each interval's histogram, `ok` per second, the error share),
//! so one stalled second does not move it. A row is a regression only when
//! all of these hold: the change, in the worse direction, is beyond the
//! tolerance; the two-sided Mann-Whitney U test of the base runs' pooled
//! intervals against the new run's gives p < [`SIGNIFICANCE`]; and, with
//! two or more base runs, the new figure lies outside the spread of theirs.
//! A find-capacity phase has one figure per run, its capacity, and no
//! interval samples: there the test is that the new run failed its SLO at
//! a rate the baseline held.

pub mod mann_whitney;

use floodgate_reports::compare::{Comparison, ComparisonRow};
use floodgate_reports::histogram::{self, HistogramError};
use floodgate_reports::run::Run;
use floodgate_reports::scenario::{PhaseReport, ScenarioReport};

/// The p-value below which a change is significant.
pub const SIGNIFICANCE: f64 = 0.05;

/// The fewest intervals on either side for the test to be run; with three
/// base and three new intervals that all differ, p is 0.08, so fewer could
/// never be significant anyway.
pub const MIN_SAMPLES: usize = 3;

/// An interval shorter than this share of a run's longest (the run's last,
/// cut short by its end) is left out of the samples: its rate is not
/// comparable.
const FULL_INTERVAL: f64 = 0.9;

/// What a regression does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exit 5.
    Fail,
    /// Reported only.
    Warn,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fail => "fail",
            Mode::Warn => "warn",
        }
    }
}

/// How to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The smallest relative change that can count, e.g. 0.05.
    pub tolerance: f64,
    pub mode: Mode,
    /// Compare runs of different scenarios anyway.
    pub force: bool,
}

/// One base report and the file it was read from.
#[derive(Debug, Clone)]
pub struct Base {
    pub file: String,
    pub report: ScenarioReport,
}

/// Why two runs are not compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("no base report to compare with")]
    NoBase,
    #[error("{0}")]
    DifferentScenario(Box<Mismatch>),
    #[error("{file}: phase {phase:?}: intervals[{index}].response_time: {why}")]
    Histogram {
        file: String,
        phase: String,
        index: usize,
        why: HistogramError,
    },
}

/// Two runs of different scenarios: the files, the scenarios and their
/// hashes.
#[derive(Debug, thiserror::Error)]
#[error(
    "{base_file} is a run of scenario {base_scenario} (sha256 {base_sha256}), {new_file} of \
     {new_scenario} (sha256 {new_sha256}): runs of different scenarios are not compared"
)]
pub struct Mismatch {
    pub base_file: String,
    pub base_scenario: String,
    pub base_sha256: String,
    pub new_file: String,
    pub new_scenario: String,
    pub new_sha256: String,
}

/// The new run's scenario, as [`check_scenario`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct NewScenario<'a> {
    /// The new report's file, or `this run`.
    pub file: &'a str,
    /// `"name" from FILE.toml`.
    pub name: &'a str,
    pub scenario_file: &'a str,
    pub sha256: &'a str,
}

/// Checks that every base ran the new run's scenario (the same SHA-256 of
/// the scenario text); with `force`, a difference is a note instead of an
/// error. Called before a run starts, so a wrong base costs no run.
pub fn check_scenario(
    bases: &[Base],
    new: NewScenario<'_>,
    force: bool,
) -> Result<Vec<String>, CompareError> {
    if bases.is_empty() {
        return Err(CompareError::NoBase);
    }
    let mut notes = Vec::new();
    for b in bases {
        let s = &b.report.scenario;
        if s.sha256 == new.sha256 {
            continue;
        }
        let err = CompareError::DifferentScenario(Box::new(Mismatch {
            base_file: b.file.clone(),
            base_scenario: format!("{:?} from {}", s.name, s.file),
            base_sha256: s.sha256.clone(),
            new_file: new.file.to_string(),
            new_scenario: format!("{:?} from {}", new.name, new.scenario_file),
            new_sha256: new.sha256.to_string(),
        }));
        if !force {
            return Err(err);
        }
        notes.push(format!("compared with --force: {err}"));
    }
    Ok(notes)
}

/// Compares `new` (read from `new_file`, or `this run`) with `bases`.
pub fn compare(
    bases: &[Base],
    new: &ScenarioReport,
    new_file: &str,
    options: Options,
) -> Result<Comparison, CompareError> {
    let mut notes = check_scenario(
        bases,
        NewScenario {
            file: new_file,
            name: &new.scenario.name,
            scenario_file: &new.scenario.file,
            sha256: &new.scenario.sha256,
        },
        options.force,
    )?;
    for b in bases {
        if b.report.scenario.sets != new.scenario.sets {
            notes.push(format!(
                "{} ran with --set {:?}, {new_file} with {:?}",
                b.file, b.report.scenario.sets, new.scenario.sets
            ));
        }
        for p in &b.report.phases {
            if !new.phases.iter().any(|q| q.name == p.name) {
                notes.push(format!(
                    "phase {:?} is in {} only, not in {new_file}",
                    p.name, b.file
                ));
            }
        }
    }
    let mut rows = Vec::new();
    for phase in &new.phases {
        compare_phase(bases, phase, new_file, options, &mut rows, &mut notes)?;
    }
    Ok(Comparison {
        base_files: bases.iter().map(|b| b.file.clone()).collect(),
        tolerance: options.tolerance,
        mode: options.mode.as_str().to_string(),
        regression: rows.iter().any(|r| r.regression),
        rows,
        notes,
    })
}

/// The rows of one phase of the new run, or the notes that say why it has
/// none.
fn compare_phase(
    bases: &[Base],
    new: &PhaseReport,
    new_file: &str,
    options: Options,
    rows: &mut Vec<ComparisonRow>,
    notes: &mut Vec<String>,
) -> Result<(), CompareError> {
    let name = &new.name;
    if new.warmup {
        notes.push(format!("phase {name:?} is a warm-up: not compared"));
        return Ok(());
    }
    if new.skipped {
        notes.push(format!("phase {name:?} did not run in {new_file}"));
        return Ok(());
    }
    let mut matched = Vec::new();
    for b in bases {
        match b.report.phases.iter().find(|p| &p.name == name) {
            None => notes.push(format!(
                "phase {name:?} is in {new_file} only, not in {}",
                b.file
            )),
            Some(p) if p.skipped => notes.push(format!("phase {name:?} did not run in {}", b.file)),
            Some(p) => matched.push((b.file.as_str(), p)),
        }
    }
    if matched.len() < bases.len() {
        notes.push(format!(
            "phase {name:?} is not compared: not every base ran it"
        ));
        return Ok(());
    }
    if let Some(why) = &new.inconclusive {
        notes.push(format!(
            "phase {name:?} was inconclusive in {new_file} ({why}): its figures may be the generator's"
        ));
    }
    if let Some(run) = &new.run {
        let base_runs: Vec<(&str, &Run)> = matched
            .iter()
            .filter_map(|(f, p)| p.run.as_ref().map(|r| (*f, r)))
            .collect();
        if base_runs.len() < matched.len() {
            notes.push(format!(
                "phase {name:?} sent no load in some base: not compared"
            ));
            return Ok(());
        }
        for metric in Metric::ALL {
            let new_samples =
                metric
                    .samples(run)
                    .map_err(|(index, why)| CompareError::Histogram {
                        file: new_file.to_string(),
                        phase: name.clone(),
                        index,
                        why,
                    })?;
            let mut base_samples = Vec::new();
            for (file, r) in &base_runs {
                base_samples.push(metric.samples(r).map_err(|(index, why)| {
                    CompareError::Histogram {
                        file: file.to_string(),
                        phase: name.clone(),
                        index,
                        why,
                    }
                })?);
            }
            let empty_bases = base_samples.iter().filter(|s| s.is_empty()).count();
            match (new_samples.is_empty(), empty_bases) {
                // Nothing to compare on either side (a hold phase's latency).
                (true, n) if n == base_samples.len() => {}
                (false, 0) => rows.push(sampled_row(
                    name,
                    metric,
                    &base_samples,
                    &new_samples,
                    options.tolerance,
                )),
                _ => notes.push(format!(
                    "phase {name:?} {}: some run has no full interval with requests",
                    metric.name()
                )),
            }
        }
    } else if let Some(cap) = &new.capacity {
        let mut base_caps = Vec::new();
        for (file, p) in &matched {
            match p.capacity.as_ref().and_then(|c| c.finding.capacity_per_s) {
                Some(c) => base_caps.push(c),
                None => notes.push(format!("phase {name:?}: no capacity was found in {file}")),
            }
        }
        match cap.finding.capacity_per_s {
            None => notes.push(format!(
                "phase {name:?}: no capacity was found in {new_file}"
            )),
            Some(c) if base_caps.len() == matched.len() => rows.push(capacity_row(
                name,
                &base_caps,
                c,
                cap.finding.first_fail_per_s,
                options.tolerance,
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

/// What is compared of a phase that sent load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    P50,
    P99,
    Rate,
    Errors,
}

impl Metric {
    const ALL: [Metric; 4] = [Metric::P50, Metric::P99, Metric::Rate, Metric::Errors];

    fn name(self) -> &'static str {
        match self {
            Metric::P50 => "latency.p50",
            Metric::P99 => "latency.p99",
            Metric::Rate => "rate.achieved",
            Metric::Errors => "errors",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::P50 | Metric::P99 => "ms",
            Metric::Rate => "/s",
            Metric::Errors => "%",
        }
    }

    /// A rise is worse (latency, errors), or a drop is (rates).
    fn rise_is_worse(self) -> bool {
        self != Metric::Rate
    }

    /// The smallest base a change is taken relative to: an error share
    /// from 0 to 0.04% is a 4% change (relative to 1%), not an infinite
    /// one.
    fn floor(self) -> f64 {
        match self {
            Metric::P50 | Metric::P99 => 0.001,
            Metric::Rate => 1e-9,
            Metric::Errors => 1.0,
        }
    }

    /// One value per full interval of `run` that had requests (the
    /// interval's index and error when its histogram does not decode).
    fn samples(self, run: &Run) -> Result<Vec<f64>, (usize, HistogramError)> {
        let longest = run
            .intervals
            .iter()
            .map(|i| i.duration_s)
            .fold(0.0, f64::max);
        let mut out = Vec::new();
        for (index, i) in run.intervals.iter().enumerate() {
            let sent = i.ok + i.errors;
            if i.duration_s < FULL_INTERVAL * longest || sent == 0 {
                continue;
            }
            out.push(match self {
                Metric::P50 | Metric::P99 => {
                    let q = if self == Metric::P50 { 0.5 } else { 0.99 };
                    let h = histogram::decode(&i.response_time).map_err(|e| (index, e))?;
                    h.value_at_quantile(q) as f64 / 1000.0
                }
                Metric::Rate => i.ok as f64 / i.duration_s,
                Metric::Errors => 100.0 * i.errors as f64 / sent as f64,
            });
        }
        Ok(out)
    }

    /// The change in words: `21.0% slower`.
    fn change_words(self, change: f64) -> String {
        let (up, down) = match self {
            Metric::P50 | Metric::P99 => ("slower", "faster"),
            Metric::Rate => ("higher", "lower"),
            Metric::Errors => ("more errors", "fewer errors"),
        };
        match change {
            0.0 => "unchanged".to_string(),
            c if c > 0.0 => format!("{:.1}% {up}", c * 100.0),
            c => format!("{:.1}% {down}", -c * 100.0),
        }
    }
}

/// A row of a metric with interval samples: `bases[k]` are base run k's.
fn sampled_row(
    phase: &str,
    metric: Metric,
    bases: &[Vec<f64>],
    new: &[f64],
    tolerance: f64,
) -> ComparisonRow {
    let median = |v: &[f64]| mann_whitney::median(v).unwrap_or(0.0);
    let figures: Vec<f64> = bases.iter().map(|s| median(s)).collect();
    let pooled: Vec<f64> = bases.concat();
    let p_value = (pooled.len() >= MIN_SAMPLES && new.len() >= MIN_SAMPLES)
        .then(|| mann_whitney::test(&pooled, new).map(|t| t.p))
        .flatten();
    let evidence = match p_value {
        None => Evidence::TooFew {
            base: pooled.len(),
            new: new.len(),
        },
        Some(p) => Evidence::Test(p),
    };
    judge(phase, metric, &figures, median(new), evidence, tolerance)
}

/// A find-capacity phase's row: its capacity, one figure per run.
fn capacity_row(
    phase: &str,
    bases: &[f64],
    new: f64,
    new_first_fail: Option<f64>,
    tolerance: f64,
) -> ComparisonRow {
    let base = mann_whitney::median(bases).unwrap_or(0.0);
    let evidence = Evidence::FailedBelow(new_first_fail.filter(|f| *f <= base));
    let mut row = judge(phase, Metric::Rate, bases, new, evidence, tolerance);
    row.metric = "capacity".to_string();
    row
}

/// What says a change is more than noise.
#[derive(Debug, Clone, Copy)]
enum Evidence {
    /// The Mann-Whitney p-value.
    Test(f64),
    /// Too few intervals to test.
    TooFew { base: usize, new: usize },
    /// find-capacity: the new run's first failing rate, when the base
    /// figure is at or above it (the new run failed where the base held).
    FailedBelow(Option<f64>),
}

/// The row for base runs' `figures` against `new`.
fn judge(
    phase: &str,
    metric: Metric,
    figures: &[f64],
    new: f64,
    evidence: Evidence,
    tolerance: f64,
) -> ComparisonRow {
    let base = mann_whitney::median(figures).unwrap_or(0.0);
    let spread = (figures.len() >= 2).then(|| {
        let min = figures.iter().copied().fold(f64::INFINITY, f64::min);
        let max = figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    });
    let change = (new - base) / base.abs().max(metric.floor());
    let worse = if metric.rise_is_worse() {
        change
    } else {
        -change
    };
    let words = metric.change_words(change);
    let tol = format!("{}%", tolerance * 100.0);
    let outside = spread.is_none_or(|(min, max)| {
        if metric.rise_is_worse() {
            new > max
        } else {
            new < min
        }
    });
    let spread_words = spread
        .map(|(min, max)| {
            format!(
                "the base runs' spread {}–{} {}",
                figure(min),
                figure(max),
                metric.unit()
            )
        })
        .unwrap_or_default();
    let (regression, why) = if worse <= tolerance {
        let within = if worse < -tolerance {
            "an improvement".to_string()
        } else {
            format!("within the {tol} tolerance")
        };
        (false, format!("{words}, {within}"))
    } else {
        let beyond = format!("{words}, beyond the {tol} tolerance");
        match evidence {
            Evidence::TooFew { base, new } => (
                false,
                format!("{beyond}, but too few full intervals to test ({base} base, {new} new)"),
            ),
            Evidence::Test(p) if p >= SIGNIFICANCE => (
                false,
                format!("{beyond}, but not significant (p = {})", p_words(p)),
            ),
            Evidence::FailedBelow(None) => (
                false,
                format!(
                    "{beyond}, but the new run failed no step at or below the base capacity \
                     (within the search's precision)"
                ),
            ),
            _ if !outside => (
                false,
                format!(
                    "{beyond}, {}, but inside {spread_words}",
                    evidence_words(evidence)
                ),
            ),
            _ => {
                let spread = match spread {
                    Some(_) => format!(", outside {spread_words}"),
                    None => String::new(),
                };
                (
                    true,
                    format!("{beyond}, {}{spread}", evidence_words(evidence)),
                )
            }
        }
    };
    ComparisonRow {
        phase: phase.to_string(),
        metric: metric.name().to_string(),
        unit: metric.unit().to_string(),
        base,
        base_min: spread.map(|s| s.0),
        base_max: spread.map(|s| s.1),
        new,
        change,
        p_value: match evidence {
            Evidence::Test(p) => Some(p),
            _ => None,
        },
        regression,
        why,
    }
}

fn evidence_words(e: Evidence) -> String {
    match e {
        Evidence::Test(p) => format!("p = {}", p_words(p)),
        Evidence::FailedBelow(Some(f)) => {
            format!("the new run failed at {}/s, which the base held", figure(f))
        }
        Evidence::FailedBelow(None) | Evidence::TooFew { .. } => String::new(),
    }
}

/// Parses a tolerance: `5%` or `0.05` (a bare number is a share, so one
/// above 1 is refused: write `150%` for that).
pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let syntax = || format!("expected a share of 0 or more, like 5% or 0.05, found {text:?}");
    // A percentage is read as the scenario files read one.
    if let Some(number) = t.strip_suffix('%') {
        return crate::scenario::units::percent(&format!("{}%", number.trim()))
            .map_err(|_| syntax());
    }
    let value: f64 = t.parse().map_err(|_| syntax())?;
    if !value.is_finite() || value < 0.0 {
        return Err(syntax());
    }
    if value > 1.0 {
        return Err(format!(
            "{text:?} would be {}%: a bare number is a share (0.05); write 5% for five per cent",
            value * 100.0
        ));
    }
    Ok(value)
}

/// A p-value as the table shows it.
fn p_words(p: f64) -> String {
    if p < 0.0001 {
        "< 0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}

/// A figure with the digits that matter.
fn figure(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests;
