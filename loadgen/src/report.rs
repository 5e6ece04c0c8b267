//! Turns a finished load (the plan and what the threads recorded) into the
//! run model, `floodgate_reports::Run`. The model itself, its reader and its
//! renderers live in floodgate-reports.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use floodgate_reports::run::{
    ANSWERED, Histograms, LoadKind, MalformedReport, MixEcho, Percentiles, PlanEcho,
    SCHEMA_VERSION, draw_verdict,
};
use floodgate_reports::series::Interval;
use floodgate_reports::{Outcome, OutcomeCounts, Run};

use crate::malformed::{MalformedOutcome, Source};
use crate::measure::{INTERVAL, Recorder};
use crate::plan::{Load, Mode, Plan};
use crate::run::RunResult;

/// The run model of a finished load; attach the kernel's evidence with
/// `Run::with_evidence` when it was recorded.
pub fn build(plan: &Plan, run: &RunResult) -> Run {
    let window = match plan.duration {
        Some(d) if !run.partial && run.elapsed >= d => d,
        _ => run.elapsed,
    };
    let rate_per_s = match plan.load {
        Load::Closed => None,
        Load::Open { rate_per_s, .. } => Some(rate_per_s),
    };
    let part = Part {
        rec: &run.recorder,
        started_at: run.started_at,
        elapsed: run.elapsed,
        window,
        duration: plan.duration,
        rate_per_s,
    };
    build_part(plan, run, &part)
}

/// The run model of phase `k` of a run of phases (segment `k` of the
/// plan's profile): its own books, its own window (the segment, or what ran
/// of it), and the mean rate it asked for. Without a profile, phase 0 is
/// the whole run.
pub fn build_phase(plan: &Plan, run: &RunResult, k: usize) -> Run {
    let Some(profile) = &plan.profile else {
        return build(plan, run);
    };
    let segment = profile.segments()[k];
    let start = profile.starts()[k];
    let ran = run.elapsed.saturating_sub(start).min(segment.duration);
    let full = !run.partial || run.elapsed >= start + segment.duration;
    let part = Part {
        rec: &run.phases[k],
        started_at: run.started_at + start,
        elapsed: ran,
        window: if full { segment.duration } else { ran },
        duration: Some(segment.duration),
        rate_per_s: Some(segment.mean_per_s()),
    };
    build_part(plan, run, &part)
}

/// What one run model is made of: the whole run, or one of its phases.
struct Part<'a> {
    rec: &'a Recorder,
    started_at: SystemTime,
    elapsed: Duration,
    /// Over which the achieved rate is computed.
    window: Duration,
    duration: Option<Duration>,
    /// Open loop: the rate asked for.
    rate_per_s: Option<f64>,
}

