//! Checks JSON output against the committed schemas in `reports/schema/`
//! with the `jsonschema` crate (draft 2020-12). Every schema is registered
//! under its `$id`, so the `$ref`s between them resolve offline.

use std::path::{Path, PathBuf};

use floodgate_reports::compare::{Comparison, ComparisonRow};
use floodgate_reports::scenario::{
    self, CapacityFinding, CapacityReport, CapacityStep, HostRun, Judged, PhaseReport,
    SCENARIO_SCHEMA, ScenarioEcho, ScenarioReadError, ScenarioReport, Shard, Status,
    ThresholdResult, UslFit, UslReport, WindowSpan,
};
use floodgate_reports::series::Interval;
use floodgate_reports::{Outcome, ProbeReport, ReadError, Run};
use jsonschema::{Registry, Validator};
use serde_json::Value;

/// The committed schemas; `$ref`s may point from one into another.
const SCHEMAS: [&str; 3] = [
    "result.schema.json",
    "probe.schema.json",
    "scenario.schema.json",
];

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema")
}

/// The committed schema `reports/schema/NAME`.
pub fn load(name: &str) -> Value {
    let path = schema_dir().join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for the committed schema `name`, with every committed schema
/// registered under its `$id` and retrieval of anything else refused.
fn validator(name: &str) -> Validator {
    let mut registry = Registry::new();
    for file in SCHEMAS {
        let schema = load(file);
        let id = schema["$id"]
            .as_str()
            .unwrap_or_else(|| panic!("reports/schema/{file} has no $id"))
            .to_string();
        registry = registry
            .add(id, schema)
            .unwrap_or_else(|e| panic!("reports/schema/{file}: {e}"));
    }
    let registry = registry
        .prepare()
        .unwrap_or_else(|e| panic!("reports/schema/: {e}"));
    jsonschema::options()
        .offline()
        .with_registry(&registry)
        .build(&load(name))
        .unwrap_or_else(|e| panic!("reports/schema/{name}: {e}"))
}

/// Every way `doc` breaks the committed schema `name`, each with where it is.
pub fn violations(name: &str, doc: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Checks `doc` against the committed schema `name`, panicking with every
/// violation and where it is.
pub fn assert_valid(name: &str, doc: &Value) {
    let errors = violations(name, doc);
    assert!(
        errors.is_empty(),
        "does not match reports/schema/{name}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_committed_schemas_are_valid_json_schemas() {
    for file in SCHEMAS {
        if let Err(e) = jsonschema::meta::validate(&load(file)) {
            panic!("reports/schema/{file}: {e}");
        }
        // Builds, with its references resolved.
        validator(file);
    }
}

/// A real result of `floodgate load --out`, committed as a fuzz seed.
fn sample_result_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/report_json/open-poisson.json")
}

/// [`sample_result_path`] as JSON.
fn sample_result() -> Value {
    serde_json::from_str(&std::fs::read_to_string(sample_result_path()).unwrap()).unwrap()
}

/// Breaks a good result in one way.
type Breakage = fn(&mut Value);

#[test]
fn the_result_schema_refuses_what_floodgate_never_writes() {
    assert_valid("result.schema.json", &sample_result());
    let cases: [(&str, Breakage); 6] = [
        ("a counter that is not an integer", |v| {
            v["evidence"]["counters"]["listen_overflows"] = "lots".into()
        }),
        ("an unknown field", |v| v["extra"] = 1.into()),
        ("a missing field", |v| {
            v.as_object_mut().unwrap().remove("seed");
        }),
        ("a negative seed", |v| v["seed"] = (-1).into()),
        ("schema_version 2", |v| v["schema_version"] = 2.into()),
        ("a diagnosis not in the enum", |v| {
            v["verdict"]["diagnosis"] = "made_up".into()
        }),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, break_it)| {
            let mut v = sample_result();
            break_it(&mut v);
            violations("result.schema.json", &v).is_empty()
        })
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

/// [`sample_result_path`] read into the model, checked.
fn sample_run() -> Run {
    let path = sample_result_path();
    floodgate_reports::read(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sample run with a one-second series, as a scenario phase's run has.
fn sample_run_with_intervals() -> Run {
    let mut run = sample_run();
    let response = floodgate_reports::histogram::decode(&run.histograms.response_time).unwrap();
    let ok = run.outcomes[&Outcome::Ok];
    run.intervals = vec![Interval::new(0.0, 1.0, ok, run.scheduled - ok, &response).unwrap()];
    run
}

/// A backlog probe of a local target, its evidence borrowed from the
/// sample run (no probe report is committed).
fn sample_probe(run: &Run) -> ProbeReport {
    let evidence = run.evidence.clone().expect("the sample run has evidence");
    let mut probe = ProbeReport {
        target: "127.0.0.1:8080".parse().unwrap(),
        capacity: 9,
        implied_backlog: 8,
        configured_backlog: Some(8),
        somaxconn: Some(4096),
        clamped_backlog: Some(8),
        kernel_backlog: Some(8),
        queue_depth: Some(9),
        syn_recv: Some(0),
        pause: "SIGSTOP".into(),
        connects: 40,
        timed_out: 31,
        refused: 0,
        reset: 0,
        other_errors: 0,
        syn_retransmitted: 0,
        dropped_syns: 31,
        window_ms: 900,
        served: 9,
        unserved: 0,
        local: true,
        counters: Some(evidence.counters),
        explanation: Vec::new(),
        verdict: run.verdict.clone(),
        evidence: Some(evidence),
        netns: Some("floodgate-1234".into()),
    };
    probe.conclude();
    probe
}

/// A scenario report with every optional part present at least once: a
/// warm-up phase with a run (and its series), a backlog-probe phase, a
/// find-capacity phase with two steps, a skipped phase, thresholds judged
/// with and without a failed window and measured value, and evidence.
pub fn sample_scenario_report() -> ScenarioReport {
    let mut run = sample_run_with_intervals();
    let evidence = run.evidence.clone().unwrap();
    // A phase's and a step's evidence keep their figures; the samples are
    // the whole run's alone.
    let figures_only = |run: &mut Run| {
        if let Some(e) = run.evidence.as_mut() {
            e.samples.clear();
            e.counter_ticks.clear();
        }
    };
    figures_only(&mut run);
    let evidence_copy = evidence.clone();
    let phase = |name: &str, kind: &str, start_s: f64| PhaseReport {
        elapsed_s: 1.0,
        ..PhaseReport::new(name, kind, false, start_s)
    };
    let step = |rate_per_s: f64, confirm: bool, verdict: &str, why: Option<&str>| CapacityStep {
        rate_per_s,
        confirm,
        verdict: verdict.into(),
        why: why.map(Into::into),
        run: {
            let mut run = sample_run();
            figures_only(&mut run);
            run
        },
    };
    ScenarioReport {
        schema: SCENARIO_SCHEMA.into(),
        floodgate_version: env!("CARGO_PKG_VERSION").into(),
        scenario: ScenarioEcho {
            name: "checkout".into(),
            file: "scenarios/checkout.toml".into(),
            sha256: "0f".repeat(32),
            text: "name = \"checkout\"\n".into(),
            sets: vec!["phases.steady.rate=200/s".into()],
        },
        seed: 7,
        target: "http://127.0.0.1:8080/".into(),
        started_at_unix_s: 1_700_000_000.5,
        elapsed_s: 4.0,
        partial: true,
        status: Status::Fail,
        reasons: vec!["latency.p99 < 25ms over 1s failed: 31.0ms from 0s".into()],
        phases: vec![
            PhaseReport {
                warmup: true,
                run: Some(run),
                thresholds: vec![ThresholdResult {
                    threshold: "errors < 1%".into(),
                    status: Judged::NotJudged,
                    measured: Some("0%".into()),
                    failed_window: None,
                    note: Some("a warm-up phase is measured, never judged".into()),
                }],
                ..phase("warm", "steady", 0.0)
            },
            PhaseReport {
                probe: Some(sample_probe(&sample_run())),
                thresholds: vec![ThresholdResult {
                    threshold: "probe.capacity == 9".into(),
                    status: Judged::Pass,
                    measured: Some("9".into()),
                    failed_window: None,
                    note: None,
                }],
                ..phase("backlog", "backlog-probe", 1.0)
            },
            PhaseReport {
                capacity: Some(CapacityReport {
                    finding: CapacityFinding {
                        capacity_per_s: Some(100.0),
                        generator_bound: false,
                        last_pass_per_s: Some(100.0),
                        first_fail_per_s: Some(200.0),
                        unstable: false,
                        reached_max: false,
                        first_fail_why: Some("latency.p99 < 10ms measured 14.2 ms".into()),
                    },
                    stopped: Some("max_steps reached".into()),
                    summary: "capacity 100/s: 200/s failed latency.p99".into(),
                    steps: vec![
                        step(100.0, false, "pass", None),
                        step(
                            200.0,
                            false,
                            "fail",
                            Some("latency.p99 < 10ms measured 14.2 ms"),
                        ),
                    ],
                    usl: Some(UslReport {
                        points: 6,
                        fit: Some(UslFit {
                            sigma: 0.02,
                            kappa: 0.0001,
                            lambda_per_s: 950.0,
                            peak_concurrency: Some(99.0),
                            peak_rate_per_s: Some(31_000.0),
                            r_squared: 0.98,
                        }),
                        note: None,
                    }),
                }),
                inconclusive: Some("the generator lagged 3% of its sends".into()),
                ..phase("capacity", "find-capacity", 2.0)
            },
            PhaseReport {
                skipped: true,
                elapsed_s: 0.0,
                ..phase("soak", "steady", 4.0)
            },
        ],
        thresholds: vec![
            ThresholdResult {
                threshold: "latency.p99 < 25ms over 1s".into(),
                status: Judged::Fail,
                measured: Some("31.0ms".into()),
                failed_window: Some(WindowSpan {
                    start_s: 0.0,
                    duration_s: 1.0,
                }),
                note: Some("the first window over 25ms".into()),
            },
            ThresholdResult {
                threshold: "capacity > 50/s".into(),
                status: Judged::Pass,
                measured: None,
                failed_window: None,
                note: None,
            },
        ],
        evidence: Some(evidence),
        baseline: Some(Comparison {
            base_files: vec!["last-night/report.json".into()],
            tolerance: 0.05,
            mode: "fail".into(),
            regression: true,
            rows: vec![ComparisonRow {
                phase: "warm".into(),
                metric: "latency.p99".into(),
                unit: "ms".into(),
                base: 20.1,
                base_min: None,
                base_max: None,
                new: 24.3,
                change: 0.209,
                p_value: Some(0.0001),
                regression: true,
                why: "21% slower, beyond the 5% tolerance, p = 0.0001".into(),
            }],
            notes: vec![],
        }),
        shard: Some(Shard { index: 1, count: 3 }),
        host: Some("loadgen-1".into()),
        hosts: vec![HostRun {
            shard: Shard { index: 0, count: 3 },
            host: Some("loadgen-0".into()),
            started_at_unix_s: 1_700_000_000.5,
            status: Status::Pass,
            evidence: Some(evidence_copy),
        }],
    }
}

fn sample_scenario_json() -> Value {
    serde_json::to_value(sample_scenario_report()).unwrap()
}

#[test]
fn a_scenario_report_with_every_part_matches_its_schema() {
    let mut bytes = Vec::new();
    sample_scenario_report().write_json(&mut bytes).unwrap();
    assert_valid(
        "scenario.schema.json",
        &serde_json::from_slice(&bytes).unwrap(),
    );
}

#[test]
fn the_scenario_schema_refuses_what_floodgate_never_writes() {
    assert_valid("scenario.schema.json", &sample_scenario_json());
    let cases: [(&str, Breakage); 9] = [
        ("an unknown field", |v| v["extra"] = 1.into()),
        ("an unknown field in a phase", |v| {
            v["phases"][0]["extra"] = 1.into()
        }),
        ("a status of maybe", |v| v["status"] = "maybe".into()),
        ("a threshold judged maybe", |v| {
            v["thresholds"][0]["status"] = "maybe".into()
        }),
        ("a missing field", |v| {
            v.as_object_mut().unwrap().remove("evidence");
        }),
        ("another schema", |v| {
            v["schema"] = "floodgate.scenario/1".into()
        }),
        ("a phase kind floodgate has not", |v| {
            v["phases"][0]["kind"] = "soak".into()
        }),
        ("a broken run inside a phase", |v| {
            v["phases"][0]["run"]["seed"] = (-1).into()
        }),
        ("a broken probe inside a phase", |v| {
            v["phases"][1]["probe"]["capacity"] = "nine".into()
        }),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, break_it)| {
            let mut v = sample_scenario_json();
            break_it(&mut v);
            violations("scenario.schema.json", &v).is_empty()
        })
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

/// The schema's phase kinds are the ones a scenario file may name.
#[test]
fn the_scenario_schema_knows_every_phase_kind() {
    let schema = load("scenario.schema.json");
    let kinds: Vec<&str> = schema["$defs"]["phase"]["properties"]["kind"]["enum"]
        .as_array()
        .expect("the phase kind is an enum")
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(kinds, floodgate_runner::scenario::PhaseKind::NAMES);
}

#[test]
fn a_scenario_report_reads_back_equal() {
    let report = sample_scenario_report();
    let mut bytes = Vec::new();
    report.write_json(&mut bytes).unwrap();
    assert_eq!(scenario::read(&bytes).expect("reads back"), report);
}

/// `sample_scenario_json` broken by `break_it`, read.
fn read_broken(break_it: Breakage) -> ScenarioReadError {
    let mut v = sample_scenario_json();
    break_it(&mut v);
    scenario::read(&serde_json::to_vec(&v).unwrap()).expect_err("a broken report is refused")
}

#[test]
fn a_scenario_report_of_another_schema_is_refused() {
    let err = read_broken(|v| v["schema"] = "floodgate.scenario/1".into());
    assert!(
        matches!(&err, ScenarioReadError::Schema(s) if s == "floodgate.scenario/1"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "schema \"floodgate.scenario/1\": this floodgate reads \"floodgate.run/2\""
    );
}

#[test]
fn a_scenario_report_whose_run_does_not_balance_names_the_phase() {
    let err = read_broken(|v| v["phases"][0]["run"]["scheduled"] = 5.into());
    assert!(
        matches!(
            &err,
            ScenarioReadError::Run {
                index: 0,
                what,
                why: ReadError::Books { scheduled: 5, .. }
            } if what == "run"
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("phases[0].run: outcomes sum to ")
            && message.ends_with("but scheduled is 5: the books do not balance"),
        "{message}"
    );
}
