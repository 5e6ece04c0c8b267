//! The shipped scenario files (`scenarios/`), as a user relies on them:
//! every one validates (a new file is covered by being there), each of
//! `scenarios/invalid/` gives exactly the message beside it in its
//! `.expected` file, the issue's example means what its comments say, and
//! `--set` overrides are validated like the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use floodgate_runner::plan::{Arrival, Mode};
use floodgate_runner::scenario::{self, Bound, Metric, Op, PhaseKind, Scenario, Stat};

/// The workspace root, where messages name files as `scenarios/x.toml`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.toml` files directly in `dir` (relative to the root), sorted.
fn toml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".toml"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    files.sort();
    files
}

fn check(path: &str, sets: &[&str]) -> Result<Scenario, scenario::Errors> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    scenario::check(path, &text, &sets)
}

fn valid(path: &str, sets: &[&str]) -> Scenario {
    check(path, sets).unwrap_or_else(|e| panic!("{path} should be valid:\n{e}"))
}

#[test]
fn every_shipped_scenario_validates() {
    let files = toml_files("scenarios");
    assert!(
        files.iter().any(|f| f.ends_with("/smoke.toml")),
        "{files:?}"
    );
    for path in &files {
        let s = valid(path, &[]);
        assert!(!s.phases.is_empty(), "{path}");
    }
}

#[test]
fn every_invalid_scenario_gives_its_exact_message() {
    let files = toml_files("scenarios/invalid");
    assert!(files.len() >= 5, "{files:?}");
    for path in &files {
        let expected_path = root().join(path.replace(".toml", ".expected"));
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        match check(path, &[]) {
            Ok(_) => panic!("{path} should be invalid"),
            Err(e) => assert_eq!(e.to_string(), expected, "{path}"),
        }
    }
}

#[test]
fn the_issue_example_means_what_its_comments_say() {
    let s = valid("scenarios/example.toml", &[]);
    assert_eq!(s.name, "nightly");
    assert_eq!(s.seed, Some(42));
    assert_eq!(s.target.as_deref(), Some("http://127.0.0.1:8080/"));
    let whole: Vec<_> = s
        .thresholds
        .iter()
        .map(|t| (t.metric, t.op, t.value))
        .collect();
    assert_eq!(
        whole,
        [
            (Metric::Errors, Op::Lt, Bound::Share(0.001)),
            (Metric::ListenOverflows, Op::Eq, Bound::Count(0)),
        ]
    );
    assert_eq!(s.server.backlog, 128);
    assert_eq!(s.server.accept_delay, None, "0ms is no delay");

    let kinds: Vec<&str> = s.phases.iter().map(|p| p.kind.name()).collect();
    assert_eq!(kinds, ["steady", "ramp", "find-capacity", "connect-storm"]);
    let names: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["warmup", "ramp", "capacity", "storm"]);

    // [defaults] is inherited by every phase.
    for p in &s.phases {
        assert_eq!(p.load.connections, 50, "{}", p.name);
        assert_eq!(p.load.connect_timeout, Duration::from_secs(1));
        assert_eq!(p.load.read_timeout, Duration::from_secs(2));
        assert_eq!(p.load.arrival, Arrival::Uniform);
        let mix = p.load.mix.as_ref().unwrap();
        assert_eq!(mix.len(), 2);
        assert_eq!(
            (mix[0].weight, mix[0].method.as_str(), mix[0].path.as_str()),
            (8, "GET", "/")
        );
        assert_eq!((mix[1].weight, mix[1].body_bytes), (1, 1024));
    }

    let warmup = &s.phases[0];
    assert_eq!(
        warmup.kind,
        PhaseKind::Steady {
            rate_per_s: 1000.0,
            duration: Duration::from_secs(10)
        }
    );
    assert!(warmup.warmup, "measured, reported, never judged");

    let ramp = &s.phases[1];
    assert_eq!(
        ramp.kind,
        PhaseKind::Ramp {
            from_per_s: 1000.0,
            to_per_s: 20_000.0,
            duration: Duration::from_secs(60)
        }
    );
    assert!(!ramp.warmup);
    let t = &ramp.thresholds[0];
    assert_eq!(
        (t.metric, t.op, t.value, t.over),
        (
            Metric::Latency(Stat::P99),
            Op::Lt,
            Bound::Duration(Duration::from_millis(25)),
            Some(Duration::from_secs(10))
        ),
        "every 10 s window must hold"
    );

    let PhaseKind::FindCapacity(f) = &s.phases[2].kind else {
        panic!("capacity is find-capacity");
    };
    assert_eq!((f.start_per_s, f.max_per_s), (1000.0, 500_000.0));
    assert_eq!(f.step, Duration::from_secs(10));
    assert!((f.precision - 0.05).abs() < 1e-12);
    // The defaults the issue names.
    assert_eq!(f.growth, 2.0);
    assert_eq!(
        (f.settle, f.cooldown),
        (Duration::from_secs(2), Duration::from_secs(2))
    );
    assert_eq!((f.confirm, f.max_steps, f.max_duration), (1, 12, None));
    assert_eq!(f.mode, Mode::Requests);
    let slo: Vec<Metric> = f.slo.iter().map(|t| t.metric).collect();
    assert_eq!(
        slo,
        [
            Metric::Latency(Stat::P99),
            Metric::Errors,
            Metric::ListenOverflows
        ]
    );

    let storm = &s.phases[3];
    let PhaseKind::ConnectStorm {
        rate_per_s,
        duration,
        ..
    } = storm.kind
    else {
        panic!("storm is a connect-storm");
    };
    assert_eq!((rate_per_s, duration), (2000.0, Duration::from_secs(5)));
    assert_eq!(storm.thresholds[0].metric, Metric::SynRetransmitted);
    // "connect and close, as `--mode connect`"
    let input = storm.plan_input(s.target.as_deref(), 42).unwrap();
    assert_eq!(input.mode, Mode::Connect);
}

