//! The report of a scenario run (`floodgate run`, `DIR/report.json`): the
//! scenario as it was read (text, hash, overrides), one entry per phase
//! (its [`Run`], probe report or find-capacity result, and its thresholds
//! with what was measured), the whole run's thresholds, and the status the
//! exit code is drawn from. The JSON Schema is
//! `reports/schema/scenario.schema.json`.

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::evidence::{EvidenceReport, Sample};
use crate::probe::ProbeReport;
use crate::run::Run;

/// The format of a scenario report, bumped on incompatible changes.
pub const SCENARIO_SCHEMA: &str = "floodgate.run/2";

/// What `floodgate run` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// [`SCENARIO_SCHEMA`].
    pub schema: String,
    pub floodgate_version: String,
    pub scenario: ScenarioEcho,
    /// The seed every phase's schedule was drawn from.
    pub seed: u64,
    /// The target URL (the reference server's, when the run started one).
    pub target: String,
    pub started_at_unix_s: f64,
    pub elapsed_s: f64,
    /// Interrupted, or stopped by `abort_on_fail`: phases after the stop
    /// did not run.
    pub partial: bool,
    pub status: Status,
    /// Why, in one sentence per reason (the failed thresholds, the lagging
    /// generator, the interruption).
    pub reasons: Vec<String>,
    pub phases: Vec<PhaseReport>,
    /// The scenario's own thresholds, judged over every phase that is not a
    /// warm-up.
    pub thresholds: Vec<ThresholdResult>,
    /// The kernel's evidence over the whole run, when the target listened
    /// in this network namespace: the one timeline that holds the listener
    /// samples and counter ticks. Each phase's run has its share's figures
    /// (counters, deepest queue, time full) without them; its slice is
    /// read by wall-clock time ([`ScenarioReport::samples_of`]).
    pub evidence: Option<EvidenceReport>,
    /// `--baseline`: this run against the baseline's, metric by metric.
    pub baseline: Option<Comparison>,
    /// `--shard i/N`: the share of the scenario this run sent; `null` for
    /// a whole run (and for a merged one, whose shards are in `hosts`).
    #[serde(default)]
    pub shard: Option<Shard>,
    /// The name of the machine the run went on (`null` when it could not
    /// be read, and for a merged run).
    #[serde(default)]
    pub host: Option<String>,
    /// `floodgate report merge`: the shard runs merged into this one, each
    /// with its machine and its own kernel evidence (kept per host, never
    /// summed: each host's counters are its own namespace's). Empty for a
    /// run that was not merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostRun>,
}

/// One shard of a sharded run (`--shard i/N`): shard `index` of `count`,
/// from 0. Shard `i` runs the connection slots `i`, `i + N`, `i + 2N`, …
/// of every phase, so the shards together run the unsharded schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// A shard, checked: `count` at least 1 and `index` below it.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (count >= 1 && index < count).then_some(Shard { index, count })
    }

    /// Parses `i/N` (0 ≤ i < N), as `--shard` takes it.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "{s:?} is not a shard: expected INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/3, 1/3, 2/3)"
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(i, n).ok_or_else(bad)
    }

    /// How many of `slots` connection slots this shard runs: the slots
    /// `index`, `index + count`, … below `slots` (the first `slots %
    /// count` shards get one more).
    pub fn share(&self, slots: usize) -> usize {
        let (i, n) = (self.index as usize, self.count as usize);
        slots / n + usize::from(i < slots % n)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One shard run of a merged report: where it went and what its kernel
/// said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRun {
    pub shard: Shard,
    pub host: Option<String>,
    pub started_at_unix_s: f64,
    pub status: Status,
    /// That run's kernel evidence over the whole run, as it was.
    pub evidence: Option<EvidenceReport>,
}

/// The scenario as it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioEcho {
    pub name: String,
    /// The path as given on the command line.
    pub file: String,
    /// SHA-256 of `text`, hex.
    pub sha256: String,
    pub text: String,
    /// The `--set KEY=VALUE` overrides, in order.
    pub sets: Vec<String>,
}

/// What a run's exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every threshold held: exit 0.
    Pass,
    /// A threshold failed: exit 1.
    Fail,
    /// The generator could not hold its schedule: exit 4.
    Inconclusive,
    /// Ctrl-C: exit 130, with the phases that ran.
    Interrupted,
}

