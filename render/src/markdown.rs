//! `summary.md`: the scenario report as GitHub-flavoured Markdown that fits
//! a CI job summary (`$GITHUB_STEP_SUMMARY`): the status and its reasons
//! first, every threshold with pass or FAIL and the measured value, each
//! phase's figures and verdict with link-free sparklines of p99 and of the
//! achieved rate, capacity with its bracket and USL fit, and the baseline
//! comparison. Every figure is the report's own.

use std::fmt::Write;

use floodgate_reports::scenario::{PhaseReport, ScenarioReport, ThresholdResult};

use crate::timeline::{self, PhaseSeries};
use crate::{RenderError, words};

/// The widest sparkline, in characters.
const SPARK_WIDTH: usize = 60;

/// Renders `summary.md`.
pub fn render(r: &ScenarioReport) -> Result<String, RenderError> {
    let series = timeline::phases(r)?;
    let mut md = String::new();
    // Writing into a String cannot fail.
    let _ = write_summary(&mut md, r, &series);
    Ok(md)
}

fn write_summary(md: &mut String, r: &ScenarioReport, series: &[PhaseSeries]) -> std::fmt::Result {
    let (word, sentence) = words::status(r.status);
    writeln!(md, "# floodgate run `{}`: {word}", cell(&r.scenario.name))?;
    writeln!(md)?;
    writeln!(md, "**{word}**: {sentence}.")?;
    for reason in &r.reasons {
        writeln!(md, "- {}", one_line(reason))?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Scenario `{}` (sha256 `{}`), seed {}, target `{}`, {:.1} s{}.",
        cell(&r.scenario.file),
        r.scenario.sha256.get(..12).unwrap_or(&r.scenario.sha256),
        r.seed,
        cell(&r.target),
        r.elapsed_s,
        if r.partial { ", partial" } else { "" }
    )?;
    if !r.scenario.sets.is_empty() {
        let sets: Vec<String> = r.scenario.sets.iter().map(|s| format!("`{s}`")).collect();
        writeln!(md, "Overrides: {}.", sets.join(", "))?;
    }

    writeln!(md, "\n## Thresholds\n")?;
    let judged: Vec<(&str, &ThresholdResult)> = r
        .phases
        .iter()
        .flat_map(|p| p.thresholds.iter().map(move |t| (p.name.as_str(), t)))
        .chain(r.thresholds.iter().map(|t| ("whole run", t)))
        .collect();
    if judged.is_empty() {
        writeln!(md, "No thresholds.")?;
    } else {
        writeln!(md, "| result | threshold | phase | measured |")?;
        writeln!(md, "|---|---|---|---|")?;
        for (phase, t) in judged {
            let mark = match words::judged(t.status) {
                "FAIL" => "**FAIL**",
                other => other,
            };
            writeln!(
                md,
                "| {mark} | `{}` | {} | {} |",
                cell(&t.threshold),
                cell(phase),
                cell(&t.details())
            )?;
        }
    }

    writeln!(md, "\n## Phases\n")?;
    writeln!(
        md,
        "| phase | kind | start | time | scheduled | achieved | p50 | p99 | max |"
    )?;
    writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|")?;
    for p in &r.phases {
        let name = if p.warmup {
            format!("{} (warm-up)", cell(&p.name))
        } else {
            cell(&p.name)
        };
        match (&p.run, p.skipped) {
            (_, true) => writeln!(md, "| {name} | {} | | | did not run | | | | |", p.kind)?,
            (Some(run), false) => writeln!(
                md,
                "| {name} | {} | {:.1} s | {:.1} s | {} | {} | {} | {} | {} |",
                p.kind,
                p.start_s,
                p.elapsed_s,
                run.scheduled,
                words::rate(run.achieved_rate_per_s),
                words::ms(run.latency_us.p50),
                words::ms(run.latency_us.p99),
                words::ms(run.latency_us.max)
            )?,
            (None, false) => writeln!(
                md,
                "| {name} | {} | {:.1} s | {:.1} s | | | | | |",
                p.kind, p.start_s, p.elapsed_s
            )?,
        }
    }
    for p in r.phases.iter().filter(|p| !p.skipped) {
        let s = series.iter().find(|s| s.name == p.name);
        write_phase(md, p, s)?;
    }

    if let Some(b) = &r.baseline {
        writeln!(md, "\n## Against the baseline\n")?;
        let files: Vec<String> = b
            .base_files
            .iter()
            .map(|f| format!("`{}`", cell(f)))
            .collect();
        writeln!(
            md,
            "Base: {}; tolerance {:.0}%, mode `{}`: {}.\n",
            files.join(", "),
            b.tolerance * 100.0,
            b.mode,
            if b.regression {
                "**a regression**"
            } else {
                "no regression"
            }
        )?;
        writeln!(
            md,
            "| phase | metric | base | new | change | p | regression |"
        )?;
        writeln!(md, "|---|---|--:|--:|--:|--:|---|")?;
        for row in &b.rows {
            writeln!(
                md,
                "| {} | {} ({}) | {} | {} | {} | {} | {} |",
                cell(&row.phase),
                cell(&row.metric),
                cell(&row.unit),
                words::base(row),
                words::num(row.new),
                words::change(row.change),
                words::p_value(row.p_value),
                if row.regression { "**yes**" } else { "no" }
            )?;
        }
        for note in &b.notes {
            writeln!(md, "- {}", one_line(note))?;
        }
    }
    Ok(())
}