fn build_part(plan: &Plan, run: &RunResult, part: &Part) -> Run {
    let rec = part.rec;
    let elapsed_s = part.elapsed.as_secs_f64();
    let window_s = part.window.as_secs_f64().max(1e-9);
    let answered = answered(&rec.outcomes);
    // A shard is asked for its slots' share of the rate.
    let rate_per_s = part.rate_per_s.map(|r| r * plan.share());
    let arrival = match plan.load {
        Load::Closed => None,
        Load::Open { arrival, .. } => Some(arrival),
    };
    Run {
        schema_version: SCHEMA_VERSION,
        floodgate_version: env!("CARGO_PKG_VERSION").to_string(),
        seed: plan.seed,
        partial: run.partial,
        target: plan.target.url.clone(),
        plan: PlanEcho {
            load: if plan.is_open() {
                LoadKind::Open
            } else {
                LoadKind::Closed
            },
            rate_per_s,
            arrival,
            mode: plan.mode,
            close_with: (plan.mode == Mode::Connect).then_some(plan.close_with),
            connections: plan.local_connections(),
            threads: plan.threads,
            duration_s: part.duration.map(|d| d.as_secs_f64()),
            requests: plan.requests,
            requests_mix: plan
                .kinds
                .iter()
                .enumerate()
                .map(|(i, k)| MixEcho {
                    weight: k.weight,
                    request: k.label.clone(),
                    scheduled: rec.scheduled_by_kind.get(i).copied().unwrap_or(0),
                })
                .collect(),
            verify: plan.verify,
            connect_timeout_ms: ms(plan.connect_timeout),
            read_timeout_ms: ms(plan.read_timeout),
            lag_threshold_ms: ms(plan.lag_threshold),
            grace_ms: ms(plan.grace),
            sources: plan.sources.iter().map(|s| s.to_string()).collect(),
        },
        started_at_unix_s: part
            .started_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        elapsed_s,
        window_s,
        scheduled: rec.scheduled,
        outcomes: Outcome::ALL
            .iter()
            .map(|o| (*o, rec.outcomes.get(*o)))
            .collect(),
        achieved_rate_per_s: (answered as f64 / window_s * 10.0).round() / 10.0,
        asked_rate_per_s: rate_per_s,
        connects: rec.connects,
        held_max: (plan.mode == Mode::Hold).then_some(rec.open_max),
        latency_us: Percentiles::of(&rec.response),
        service_time_us: Percentiles::of(&rec.service),
        connect_time_us: Percentiles::of(&rec.connect),
        generator_lag_us: Percentiles::of(&rec.lag),
        // Encoding fails only for histograms too large to encode, which the
        // recorder's fixed bounds rule out; the reader would refuse the
        // empty strings, so such a file could not pass unnoticed.
        histograms: Histograms::encode(&rec.response, &rec.service, &rec.connect, &rec.lag)
            .unwrap_or_else(|_| Histograms {
                response_time: String::new(),
                service_time: String::new(),
                connect_time: String::new(),
                generator_lag: String::new(),
            }),
        evidence: None,
        verdict: draw_verdict(|o| rec.outcomes.get(o), rec.connects, None),
        malformed: plan
            .malformed
            .as_ref()
            .map(|m| malformed_report(m.fraction, rec)),
        intervals: intervals(rec, part.elapsed),
        generator_busy: rec.loop_busy().map(|b| (b * 1000.0).round() / 1000.0),
    }
}

/// The recorder's series as the model's intervals, up to `elapsed` (a
/// request intended at the very end can land in one more).
fn intervals(rec: &Recorder, elapsed: Duration) -> Vec<Interval> {
    let step = INTERVAL.as_secs_f64();
    let count = (elapsed.as_secs_f64() / step).ceil().max(1.0) as usize;
    let n = rec.series.intervals.len().min(count);
    let mut out = interval_models(&rec.series.intervals[..n]);
    for i in &mut out {
        i.duration_s = (elapsed.as_secs_f64() - i.start_s).clamp(0.0, step);
    }
    out
}

/// A phase's intervals (as the recorder or the live series keeps them) as
/// the model's, one a second from the phase's start: the offered load, the
/// outcomes (and of them, those answered), the response times.
pub fn interval_models(intervals: &[crate::measure::Interval]) -> Vec<Interval> {
    let step = INTERVAL.as_secs_f64();
    intervals
        .iter()
        .enumerate()
        // The interval histograms' bounds are fixed, so encoding cannot fail.
        .filter_map(|(i, iv)| {
            let counts = &iv.outcomes;
            let mut model = Interval::new(
                i as f64 * step,
                step,
                counts.get(Outcome::Ok),
                counts.errors(),
                &iv.response.histogram(),
            )
            .ok()?;
            model.offered = iv.offered;
            model.answered = answered(counts);
            model.outcomes = counts.iter().collect();
            Some(model)
        })
        .collect()
}