#[test]
fn smoke_runs_every_kind_but_find_capacity_in_under_30s() {
    let s = valid("scenarios/smoke.toml", &[]);
    assert_eq!(s.target, None, "the reference server");
    let mut kinds: Vec<&str> = s.phases.iter().map(|p| p.kind.name()).collect();
    kinds.sort();
    let mut expected: Vec<&str> = PhaseKind::NAMES
        .into_iter()
        .filter(|k| *k != "find-capacity")
        .collect();
    expected.sort();
    assert_eq!(kinds, expected);
    let total = s
        .planned_duration()
        .expect("every smoke phase has a known length");
    assert!(total < Duration::from_secs(30), "{total:?}");
}

#[test]
fn set_overrides_a_phase_by_name_and_the_server() {
    let s = valid(
        "scenarios/example.toml",
        &[
            "phase.capacity.max=200k/s",
            "server.backlog=64",
            "phase.warmup.duration=2s",
            "phase.1.to = \"5k/s\"",
            "defaults.connections=7",
            "seed=7",
        ],
    );
    let PhaseKind::FindCapacity(f) = &s.phase("capacity").unwrap().kind else {
        panic!()
    };
    assert_eq!(f.max_per_s, 200_000.0);
    assert_eq!(s.server.backlog, 64);
    assert_eq!(
        s.phase("warmup").unwrap().planned_duration(),
        Some(Duration::from_secs(2))
    );
    let PhaseKind::Ramp { to_per_s, .. } = s.phase("ramp").unwrap().kind else {
        panic!()
    };
    assert_eq!(to_per_s, 5000.0);
    assert!(s.phases.iter().all(|p| p.load.connections == 7));
    assert_eq!(s.seed, Some(7));
}

