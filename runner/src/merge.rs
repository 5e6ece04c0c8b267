//! `floodgate report merge`: the reports of a sharded run's N shards
//! (`floodgate run --shard i/N`) made into the one report of the whole run,
//! exactly: books and counters summed, histograms added (never percentiles
//! averaged), each phase's time series aligned by wall clock (a shard's
//! `started_at_unix_s` plus the interval's start), rates recomputed from the
//! summed counts, and every threshold judged again on the merged figures by
//! the same judging as `floodgate run` (`run::judge`, `run::status`), which
//! a shard alone cannot do: its share of the load is not the run's.
//!
//! The kernel's evidence is kept per host (`ScenarioReport::hosts`), never
//! summed: shards on one machine share its counters. A merged phase's run
//! carries one shard's evidence, the one whose kernel counted the most
//! overflows, so a kernel threshold is judged on a real host's figures.
//!
//! A find-capacity phase, which every shard ran as the same fixed ladder
//! of rates, is judged again rung by rung on the merged runs, and the
//! search is replayed over them for the capacity and its bracket.
//!
//! The set of reports is checked first: every one sharded, all of the same
//! shard count, scenario (text hash and `--set` overrides) and seed, each
//! index once, none missing.

use std::collections::BTreeMap;

use floodgate_reports::histogram;
use floodgate_reports::run::{self, MalformedReport, Run};
use floodgate_reports::scenario::{
    CapacityReport, CapacityStep, HostRun, PhaseReport, SCENARIO_SCHEMA, ScenarioReport, Shard,
    Status,
};
use floodgate_reports::series::{Interval, QueueInterval};
use floodgate_reports::{Outcome, histogram::HistogramError};

use crate::capacity::{Search, StepVerdict};
use crate::run::status::{finish_phases, judge_whole_run, status};

/// Why a set of shard reports does not merge. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no report to merge")]
    Empty,
    #[error("{file}: not a shard's report (it was not run with --shard i/N)")]
    Unsharded { file: String },
    #[error("{file}: shard {shard}, but {first} is of {count} shards: the shard counts differ")]
    Count {
        file: String,
        shard: Shard,
        first: String,
        count: u32,
    },
    #[error("{file}: {what} differs from {first}'s: the reports are of different runs")]
    Scenario {
        file: String,
        first: String,
        what: &'static str,
    },
    #[error("shard {index}/{count} is given twice: {a} and {b}")]
    Duplicate {
        index: u32,
        count: u32,
        a: String,
        b: String,
    },
    #[error("{} missing: give every shard's report", missing_list(missing, *count))]
    Missing { missing: Vec<u32>, count: u32 },
    #[error("{file}: phase {phase:?} has a {what}, which a sharded run cannot have")]
    Unmergeable {
        file: String,
        phase: String,
        what: &'static str,
    },
    #[error("the scenario in the reports no longer validates: {0}")]
    Invalid(String),
    #[error("phase {phase:?}: a histogram does not decode: {why}")]
    Histogram { phase: String, why: HistogramError },
}

