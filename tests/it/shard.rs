//! Sharded runs (`floodgate run --shard i/N --start-at T`) and `floodgate
//! report merge`: three shard processes started together against one
//! reference server merge into exactly the unsharded run's schedule (the
//! requests intended in each second, and in total); two shards climb a
//! find-capacity phase as one fixed ladder and the merge finds the knee of
//! a server of known capacity; the merge refuses a shard given twice or
//! missing, and `--shard` refuses what it cannot run.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use floodgate_reports::scenario::{self, ScenarioReport, Shard, Status};
use floodgate_reports::series::Interval;

use crate::util::{ServeProcess, floodgate};

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("floodgate-shard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn read(path: &Path) -> ScenarioReport {
    scenario::read(&std::fs::read(path).unwrap()).expect("the report reads back, checked")
}

/// Seven connections (not a multiple of three: the first shard gets the
/// extra one), Poisson arrivals and a mix, over a steady phase, a pause and
/// a ramp that run as one schedule, then a closed loop.
const SCENARIO: &str = r#"
name = "sharded-test"
seed = 42
thresholds = ["errors < 1%"]

[defaults]
connections = 7
threads = 1
arrival = "poisson"
mix = [
    { weight = 3, method = "GET", path = "/" },
    { weight = 1, method = "POST", path = "/echo", body_bytes = 64 },
]

[[phase]]
name = "steady"
kind = "steady"
rate = "150/s"
duration = "3s"
thresholds = ["latency.p99 < 500ms"]

[[phase]]
name = "gap"
kind = "pause"
duration = "1s"

[[phase]]
name = "ramp"
kind = "ramp"
from = "50/s"
to = "200/s"
duration = "2s"

[[phase]]
name = "closed"
kind = "closed"
requests = 70
"#;

