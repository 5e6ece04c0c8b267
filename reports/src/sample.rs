//! A scenario report for this crate's unit tests: a warm-up and a steady
//! phase with one-second intervals, a find-capacity phase with two steps,
//! and a backlog-probe phase without a run, each interval with response
//! times of its own, and every run's histogram the sum of its intervals'.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::histogram;
use crate::run::{Histograms, Percentiles, Run};
use crate::scenario::{
    CapacityFinding, CapacityReport, CapacityStep, PhaseReport, SCENARIO_SCHEMA, ScenarioEcho,
    ScenarioReport, Status,
};
use crate::series::Interval;

/// When the sample scenario started.
pub const STARTED_AT_UNIX_S: f64 = 1_700_000_000.25;

/// A committed result of `floodgate load --out`, with `intervals`
/// one-second intervals (the k-th holding `k + 1` requests at
/// `base_us · (k + 1)`), started `offset_s` into the scenario.
pub fn run(offset_s: f64, intervals: usize, base_us: u64) -> Run {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/report_json/open-poisson.json"
    );
    let mut run = crate::read(&std::fs::read(path).unwrap()).unwrap();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    run.intervals = (0..intervals)
        .map(|k| {
            let n = k as u64 + 1;
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
            h.record_n(base_us * n, n).unwrap();
            all.add(&h).unwrap();
            let mut i = Interval::new(k as f64, 1.0, n, 0, &h).unwrap();
            i.offered = n;
            i.answered = n;
            i.outcomes = BTreeMap::from([(crate::Outcome::Ok, n)]);
            i
        })
        .collect();
    let d = run.histograms.decode().unwrap();
    run.histograms =
        Histograms::encode(&all, &d.service_time, &d.connect_time, &d.generator_lag).unwrap();
    run.latency_us = Percentiles::of(&all);
    assert_eq!(
        histogram::decode(&run.histograms.response_time).unwrap(),
        all
    );
    run.started_at_unix_s = STARTED_AT_UNIX_S + offset_s;
    run
}

fn phase(name: &str, kind: &str, start_s: f64) -> PhaseReport {
    PhaseReport {
        elapsed_s: 1.0,
        ..PhaseReport::new(name, kind, false, start_s)
    }
}

/// The sample report.
pub fn report() -> ScenarioReport {
    let step = |rate_per_s: f64, offset_s: f64| CapacityStep {
        rate_per_s,
        confirm: false,
        verdict: "pass".into(),
        why: None,
        run: run(offset_s, 2, 3_000),
    };
    ScenarioReport {
        schema: SCENARIO_SCHEMA.into(),
        floodgate_version: "0.1.0".into(),
        scenario: ScenarioEcho {
            name: "sample".into(),
            file: "sample.toml".into(),
            sha256: "0f".repeat(32),
            text: "name = \"sample\"\n".into(),
            sets: Vec::new(),
        },
        seed: 7,
        target: "http://127.0.0.1:8080/".into(),
        started_at_unix_s: STARTED_AT_UNIX_S,
        elapsed_s: 12.0,
        partial: false,
        status: Status::Pass,
        reasons: Vec::new(),
        phases: vec![
            PhaseReport {
                warmup: true,
                run: Some(run(0.0, 2, 100)),
                ..phase("warm up", "steady", 0.0)
            },
            PhaseReport {
                run: Some(run(2.0, 3, 1_000)),
                ..phase("steady", "steady", 2.0)
            },
            phase("probe", "backlog-probe", 5.0),
            PhaseReport {
                capacity: Some(CapacityReport {
                    finding: CapacityFinding {
                        capacity_per_s: Some(200.0),
                        generator_bound: false,
                        last_pass_per_s: Some(200.0),
                        first_fail_per_s: None,
                        unstable: false,
                        reached_max: true,
                        first_fail_why: None,
                    },
                    stopped: None,
                    summary: "capacity at least 200/s".into(),
                    steps: vec![step(100.0, 6.5), step(200.0, 9.5)],
                    usl: None,
                }),
                ..phase("find", "find-capacity", 6.0)
            },
        ],
        thresholds: Vec::new(),
        evidence: None,
        baseline: None,
        shard: None,
        host: None,
        hosts: Vec::new(),
    }
}