/// Merges the reports of every shard of one run, given with the file each
/// came from (for the messages).
pub fn merge(reports: &[(String, ScenarioReport)]) -> Result<ScenarioReport, MergeError> {
    let sorted = check_set(reports)?;
    let (first_file, first) = sorted[0];
    let scenario = crate::scenario::check(
        &first.scenario.file,
        &first.scenario.text,
        &first.scenario.sets,
    )
    .map_err(|e| MergeError::Invalid(e.to_string()))?;
    let mut phases = Vec::with_capacity(first.phases.len());
    for (k, p) in first.phases.iter().enumerate() {
        let shards: Vec<&PhaseReport> = sorted.iter().map(|(_, r)| &r.phases[k]).collect();
        for (file, r) in &sorted {
            let q = &r.phases[k];
            if q.probe.is_some() {
                return Err(MergeError::Unmergeable {
                    file: file.to_string(),
                    phase: q.name.clone(),
                    what: "backlog probe",
                });
            }
        }
        let capacity = match &scenario.phases.get(k).map(|s| &s.kind) {
            Some(crate::scenario::PhaseKind::FindCapacity(f)) => {
                merge_ladder(f, &sorted, k, scenario.max_lag)?
            }
            _ => None,
        };
        let runs: Vec<&Run> = shards.iter().filter_map(|s| s.run.as_ref()).collect();
        let run = match runs.is_empty() {
            true => None,
            false => Some(merge_runs(&runs).map_err(|why| MergeError::Histogram {
                phase: p.name.clone(),
                why,
            })?),
        };
        let inconclusive = sorted.iter().find_map(|(_, r)| {
            let why = r.phases[k].inconclusive.as_ref()?;
            Some(format!("shard {}: {why}", shard_of(r)))
        });
        phases.push(PhaseReport {
            elapsed_s: shards.iter().map(|s| s.elapsed_s).fold(0.0, f64::max),
            skipped: shards.iter().all(|s| s.skipped),
            run,
            inconclusive,
            capacity,
            thresholds: Vec::new(),
            ..p.clone()
        });
    }
    // The same judging as `floodgate run`, on the merged figures; the
    // evidence is already each merged run's own.
    finish_phases(&scenario.phases, &mut phases, None, scenario.max_lag);
    let thresholds = judge_whole_run(&scenario, &phases, None);
    let interrupted = sorted.iter().any(|(_, r)| r.status == Status::Interrupted);
    let (status, mut reasons) = status(&scenario, &phases, &thresholds, interrupted, None);
    let partial = sorted.iter().any(|(_, r)| r.partial);
    if partial && !interrupted {
        reasons.push("a shard stopped early: the merged report covers what the shards ran".into());
    }
    let start = sorted
        .iter()
        .map(|(_, r)| r.started_at_unix_s)
        .fold(f64::INFINITY, f64::min);
    let end = sorted
        .iter()
        .map(|(_, r)| r.started_at_unix_s + r.elapsed_s)
        .fold(start, f64::max);
    tracing::debug!(from = first_file, shards = sorted.len(), "merged");
    Ok(ScenarioReport {
        schema: SCENARIO_SCHEMA.to_string(),
        floodgate_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: first.scenario.clone(),
        seed: first.seed,
        target: first.target.clone(),
        started_at_unix_s: start,
        elapsed_s: end - start,
        partial,
        status,
        reasons,
        phases,
        thresholds,
        evidence: None,
        baseline: None,
        shard: None,
        host: None,
        hosts: sorted
            .iter()
            .map(|(_, r)| HostRun {
                shard: shard_of(r),
                host: r.host.clone(),
                started_at_unix_s: r.started_at_unix_s,
                status: r.status,
                evidence: r.evidence.clone(),
            })
            .collect(),
    })
}