fn malformed_report(fraction: f64, rec: &Recorder) -> MalformedReport {
    let m = &rec.malformed;
    let counts = &rec.outcomes;
    let success = counts.get(Outcome::Ok) + counts.get(Outcome::SynRetransmitted);
    let answered = answered(counts);
    MalformedReport {
        fraction,
        scheduled: m.scheduled,
        outcomes: MalformedOutcome::ALL
            .iter()
            .map(|o| (o.name().to_owned(), m.get(*o)))
            .collect(),
        unexpected: MalformedOutcome::ALL
            .iter()
            .filter(|o| o.unexpected())
            .map(|o| m.get(*o))
            .sum(),
        by_source: Source::ALL
            .iter()
            .map(|s| (s.name().to_owned(), m.by_source[*s as usize]))
            .collect(),
        valid_success_rate: if rec.scheduled == 0 {
            0.0
        } else {
            success as f64 / rec.scheduled as f64
        },
        valid_lost: rec
            .scheduled
            .saturating_sub(answered + counts.get(Outcome::GeneratorLagged)),
        echo_checks: m.echo_checks,
        echo_mismatches: m.echo_mismatches,
        coinciding: m.coinciding().len() as u64,
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Requests that got a complete response, whatever its status.
fn answered(counts: &OutcomeCounts) -> u64 {
    ANSWERED.iter().map(|o| counts.get(*o)).sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One thread's books of a phase that starts 2 s into the run: in its
    /// first second three requests are due (an ok, a 503, a read timeout),
    /// in its second one, still unanswered when the run stopped.
    fn thread_books() -> Recorder {
        let mut rec = Recorder::for_phase(ms(2_000));
        for at in [2_000, 2_300, 2_900, 3_100] {
            rec.schedule(0, ms(at));
        }
        rec.outcome(Outcome::Ok, ms(2_000));
        rec.response_time(ms(2_000), ms(3), ms(2));
        rec.outcome(Outcome::Http5xx, ms(2_300));
        rec.response_time(ms(2_300), ms(40), ms(40));
        rec.outcome(Outcome::ReadTimeout, ms(2_900));
        rec.outcome(Outcome::Cancelled, ms(3_100));
        rec
    }

    #[test]
    fn intervals_count_offered_answered_and_outcomes_by_intended_time() {
        let mut rec = thread_books();
        rec.merge(&thread_books());
        let intervals = interval_models(&rec.series.intervals);
        assert_eq!(intervals.len(), 2);
        let [first, second] = [&intervals[0], &intervals[1]];
        assert_eq!((first.start_s, second.start_s), (0.0, 1.0));
        assert_eq!(first.offered, 6);
        assert_eq!((first.ok, first.errors), (2, 4));
        // A 5xx is a complete response; a read timeout is not.
        assert_eq!(first.answered, 4);
        assert_eq!(
            first.outcomes,
            BTreeMap::from([
                (Outcome::Ok, 2),
                (Outcome::Http5xx, 2),
                (Outcome::ReadTimeout, 2)
            ])
        );
        assert_eq!(
            first.outcomes.values().sum::<u64>(),
            first.ok + first.errors
        );
        let response = floodgate_reports::histogram::decode(&first.response_time).unwrap();
        assert_eq!(response.len(), 4);
        assert_eq!(
            (second.offered, second.answered, second.ok, second.errors),
            (2, 0, 0, 2)
        );
        assert_eq!(second.outcomes, BTreeMap::from([(Outcome::Cancelled, 2)]));
        // Every interval's books balance, and together they are the phase's.
        let offered: u64 = intervals.iter().map(|i| i.offered).sum();
        let ended: u64 = intervals.iter().map(|i| i.ok + i.errors).sum();
        assert_eq!((offered, ended), (rec.scheduled, rec.outcomes.total()));
    }

    #[test]
    fn no_interval_past_the_limit() {
        let mut rec = Recorder::default();
        let past = INTERVAL * crate::measure::MAX_INTERVALS as u32;
        rec.schedule(0, past);
        rec.outcome(Outcome::Ok, past);
        assert_eq!(rec.scheduled, 1);
        assert!(rec.series.intervals.is_empty());
    }
}
