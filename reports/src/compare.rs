//! A run compared with its baseline, as data: one row per phase and
//! metric with the base and new figures, the change, its significance and
//! whether it counts as a regression. Computing it is
//! floodgate-runner's `compare`; [`write_table`] renders it as the text
//! table `floodgate report compare` and the run summary print.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

/// This run against one or more base runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The base reports, as given.
    pub base_files: Vec<String>,
    /// The smallest relative change that can count, e.g. 0.05.
    pub tolerance: f64,
    /// `fail` (a regression exits 5) or `warn` (it is reported only).
    pub mode: String,
    /// Some row is a regression.
    pub regression: bool,
    pub rows: Vec<ComparisonRow>,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
}

/// One phase's metric, base against new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub phase: String,
    /// `latency.p99`, `rate.achieved`, …
    pub metric: String,
    /// `ms`, `/s`, `%`.
    pub unit: String,
    /// The base figure (the median of the base runs' when there are several).
    pub base: f64,
    /// The lowest and highest of the base runs' figures, with several.
    pub base_min: Option<f64>,
    pub base_max: Option<f64>,
    pub new: f64,
    /// (new − base) / base, the base taken as at least 0.001 ms for
    /// latency and 1% for errors; positive is worse for latency and
    /// errors, better for rates.
    pub change: f64,
    /// Two-sided Mann-Whitney U p-value over the per-interval samples.
    pub p_value: Option<f64>,
    pub regression: bool,
    /// Why it is, or is not, a regression, in words.
    pub why: String,
}

/// Writes `c` as a table (phase, metric, base, spread, new, change, p,
/// regression), its notes, and one line with the outcome.
pub fn write_table<W: Write>(w: &mut W, c: &Comparison) -> io::Result<()> {
    let header = [
        "phase",
        "metric",
        "base",
        "spread",
        "new",
        "change",
        "p",
        "regression",
    ];
    let lines: Vec<[String; 8]> = c
        .rows
        .iter()
        .map(|r| {
            let spread = match (r.base_min, r.base_max) {
                (Some(min), Some(max)) => format!("{}–{}", figure(min), figure(max)),
                _ => "-".to_string(),
            };
            [
                r.phase.clone(),
                r.metric.clone(),
                format!("{} {}", figure(r.base), r.unit),
                spread,
                format!("{} {}", figure(r.new), r.unit),
                format!("{:+.1}%", r.change * 100.0),
                r.p_value.map_or("-".to_string(), p_value),
                if r.regression { "REGRESSION" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(String::from);
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(w, "  {}", cells.join("  ").trim_end())?;
    }
    for r in c.rows.iter().filter(|r| r.regression) {
        writeln!(w, "  {} {}: {}", r.phase, r.metric, r.why)?;
    }
    for note in &c.notes {
        writeln!(w, "  note: {note}")?;
    }
    let against = match c.base_files.len() {
        1 => c.base_files[0].clone(),
        n => format!("{n} base runs"),
    };
    let tolerance = c.tolerance * 100.0;
    match (c.regression, c.mode.as_str()) {
        (false, _) => writeln!(
            w,
            "no regression against {against} (tolerance {tolerance}%, p < 0.05)"
        ),
        (true, "warn") => writeln!(
            w,
            "REGRESSION against {against} (--baseline-mode warn: reported, not failed)"
        ),
        (true, _) => writeln!(w, "REGRESSION against {against}"),
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

fn p_value(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}
