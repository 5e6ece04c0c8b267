//! The comparison on reports made here: runs whose every interval's
//! latency and rate are chosen, so each rule (tolerance, significance,
//! spread, partial intervals, phases on one side, scenario hashes) is
//! seen to decide on its own.

use floodgate_reports::Outcome;
use floodgate_reports::run::Run;
use floodgate_reports::scenario::{
    CapacityFinding, CapacityReport, PhaseReport, SCENARIO_SCHEMA, ScenarioEcho, ScenarioReport,
    Status,
};
use floodgate_reports::series::Interval;
use hdrhistogram::Histogram;

use super::*;

/// A real result of `floodgate load`, the fields these tests do not set.
fn template() -> Run {
    let bytes = include_bytes!("../../../fuzz/corpus/report_json/open-poisson.json");
    floodgate_reports::read(bytes).expect("the committed sample reads")
}

/// A run with one full second per entry of `latency_ms`, each with 100
/// `ok` requests that all took that long, and a short last interval that
/// must not count.
fn run_of(latency_ms: &[f64]) -> Run {
    let seconds: Vec<(f64, u64, u64)> = latency_ms.iter().map(|&l| (l, 100, 0)).collect();
    run_with(&seconds)
}

/// A run with one full second per `(latency_ms, ok, errors)`, and a
/// 0.3-second last interval of 5 ok requests at 1000 ms.
fn run_with(seconds: &[(f64, u64, u64)]) -> Run {
    let mut run = template();
    let interval = |start: f64, duration: f64, latency_ms: f64, ok: u64, errors: u64| {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        h.record_n((latency_ms * 1000.0) as u64, ok + errors)
            .unwrap();
        Interval::new(start, duration, ok, errors, &h).unwrap()
    };
    run.intervals = seconds
        .iter()
        .enumerate()
        .map(|(k, &(l, ok, errors))| interval(k as f64, 1.0, l, ok, errors))
        .collect();
    run.intervals
        .push(interval(seconds.len() as f64, 0.3, 1000.0, 5, 0));
    run.outcomes.insert(Outcome::Ok, 0);
    run
}

/// `ms` as an interval's histogram gives it back (2 significant digits:
/// the highest value of its bucket).
fn hdr(ms: f64) -> f64 {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
    h.record((ms * 1000.0) as u64).unwrap();
    h.value_at_quantile(0.5) as f64 / 1000.0
}

fn phase(name: &str, run: Option<Run>) -> PhaseReport {
    PhaseReport {
        elapsed_s: 6.0,
        run,
        ..PhaseReport::new(name, "steady", false, 0.0)
    }
}

fn report(sha: &str, phases: Vec<PhaseReport>) -> ScenarioReport {
    ScenarioReport {
        schema: SCENARIO_SCHEMA.into(),
        floodgate_version: "0.1.0".into(),
        scenario: ScenarioEcho {
            name: "latency".into(),
            file: "latency.toml".into(),
            sha256: sha.repeat(64 / sha.len()),
            text: String::new(),
            sets: Vec::new(),
        },
        seed: 1,
        target: "http://127.0.0.1:1/".into(),
        started_at_unix_s: 0.0,
        elapsed_s: 6.0,
        partial: false,
        status: Status::Pass,
        reasons: Vec::new(),
        phases,
        thresholds: Vec::new(),
        evidence: None,
        baseline: None,
        shard: None,
        host: None,
        hosts: Vec::new(),
    }
}

/// One steady phase `steady` with these per-second latencies.
fn steady(latency_ms: &[f64]) -> ScenarioReport {
    report("ab", vec![phase("steady", Some(run_of(latency_ms)))])
}

fn bases(reports: Vec<ScenarioReport>) -> Vec<Base> {
    reports
        .into_iter()
        .enumerate()
        .map(|(k, report)| Base {
            file: format!("base{k}.json"),
            report,
        })
        .collect()
}

const FAIL_5: Options = Options {
    tolerance: 0.05,
    mode: Mode::Fail,
    force: false,
};

fn compared(b: Vec<ScenarioReport>, new: &ScenarioReport) -> Comparison {
    compare(&bases(b), new, "new.json", FAIL_5).unwrap()
}

fn row<'a>(c: &'a Comparison, metric: &str) -> &'a ComparisonRow {
    c.rows
        .iter()
        .find(|r| r.metric == metric)
        .unwrap_or_else(|| panic!("no {metric} row in {c:#?}"))
}

