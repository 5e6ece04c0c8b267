//! Judging thresholds: a [`Threshold`] against what a phase measured (its
//! [`Run`], probe report or find-capacity result), over the whole phase or,
//! with `over WINDOW`, over every window of the phase's series; and the
//! rule that says when a phase says nothing about the server because the
//! generator fell short.

use floodgate_reports::run::Run;
use floodgate_reports::scenario::{CapacityReport, Judged, ThresholdResult, WindowSpan};
use floodgate_reports::series::{self, Interval, Window};
use floodgate_reports::{Outcome, ProbeReport};

use crate::scenario::threshold::diagnosis_name;
use crate::scenario::{Bound, Metric, Op, Stat, Threshold};

/// The share of an open loop's time the generator's event loops may be
/// busy (not waiting for the network) before the phase is inconclusive.
pub const MAX_BUSY_SHARE: f64 = 0.9;

/// What a phase measured, for its thresholds.
#[derive(Default, Clone, Copy)]
pub struct Measured<'a> {
    pub run: Option<&'a Run>,
    pub probe: Option<&'a ProbeReport>,
    pub capacity: Option<&'a CapacityReport>,
}

/// A value in a threshold's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    /// µs, requests per second, a share, a ratio or a count: the unit of
    /// the threshold's bound.
    Number(f64),
    Diagnosis(floodgate_reports::verdict::Diagnosis),
}

/// Judges `t` on what was measured; a warm-up's thresholds are measured
/// and marked not judged.
pub fn judge(t: &Threshold, m: Measured, warmup: bool) -> ThresholdResult {
    let mut result = match (t.over, m.run) {
        (Some(_), Some(run)) if !run.intervals.is_empty() => judge_intervals(t, &run.intervals),
        _ => judge_whole(t, m),
    };
    if warmup {
        result.status = Judged::NotJudged;
    }
    result
}

fn judge_whole(t: &Threshold, m: Measured) -> ThresholdResult {
    match measure(t.metric, &t.value, m) {
        Ok(v) => ThresholdResult {
            threshold: t.text.clone(),
            status: if holds(t.op, v, &t.value) {
                Judged::Pass
            } else {
                Judged::Fail
            },
            measured: Some(show(v, &t.value)),
            failed_window: None,
            note: None,
        },
        Err(why) => ThresholdResult {
            threshold: t.text.clone(),
            status: Judged::Fail,
            measured: None,
            failed_window: None,
            note: Some(why),
        },
    }
}

/// Judges an `over WINDOW` threshold on a phase's intervals: every window
/// of that width (whole seconds, as the parser requires) must hold; the
/// result shows the worst window and the first that failed.
pub fn judge_intervals(t: &Threshold, intervals: &[Interval]) -> ThresholdResult {
    let n = t.over.map_or(1, |w| w.as_secs() as usize).max(1);
    let windows = match series::windows(intervals, n) {
        Ok(w) => w,
        Err(e) => {
            return ThresholdResult {
                threshold: t.text.clone(),
                status: Judged::Fail,
                measured: None,
                failed_window: None,
                note: Some(format!("the phase's series does not decode: {e}")),
            };
        }
    };
    let mut worst: Option<(f64, &Window)> = None;
    let mut first_fail = None;
    for w in &windows {
        let Some(v) = window_value(t.metric, w) else {
            continue;
        };
        if first_fail.is_none() && !holds(t.op, Value::Number(v), &t.value) {
            first_fail = Some(WindowSpan {
                start_s: w.start_s,
                duration_s: w.duration_s,
            });
        }
        // The worst is the one furthest on the failing side of the bound.
        let badness = match t.op {
            Op::Lt | Op::Le => v,
            Op::Gt | Op::Ge => -v,
            Op::Eq | Op::Ne => 0.0,
        };
        if worst.is_none_or(|(b, _)| badness > b) {
            worst = Some((badness, w));
        }
    }
    let measured = worst
        .and_then(|(_, w)| window_value(t.metric, w))
        .map(|v| show(Value::Number(v), &t.value));
    ThresholdResult {
        threshold: t.text.clone(),
        status: if first_fail.is_some() {
            Judged::Fail
        } else {
            Judged::Pass
        },
        measured: measured.map(|m| format!("{m} (worst {}s window)", n)),
        failed_window: first_fail,
        note: first_fail.map(|w| {
            format!(
                "failed in the window from {:.0}s to {:.0}s of the phase",
                w.start_s,
                w.start_s + w.duration_s
            )
        }),
    }
}

