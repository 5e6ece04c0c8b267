//! The human summaries of a [`Run`] and of a probe report, rendered over any `W: Write`
//! (stdout for the command, a `Vec` in tests). It reads only the result
//! model, never the recorder.

use std::io::{self, Write};

use crate::probe::ProbeReport;
use crate::run::{LoadKind, Mode};
use crate::run::{MalformedReport, Percentiles, Run};

/// Writes the summary: rate achieved against asked, percentiles, outcomes.
pub fn write<W: Write>(r: &Run, mut w: W) -> io::Result<()> {
    let p = &r.plan;
    writeln!(
        w,
        "floodgate load {}{}: {} loop, mode {}, {} connections, {} threads, seed {}",
        r.target,
        if r.partial {
            " (PARTIAL: stopped early)"
        } else {
            ""
        },
        match p.load {
            LoadKind::Closed => "closed",
            LoadKind::Open => "open",
        },
        match p.mode {
            Mode::Requests => "requests",
            Mode::Connect => "connect",
            Mode::Hold => "hold",
            Mode::Churn => "churn",
        },
        p.connections,
        p.threads,
        r.seed
    )?;
    match r.asked_rate_per_s {
        // Hold mode's figure is how many connections were held, below.
        _ if r.held_max.is_some() => {}
        // The achieved rate counts valid requests only; malformed ones
        // take their share of the asked rate.
        Some(asked) if r.malformed.is_some() => {
            let valid_share = 1.0 - r.malformed.as_ref().map_or(0.0, |m| m.fraction);
            writeln!(
                w,
                "  rate: {:.1}/s valid achieved of {:.1}/s asked ({:.1}% of the {:.0}% valid share) over {:.2} s",
                r.achieved_rate_per_s,
                asked,
                100.0 * r.achieved_rate_per_s / (asked * valid_share),
                100.0 * valid_share,
                r.window_s
            )?
        }
        Some(asked) => writeln!(
            w,
            "  rate: {:.1}/s achieved of {:.1}/s asked ({:.1}%) over {:.2} s",
            r.achieved_rate_per_s,
            asked,
            100.0 * r.achieved_rate_per_s / asked,
            r.window_s
        )?,
        None => writeln!(
            w,
            "  rate: {:.1}/s achieved over {:.2} s",
            r.achieved_rate_per_s, r.window_s
        )?,
    }
    writeln!(
        w,
        "  {:<24}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "(ms)", "p50", "p90", "p99", "p99.9", "max", "count"
    )?;
    let row = |w: &mut W, name: &str, q: &Percentiles| {
        let ms = |us: u64| us as f64 / 1000.0;
        writeln!(
            w,
            "  {:<24}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10}",
            name,
            ms(q.p50),
            ms(q.p90),
            ms(q.p99),
            ms(q.p999),
            ms(q.max),
            q.count
        )
    };
    row(&mut w, "response (intended)", &r.latency_us)?;
    row(&mut w, "service (actual send)", &r.service_time_us)?;
    row(&mut w, "connect", &r.connect_time_us)?;
    if r.generator_lag_us.count > 0 {
        row(&mut w, "generator lag", &r.generator_lag_us)?;
    }
    if let Some(held) = r.held_max {
        writeln!(w, "  connections held at most: {held} of {}", p.connections)?;
    }
    writeln!(
        w,
        "  outcomes ({} scheduled, {} connects):",
        r.scheduled, r.connects
    )?;
    for (outcome, n) in r.outcomes.iter().filter(|(_, n)| **n > 0) {
        let pct = 100.0 * *n as f64 / r.scheduled.max(1) as f64;
        writeln!(w, "    {:<24}{n:>12}  {pct:>6.2}%", outcome.name())?;
    }
    if r.outcomes_total() != r.scheduled {
        writeln!(
            w,
            "  WARNING: outcomes sum to {} but {} were scheduled",
            r.outcomes_total(),
            r.scheduled
        )?;
    }
    if let Some(m) = &r.malformed {
        write_malformed(m, &mut w)?;
    }
    writeln!(w, "  verdict: {}", r.verdict.summary)?;
    for note in &r.verdict.notes {
        writeln!(w, "    note: {note}")?;
    }
    Ok(())
}

/// The malformed-traffic block: what the malformed inputs got, and whether
/// the valid load around them kept succeeding.
fn write_malformed<W: Write>(m: &MalformedReport, w: &mut W) -> io::Result<()> {
    writeln!(
        w,
        "  malformed traffic ({:.1}% of requests, {} scheduled, each on its own connection):",
        100.0 * m.fraction,
        m.scheduled
    )?;
    for (name, n) in m.outcomes.iter().filter(|(_, n)| **n > 0) {
        let pct = 100.0 * *n as f64 / m.scheduled.max(1) as f64;
        writeln!(w, "    {name:<24}{n:>12}  {pct:>6.2}%")?;
    }
    writeln!(
        w,
        "    {:<24}{:>12}  (2xx, hang or unparseable reply to a malformed input)",
        "UNEXPECTED", m.unexpected
    )?;
    let sources: Vec<String> = m
        .by_source
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    writeln!(w, "    inputs: {}", sources.join(", "))?;
    writeln!(
        w,
        "    valid requests: {:.3}% succeeded, {} lost; echo checks {}, {} mismatched",
        100.0 * m.valid_success_rate,
        m.valid_lost,
        m.echo_checks,
        m.echo_mismatches
    )?;
    writeln!(
        w,
        "    malformed inputs coinciding with a failure: {}",
        m.coinciding
    )
}

/// Writes a probe report: the capacity, the findings, the verdict.
pub fn write_probe<W: Write>(r: &ProbeReport, mut w: W) -> io::Result<()> {
    writeln!(
        w,
        "capacity: {} (implied backlog {}) on {}",
        r.capacity, r.implied_backlog, r.target
    )?;
    for line in &r.explanation {
        writeln!(w, "  - {line}")?;
    }
    writeln!(w, "verdict: {}", r.verdict.summary)?;
    for note in &r.verdict.notes {
        writeln!(w, "  - {note}")?;
    }
    Ok(())
}