#[test]
fn a_run_against_itself_changes_nothing() {
    let r = steady(&[20.0, 21.0, 20.0, 22.0, 20.0, 21.0]);
    let c = compared(vec![r.clone()], &r);
    assert!(!c.regression, "{c:#?}");
    let metrics: Vec<&str> = c.rows.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(
        metrics,
        ["latency.p50", "latency.p99", "rate.achieved", "errors"]
    );
    for r in &c.rows {
        assert_eq!(r.change, 0.0, "{r:?}");
        assert!(r.p_value.is_some_and(|p| p > 0.9), "{r:?}");
        assert_eq!((r.base_min, r.base_max), (None, None));
    }
    assert_eq!(c.base_files, ["base0.json"]);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn a_significant_slowdown_beyond_the_tolerance_is_a_regression() {
    let base = steady(&[20.0, 20.5, 19.5, 20.0, 21.0, 20.0]);
    let new = steady(&[24.0, 24.5, 23.5, 24.0, 25.0, 24.0]);
    let c = compared(vec![base], &new);
    assert!(c.regression);
    let p99 = row(&c, "latency.p99");
    assert!(p99.regression, "{p99:?}");
    assert!((p99.change - 0.2).abs() < 0.02, "{p99:?}");
    assert!(p99.p_value.unwrap() < 0.01, "{p99:?}");
    assert!(
        p99.why.contains("slower, beyond the 5% tolerance, p = "),
        "{}",
        p99.why
    );
    // The rate did not move: not a regression.
    assert!(!row(&c, "rate.achieved").regression);
}

#[test]
fn a_small_change_within_the_tolerance_is_not_a_regression_however_significant() {
    let base = steady(&[20.0; 6]);
    let new = steady(&[20.6; 6]);
    let c = compared(vec![base], &new);
    let p50 = row(&c, "latency.p50");
    assert!(p50.p_value.unwrap() < 0.01, "{p50:?}");
    assert!(!p50.regression, "{p50:?}");
    assert!(p50.why.contains("within the 5% tolerance"), "{}", p50.why);
}

#[test]
fn noise_beyond_the_tolerance_that_is_not_significant_is_not_a_regression() {
    // Medians 20 and 22.5 ms (12.5% slower), the seconds interleaved:
    // scipy's p is 0.166.
    let base = steady(&[10.0, 30.0, 10.0, 30.0, 10.0, 30.0]);
    let new = steady(&[12.0, 33.0, 12.0, 33.0, 11.0, 35.0]);
    let c = compared(vec![base], &new);
    let p50 = row(&c, "latency.p50");
    assert!(p50.change > 0.05, "{p50:?}");
    assert!((p50.p_value.unwrap() - 0.166).abs() < 0.01, "{p50:?}");
    assert!(!p50.regression);
    assert!(
        p50.why.contains("but not significant (p = 0.16"),
        "{}",
        p50.why
    );
}

#[test]
fn too_few_intervals_are_not_tested_and_never_a_regression() {
    let c = compared(vec![steady(&[20.0, 20.0])], &steady(&[30.0, 30.0]));
    let p99 = row(&c, "latency.p99");
    assert_eq!(p99.p_value, None);
    assert!(!p99.regression);
    assert!(
        p99.why
            .contains("too few full intervals to test (2 base, 2 new)")
    );
}

#[test]
fn a_short_last_interval_is_left_out_of_the_samples() {
    // Every run ends with a 0.3 s interval at 1000 ms and 16.7 ok/s: were
    // it counted, the rate's median would move and p99 would not tie.
    let r = steady(&[20.0, 20.0, 20.0]);
    let c = compared(vec![r.clone()], &r);
    assert_eq!(row(&c, "rate.achieved").base, 100.0);
    assert_eq!(row(&c, "latency.p99").new, hdr(20.0));
    assert_eq!(row(&c, "latency.p99").p_value, Some(1.0));
}

#[test]
fn a_rate_that_drops_is_worse_and_one_that_rises_is_not() {
    let at = |ok: u64| {
        let seconds: Vec<(f64, u64, u64)> = (0..6).map(|_| (20.0, ok, 0)).collect();
        report("ab", vec![phase("steady", Some(run_with(&seconds)))])
    };
    let c = compared(vec![at(100)], &at(80));
    let rate = row(&c, "rate.achieved");
    assert!(rate.regression, "{rate:?}");
    assert!((rate.change + 0.2).abs() < 1e-9, "{rate:?}");
    assert!(rate.why.starts_with("20.0% lower"), "{}", rate.why);
    let c = compared(vec![at(80)], &at(100));
    let rate = row(&c, "rate.achieved");
    assert!(!rate.regression);
    assert!(rate.why.contains("an improvement"), "{}", rate.why);
}

#[test]
fn a_few_errors_where_there_were_none_are_measured_against_one_percent() {
    let with_errors = |errors: u64| {
        let seconds: Vec<(f64, u64, u64)> = (0..6).map(|_| (20.0, 10_000, errors)).collect();
        report("ab", vec![phase("steady", Some(run_with(&seconds)))])
    };
    // 0% to 0.04%: a 4% change, within the tolerance.
    let c = compared(vec![with_errors(0)], &with_errors(4));
    let e = row(&c, "errors");
    assert!(!e.regression, "{e:?}");
    assert!((e.change - 0.04).abs() < 0.001, "{e:?}");
    // 0% to 2%: a regression.
    let c = compared(vec![with_errors(0)], &with_errors(204));
    assert!(row(&c, "errors").regression);
}

#[test]
fn with_several_bases_a_new_figure_inside_their_spread_is_not_a_regression() {
    // Base medians 20, 20 and 26 ms; pooled, most base seconds are
    // faster than 24 ms, so the test alone would call it (scipy: p 0.013).
    let b = || {
        vec![
            steady(&[20.0; 6]),
            steady(&[20.0; 6]),
            steady(&[10.0, 10.0, 26.0, 26.0, 26.0]),
        ]
    };
    let c = compared(b(), &steady(&[24.0; 6]));
    let p50 = row(&c, "latency.p50");
    assert_eq!(p50.base, hdr(20.0));
    assert_eq!(
        (p50.base_min, p50.base_max),
        (Some(hdr(20.0)), Some(hdr(26.0)))
    );
    assert!((p50.p_value.unwrap() - 0.013).abs() < 0.001, "{p50:?}");
    assert!(!p50.regression, "{p50:?}");
    assert!(
        p50.why
            .contains("but inside the base runs' spread 20.09–26.11 ms"),
        "{}",
        p50.why
    );
    // Above the slowest base: a regression.
    let c = compared(b(), &steady(&[27.0; 6]));
    let p50 = row(&c, "latency.p50");
    assert!(p50.regression, "{p50:?}");
    assert!(
        p50.why.contains("outside the base runs' spread"),
        "{}",
        p50.why
    );
}

#[test]
fn runs_of_different_scenarios_are_refused_unless_forced() {
    let base = steady(&[20.0; 4]);
    let mut new = base.clone();
    new.scenario.sha256 = "cd".repeat(32);
    new.scenario.file = "other.toml".into();
    let err = compare(&bases(vec![base.clone()]), &new, "new.json", FAIL_5).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "base0.json is a run of scenario \"latency\" from latency.toml (sha256 {}), new.json \
             of \"latency\" from other.toml (sha256 {}): runs of different scenarios are not \
             compared",
            "ab".repeat(32),
            "cd".repeat(32)
        )
    );
    let forced = Options {
        force: true,
        ..FAIL_5
    };
    let c = compare(&bases(vec![base]), &new, "new.json", forced).unwrap();
    assert_eq!(c.rows.len(), 4);
    assert!(
        c.notes[0].starts_with("compared with --force: base0.json is a run"),
        "{:?}",
        c.notes
    );
    assert!(matches!(
        compare(&[], &new, "new.json", FAIL_5),
        Err(CompareError::NoBase)
    ));
}