/// Runs `floodgate run FILE --target TARGET --shard i/COUNT` for every i,
/// each `stagger` after the one before, all held to one `--start-at` a
/// second per shard ahead; the outputs (each report in `d/shard-i`) and the
/// barrier, in Unix seconds.
fn run_shards(
    file: &Path,
    target: &str,
    count: u32,
    d: &Path,
    stagger: Duration,
) -> (Vec<Output>, f64) {
    let at = SystemTime::now() + Duration::from_secs(u64::from(count));
    // Whole milliseconds, as the flag is written.
    let at = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as f64 / 1000.0;
    let children: Vec<_> = (0..count)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(stagger);
            }
            floodgate()
                .arg("run")
                .arg(file)
                .args(["--target", target])
                .args(["--shard", &format!("{i}/{count}")])
                .args(["--start-at", &format!("{at:.3}")])
                .arg("--out")
                .arg(d.join(format!("shard-{i}")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    (outputs, at)
}

/// The requests intended in each second of a phase's run: all of them
/// end in one outcome each, counted in the second they were intended in.
fn per_second(intervals: &[Interval]) -> Vec<u64> {
    intervals.iter().map(|i| i.ok + i.errors).collect()
}

#[test]
fn three_shards_merge_into_the_unsharded_schedule() {
    let _turn = crate::util::heavy_turn();
    let d = dir("three");
    let file = d.join("scenario.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let (shards, whole, at) = crate::util::in_fresh_netns({
        let (d, file) = (d.clone(), file.clone());
        move || {
            let server = ServeProcess::start(&[]);
            let target = format!("http://{}/", server.addr());
            // Three seconds ahead: time for three processes to start and
            // check the target before the barrier, although each is
            // started 700 ms after the one before, as machines of a
            // cluster come up at different times. Without the barrier
            // their seconds would not line up.
            let (shards, at) = run_shards(&file, &target, 3, &d, Duration::from_millis(700));
            let whole = floodgate()
                .arg("run")
                .arg(&file)
                .args(["--target", &target])
                .arg("--out")
                .arg(d.join("whole"))
                .output()
                .unwrap();
            (shards, whole, at)
        }
    });
    // Pass, or inconclusive when the shared machine starved a generator
    // (its lagged requests are still in its books, so the schedule holds).
    for out in shards.iter().chain([&whole]) {
        assert!(
            matches!(out.status.code(), Some(0 | 4)),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let reports: Vec<PathBuf> = (0..3)
        .map(|i| d.join(format!("shard-{i}/report.json")))
        .collect();
    for (i, path) in reports.iter().enumerate() {
        let r = read(path);
        assert_eq!(r.shard, Shard::new(i as u32, 3));
        assert!(r.host.is_some());
        // Each started at the barrier, not when it was launched.
        let late = r.started_at_unix_s - at;
        assert!(
            (0.0..0.25).contains(&late),
            "shard {i} started {late} s off"
        );
        // Connection slots i, i + 3, …: 3, 2 and 2 of the seven.
        let connections = r.phases[0].run.as_ref().unwrap().plan.connections;
        assert_eq!(connections, [3, 2, 2][i]);
    }
    let whole = read(&d.join("whole/report.json"));
    assert_eq!(whole.shard, None);

    let merged_path = d.join("merged.json");
    let out = floodgate()
        .args(["report", "merge"])
        .args(reports.iter().rev())
        .arg("--out")
        .arg(&merged_path)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 4)), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&merged_path).unwrap()).unwrap();
    crate::schema::assert_valid("scenario.schema.json", &json);
    let merged = read(&merged_path);
    // The merged status is the merged run's, and the exit code says it.
    let code = match merged.status {
        Status::Pass => 0,
        Status::Inconclusive => 4,
        other => panic!("{other:?}: {stdout}"),
    };
    assert_eq!(out.status.code(), Some(code));
    let inconclusive = merged.phases.iter().any(|p| p.inconclusive.is_some());
    assert_eq!(inconclusive, merged.status == Status::Inconclusive);
    assert_eq!(merged.shard, None);
    assert_eq!(merged.hosts.len(), 3);
    assert_eq!(merged.scenario.sha256, whole.scenario.sha256);
    assert_eq!(merged.phases.len(), whole.phases.len());
    for (m, w) in merged.phases.iter().zip(&whole.phases) {
        assert_eq!(m.name, w.name);
        let (Some(m), Some(w)) = (&m.run, &w.run) else {
            assert!(m.run.is_none() && w.run.is_none(), "{}", m.name);
            continue;
        };
        // The books: every request of the unsharded schedule, once.
        assert_eq!(m.scheduled, w.scheduled, "{}", w.plan.connections);
        assert_eq!(m.outcomes_total(), m.scheduled);
        assert_eq!(m.plan.connections, 7);
        let kinds = |r: &floodgate_reports::Run| -> Vec<u64> {
            r.plan.requests_mix.iter().map(|k| k.scheduled).collect()
        };
        assert_eq!(kinds(m), kinds(w));
        // An open loop's schedule, second by second, aligned by wall
        // clock; a closed loop has none, only its count.
        if let Some(w_asked) = w.asked_rate_per_s {
            assert!(!w.intervals.is_empty());
            assert_eq!(per_second(&m.intervals), per_second(&w.intervals));
            let offered = |r: &floodgate_reports::Run| -> Vec<u64> {
                r.intervals.iter().map(|i| i.offered).collect()
            };
            assert_eq!(offered(m), offered(w));
            let asked = m.asked_rate_per_s.unwrap();
            assert!((asked - w_asked).abs() < 1e-6, "{asked}");
        }
    }
    // Read by every other command: rendered like any run's report.
    let rendered = floodgate()
        .args(["report", "render"])
        .arg(&merged_path)
        .arg("--out")
        .arg(d.join("rendered"))
        .output()
        .unwrap();
    assert_exit(&rendered, 0);
    assert!(d.join("rendered/report.html").exists());
    // Thresholds judged again, on the whole run's figures.
    assert_eq!(merged.thresholds.len(), 1);
    assert_eq!(merged.phases[0].thresholds.len(), 1);

    // A shard given twice, or one missing: refused, nothing written.
    let refused = |files: &[&PathBuf], out: &Path, says: &str| {
        let o = floodgate()
            .args(["report", "merge"])
            .args(files)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert_exit(&o, 2);
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
        assert!(!out.exists());
    };
    let dup = d.join("dup.json");
    refused(
        &[&reports[0], &reports[1], &reports[1]],
        &dup,
        "shard 1/3 is given twice",
    );
    refused(&[&reports[0], &reports[2]], &dup, "shard 1/3 is missing");
    refused(
        &[
            &reports[0],
            &reports[1],
            &reports[2],
            &d.join("whole/report.json"),
        ],
        &dup,
        "not a shard's report",
    );
}

