//! `junit.xml`, written with quick-junit: one test suite per phase that
//! ran and one for the scenario's own thresholds, one test case per
//! threshold (failed with the measured value against the limit, skipped
//! when a warm-up's is not judged), and for a find-capacity phase one case
//! for the capacity it found and one per SLO term. Only a failed
//! threshold fails a case, so the file fails exactly where the run did.

use floodgate_reports::scenario::{
    CapacityReport, Judged, PhaseReport, ScenarioReport, ThresholdResult,
};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::{RenderError, slo, words};

/// Renders `junit.xml`.
pub fn render(r: &ScenarioReport) -> Result<String, RenderError> {
    let mut report = Report::new(format!("floodgate {}", r.scenario.name));
    report.set_time(std::time::Duration::from_secs_f64(r.elapsed_s.max(0.0)));
    for p in &r.phases {
        report.add_test_suite(phase_suite(r, p));
    }
    let mut whole = TestSuite::new(format!("{} (whole run)", r.scenario.name));
    whole.add_test_cases(r.thresholds.iter().map(|t| threshold_case(t, "whole run")));
    report.add_test_suite(whole);
    report
        .to_string()
        .map_err(|e| RenderError::Junit(e.to_string()))
}

fn phase_suite(r: &ScenarioReport, p: &PhaseReport) -> TestSuite {
    let mut suite = TestSuite::new(format!("{}: {} [{}]", r.scenario.name, p.name, p.kind));
    suite.set_time(std::time::Duration::from_secs_f64(p.elapsed_s.max(0.0)));
    for t in &p.thresholds {
        let mut case = threshold_case(t, &p.name);
        if p.skipped {
            case.status = skipped("the phase did not run");
        }
        suite.add_test_case(case);
    }
    if let Some(c) = &p.capacity {
        suite.add_test_case(capacity_case(c, &p.name));
        for term in slo::terms(r, &p.name) {
            suite.add_test_case(slo_case(c, &p.name, &term));
        }
    }
    if let Some(why) = &p.inconclusive {
        suite.set_system_out(format!("inconclusive: {why}"));
    }
    suite
}

/// A threshold: pass, failure with what was measured, or skipped.
fn threshold_case(t: &ThresholdResult, classname: &str) -> TestCase {
    let status = match t.status {
        Judged::Pass => TestCaseStatus::success(),
        Judged::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let details = t.details();
            s.set_message(if details.is_empty() {
                format!("{} failed", t.threshold)
            } else {
                format!("{}: {details}", t.threshold)
            });
            s.set_type("threshold");
            s
        }
        Judged::NotJudged => skipped(&t.note.clone().unwrap_or_else(|| "not judged".into())),
    };
    let mut case = TestCase::new(t.threshold.clone(), status);
    case.set_classname(classname.to_string());
    if t.status != Judged::Fail && !t.details().is_empty() {
        case.set_system_out(t.details());
    }
    case
}

/// The capacity a find-capacity phase found, with its bracket. A search
/// that found none is skipped here: whether that fails the run is for the
/// phase's thresholds (`capacity >= …`) to say.
fn capacity_case(c: &CapacityReport, phase: &str) -> TestCase {
    let status = match c.finding.capacity_per_s {
        Some(_) => TestCaseStatus::success(),
        None => skipped(&c.summary),
    };
    let mut case = TestCase::new("capacity", status);
    case.set_classname(phase.to_string());
    case.set_system_out(format!("{}; {}", c.summary, words::bracket(c)));
    case
}

/// One SLO term: where it held and where it first broke. The search breaks
/// an SLO on purpose, so this case records the bracket and never fails.
fn slo_case(c: &CapacityReport, phase: &str, term: &str) -> TestCase {
    let f = &c.finding;
    let broke_here = f
        .first_fail_why
        .as_deref()
        .is_some_and(|w| w.contains(term));
    let mut out = format!("held up to {}", words::maybe_rate(f.last_pass_per_s));
    if broke_here {
        if let (Some(rate), Some(why)) = (f.first_fail_per_s, &f.first_fail_why) {
            out.push_str(&format!("; first broken at {}: {why}", words::rate(rate)));
        }
    }
    let status = match f.last_pass_per_s {
        Some(_) => TestCaseStatus::success(),
        None => skipped("no step passed the SLO"),
    };
    let mut case = TestCase::new(format!("slo: {term}"), status);
    case.set_classname(phase.to_string());
    case.set_system_out(out);
    case
}

fn skipped(why: &str) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_message(why.to_string());
    s
}
