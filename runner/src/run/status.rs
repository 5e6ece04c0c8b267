//! What a scenario run's phases came to: each phase's share of the
//! evidence attached and its thresholds judged (`finish_phases`), the
//! scenario's own thresholds judged over the judged phases together
//! (`judge_whole_run`), and the status with its reasons (`status`).

use floodgate_reports::evidence::EvidenceReport;
use floodgate_reports::run::Run;
use floodgate_reports::scenario::{Judged, PhaseReport, Status, ThresholdResult};

use super::judge::{self, Measured};
use crate::scenario::{Phase, Scenario};

/// Attaches each phase's share of the evidence, then judges its
/// thresholds.
pub(crate) fn finish_phases(
    phases: &[Phase],
    reports: &mut [PhaseReport],
    evidence: Option<&EvidenceReport>,
    max_lag: f64,
) {
    for (p, r) in phases.iter().zip(reports.iter_mut()) {
        if r.skipped {
            continue;
        }
        // Only with evidence: a run without any (the target listened in
        // another namespace, or a merged report's) keeps its run as is.
        // The phase keeps its share's figures, not its samples: those stay
        // in the timeline, and each interval's share is taken from it by
        // wall-clock time (the phase marks follow the engine's segments
        // only within a progress tick).
        if let Some(e) = evidence {
            r.run = r.run.take().map(|run| run.with_share_of(e, &p.name));
        }
        if let Some(run) = &r.run {
            r.inconclusive = r
                .inconclusive
                .take()
                .or_else(|| judge::inconclusive(run, max_lag));
        }
        let measured = Measured {
            run: r.run.as_ref(),
            probe: r.probe.as_ref(),
            capacity: r.capacity.as_ref(),
        };
        r.thresholds = p
            .thresholds
            .iter()
            .map(|t| judge::judge(t, measured, p.warmup))
            .collect();
    }
}

/// The scenario's own thresholds, over every judged phase's run together.
pub(crate) fn judge_whole_run(
    scenario: &Scenario,
    phases: &[PhaseReport],
    evidence: Option<&EvidenceReport>,
) -> Vec<ThresholdResult> {
    let runs: Vec<&Run> = phases
        .iter()
        .filter(|p| !p.warmup)
        .flat_map(|p| {
            p.run.iter().chain(
                p.capacity
                    .iter()
                    .flat_map(|c| c.steps.iter().map(|s| &s.run)),
            )
        })
        .collect();
    // The kernel's figures of the judged phases only: a warm-up's, or a
    // backlog probe's deliberate overflow, are not the run's.
    let mut judged: Option<EvidenceReport> = None;
    for e in runs.iter().filter_map(|r| r.evidence.as_ref()) {
        let at = judged.as_ref().map_or(0, |j| j.duration_ms);
        judged
            .get_or_insert_with(EvidenceReport::default)
            .append(e.clone(), at);
    }
    let evidence = judged.as_ref().or(evidence.filter(|_| runs.is_empty()));
    let whole = Run::combine(&runs, evidence);
    let capacity = phases.iter().find_map(|p| p.capacity.as_ref());
    let probe = phases.iter().find_map(|p| p.probe.as_ref());
    let measured = Measured {
        run: whole.as_ref(),
        probe,
        capacity,
    };
    scenario
        .thresholds
        .iter()
        .map(|t| {
            // The whole run has no one series; `over` is judged per phase.
            let mut t = t.clone();
            t.over = None;
            judge::judge(&t, measured, false)
        })
        .collect()
}

/// The status and its reasons. A failed threshold in a phase the
/// generator could not hold is inconclusive, not a failure, unless it is
/// the kernel's own figure (an overflow is the server's whatever the
/// generator did).
pub(crate) fn status(
    scenario: &Scenario,
    phases: &[PhaseReport],
    whole: &[ThresholdResult],
    interrupted: bool,
    aborted: Option<&str>,
) -> (Status, Vec<String>) {
    let mut reasons = Vec::new();
    let mut failed = false;
    let mut inconclusive = false;
    let judged = scenario
        .phases
        .iter()
        .zip(phases)
        .filter(|(_, p)| !p.warmup && !p.skipped);
    for (phase, p) in judged {
        if let Some(why) = &p.inconclusive {
            inconclusive = true;
            reasons.push(format!("phase {:?} is inconclusive: {why}", p.name));
        }
        for (t, r) in phase.thresholds.iter().zip(&p.thresholds) {
            let counts = p.inconclusive.is_none() || judge::is_kernel(t.metric);
            if r.status == Judged::Fail && counts {
                failed = true;
                reasons.push(failure(&format!("phase {:?}", p.name), r));
            }
        }
    }
    for (t, r) in scenario.thresholds.iter().zip(whole) {
        if r.status == Judged::Fail && (!inconclusive || judge::is_kernel(t.metric)) {
            failed = true;
            reasons.push(failure("the whole run", r));
        }
    }
    if let Some(name) = aborted {
        reasons.push(format!(
            "phase {name:?} failed with abort_on_fail: the phases after it did not run"
        ));
    }
    if interrupted {
        reasons.insert(
            0,
            "interrupted: the report covers the phases that ran".into(),
        );
        return (Status::Interrupted, reasons);
    }
    let status = match (failed, inconclusive) {
        (true, _) => Status::Fail,
        (false, true) => Status::Inconclusive,
        (false, false) => Status::Pass,
    };
    (status, reasons)
}

fn failure(whose: &str, t: &ThresholdResult) -> String {
    match t.details() {
        d if d.is_empty() => format!("{whose}: `{}` failed", t.threshold),
        d => format!("{whose}: `{}` failed, {d}", t.threshold),
    }
}