/// One phase as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    /// As written: `steady`, `ramp`, `find-capacity`, …
    pub kind: String,
    /// Measured and reported, never judged.
    pub warmup: bool,
    /// From the start of the scenario run.
    pub start_s: f64,
    pub elapsed_s: f64,
    /// Did not run (the run was interrupted or aborted before it).
    pub skipped: bool,
    /// The load the phase sent (none for `pause`, `backlog-probe` and
    /// `find-capacity`, whose steps carry theirs).
    pub run: Option<Run>,
    pub probe: Option<ProbeReport>,
    pub capacity: Option<CapacityReport>,
    /// Why the phase says nothing about the server, if it does not: the
    /// generator lagged, or ran out of ports or descriptors.
    pub inconclusive: Option<String>,
    pub thresholds: Vec<ThresholdResult>,
}

impl PhaseReport {
    /// The report of a phase before it has run: no figures, no thresholds
    /// judged, not skipped.
    pub fn new(name: &str, kind: &str, warmup: bool, start_s: f64) -> PhaseReport {
        PhaseReport {
            name: name.to_string(),
            kind: kind.to_string(),
            warmup,
            start_s,
            elapsed_s: 0.0,
            skipped: false,
            run: None,
            probe: None,
            capacity: None,
            inconclusive: None,
            thresholds: Vec::new(),
        }
    }
}

/// One threshold, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// As written: `latency.p99 < 25ms over 10s`.
    pub threshold: String,
    pub status: Judged,
    /// The measured value in the threshold's unit, as text (`14.2ms`,
    /// `0.35%`, `accept_queue_overflow`); for `over`, the worst window's.
    pub measured: Option<String>,
    /// With `over`: the first window that failed, from the phase's start.
    pub failed_window: Option<WindowSpan>,
    /// Why it could not be judged, or what failed, in words.
    pub note: Option<String>,
}

impl ThresholdResult {
    /// What was measured and the note, in words: `measured 14.2ms (failed
    /// in the window from 4s to 6s of the phase)`; empty when neither.
    pub fn details(&self) -> String {
        let measured = self.measured.as_deref().map(|m| format!("measured {m}"));
        let note = self.note.as_deref().map(|n| format!("({n})"));
        measured
            .into_iter()
            .chain(note)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a threshold came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judged {
    Pass,
    Fail,
    /// A warm-up phase's: measured, never judged.
    NotJudged,
}

/// A window of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSpan {
    pub start_s: f64,
    pub duration_s: f64,
}

/// What a find-capacity search found: the capacity and the bracket around
/// it. The search (floodgate-runner's `capacity`) produces it; the report
/// carries it as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityFinding {
    /// The highest passing rate whose confirms all passed, below every
    /// failing and inconclusive rate; `null` when nothing passed, or the
    /// search stopped before the best pass was confirmed.
    pub capacity_per_s: Option<f64>,
    /// A step above the capacity (and below the first fail) was
    /// inconclusive: the capacity is "at least" this much, as far as the
    /// generator could measure.
    pub generator_bound: bool,
    /// The bracket: the highest pass below every failing and inconclusive
    /// rate, confirmed or not, ...
    pub last_pass_per_s: Option<f64>,
    /// ... and the lowest failing rate.
    pub first_fail_per_s: Option<f64>,
    /// A rate passed above one that failed (in either order): the server's
    /// capacity moved during the search.
    pub unstable: bool,
    /// `max` passed and no step refuted it: the capacity is at least `max`.
    pub reached_max: bool,
    /// Why the step at `first_fail_per_s` failed: which SLO term, with the
    /// verdict.
    pub first_fail_why: Option<String>,
}

/// A find-capacity phase's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    #[serde(flatten)]
    pub finding: CapacityFinding,
    /// Why the search stopped early, if it did: `max_steps reached`,
    /// `max_duration reached` or `interrupted`.
    pub stopped: Option<String>,
    /// The result in one sentence.
    pub summary: String,
    pub steps: Vec<CapacityStep>,
    /// The Universal Scalability Law fitted to the passing steps.
    pub usl: Option<UslReport>,
}

/// The Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)),
/// fitted to a find-capacity phase's passing steps, with the concurrency
/// of each from Little's law (N = X·R).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UslReport {
    /// The passing steps the fit was made from.
    pub points: u32,
    /// `null` when there were too few points or the fit failed (`note`
    /// says which).
    pub fit: Option<UslFit>,
    pub note: Option<String>,
}

impl UslReport {
    /// The fit in one sentence: `USL over 7 passing steps: σ 0.021, κ
    /// 0.00012, λ 950/s; peak 31000/s at concurrency 90 (R² 0.98)`, or why
    /// there is none.
    pub fn sentence(&self) -> String {
        let Some(f) = &self.fit else {
            return format!(
                "USL: no fit ({})",
                self.note.as_deref().unwrap_or("no reason given")
            );
        };
        let peak = match (f.peak_rate_per_s, f.peak_concurrency) {
            (Some(x), Some(n)) => format!("peak {x:.0}/s at concurrency {n:.1}"),
            _ => "no peak (κ = 0)".to_string(),
        };
        format!(
            "USL over {} passing steps: σ {:.3}, κ {:.2e}, λ {:.1}/s; {peak} (R² {:.3})",
            self.points, f.sigma, f.kappa, f.lambda_per_s, f.r_squared
        )
    }
}

