//! A scenario report's latency as a percentile distribution in
//! HdrHistogram's text format (`latency.hgrm`, what the Java library's
//! `outputPercentileDistribution` and `HistogramLogProcessor` print and
//! HdrHistogram's plotter reads): the header, one row per percentile tick
//! (5 per half distance to 100%), the last row at 100%, and the `#[Mean`,
//! `#[Max` and `#[Buckets` footer; values in milliseconds (the µs
//! histograms scaled by 1000). The distribution is that of the judged
//! phases together (every phase but the warm-ups, find-capacity steps
//! included), as the scenario's own thresholds see it; after it, each phase
//! that sent load has its own distribution in `# ` comment lines, which
//! tools reading the file skip.
//!
//! The rows follow the Java `PercentileIterator`, in percent, so the
//! percentile levels are the very numbers the Java library prints.

use std::io::{self, Write};

use hdrhistogram::Histogram;

use crate::hdrlog::phase_runs;
use crate::histogram::HistogramError;
use crate::run::Run;
use crate::scenario::{PhaseReport, ScenarioReport};

/// Percentile ticks per half distance to 100%, the Java default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// µs to ms, the scaling HdrHistogram's tools print latencies in.
pub const MS_PER_US: f64 = 1000.0;

/// Why the distribution could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HgrmError {
    #[error("writing the percentile distribution: {0}")]
    Io(#[from] io::Error),
    #[error("phase {phase:?}: histograms.response_time: {why}")]
    Histogram { phase: String, why: HistogramError },
}

/// Writes the judged phases' response-time distribution, then each phase's
/// as comments.
pub fn write_hgrm<W: Write>(report: &ScenarioReport, mut w: W) -> Result<(), HgrmError> {
    let judged: Vec<&PhaseReport> = report.phases.iter().filter(|p| !p.warmup).collect();
    let whole = combined(&judged)?;
    write_distribution(&whole, TICKS_PER_HALF_DISTANCE, MS_PER_US, &mut w)?;
    for p in &report.phases {
        if phase_runs(p).next().is_none() {
            continue;
        }
        let h = combined(&[p])?;
        let mut section = Vec::new();
        write_distribution(&h, TICKS_PER_HALF_DISTANCE, MS_PER_US, &mut section)?;
        let note = if p.warmup {
            ", a warm-up (not judged)"
        } else {
            ""
        };
        writeln!(w, "#")?;
        writeln!(w, "# phase {:?}{note}:", p.name)?;
        for line in String::from_utf8_lossy(&section).lines() {
            writeln!(w, "# {line}")?;
        }
    }
    Ok(())
}

/// The response-time histograms of `phases`' runs (find-capacity steps
/// included), added up.
fn combined(phases: &[&PhaseReport]) -> Result<Histogram<u64>, HgrmError> {
    let mut all: Option<Histogram<u64>> = None;
    for p in phases {
        for run in phase_runs(p) {
            let h = response_time(p, run)?;
            match &mut all {
                // Every run histogram has the same bounds; one that does
                // not fit only saturates.
                Some(a) => {
                    let _ = a.add(&h);
                }
                None => all = Some(h),
            }
        }
    }
    Ok(all.unwrap_or_else(|| {
        Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
    }))
}

fn response_time(p: &PhaseReport, run: &Run) -> Result<Histogram<u64>, HgrmError> {
    crate::histogram::decode(&run.histograms.response_time).map_err(|why| HgrmError::Histogram {
        phase: p.name.clone(),
        why,
    })
}

/// One row: the value reached, the percentile level iterated to (0..=100)
/// and the count at or below the value.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    value: u64,
    percent: f64,
    total: u64,
}

/// The rows Java's `PercentileIterator` yields: a row each time the count
/// so far reaches the next level, the levels `ticks` apart per halving of
/// the distance to 100%, and one last row at 100% (the maximum).
fn rows(h: &Histogram<u64>, ticks: u32) -> Vec<Row> {
    let total = h.len();
    let mut out = Vec::new();
    if total == 0 {
        return out;
    }
    let mut level = 0.0_f64;
    let mut running = 0;
    let mut last = 0;
    'buckets: for v in h.iter_recorded() {
        running += v.count_at_value();
        last = v.value_iterated_to();
        let reached = 100.0 * running as f64 / total as f64;
        while reached >= level {
            out.push(Row {
                value: last,
                percent: level,
                total: running,
            });
            let halvings = ((100.0 / (100.0 - level)).ln() / 2f64.ln()) as i64;
            let ticks = f64::from(ticks) * 2f64.powi((halvings + 1) as i32);
            level += 100.0 / ticks;
            if running >= total {
                break 'buckets;
            }
        }
    }
    out.push(Row {
        value: last,
        percent: 100.0,
        total,
    });
    out
}

