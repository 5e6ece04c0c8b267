//! The figures the charts and sparklines draw, read from the model: each
//! phase's intervals on the scenario's one time axis (`PhaseReport.start_s`
//! plus the interval's own start), with the percentiles of each interval's
//! histogram. Nothing here is computed that the model does not hold.

use std::collections::BTreeMap;

use floodgate_reports::Outcome;
use floodgate_reports::histogram;
use floodgate_reports::scenario::{PhaseReport, ScenarioReport};
use floodgate_reports::series::QueueInterval;

use crate::RenderError;

/// One interval of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// From the start of the scenario run.
    pub t_s: f64,
    pub duration_s: f64,
    /// Requests intended in the interval; 0 leaves the latencies at 0.
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub offered_per_s: f64,
    pub answered_per_s: f64,
    pub ok: u64,
    pub errors: u64,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub queue: Option<QueueInterval>,
    /// `kernel.listen_overflows` over the interval, when it was read.
    pub listen_overflows: Option<u64>,
}

impl Point {
    /// Requests that ended `ok`, per second of the interval.
    pub fn ok_per_s(&self) -> f64 {
        self.ok as f64 / self.duration_s.max(1e-9)
    }
}

/// Whether these intervals record the offered and answered load: reports
/// written before intervals carried them hold zeros there.
pub fn load_recorded<'a>(mut points: impl Iterator<Item = &'a Point>) -> bool {
    points.any(|p| p.offered_per_s > 0.0 || p.answered_per_s > 0.0)
}

/// A phase on the run's time axis, with its intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSeries {
    pub name: String,
    pub kind: String,
    pub warmup: bool,
    pub start_s: f64,
    pub end_s: f64,
    pub points: Vec<Point>,
}

/// Every phase that ran, in order; a phase without a run of its own (a
/// pause, a probe, a find-capacity search) has no points.
pub fn phases(report: &ScenarioReport) -> Result<Vec<PhaseSeries>, RenderError> {
    report
        .phases
        .iter()
        .filter(|p| !p.skipped)
        .map(phase)
        .collect()
}

fn phase(p: &PhaseReport) -> Result<PhaseSeries, RenderError> {
    let intervals = p.run.as_ref().map_or(&[][..], |r| &r.intervals[..]);
    let points = intervals
        .iter()
        .enumerate()
        .map(|(index, i)| {
            let h =
                histogram::decode(&i.response_time).map_err(|source| RenderError::Histogram {
                    phase: p.name.clone(),
                    what: format!("intervals[{index}].response_time"),
                    source,
                })?;
            let ms = |us: u64| us as f64 / 1000.0;
            let per_s = |n: u64| n as f64 / i.duration_s.max(1e-9);
            Ok(Point {
                t_s: p.start_s + i.start_s,
                duration_s: i.duration_s,
                count: h.len(),
                p50_ms: ms(h.value_at_quantile(0.5)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
                offered_per_s: per_s(i.offered),
                answered_per_s: per_s(i.answered),
                ok: i.ok,
                errors: i.errors,
                outcomes: i.outcomes.clone(),
                queue: i.accept_queue,
                listen_overflows: i.kernel.as_ref().map(|k| k.listen_overflows),
            })
        })
        .collect::<Result<_, RenderError>>()?;
    Ok(PhaseSeries {
        name: p.name.clone(),
        kind: p.kind.clone(),
        warmup: p.warmup,
        start_s: p.start_s,
        end_s: p.start_s + p.elapsed_s,
        points,
    })
}

/// A sparkline of `values`, at most `width` characters: each character is
/// the largest value of its share of the series (so a spike is never
/// averaged away), scaled from the smallest to the largest value.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let cells = values.len().min(width);
    let peaks: Vec<f64> = (0..cells)
        .map(|c| {
            let (a, b) = (c * values.len() / cells, (c + 1) * values.len() / cells);
            values[a..b.max(a + 1)]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let lo = peaks.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = peaks.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    peaks
        .iter()
        .map(|v| {
            let level = if hi > lo {
                ((v - lo) / (hi - lo) * 7.0).round() as usize
            } else {
                0
            };
            BARS[level.min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_scales_from_lowest_to_highest() {
        assert_eq!(
            sparkline(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(sparkline(&[5.0, 5.0, 5.0], 8), "▁▁▁");
        assert_eq!(sparkline(&[], 8), "");
    }

    #[test]
    fn a_long_sparkline_keeps_its_spike() {
        let mut values = vec![1.0; 600];
        values[431] = 50.0;
        let line = sparkline(&values, 60);
        assert_eq!(line.chars().count(), 60);
        assert_eq!(line.chars().filter(|&c| c == '█').count(), 1);
        assert_eq!(line.chars().position(|c| c == '█'), Some(43));
    }
}