/// One phase's section: verdict, sparklines, probe, capacity.
fn write_phase(md: &mut String, p: &PhaseReport, s: Option<&PhaseSeries>) -> std::fmt::Result {
    writeln!(md, "\n### {} ({})\n", cell(&p.name), p.kind)?;
    if let Some(run) = &p.run {
        writeln!(md, "- verdict: {}", one_line(&run.verdict.summary))?;
    }
    if let Some(s) = s.filter(|s| !s.points.is_empty()) {
        let p99: Vec<f64> = s.points.iter().map(|p| p.p99_ms).collect();
        let recorded = timeline::load_recorded(s.points.iter());
        let rate: Vec<f64> = s
            .points
            .iter()
            .map(|p| {
                if recorded {
                    p.answered_per_s
                } else {
                    p.ok_per_s()
                }
            })
            .collect();
        let range = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        let (lo, hi) = range(&p99);
        writeln!(
            md,
            "- p99 per second `{}` ({lo:.2}–{hi:.2} ms)",
            timeline::sparkline(&p99, SPARK_WIDTH)
        )?;
        let (lo, hi) = range(&rate);
        writeln!(
            md,
            "- {} per second `{}` ({lo:.0}–{hi:.0}/s)",
            if recorded { "achieved" } else { "ok" },
            timeline::sparkline(&rate, SPARK_WIDTH)
        )?;
    }
    if let Some(why) = &p.inconclusive {
        writeln!(md, "- inconclusive: {}", one_line(why))?;
    }
    if let Some(probe) = &p.probe {
        writeln!(
            md,
            "- accept queue capacity {} (configured backlog {}); verdict: {}",
            probe.capacity,
            probe
                .configured_backlog
                .map_or("unknown".to_string(), |b| b.to_string()),
            one_line(&probe.verdict.summary)
        )?;
    }
    if let Some(c) = &p.capacity {
        writeln!(md, "- {}", one_line(&c.summary))?;
        writeln!(md, "- {}", words::bracket(c))?;
        if let Some(why) = &c.finding.first_fail_why {
            writeln!(md, "- first fail: {}", one_line(why))?;
        }
        if let Some(u) = &c.usl {
            writeln!(md, "- {}", words::usl(u))?;
        }
        writeln!(md, "\n| step | verdict | achieved | p99 | why |")?;
        writeln!(md, "|--:|---|--:|--:|---|")?;
        for step in &c.steps {
            writeln!(
                md,
                "| {}{} | {} | {} | {} | {} |",
                words::rate(step.rate_per_s),
                if step.confirm { " (confirm)" } else { "" },
                if step.verdict == "fail" {
                    "**fail**"
                } else {
                    &step.verdict
                },
                words::rate(step.run.achieved_rate_per_s),
                words::ms(step.run.latency_us.p99),
                cell(step.why.as_deref().unwrap_or(""))
            )?;
        }
    }
    Ok(())
}

/// Text made safe for a table cell: no pipes, no line breaks.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// Text on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