#[test]
fn set_adds_keys_and_tables_the_file_lacks() {
    let s = valid(
        "scenarios/smoke.toml",
        &["phase.storm.arrival=poisson", "server.max_connections=100"],
    );
    assert_eq!(s.phase("storm").unwrap().load.arrival, Arrival::Poisson);
    assert_eq!(s.server.max_connections, Some(100));
    let s = valid("scenarios/example.toml", &["server.reuse_port=true"]);
    assert!(s.server.reuse_port);
    // The concurrency-models loop: one scenario, a model per run.
    let s = valid("scenarios/concurrency-models.toml", &[]);
    assert_eq!(s.server.model, floodgate_server::Model::Async);
    let s = valid(
        "scenarios/concurrency-models.toml",
        &["server.model=reuseport"],
    );
    assert_eq!(s.server.model, floodgate_server::Model::ReusePort);
    let s = valid(
        "scenarios/concurrency-models.toml",
        &["server.model=threads"],
    );
    assert_eq!(s.server.model, floodgate_server::Model::Threads);
    let e = check(
        "scenarios/concurrency-models.toml",
        &["server.model=fibers"],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("expected \"async\", \"reuseport\" or \"threads\""),
        "{e}"
    );
    let e = check(
        "scenarios/concurrency-models.toml",
        &["server.model=threads", "server.tls_self_signed=true"],
    )
    .unwrap_err();
    assert!(e.to_string().contains("plain HTTP only"), "{e}");
}

#[test]
fn set_values_are_validated_like_the_file() {
    let e = check(
        "scenarios/example.toml",
        &[
            "phase.capacity.max=500/s",
            "phase.ramp.rate=1k/s",
            "server.backlog=0",
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.headlines(),
        [
            "--set:1:20: phase[2].max: must be above `start` (1000/s), found 500/s",
            "--set:1:12: phase[1].rate: is not a key of a ramp phase; it takes name, kind, \
             warmup, abort_on_fail, thresholds, from, to, duration, connections, threads, \
             arrival, mix, connect_timeout, read_timeout",
            "--set:1:16: server.backlog: must be a whole number from 1 to 4294967295, found 0",
        ]
    );
    // The snippet is the override itself.
    assert!(
        e.to_string()
            .contains("1 | phase.capacity.max=500/s\n  |                    ^^^^^"),
        "{e}"
    );
}

#[test]
fn set_keys_that_name_nothing_are_errors() {
    let e = check(
        "scenarios/example.toml",
        &["phase.capcity.max=200k/s", "phase.ramp", "backlog"],
    )
    .unwrap_err();
    assert_eq!(
        e.headlines(),
        [
            "--set:1:7: phase.capcity: no phase named \"capcity\"; did you mean \"capacity\"?",
            "--set:1:1: expected KEY=VALUE, e.g. phase.capacity.max=200k/s or server.backlog=64",
            "--set:1:1: expected KEY=VALUE, e.g. phase.capacity.max=200k/s or server.backlog=64",
        ]
    );
    let e = check(
        "scenarios/example.toml",
        &["phase.ramp.durration=5s", "phase.ramp=1"],
    )
    .unwrap_err();
    assert_eq!(
        e.headlines(),
        [
            "--set:1:12: phase[1].durration: unknown key; did you mean \"duration\"?",
            "--set:1:7: phase[1]: names a phase, not one of its keys: phase.NAME.KEY=VALUE",
        ]
    );
}

#[test]
fn max_lag_and_trickle_read_as_written() {
    let s = valid("scenarios/smoke.toml", &[]);
    assert_eq!(s.max_lag, 0.01, "the default: 1% of requests");
    let s = valid(
        "scenarios/slowloris.toml",
        &["max_lag=5%", "phase.hold.trickle=50ms"],
    );
    assert_eq!(s.max_lag, 0.05);
    assert_eq!(
        s.phase("hold").unwrap().kind,
        PhaseKind::Hold {
            duration: Duration::from_secs(3),
            trickle: Some(Duration::from_millis(50)),
        }
    );
    let e = check("scenarios/smoke.toml", &["max_lag=0%"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("max_lag: must be above 0% and at most 100%"),
        "{e}"
    );
    let e = check("scenarios/smoke.toml", &["phase.ramp.trickle=1s"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("phase[1].trickle: is not a key of a ramp phase"),
        "{e}"
    );
}