/// Phase `k`'s ladder, as every shard climbed it, judged again: each rung's
/// runs merged and judged against the SLO, and the search replayed over
/// the merged rungs. `None` when no shard reached the phase.
fn merge_ladder(
    f: &crate::scenario::FindCapacity,
    sorted: &[(&str, &ScenarioReport)],
    k: usize,
    max_lag: f64,
) -> Result<Option<CapacityReport>, MergeError> {
    let ladders: Vec<(&str, &CapacityReport)> = sorted
        .iter()
        .filter_map(|(file, r)| Some((*file, r.phases[k].capacity.as_ref()?)))
        .collect();
    let Some(&(first_file, first)) = ladders.first() else {
        return Ok(None);
    };
    let phase = &sorted[0].1.phases[k].name;
    // Rungs every shard finished; an interrupted shard has fewer.
    let rungs = ladders
        .iter()
        .map(|(_, c)| c.steps.len())
        .min()
        .unwrap_or(0);
    let mut steps = Vec::with_capacity(rungs);
    for i in 0..rungs {
        let rate = first.steps[i].rate_per_s;
        if let Some((file, _)) = ladders.iter().find(|(_, c)| c.steps[i].rate_per_s != rate) {
            return Err(MergeError::Unmergeable {
                file: file.to_string(),
                phase: format!("{phase} (step {} differs from {first_file}'s)", i + 1),
                what: "find-capacity ladder",
            });
        }
        let runs: Vec<&Run> = ladders.iter().map(|(_, c)| &c.steps[i].run).collect();
        let run = merge_runs(&runs).map_err(|why| MergeError::Histogram {
            phase: phase.clone(),
            why,
        })?;
        let verdict = crate::run::find::judge_step(f, &run, max_lag);
        let (name, why) = match &verdict {
            StepVerdict::Pass => ("pass", None),
            StepVerdict::Fail { why } => ("fail", Some(why.clone())),
            StepVerdict::Inconclusive { why } => ("inconclusive", Some(why.clone())),
        };
        steps.push((
            verdict.clone(),
            CapacityStep {
                rate_per_s: rate,
                confirm: false,
                verdict: name.to_string(),
                why,
                run,
            },
        ));
    }
    let result = Search::replay(f, steps.iter().map(|(v, s)| (s.rate_per_s, v.clone())));
    let steps: Vec<CapacityStep> = steps.into_iter().map(|(_, s)| s).collect();
    let stopped = ladders.iter().find_map(|(_, c)| c.stopped.clone());
    Ok(Some(CapacityReport {
        finding: result.finding.clone(),
        summary: format!(
            "{}; a fixed ladder climbed by {} shards, each rung judged on their figures together",
            result.summary(),
            sorted.len()
        ),
        stopped,
        usl: Some(crate::usl::report(&steps)),
        steps,
    }))
}

fn missing_list(missing: &[u32], count: u32) -> String {
    let list: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
    match list.len() {
        1 => format!("shard {} is", list[0]),
        _ => format!("shards {} are", list.join(", ")),
    }
}

fn shard_of(r: &ScenarioReport) -> Shard {
    r.shard.expect("check_set let only sharded reports through")
}

/// Checks the set and orders it by shard index.
fn check_set(
    reports: &[(String, ScenarioReport)],
) -> Result<Vec<(&str, &ScenarioReport)>, MergeError> {
    let (first_file, first) = reports.first().ok_or(MergeError::Empty)?;
    let mut by_index: BTreeMap<u32, &str> = BTreeMap::new();
    let count = first
        .shard
        .ok_or_else(|| MergeError::Unsharded {
            file: first_file.clone(),
        })?
        .count;
    for (file, r) in reports {
        let shard = r
            .shard
            .ok_or_else(|| MergeError::Unsharded { file: file.clone() })?;
        if shard.count != count {
            return Err(MergeError::Count {
                file: file.clone(),
                shard,
                first: first_file.clone(),
                count,
            });
        }
        let differs = [
            (
                "the scenario (its sha256)",
                r.scenario.sha256 != first.scenario.sha256,
            ),
            (
                "the list of --set overrides",
                r.scenario.sets != first.scenario.sets,
            ),
            ("the seed", r.seed != first.seed),
            ("the schema", r.schema != first.schema),
            ("the phase list", r.phases.len() != first.phases.len()),
        ];
        if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
            return Err(MergeError::Scenario {
                file: file.clone(),
                first: first_file.clone(),
                what,
            });
        }
        if let Some(a) = by_index.insert(shard.index, file) {
            return Err(MergeError::Duplicate {
                index: shard.index,
                count,
                a: a.to_string(),
                b: file.clone(),
            });
        }
    }
    let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    let mut sorted: Vec<(&str, &ScenarioReport)> =
        reports.iter().map(|(f, r)| (f.as_str(), r)).collect();
    sorted.sort_by_key(|(_, r)| shard_of(r).index);
    Ok(sorted)
}