/// `outputPercentileDistribution(w, ticks, scale)`: the plain-text form,
/// values divided by `scale`, printed with as many decimals as the
/// histogram has significant digits.
pub fn write_distribution<W: Write>(
    h: &Histogram<u64>,
    ticks: u32,
    scale: f64,
    mut w: W,
) -> io::Result<()> {
    let digits = usize::from(h.sigfig());
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    for row in rows(h, ticks) {
        let value = row.value as f64 / scale;
        let p = row.percent / 100.0;
        if row.percent != 100.0 {
            writeln!(
                w,
                "{value:>12.digits$} {p:>2.12} {:>10} {:>14.2}",
                row.total,
                1.0 / (1.0 - p)
            )?;
        } else {
            writeln!(w, "{value:>12.digits$} {p:>2.12} {:>10}", row.total)?;
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    writeln!(
        w,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    )?;
    writeln!(
        w,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        h.len()
    )?;
    writeln!(
        w,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets(h.sigfig())
    )
}

/// A histogram's sub-bucket count, as HdrHistogram derives it from the
/// significant digits (hdrhistogram keeps it private).
fn sub_buckets(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10_u64.pow(u32::from(sigfig));
    let magnitude = (largest_single_unit as f64).log2().ceil() as u32;
    1 << magnitude.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1, 2, …, 10 µs once each: small enough to work out by hand.
    fn one_to_ten() -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10 {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn the_rows_are_the_java_percentile_iterators() {
        // Levels step by 10% below 50%, 5% to 75%, 2.5% to 87.5%, 1.25%
        // after; a row is printed whenever the count so far reaches the
        // level, at the value reached.
        let expected = [
            (1, 0.0, 1),
            (1, 10.0, 1),
            (2, 20.0, 2),
            (3, 30.0, 3),
            (4, 40.0, 4),
            (5, 50.0, 5),
            (6, 55.0, 6),
            (6, 60.0, 6),
            (7, 65.0, 7),
            (7, 70.0, 7),
            (8, 75.0, 8),
            (8, 77.5, 8),
            (8, 80.0, 8),
            (9, 82.5, 9),
            (9, 85.0, 9),
            (9, 87.5, 9),
            (9, 88.75, 9),
            (9, 90.0, 9),
            (10, 91.25, 10),
            (10, 100.0, 10),
        ];
        let got = rows(&one_to_ten(), 5);
        let want: Vec<Row> = expected
            .iter()
            .map(|&(value, percent, total)| Row {
                value,
                percent,
                total,
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_text_is_output_percentile_distributions() {
        let mut out = Vec::new();
        write_distribution(&one_to_ten(), 5, 1.0, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        assert_eq!(
            lines[8],
            "       6.000 0.550000000000          6           2.22"
        );
        assert_eq!(
            lines[20],
            "      10.000 0.912500000000         10          11.43"
        );
        assert_eq!(lines[21], "      10.000 1.000000000000         10");
        // Mean 5.5, population standard deviation √8.25.
        assert_eq!(
            lines[22],
            "#[Mean    =        5.500, StdDeviation   =        2.872]"
        );
        assert_eq!(
            lines[23],
            "#[Max     =       10.000, Total count    =           10]"
        );
        // 2048 sub-buckets for 3 digits; 2048·2^15 is the first power past
        // 60 s in µs, so 16 buckets.
        assert_eq!(
            lines[24],
            "#[Buckets =           16, SubBuckets     =         2048]"
        );
        assert_eq!(lines.len(), 25);
    }

    #[test]
    fn milliseconds_from_microseconds() {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        h.record_n(1500, 3).unwrap();
        let mut out = Vec::new();
        write_distribution(&h, 5, MS_PER_US, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\n       1.500 1.000000000000          3\n"),
            "{text}"
        );
        assert!(text.contains("#[Max     =        1.500, Total count    =            3]"));
    }

    #[test]
    fn the_report_gives_the_judged_phases_then_each_phase_as_comments() {
        let report = crate::sample::report();
        let mut out = Vec::new();
        write_hgrm(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let judged: u64 = report
            .phases
            .iter()
            .filter(|p| !p.warmup)
            .flat_map(phase_runs)
            .map(|r| r.latency_us.count)
            .sum();
        let footer = |n: u64| format!("Total count    = {n:>12}]");
        // The first distribution is not commented, and counts the judged
        // phases only.
        let (head, sections) = text.split_once("\n#\n").unwrap();
        assert!(head.starts_with("       Value     Percentile"));
        assert!(head.contains("#[Max     = "));
        assert!(head.contains(&footer(judged)), "{head}");
        for p in &report.phases {
            let runs: Vec<&Run> = phase_runs(p).collect();
            if runs.is_empty() {
                assert!(!sections.contains(&format!("# phase {:?}", p.name)));
                continue;
            }
            let n: u64 = runs.iter().map(|r| r.latency_us.count).sum();
            let at = sections
                .find(&format!("# phase {:?}", p.name))
                .unwrap_or_else(|| panic!("no section for {}", p.name));
            assert!(sections[at..].contains("# #[Max"));
            assert!(sections[at..].contains(&footer(n)));
        }
        assert!(sections.lines().all(|l| l.starts_with('#')));
    }
}
