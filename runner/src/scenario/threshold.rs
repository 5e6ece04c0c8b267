//! Thresholds as written in a scenario, `METRIC OP VALUE [over WINDOW]`
//! (`latency.p99 < 25ms over 10s`, `errors < 0.1%`, `verdict !=
//! accept_queue_overflow`), parsed into a [`Threshold`] whose value is in
//! the metric's own unit. Only parsing lives here; evaluating a threshold
//! against a run is the run model's.

use std::ops::Range;
use std::time::Duration;

use floodgate_reports::verdict::Diagnosis;

pub use super::metric::{DIAGNOSES, Metric, Stat, diagnosis_name};
use super::suggest::did_you_mean;
use super::units::{self, UnitError};

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written, for the summary.
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub value: Bound,
    /// `over WINDOW`: the threshold must hold on every window of this
    /// length, not only over the whole phase.
    pub over: Option<Duration>,
}
/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// A threshold's value, in the unit of its metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Duration(Duration),
    RatePerS(f64),
    /// A fraction: `0.1%` is 0.001.
    Share(f64),
    /// A plain ratio (`rate.ratio`): 0.95.
    Ratio(f64),
    Count(u64),
    Diagnosis(Diagnosis),
}
/// Why a threshold did not parse: a byte range of its text and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    pub at: Range<usize>,
    pub message: String,
}

impl ThresholdError {
    fn new(at: Range<usize>, message: impl Into<String>) -> ThresholdError {
        ThresholdError {
            at,
            message: message.into(),
        }
    }
}

/// The words of `text` with their byte ranges.
fn words(text: &str, offset: usize) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((&text[s..i], offset + s..offset + i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

const FORM: &str = "a threshold is `METRIC OP VALUE [over WINDOW]`, OP one of < <= > >= == !=";

/// Parses `METRIC OP VALUE [over WINDOW]`.
pub fn parse(text: &str) -> Result<Threshold, ThresholdError> {
    let whole = 0..text.len();
    let Some(op_at) = text.find(['<', '>', '=', '!']) else {
        return Err(ThresholdError::new(
            whole,
            format!("has no comparison; {FORM}, e.g. \"latency.p99 < 25ms\""),
        ));
    };
    let (op, op_len) = match &text[op_at..] {
        s if s.starts_with("<=") => (Op::Le, 2),
        s if s.starts_with(">=") => (Op::Ge, 2),
        s if s.starts_with("==") => (Op::Eq, 2),
        s if s.starts_with("!=") => (Op::Ne, 2),
        s if s.starts_with('<') => (Op::Lt, 1),
        s if s.starts_with('>') => (Op::Gt, 1),
        _ => {
            return Err(ThresholdError::new(
                op_at..op_at + 1,
                format!("has an unknown comparison; {FORM}"),
            ));
        }
    };
    let metric_words = words(&text[..op_at], 0);
    let metric = match metric_words.as_slice() {
        [(name, at)] => Metric::parse(name).ok_or_else(|| {
            let names: Vec<String> = Metric::all().into_iter().map(Metric::name).collect();
            let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
                Some(m) => format!("did you mean \"{m}\"?"),
                None => "metrics are latency.*, service.*, connect.* (p50 p90 p99 p999 max mean), \
                         rate.achieved, rate.ratio, errors, outcome.NAME, listen_overflows, \
                         listen_drops, syn_cookies, syn_retransmitted, queue.max_depth, capacity, \
                         probe.capacity, verdict"
                    .to_string(),
            };
            ThresholdError::new(at.clone(), format!("unknown metric {name:?}; {hint}"))
        })?,
        _ => {
            return Err(ThresholdError::new(
                0..op_at,
                format!("needs one metric before {:?}; {FORM}", op.symbol()),
            ));
        }
    };
    let rest_at = op_at + op_len;
    let rest = words(&text[rest_at..], rest_at);
    let (value_text, value_at) = match rest.first() {
        Some(w) => w.clone(),
        None => {
            return Err(ThresholdError::new(
                op_at..rest_at,
                format!(
                    "needs a value after {:?}: {}",
                    op.symbol(),
                    metric.expected()
                ),
            ));
        }
    };
    let value = bound(metric, op, value_text).map_err(|m| ThresholdError::new(value_at, m))?;
    let over = match &rest[1..] {
        [] => None,
        [(over, _), (window, at)] if *over == "over" => match units::duration(window) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => {
                return Err(ThresholdError::new(
                    at.clone(),
                    format!("expected a window like \"10s\" after `over`, found {window:?}"),
                ));
            }
        },
        [(word, at), ..] => {
            return Err(ThresholdError::new(
                at.start..text.len(),
                format!("unexpected {word:?} after the value; {FORM}"),
            ));
        }
    };
    if over.is_some() && matches!(metric, Metric::Capacity | Metric::ProbeCapacity) {
        return Err(ThresholdError::new(
            whole,
            format!("{metric} is one figure per phase; `over WINDOW` does not apply to it"),
        ));
    }
    if over.is_some() && !metric.has_series() {
        return Err(ThresholdError::new(
            whole,
            format!(
                "{metric} is not kept second by second; `over WINDOW` applies to latency.*, errors and rate.achieved"
            ),
        ));
    }
    if let Some(w) = over.filter(|w| w.subsec_nanos() != 0) {
        let at = rest.last().map_or(whole.clone(), |(_, at)| at.clone());
        return Err(ThresholdError::new(
            at,
            format!(
                "a window is a whole number of seconds (the series is kept per second), found {w:?}"
            ),
        ));
    }
    Ok(Threshold {
        text: text.to_string(),
        metric,
        op,
        value,
        over,
    })
}