/// The runs of one phase on every shard, which ran at the same time, as
/// one: books, connects and histograms added, the window the longest
/// shard's, rates recomputed from the summed counts, the series aligned by
/// wall clock.
pub fn merge_runs(runs: &[&Run]) -> Result<Run, HistogramError> {
    let first = runs[0];
    let mut all = first.clone();
    let mut h = first.histograms.decode().map_err(|(_, e)| e)?;
    let start = runs
        .iter()
        .map(|r| r.started_at_unix_s)
        .fold(f64::INFINITY, f64::min);
    for r in &runs[1..] {
        h.add(&r.histograms.decode().map_err(|(_, e)| e)?)?;
        all.scheduled += r.scheduled;
        for (o, n) in &r.outcomes {
            *all.outcomes.entry(*o).or_default() += n;
        }
        all.connects += r.connects;
        all.partial |= r.partial;
        all.plan.connections += r.plan.connections;
        all.plan.threads += r.plan.threads;
        for (m, n) in all.plan.requests_mix.iter_mut().zip(&r.plan.requests_mix) {
            m.scheduled += n.scheduled;
        }
        all.held_max = match (all.held_max, r.held_max) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        all.generator_busy = match (all.generator_busy, r.generator_busy) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        all.malformed = match (all.malformed.take(), &r.malformed) {
            (Some(a), Some(b)) => Some(add_malformed(a, b)),
            (a, b) => a.or(b.clone()),
        };
    }
    all.started_at_unix_s = start;
    all.elapsed_s = runs
        .iter()
        .map(|r| r.started_at_unix_s + r.elapsed_s - start)
        .fold(0.0, f64::max);
    all.window_s = runs.iter().map(|r| r.window_s).fold(0.0, f64::max);
    all.asked_rate_per_s = runs.iter().map(|r| r.asked_rate_per_s).sum();
    all.plan.rate_per_s = runs.iter().map(|r| r.plan.rate_per_s).sum();
    all.refigure(&h)?;
    all.intervals = merge_intervals(runs, start)?;
    // One host's kernel figures, never a sum: the most overflows seen.
    all.evidence = runs
        .iter()
        .filter_map(|r| r.evidence.as_ref())
        .max_by_key(|e| (e.counters.listen_overflows, e.counters.listen_drops))
        .cloned();
    let counts = |o: Outcome| all.outcomes.get(&o).copied().unwrap_or(0);
    all.verdict = run::draw_verdict(counts, all.connects, all.evidence.as_ref());
    Ok(all)
}

fn add_malformed(mut a: MalformedReport, b: &MalformedReport) -> MalformedReport {
    // The success rate is of valid requests scheduled, which are the runs'
    // own `scheduled`; weighted by the malformed inputs' counts, the nearest
    // the section holds.
    let (na, nb) = (a.scheduled as f64, b.scheduled as f64);
    if na + nb > 0.0 {
        a.valid_success_rate = (a.valid_success_rate * na + b.valid_success_rate * nb) / (na + nb);
    }
    a.scheduled += b.scheduled;
    for (k, n) in &b.outcomes {
        *a.outcomes.entry(k.clone()).or_default() += n;
    }
    for (k, n) in &b.by_source {
        *a.by_source.entry(k.clone()).or_default() += n;
    }
    a.unexpected += b.unexpected;
    a.valid_lost += b.valid_lost;
    a.echo_checks += b.echo_checks;
    a.echo_mismatches += b.echo_mismatches;
    a.coinciding += b.coinciding;
    a
}