/// The fitted coefficients and what they predict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    /// σ, contention: the share of the work that is serialised.
    pub sigma: f64,
    /// κ, coherency: the cost of keeping N workers consistent, per pair.
    pub kappa: f64,
    /// λ, the rate of one unit of concurrency, requests per second.
    pub lambda_per_s: f64,
    /// Where X(N) peaks, √((1−σ)/κ); `null` when κ is 0 (no peak).
    pub peak_concurrency: Option<f64>,
    /// X at that peak; `null` when κ is 0.
    pub peak_rate_per_s: Option<f64>,
    /// The fit's coefficient of determination over the points, 1 is exact.
    pub r_squared: f64,
}

/// One measured step of a find-capacity phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    pub rate_per_s: f64,
    /// A re-run of the best passing rate.
    pub confirm: bool,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    /// What failed, or why the step was inconclusive.
    pub why: Option<String>,
    /// The measured part of the step (after its settle).
    pub run: Run,
}

impl ScenarioReport {
    /// The listener samples taken while `run` (a phase's or a
    /// find-capacity step's) went on, from the report's one timeline, by
    /// wall-clock time: its `started_at_unix_s` for its `elapsed_s`. Empty
    /// without evidence, and for a merged report, whose timelines are each
    /// host's (`hosts[k].evidence`, read with
    /// [`EvidenceReport::samples_between`]).
    pub fn samples_of(&self, run: &Run) -> &[Sample] {
        self.evidence.as_ref().map_or(&[], |e| {
            e.samples_between(run.started_at_unix_s, run.started_at_unix_s + run.elapsed_s)
        })
    }

    /// Writes the report as pretty-printed JSON.
    pub fn write_json<W: std::io::Write>(&self, w: W) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(w, self)
    }
}

/// Why a scenario report cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioReadError {
    #[error("not a floodgate scenario report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("schema {0:?}: this floodgate reads {SCENARIO_SCHEMA:?}")]
    Schema(String),
    #[error("phases[{index}].{what}: {why}")]
    Run {
        index: usize,
        what: String,
        why: crate::read::ReadError,
    },
}

/// Reads a scenario report, checking every run in it as [`crate::read()`]
/// checks a result file.
pub fn read(bytes: &[u8]) -> Result<ScenarioReport, ScenarioReadError> {
    if bytes.len() > crate::read::MAX_FILE_BYTES {
        return Err(ScenarioReadError::Json(serde::de::Error::custom(format!(
            "the file is {} bytes, over the {}-byte limit",
            bytes.len(),
            crate::read::MAX_FILE_BYTES
        ))));
    }
    let report: ScenarioReport = serde_json::from_slice(bytes)?;
    if report.schema != SCENARIO_SCHEMA {
        return Err(ScenarioReadError::Schema(report.schema));
    }
    let check = |index: usize, what: String, run: &Run| {
        let bytes = serde_json::to_vec(run).map_err(ScenarioReadError::Json)?;
        crate::read::read(&bytes)
            .map(drop)
            .map_err(|why| ScenarioReadError::Run { index, what, why })
    };
    for (index, p) in report.phases.iter().enumerate() {
        if let Some(run) = &p.run {
            check(index, "run".into(), run)?;
        }
        for (k, step) in p.capacity.iter().flat_map(|c| &c.steps).enumerate() {
            check(index, format!("capacity.steps[{k}].run"), &step.run)?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usl_report_reads_as_one_sentence() {
        let mut u = UslReport {
            points: 7,
            fit: Some(UslFit {
                sigma: 0.021,
                kappa: 0.00012,
                lambda_per_s: 950.0,
                peak_concurrency: Some(90.0),
                peak_rate_per_s: Some(31_000.0),
                r_squared: 0.98,
            }),
            note: None,
        };
        assert_eq!(
            u.sentence(),
            "USL over 7 passing steps: σ 0.021, κ 1.20e-4, λ 950.0/s; \
             peak 31000/s at concurrency 90.0 (R² 0.980)"
        );
        u.fit = None;
        u.note = Some("5 passing steps measured; the fit needs at least 6".into());
        assert_eq!(
            u.sentence(),
            "USL: no fit (5 passing steps measured; the fit needs at least 6)"
        );
    }
}
