//! The plain-text summary of a scenario report (what `floodgate run`
//! prints): each phase's figures and verdict, each threshold with pass or
//! fail and the measured value, and the status with its reasons. Every
//! figure is the report's own.

use std::io::{self, Write};

use crate::scenario::{Judged, ScenarioReport, Status};

/// Writes the summary of `r`.
pub fn write<W: Write>(w: &mut W, r: &ScenarioReport) -> io::Result<()> {
    writeln!(
        w,
        "scenario {:?} ({}), seed {}, target {}, {:.1} s",
        r.scenario.name, r.scenario.file, r.seed, r.target, r.elapsed_s
    )?;
    for p in &r.phases {
        let tag = if p.warmup {
            " (warm-up, not judged)"
        } else {
            ""
        };
        if p.skipped {
            writeln!(w, "  phase {} [{}]: did not run", p.name, p.kind)?;
            continue;
        }
        writeln!(
            w,
            "  phase {} [{}]{tag}: {:.1} s",
            p.name, p.kind, p.elapsed_s
        )?;
        if let Some(run) = &p.run {
            let ok = run.outcomes.get(&crate::Outcome::Ok).copied().unwrap_or(0);
            let asked = run
                .asked_rate_per_s
                .map(|a| format!(" of {a:.0}/s asked"))
                .unwrap_or_default();
            writeln!(
                w,
                "    {} scheduled, {} ok, {:.1}/s achieved{asked}; latency p50 {} p99 {} max {}; {} connects",
                run.scheduled,
                ok,
                run.achieved_rate_per_s,
                ms(run.latency_us.p50),
                ms(run.latency_us.p99),
                ms(run.latency_us.max),
                run.connects
            )?;
            writeln!(w, "    verdict: {}", run.verdict.summary)?;
        }
        if let Some(probe) = &p.probe {
            writeln!(
                w,
                "    accept queue capacity {} (configured backlog {})",
                probe.capacity,
                probe
                    .configured_backlog
                    .map_or("unknown".to_string(), |b| b.to_string())
            )?;
        }
        if let Some(c) = &p.capacity {
            writeln!(w, "    {}", c.summary)?;
            for s in &c.steps {
                writeln!(
                    w,
                    "      {:>10.0}/s{} {}{}",
                    s.rate_per_s,
                    if s.confirm { " (confirm)" } else { "" },
                    s.verdict,
                    s.why
                        .as_deref()
                        .map(|y| format!(": {y}"))
                        .unwrap_or_default()
                )?;
            }
            if let Some(u) = &c.usl {
                writeln!(w, "    {}", u.sentence())?;
            }
        }
        if let Some(why) = &p.inconclusive {
            writeln!(w, "    inconclusive: {why}")?;
        }
        for t in &p.thresholds {
            threshold(w, t)?;
        }
    }
    if !r.thresholds.is_empty() {
        writeln!(w, "  whole run:")?;
        for t in &r.thresholds {
            threshold(w, t)?;
        }
    }
    let status = match r.status {
        Status::Pass => "PASS: every threshold held",
        Status::Fail => "FAIL: a threshold failed",
        Status::Inconclusive => "INCONCLUSIVE: the generator fell short",
        Status::Interrupted => "INTERRUPTED: partial report",
    };
    writeln!(w, "{status}")?;
    for reason in &r.reasons {
        writeln!(w, "  - {reason}")?;
    }
    Ok(())
}

fn threshold<W: Write>(w: &mut W, t: &crate::scenario::ThresholdResult) -> io::Result<()> {
    let mark = match t.status {
        Judged::Pass => "pass",
        Judged::Fail => "FAIL",
        Judged::NotJudged => "n/j ",
    };
    let details = match t.details() {
        d if d.is_empty() => d,
        d => format!(": {d}"),
    };
    writeln!(w, "    [{mark}] {}{details}", t.threshold)
}

fn ms(us: u64) -> String {
    format!("{:.2}ms", us as f64 / 1000.0)
}