/// Whether `metric` is the kernel's own figure: it holds or fails whatever
/// the generator did, so a phase the generator could not hold still fails
/// on it.
pub fn is_kernel(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::ListenOverflows
            | Metric::ListenDrops
            | Metric::SynCookies
            | Metric::SynRetransmitted
            | Metric::QueueMaxDepth
            | Metric::Verdict
            | Metric::ProbeCapacity
    )
}

/// A windowed metric's value in one window; `None` for a window without
/// requests (nothing to judge in it).
fn window_value(metric: Metric, w: &Window) -> Option<f64> {
    match metric {
        Metric::Latency(stat) if w.latency_us.count > 0 => Some(stat_of(stat, &w.latency_us)),
        Metric::Errors if w.ok + w.errors > 0 => Some(w.error_share()),
        Metric::RateAchieved => Some(w.ok_per_s()),
        _ => None,
    }
}

fn stat_of(stat: Stat, p: &floodgate_reports::run::Percentiles) -> f64 {
    match stat {
        Stat::P50 => p.p50 as f64,
        Stat::P90 => p.p90 as f64,
        Stat::P99 => p.p99 as f64,
        Stat::P999 => p.p999 as f64,
        Stat::Max => p.max as f64,
        Stat::Mean => p.mean,
    }
}

/// The metric's value over the whole phase, or why there is none.
fn measure(metric: Metric, bound: &Bound, m: Measured) -> Result<Value, String> {
    let run = || {
        m.run
            .ok_or_else(|| format!("{metric} needs a phase that sends load"))
    };
    let evidence = || {
        let run = run()?;
        run.evidence.as_ref().ok_or_else(|| {
            format!(
                "{metric} is the kernel's figure, recorded only when the target listens in this network namespace; none was recorded"
            )
        })
    };
    let n = |x: u64| Ok(Value::Number(x as f64));
    match metric {
        Metric::Latency(s) => Ok(Value::Number(stat_of(s, &run()?.latency_us))),
        Metric::Service(s) => Ok(Value::Number(stat_of(s, &run()?.service_time_us))),
        Metric::Connect(s) => Ok(Value::Number(stat_of(s, &run()?.connect_time_us))),
        Metric::RateAchieved => Ok(Value::Number(run()?.achieved_rate_per_s)),
        Metric::RateRatio => {
            let r = run()?;
            match r.asked_rate_per_s {
                Some(asked) if asked > 0.0 => Ok(Value::Number(r.achieved_rate_per_s / asked)),
                _ => Err("rate.ratio needs an open loop, which asks for a rate".into()),
            }
        }
        Metric::Errors => {
            // Of the requests the generator sent: one it was too late to
            // send is its own failure, judged by `inconclusive`.
            let r = run()?;
            let count = |o: Outcome| r.outcomes.get(&o).copied().unwrap_or(0);
            let sent = r.scheduled.saturating_sub(count(Outcome::GeneratorLagged));
            Ok(Value::Number(share(
                sent.saturating_sub(count(Outcome::Ok)),
                sent,
            )))
        }
        Metric::Outcome(o) => {
            let r = run()?;
            let count = r.outcomes.get(&o).copied().unwrap_or(0);
            match bound {
                Bound::Share(_) => Ok(Value::Number(share(count, r.scheduled))),
                _ => n(count),
            }
        }
        Metric::ListenOverflows => n(evidence()?.counters.listen_overflows),
        Metric::ListenDrops => n(evidence()?.counters.listen_drops),
        Metric::SynCookies => n(evidence()?.counters.syncookies_sent),
        Metric::SynRetransmitted => n(evidence()?.counters.tcp_syn_retrans),
        Metric::QueueMaxDepth => n(u64::from(evidence()?.max_queue_depth)),
        Metric::Verdict => Ok(Value::Diagnosis(run()?.verdict.diagnosis)),
        Metric::Capacity => {
            let c = m
                .capacity
                .ok_or("capacity is the result of a find-capacity phase")?;
            c.finding
                .capacity_per_s
                .map(Value::Number)
                .ok_or_else(|| format!("no capacity was confirmed: {}", c.summary))
        }
        Metric::ProbeCapacity => {
            let p = m
                .probe
                .ok_or("probe.capacity is the result of a backlog-probe phase")?;
            n(p.capacity)
        }
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The bound as a number in the measured value's unit.
fn bound_number(b: &Bound) -> Option<f64> {
    match b {
        Bound::Duration(d) => Some(d.as_secs_f64() * 1e6),
        Bound::RatePerS(r) | Bound::Share(r) | Bound::Ratio(r) => Some(*r),
        Bound::Count(c) => Some(*c as f64),
        Bound::Diagnosis(_) => None,
    }
}

fn holds(op: Op, v: Value, bound: &Bound) -> bool {
    match (v, bound) {
        (Value::Diagnosis(d), Bound::Diagnosis(b)) => match op {
            Op::Eq => d == *b,
            Op::Ne => d != *b,
            _ => false,
        },
        (Value::Number(x), b) => {
            let Some(y) = bound_number(b) else {
                return false;
            };
            match op {
                Op::Lt => x < y,
                Op::Le => x <= y,
                Op::Gt => x > y,
                Op::Ge => x >= y,
                Op::Eq => x == y,
                Op::Ne => x != y,
            }
        }
        _ => false,
    }
}

/// A measured value in the bound's unit, as people write it.
fn show(v: Value, bound: &Bound) -> String {
    match (v, bound) {
        (Value::Diagnosis(d), _) => diagnosis_name(d).to_string(),
        (Value::Number(us), Bound::Duration(_)) => show_us(us),
        (Value::Number(r), Bound::RatePerS(_)) => format!("{r:.1}/s"),
        (Value::Number(s), Bound::Share(_)) => format!("{}%", trim(s * 100.0)),
        (Value::Number(r), Bound::Ratio(_)) => format!("{}%", trim(r * 100.0)),
        (Value::Number(c), _) => format!("{c}"),
    }
}

/// A duration in µs with a unit that suits it.
pub fn show_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{}s", trim(us / 1e6))
    } else if us >= 1e3 {
        format!("{}ms", trim(us / 1e3))
    } else {
        format!("{}us", trim(us))
    }
}