/// The shards' intervals in wall-clock buckets from `start`: an interval
/// goes to the bucket its absolute start (its run's `started_at_unix_s`
/// plus its `start_s`) is nearest to, so shards that started a few
/// milliseconds apart at the barrier fall in the same seconds.
fn merge_intervals(runs: &[&Run], start: f64) -> Result<Vec<Interval>, HistogramError> {
    let width = runs
        .iter()
        .flat_map(|r| &r.intervals)
        .map(|i| i.duration_s)
        .fold(0.0, f64::max);
    if width <= 0.0 {
        return Ok(Vec::new());
    }
    let mut buckets: BTreeMap<u64, (Interval, hdrhistogram::Histogram<u64>)> = BTreeMap::new();
    for r in runs {
        for i in &r.intervals {
            let at = (r.started_at_unix_s + i.start_s - start) / width;
            let k = at.round().max(0.0) as u64;
            let h = histogram::decode(&i.response_time)?;
            match buckets.get_mut(&k) {
                None => {
                    let mut first = i.clone();
                    first.start_s = k as f64 * width;
                    buckets.insert(k, (first, h));
                }
                Some((m, mh)) => {
                    mh.add(&h)
                        .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
                    m.duration_s = m.duration_s.max(i.duration_s);
                    m.offered += i.offered;
                    m.answered += i.answered;
                    m.ok += i.ok;
                    m.errors += i.errors;
                    for (o, n) in &i.outcomes {
                        *m.outcomes.entry(*o).or_default() += n;
                    }
                    m.accept_queue = match (m.accept_queue, i.accept_queue) {
                        (Some(a), Some(b)) => Some(QueueInterval {
                            max_depth: a.max_depth.max(b.max_depth),
                            backlog: a.backlog.max(b.backlog),
                            samples: a.samples.max(b.samples),
                        }),
                        (a, b) => a.or(b),
                    };
                    // Counter deltas are one host's: the larger overflow.
                    m.kernel = match (m.kernel, i.kernel) {
                        (Some(a), Some(b)) if b.listen_overflows > a.listen_overflows => Some(b),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
    }
    buckets
        .into_values()
        .map(|(mut i, h)| {
            i.response_time = histogram::encode(&h)?;
            Ok(i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use floodgate_reports::scenario::ScenarioEcho;

    use super::*;

    fn shard(index: u32, count: u32) -> (String, ScenarioReport) {
        let report = ScenarioReport {
            schema: SCENARIO_SCHEMA.into(),
            floodgate_version: "0".into(),
            scenario: ScenarioEcho {
                name: "s".into(),
                file: "s.toml".into(),
                sha256: "ab".into(),
                text: "name = \"s\"\n".into(),
                sets: vec![],
            },
            seed: 1,
            target: "http://127.0.0.1:1/".into(),
            started_at_unix_s: 0.0,
            elapsed_s: 0.0,
            partial: false,
            status: Status::Pass,
            reasons: vec![],
            phases: vec![],
            thresholds: vec![],
            evidence: None,
            baseline: None,
            shard: Shard::new(index, count),
            host: None,
            hosts: vec![],
        };
        (format!("{index}-of-{count}.json"), report)
    }

    fn refused(set: &[(String, ScenarioReport)]) -> String {
        check_set(set).map(drop).unwrap_err().to_string()
    }

    #[test]
    fn a_set_of_other_runs_is_refused_and_says_which_file() {
        let mut other = shard(1, 2);
        other.1.scenario.sha256 = "cd".into();
        assert_eq!(
            refused(&[shard(0, 2), other]),
            "1-of-2.json: the scenario (its sha256) differs from 0-of-2.json's: the reports are of different runs"
        );
        let mut other = shard(1, 2);
        other.1.seed = 2;
        assert!(refused(&[shard(0, 2), other]).contains("the seed differs"));
        let mut other = shard(1, 2);
        other.1.scenario.sets = vec!["seed=3".into()];
        assert!(refused(&[shard(0, 2), other]).contains("the list of --set overrides differs"));
        assert_eq!(
            refused(&[shard(0, 2), shard(1, 3)]),
            "1-of-3.json: shard 1/3, but 0-of-2.json is of 2 shards: the shard counts differ"
        );
        assert_eq!(
            refused(&[shard(0, 4), shard(2, 4)]),
            "shards 1/4, 3/4 are missing: give every shard's report"
        );
        assert_eq!(refused(&[]), "no report to merge");
    }

    #[test]
    fn a_complete_set_is_ordered_by_index() {
        let set = [shard(2, 3), shard(0, 3), shard(1, 3)];
        let order: Vec<&str> = check_set(&set).unwrap().iter().map(|(f, _)| *f).collect();
        assert_eq!(order, ["0-of-3.json", "1-of-3.json", "2-of-3.json"]);
    }
}