#[test]
fn phases_on_one_side_only_and_warm_ups_are_noted_not_compared() {
    let r = |names: &[&str]| {
        let mut phases: Vec<PhaseReport> = names
            .iter()
            .map(|n| phase(n, Some(run_of(&[20.0; 4]))))
            .collect();
        phases[0].warmup = true;
        report("ab", phases)
    };
    let c = compared(
        vec![r(&["warm", "steady", "old"])],
        &r(&["warm", "steady", "new"]),
    );
    assert!(c.rows.iter().all(|row| row.phase == "steady"), "{c:#?}");
    assert_eq!(
        c.notes,
        [
            "phase \"old\" is in base0.json only, not in new.json",
            "phase \"warm\" is a warm-up: not compared",
            "phase \"new\" is in new.json only, not in base0.json",
            "phase \"new\" is not compared: not every base ran it",
        ]
    );
}

#[test]
fn a_capacity_that_drops_where_the_base_held_is_a_regression() {
    let capacity = |capacity: f64, first_fail: f64| {
        let mut p = phase("capacity", None);
        p.kind = "find-capacity".into();
        p.capacity = Some(CapacityReport {
            finding: CapacityFinding {
                capacity_per_s: Some(capacity),
                generator_bound: false,
                last_pass_per_s: Some(capacity),
                first_fail_per_s: Some(first_fail),
                unstable: false,
                reached_max: false,
                first_fail_why: None,
            },
            stopped: None,
            summary: String::new(),
            steps: Vec::new(),
            usl: None,
        });
        report("ab", vec![p])
    };
    let c = compared(vec![capacity(1000.0, 1100.0)], &capacity(700.0, 800.0));
    let cap = row(&c, "capacity");
    assert!(cap.regression, "{cap:?}");
    assert_eq!(cap.p_value, None);
    assert!(
        cap.why
            .contains("the new run failed at 800/s, which the base held"),
        "{}",
        cap.why
    );
    // 20% lower, but its first failing step is above the base capacity:
    // the two searches' brackets overlap.
    let c = compared(vec![capacity(1000.0, 1100.0)], &capacity(800.0, 1050.0));
    assert!(!row(&c, "capacity").regression);
}

#[test]
fn a_tolerance_is_a_percentage_or_a_share() {
    assert_eq!(parse_tolerance("5%"), Ok(0.05));
    assert_eq!(parse_tolerance("0.05"), Ok(0.05));
    assert_eq!(parse_tolerance("12.5 %"), Ok(0.125));
    assert_eq!(parse_tolerance("0"), Ok(0.0));
    assert_eq!(
        parse_tolerance("5"),
        Err(
            "\"5\" would be 500%: a bare number is a share (0.05); write 5% for five per cent"
                .into()
        )
    );
    assert!(parse_tolerance("-1%").is_err());
    assert!(parse_tolerance("lots").is_err());
    assert!(parse_tolerance("NaN").is_err());
}