/// The value of a threshold on `metric`, in its unit.
fn bound(metric: Metric, op: Op, text: &str) -> Result<Bound, String> {
    let wrong = || format!("expected {}, found {text:?}", metric.expected());
    let share = |text: &str| match units::percent(text) {
        Ok(f) if f <= 1.0 => Ok(Bound::Share(f)),
        Ok(_) => Err(format!("a share is at most 100%, found {text:?}")),
        Err(_) if text == "0" => Ok(Bound::Share(0.0)),
        Err(_) => Err(wrong()),
    };
    let count = |text: &str| text.parse().map(Bound::Count).map_err(|_| wrong());
    match metric {
        Metric::Latency(_) | Metric::Service(_) | Metric::Connect(_) => units::duration(text)
            .map(Bound::Duration)
            .map_err(|_| wrong()),
        Metric::RateAchieved | Metric::Capacity => units::rate_per_s(text)
            .map(Bound::RatePerS)
            .map_err(|e| match e {
                UnitError::Negative => format!("a rate cannot be below zero, found {text:?}"),
                _ => wrong(),
            }),
        Metric::RateRatio => match units::percent(text) {
            Ok(f) => Ok(Bound::Ratio(f)),
            Err(_) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() && f >= 0.0 => Ok(Bound::Ratio(f)),
                _ => Err(wrong()),
            },
        },
        Metric::Errors => share(text),
        Metric::Outcome(_) if text.ends_with('%') => share(text),
        Metric::Outcome(_) => count(text),
        Metric::Verdict => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!(
                    "a verdict is compared with == or !=, not {:?}",
                    op.symbol()
                ));
            }
            DIAGNOSES
                .into_iter()
                .find(|d| diagnosis_name(*d) == text)
                .map(Bound::Diagnosis)
                .ok_or_else(|| {
                    let names = DIAGNOSES.map(diagnosis_name);
                    match did_you_mean(text, names.iter().copied()) {
                        Some(m) => format!("unknown verdict {text:?}; did you mean \"{m}\"?"),
                        None => format!(
                            "unknown verdict {text:?}; verdicts are {}",
                            names.join(", ")
                        ),
                    }
                })
        }
        Metric::ListenOverflows
        | Metric::ListenDrops
        | Metric::SynCookies
        | Metric::SynRetransmitted
        | Metric::QueueMaxDepth
        | Metric::ProbeCapacity => count(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_reports::Outcome;

    fn ok(text: &str, metric: Metric, op: Op, value: Bound, over: Option<Duration>) {
        let t = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(
            (t.metric, t.op, t.value, t.over),
            (metric, op, value, over),
            "{text:?}"
        );
    }

    #[test]
    fn thresholds_parse() {
        use Bound as B;
        let ms = Duration::from_millis;
        ok(
            "latency.p99 < 25ms over 10s",
            Metric::Latency(Stat::P99),
            Op::Lt,
            B::Duration(ms(25)),
            Some(Duration::from_secs(10)),
        );
        ok(
            "errors < 0.1%",
            Metric::Errors,
            Op::Lt,
            B::Share(0.001),
            None,
        );
        ok("errors == 0", Metric::Errors, Op::Eq, B::Share(0.0), None);
        ok(
            "listen_overflows == 0",
            Metric::ListenOverflows,
            Op::Eq,
            B::Count(0),
            None,
        );
        ok(
            "service.p999<=1s",
            Metric::Service(Stat::P999),
            Op::Le,
            B::Duration(Duration::from_secs(1)),
            None,
        );
        ok(
            "connect.max >= 1us",
            Metric::Connect(Stat::Max),
            Op::Ge,
            B::Duration(Duration::from_micros(1)),
            None,
        );
        ok(
            "latency.mean != 3ms",
            Metric::Latency(Stat::Mean),
            Op::Ne,
            B::Duration(ms(3)),
            None,
        );
        ok(
            "rate.achieved > 1.5k/s",
            Metric::RateAchieved,
            Op::Gt,
            B::RatePerS(1500.0),
            None,
        );
        ok(
            "rate.ratio >= 0.95",
            Metric::RateRatio,
            Op::Ge,
            B::Ratio(0.95),
            None,
        );
        ok(
            "rate.ratio >= 99%",
            Metric::RateRatio,
            Op::Ge,
            B::Ratio(0.99),
            None,
        );
        ok(
            "outcome.connect_timeout == 0",
            Metric::Outcome(Outcome::ConnectTimeout),
            Op::Eq,
            B::Count(0),
            None,
        );
        ok(
            "outcome.http_5xx < 1%",
            Metric::Outcome(Outcome::Http5xx),
            Op::Lt,
            B::Share(0.01),
            None,
        );
        ok(
            "queue.max_depth < 100",
            Metric::QueueMaxDepth,
            Op::Lt,
            B::Count(100),
            None,
        );
        ok(
            "capacity >= 10k/s",
            Metric::Capacity,
            Op::Ge,
            B::RatePerS(10_000.0),
            None,
        );
        ok(
            "probe.capacity >= 128",
            Metric::ProbeCapacity,
            Op::Ge,
            B::Count(128),
            None,
        );
        ok(
            "verdict != accept_queue_overflow",
            Metric::Verdict,
            Op::Ne,
            B::Diagnosis(Diagnosis::AcceptQueueOverflow),
            None,
        );
        for m in ["syn_cookies", "syn_retransmitted", "listen_drops"] {
            assert!(parse(&format!("{m} == 0")).is_ok(), "{m}");
        }
    }

    #[test]
    fn bad_thresholds_say_why() {
        let table: &[(&str, Range<usize>, &str)] = &[
            (
                "latency.p95 < 25ms",
                0..11,
                "unknown metric \"latency.p95\"; did you mean \"latency.p90\"?",
            ),
            (
                "eror < 1%",
                0..4,
                "unknown metric \"eror\"; did you mean \"errors\"?",
            ),
            (
                "latency.p99 < fast",
                14..18,
                "expected a duration like \"25ms\", found \"fast\"",
            ),
            (
                "errors < 0.1",
                9..12,
                "expected a share like \"0.1%\" (or 0), found \"0.1\"",
            ),
            (
                "errors < 200%",
                9..13,
                "a share is at most 100%, found \"200%\"",
            ),
            (
                "rate.achieved > 500",
                16..19,
                "expected a rate like \"500/s\", found \"500\"",
            ),
            (
                "latency.p99 25ms",
                0..16,
                "has no comparison; a threshold is `METRIC OP VALUE [over WINDOW]`, OP one of < <= > >= == !=, e.g. \"latency.p99 < 25ms\"",
            ),
            (
                "latency.p99 = 25ms",
                12..13,
                "has an unknown comparison; a threshold is `METRIC OP VALUE [over WINDOW]`, OP one of < <= > >= == !=",
            ),
            (
                "latency.p99 <",
                12..13,
                "needs a value after \"<\": a duration like \"25ms\"",
            ),
            (
                "latency.p99 < 25ms over",
                19..23,
                "unexpected \"over\" after the value; a threshold is `METRIC OP VALUE [over WINDOW]`, OP one of < <= > >= == !=",
            ),
            (
                "latency.p99 < 25ms over 0s",
                24..26,
                "expected a window like \"10s\" after `over`, found \"0s\"",
            ),
            (
                "verdict < no_overflow",
                10..21,
                "a verdict is compared with == or !=, not \"<\"",
            ),
            (
                "verdict == accept_queue_overflw",
                11..31,
                "unknown verdict \"accept_queue_overflw\"; did you mean \"accept_queue_overflow\"?",
            ),
            (
                "capacity > 1k/s over 10s",
                0..24,
                "capacity is one figure per phase; `over WINDOW` does not apply to it",
            ),
            (
                "listen_overflows == -1",
                20..22,
                "expected a whole number like 0, found \"-1\"",
            ),
        ];
        for (text, at, message) in table {
            let e = parse(text).expect_err(text);
            assert_eq!((&e.at, e.message.as_str()), (at, *message), "{text:?}");
        }
    }
}