#[test]
fn shard_flags_and_what_a_shard_cannot_run_are_refused_before_anything_starts() {
    let d = dir("refused");
    let file = d.join("scenario.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let run = |args: &[&str]| {
        floodgate()
            .arg("run")
            .arg(&file)
            .args(["--out", d.join("out").to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let target = ["--target", "http://127.0.0.1:9/"];
    for bad in ["0/0", "3/2", "2/2", "x", "1", "-1/2"] {
        let out = run(&[&target[..], &[&format!("--shard={bad}")]].concat());
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains("is not a shard"), "{bad}");
    }
    let out = run(&["--start-at", "tomorrow"]);
    assert_exit(&out, 2);
    // Without a target, each shard would load a server of its own.
    let out = run(&["--shard", "0/2"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("needs a target"));
    // Seven connections do not split over eight shards.
    let out = run(&[&target[..], &["--shard", "0/8"]].concat());
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("7 connections cannot be split over 8 shards"),
        "{}",
        text(&out.stderr)
    );
    // backlog-probe: shards pausing one accept queue measure nothing.
    let out = floodgate()
        .args(["run", "scenarios/smoke.toml", "--shard", "0/2"])
        .args(target)
        .args(["--out", d.join("out").to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("backlog-probe cannot run under --shard"),
        "{}",
        text(&out.stderr)
    );
    // The sharded nightly scenario is fit for shards.
    let out = floodgate()
        .args(["run", "scenarios/sharded.toml", "--shard", "9/10"])
        .args(["--target", "http://127.0.0.1:1/"])
        .args(["--start-at", "2020-01-01T00:00:00Z"])
        .args(["--out", d.join("out").to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    // Validated and accepted as a shard (and an RFC 3339 barrier); it
    // then fails to reach the target (exit 3), before any barrier.
    assert_exit(&out, 3);
}

/// A find-capacity phase over 50 connections to `/delay/50` (at most
/// 1,000 requests a second), climbed by two shards as one ladder of seven
/// rates from 250/s to 2,000/s (each the last times √2).
const LADDER: &str = r#"
name = "sharded-capacity"
seed = 7

[defaults]
connections = 50
threads = 1
read_timeout = "5s"
mix = [{ weight = 1, method = "GET", path = "/delay/50" }]

[[phase]]
name = "capacity"
kind = "find-capacity"
start = "250/s"
max = "2000/s"
max_steps = 7
step = "1s"
settle = "500ms"
cooldown = "500ms"
slo = ["latency.p99 < 150ms"]
"#;

#[test]
fn sharded_find_capacity_climbs_one_ladder_and_the_merge_finds_the_knee() {
    let _turn = crate::util::heavy_turn();
    let d = dir("ladder");
    let file = d.join("scenario.toml");
    std::fs::write(&file, LADDER).unwrap();
    let shards = crate::util::in_fresh_netns({
        let (d, file) = (d.clone(), file.clone());
        move || {
            let server = ServeProcess::start(&[]);
            let target = format!("http://{}/", server.addr());
            run_shards(&file, &target, 2, &d, Duration::ZERO).0
        }
    });
    let rungs = [250.0, 353.553, 500.0, 707.107, 1000.0, 1414.214, 2000.0];
    let reports: Vec<PathBuf> = (0..2)
        .map(|i| d.join(format!("shard-{i}/report.json")))
        .collect();
    for (out, path) in shards.iter().zip(&reports) {
        // A shard judges nothing of the capacity: no threshold names it.
        assert!(
            matches!(out.status.code(), Some(0 | 4)),
            "{}",
            text(&out.stderr)
        );
        let r = read(path);
        let ladder = r.phases[0].capacity.as_ref().expect("a ladder");
        // Every rung, whatever the share showed: the search did not stop
        // at the first failing step.
        let rates: Vec<f64> = ladder.steps.iter().map(|s| s.rate_per_s).collect();
        assert_eq!(rates.len(), 7, "{}", ladder.summary);
        for (got, want) in rates.iter().zip(rungs) {
            assert!((got - want).abs() < 0.01, "{rates:?}");
        }
        assert!(
            ladder.summary.contains("share of a ladder of 7 rates"),
            "{}",
            ladder.summary
        );
    }
    let merged_path = d.join("merged.json");
    let out = floodgate()
        .args(["report", "merge"])
        .args(&reports)
        .arg("--out")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 4)),
        "{}",
        text(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&merged_path).unwrap()).unwrap();
    crate::schema::assert_valid("scenario.schema.json", &json);
    let merged = read(&merged_path);
    let shard_reports: Vec<ScenarioReport> = reports.iter().map(|p| read(p)).collect();
    let c = merged.phases[0]
        .capacity
        .as_ref()
        .expect("the merged ladder");
    // Each rung's books are both shards' together.
    for (k, step) in c.steps.iter().enumerate() {
        let sum: u64 = shard_reports
            .iter()
            .map(|r| {
                r.phases[0].capacity.as_ref().unwrap().steps[k]
                    .run
                    .scheduled
            })
            .sum();
        assert_eq!(step.run.scheduled, sum, "rung {k}");
        assert_eq!(step.run.plan.connections, 50);
    }
    // The knee of a 1,000/s server: the last passing rung below it and the
    // first failing one above (707–1,000/s, or 1,000–1,414/s when the
    // rung at capacity itself holds).
    let capacity = c.finding.capacity_per_s.expect(&c.summary);
    assert!((700.0..=1001.0).contains(&capacity), "{}", c.summary);
    let fail = c.finding.first_fail_per_s.expect(&c.summary);
    assert!(fail > capacity && fail <= 1415.0, "{}", c.summary);
    assert!(
        c.summary.contains("a fixed ladder climbed by 2 shards"),
        "{}",
        c.summary
    );
}

/// The Kubernetes ConfigMap carries scenarios/sharded.toml verbatim, so the
/// scenario the Job runs is one `floodgate check` and these tests load.
#[test]
fn the_kubernetes_configmap_holds_the_sharded_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap();
    let (_, block) = map
        .split_once("  scenario.toml: |\n")
        .expect("a scenario.toml key");
    let embedded: String = block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let file = std::fs::read_to_string(root.join("scenarios/sharded.toml")).unwrap();
    assert_eq!(embedded.trim_end(), file.trim_end());
    // And the Job's shard count is the ConfigMap's.
    let job = std::fs::read_to_string(root.join("deploy/kubernetes/shards-job.yaml")).unwrap();
    let shards = map
        .lines()
        .find_map(|l| l.trim().strip_prefix("shards: "))
        .expect("a shards key")
        .trim_matches('"');
    assert!(job.contains(&format!("  completions: {shards}\n")));
    assert!(job.contains(&format!("  parallelism: {shards}\n")));
}