/// Three significant digits, no trailing zeros.
fn trim(x: f64) -> String {
    let digits = if x == 0.0 {
        0
    } else {
        (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize
    };
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Why a phase's run says nothing about the server, if it does not: the
/// generator was late for more than `max_lag` of its requests, its event
/// loops were busy all the time, or it ran out of local ports or
/// descriptors.
pub fn inconclusive(run: &Run, max_lag: f64) -> Option<String> {
    let count = |o: Outcome| run.outcomes.get(&o).copied().unwrap_or(0);
    let lagged = count(Outcome::GeneratorLagged);
    if run.scheduled > 0 && lagged as f64 / run.scheduled as f64 > max_lag {
        return Some(format!(
            "the generator itself was late for {lagged} of {} requests ({}%, over the {}% allowed): the run says nothing about the server; give it more threads or ask for less",
            run.scheduled,
            trim(share(lagged, run.scheduled) * 100.0),
            trim(max_lag * 100.0)
        ));
    }
    // An open loop's schedule is the generator's to hold: a loop that was
    // busy all the time fell behind it, whatever the lag shows (late sends
    // on busy connections count as response time, not as lag).
    if let (Some(busy), Some(_)) = (run.generator_busy, run.asked_rate_per_s) {
        if busy > MAX_BUSY_SHARE {
            return Some(format!(
                "the generator's event loops were busy {}% of the time (over {}%): it could not hold the schedule, so the run says nothing about the server; give it more threads or ask for less",
                trim(busy * 100.0),
                trim(MAX_BUSY_SHARE * 100.0)
            ));
        }
    }
    for (o, what) in [
        (Outcome::LocalPortExhausted, "local ports"),
        (Outcome::LocalFdExhausted, "file descriptors"),
    ] {
        if count(o) > 0 {
            return Some(format!(
                "the generator ran out of {what} ({} requests): the run says nothing about the server",
                count(o)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_as_people_write_them() {
        assert_eq!(show_us(14_200.0), "14.2ms");
        assert_eq!(show_us(2_000_000.0), "2s");
        assert_eq!(show_us(830.0), "830us");
        assert_eq!(trim(0.35), "0.35");
        assert_eq!(trim(100.0), "100");
    }

    #[test]
    fn comparisons_follow_their_operator() {
        let b = Bound::Count(0);
        assert!(holds(Op::Eq, Value::Number(0.0), &b));
        assert!(!holds(Op::Eq, Value::Number(3.0), &b));
        let d = Bound::Duration(std::time::Duration::from_millis(25));
        assert!(holds(Op::Lt, Value::Number(24_999.0), &d));
        assert!(!holds(Op::Lt, Value::Number(25_000.0), &d));
        assert!(holds(Op::Le, Value::Number(25_000.0), &d));
    }
}
