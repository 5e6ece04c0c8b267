//! The words and number formats every renderer shares, so summary.md,
//! report.html and junit.xml say the same thing the same way: the status
//! in a sentence, a threshold's mark, a capacity bracket, a USL fit,
//! latencies and rates.

use floodgate_reports::compare::ComparisonRow;
use floodgate_reports::scenario::{CapacityReport, Judged, Status, UslReport};

/// The status as a heading word and the sentence under it.
pub fn status(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Pass => ("PASS", "every threshold held"),
        Status::Fail => ("FAIL", "a threshold failed"),
        Status::Inconclusive => (
            "INCONCLUSIVE",
            "the generator fell short, so the run says nothing about the server",
        ),
        Status::Interrupted => ("INTERRUPTED", "the run was stopped; the report is partial"),
    }
}

/// A threshold's mark: `pass`, `FAIL`, `not judged`.
pub fn judged(j: Judged) -> &'static str {
    match j {
        Judged::Pass => "pass",
        Judged::Fail => "FAIL",
        Judged::NotJudged => "not judged",
    }
}

/// Microseconds as milliseconds with two decimals: `14.20 ms`.
pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// A rate in whole requests per second: `1250/s`.
pub fn rate(per_s: f64) -> String {
    format!("{per_s:.0}/s")
}

/// An optional rate, `none` when absent.
pub fn maybe_rate(per_s: Option<f64>) -> String {
    per_s.map_or_else(|| "none".to_string(), rate)
}

/// The capacity and its bracket, in one sentence.
pub fn bracket(c: &CapacityReport) -> String {
    let f = &c.finding;
    let mut s = match f.capacity_per_s {
        Some(cap) if f.reached_max => format!("capacity at least {} (max reached)", rate(cap)),
        Some(cap) => format!("capacity {}", rate(cap)),
        None => "no capacity found".to_string(),
    };
    s.push_str(&format!(
        "; bracket: last pass {}, first fail {}",
        maybe_rate(f.last_pass_per_s),
        maybe_rate(f.first_fail_per_s)
    ));
    if f.generator_bound {
        s.push_str("; generator-bound: a step above it was inconclusive, so the server holds at least this much");
    }
    if f.unstable {
        s.push_str("; unstable: a rate passed above one that failed");
    }
    if let Some(stopped) = &c.stopped {
        s.push_str(&format!("; stopped: {stopped}"));
    }
    s
}

/// The USL fit in one sentence, or why there is none.
pub fn usl(u: &UslReport) -> String {
    match &u.fit {
        Some(fit) => {
            let peak = match (fit.peak_rate_per_s, fit.peak_concurrency) {
                (Some(x), Some(n)) => format!("predicted peak {} at concurrency {n:.1}", rate(x)),
                _ => "no peak (κ = 0)".to_string(),
            };
            format!(
                "USL fit over {} passing steps: σ (contention) {:.4}, κ (coherency) {:.6}, λ {}, {peak}, R² {:.3}",
                u.points,
                fit.sigma,
                fit.kappa,
                rate(fit.lambda_per_s),
                fit.r_squared
            )
        }
        None => format!(
            "no USL fit ({} points): {}",
            u.points,
            u.note.as_deref().unwrap_or("no reason given")
        ),
    }
}

/// A comparison row's base figure, with the base runs' spread when there
/// were several: `20.1 (18.0–22.4)`.
pub fn base(row: &ComparisonRow) -> String {
    match (row.base_min, row.base_max) {
        (Some(lo), Some(hi)) => format!("{} ({}–{})", num(row.base), num(lo), num(hi)),
        _ => num(row.base),
    }
}

/// A figure with as many decimals as its size needs.
pub fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A relative change as a signed percentage: `+20.9%`.
pub fn change(c: f64) -> String {
    format!("{:+.1}%", c * 100.0)
}

/// A p-value, `–` when there is none.
pub fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.0001 => "< 0.0001".to_string(),
        Some(p) => format!("{p:.4}"),
        None => "–".to_string(),
    }
}
