//! `report.html`: one self-contained page that opens offline. The layout is
//! the minijinja template `templates/report.html`, embedded at compile
//! time; the styles are inline, the charts inline SVG (`charts`), and there
//! is no script, font, image or link to fetch.

use minijinja::{Environment, context};
use serde::Serialize;

use floodgate_reports::scenario::{PhaseReport, ScenarioReport};

use crate::charts::{self, Figure};
use crate::timeline::PhaseSeries;
use crate::{RenderError, words};

const TEMPLATE: &str = include_str!("../templates/report.html");

/// A threshold as the page lists it.
#[derive(Serialize)]
struct Threshold {
    phase: String,
    threshold: String,
    mark: &'static str,
    /// `pass`, `fail`, `not-judged`: the mark's style.
    class: String,
    details: String,
}

/// A phase as the page lists it.
#[derive(Serialize)]
struct Phase {
    name: String,
    kind: String,
    warmup: bool,
    skipped: bool,
    start_s: String,
    elapsed_s: String,
    figures: Vec<(String, String)>,
    verdict: Option<String>,
    notes: Vec<String>,
    capacity: Option<Capacity>,
}

#[derive(Serialize)]
struct Capacity {
    summary: String,
    bracket: String,
    first_fail_why: Option<String>,
    usl: Option<String>,
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct Step {
    rate: String,
    confirm: bool,
    verdict: String,
    achieved: String,
    p99: String,
    why: String,
}

#[derive(Serialize)]
struct BaselineRow {
    phase: String,
    metric: String,
    base: String,
    new: String,
    change: String,
    p: String,
    regression: bool,
    why: String,
}

/// Renders `report.html`.
pub fn render(r: &ScenarioReport, series: &[PhaseSeries]) -> Result<String, RenderError> {
    let figures: Vec<Figure> = charts::all(r, series)?;
    let (status_word, status_sentence) = words::status(r.status);
    let thresholds: Vec<Threshold> = r
        .phases
        .iter()
        .flat_map(|p| p.thresholds.iter().map(move |t| (p.name.clone(), t)))
        .chain(r.thresholds.iter().map(|t| ("whole run".to_string(), t)))
        .map(|(phase, t)| Threshold {
            phase,
            threshold: t.threshold.clone(),
            mark: words::judged(t.status),
            class: words::judged(t.status)
                .to_ascii_lowercase()
                .replace(' ', "-"),
            details: t.details(),
        })
        .collect();
    let phases: Vec<Phase> = r.phases.iter().map(phase).collect();
    let baseline = r.baseline.as_ref().map(|b| {
        let rows: Vec<BaselineRow> = b
            .rows
            .iter()
            .map(|row| BaselineRow {
                phase: row.phase.clone(),
                metric: format!("{} ({})", row.metric, row.unit),
                base: words::base(row),
                new: words::num(row.new),
                change: words::change(row.change),
                p: words::p_value(row.p_value),
                regression: row.regression,
                why: row.why.clone(),
            })
            .collect();
        context! {
            files => b.base_files,
            tolerance => format!("{:.0}%", b.tolerance * 100.0),
            mode => b.mode,
            regression => b.regression,
            rows => rows,
            notes => b.notes,
        }
    });
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let page = env.get_template("report.html")?.render(context! {
        name => r.scenario.name,
        file => r.scenario.file,
        sha256 => r.scenario.sha256,
        sets => r.scenario.sets,
        text => r.scenario.text,
        version => r.floodgate_version,
        seed => r.seed,
        target => r.target,
        elapsed => format!("{:.1} s", r.elapsed_s),
        partial => r.partial,
        status => status_word,
        status_class => status_word.to_ascii_lowercase(),
        status_sentence => status_sentence,
        reasons => r.reasons,
        thresholds => thresholds,
        phases => phases,
        figures => figures,
        baseline => baseline,
    })?;
    Ok(page)
}

fn phase(p: &PhaseReport) -> Phase {
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    let mut verdict = None;
    if let Some(run) = &p.run {
        let asked = run.asked_rate_per_s.map(words::rate);
        figures = vec![
            ("scheduled".into(), run.scheduled.to_string()),
            ("achieved".into(), words::rate(run.achieved_rate_per_s)),
            (
                "asked".into(),
                asked.unwrap_or_else(|| "closed loop".into()),
            ),
            ("p50".into(), words::ms(run.latency_us.p50)),
            ("p99".into(), words::ms(run.latency_us.p99)),
            ("max".into(), words::ms(run.latency_us.max)),
            ("connects".into(), run.connects.to_string()),
        ];
        verdict = Some(run.verdict.summary.clone());
        notes.extend(run.verdict.notes.iter().cloned());
    }
    if let Some(probe) = &p.probe {
        figures.push(("accept queue capacity".into(), probe.capacity.to_string()));
        if let Some(b) = probe.configured_backlog {
            figures.push(("configured backlog".into(), b.to_string()));
        }
        verdict = Some(probe.verdict.summary.clone());
        notes.extend(probe.explanation.iter().cloned());
    }
    if let Some(why) = &p.inconclusive {
        notes.push(format!("Inconclusive: {why}"));
    }
    let capacity = p.capacity.as_ref().map(|c| Capacity {
        summary: c.summary.clone(),
        bracket: words::bracket(c),
        first_fail_why: c.finding.first_fail_why.clone(),
        usl: c.usl.as_ref().map(words::usl),
        steps: c
            .steps
            .iter()
            .map(|s| Step {
                rate: words::rate(s.rate_per_s),
                confirm: s.confirm,
                verdict: s.verdict.clone(),
                achieved: words::rate(s.run.achieved_rate_per_s),
                p99: words::ms(s.run.latency_us.p99),
                why: s.why.clone().unwrap_or_default(),
            })
            .collect(),
    });
    Phase {
        name: p.name.clone(),
        kind: p.kind.clone(),
        warmup: p.warmup,
        skipped: p.skipped,
        start_s: format!("{:.1} s", p.start_s),
        elapsed_s: format!("{:.1} s", p.elapsed_s),
        figures,
        verdict,
        notes,
        capacity,
    }
}
