//! The baseline gate end to end: `floodgate report compare` and `floodgate
//! run --baseline` on real runs of a latency-bound scenario (100/s, each
//! request held 20 ms by the reference server, far below its capacity):
//! an identical pair and two runs of the same scenario pass, a 20%
//! slowdown (the delay raised to 24 ms by `--set`, which leaves the
//! scenario's hash alone) exits 5 in fail mode and 0 in warn mode with the
//! regression shown, a run inside the spread of three base runs passes,
//! and different scenarios or bad base files exit 2 before anything
//! starts.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use floodgate_reports::scenario::{self, ScenarioReport};

use crate::util::{exit_within, floodgate};

/// The scenario every run here makes: 6 s of 100/s over 10 connections,
/// each request held 20 ms. `max_lag` is loose because on a shared
/// 2-core machine the generator is sometimes late; the comparison, not
/// the lag, is under test.
const LATENCY_BOUND: &str = r#"
name = "latency-bound"
seed = 1
max_lag = "10%"

[defaults]
connections = 10
threads = 1
mix = [{ weight = 1, method = "GET", path = "/delay/20" }]

[[phase]]
name = "steady"
kind = "steady"
rate = "100/s"
duration = "6s"
"#;

/// The same requests held 24 ms: a 20% slowdown of the server.
const SLOWER: &str = r#"defaults.mix=[{ weight = 1, method = "GET", path = "/delay/24" }]"#;

/// This test binary's directory for the runs.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("floodgate-compare-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("latency.toml"), LATENCY_BOUND).unwrap();
        d
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `floodgate run latency.toml --out DIR/NAME ARGS...` in a fresh network
/// namespace; its output and the report it wrote.
fn run(name: &str, args: &[&str]) -> (Output, ScenarioReport) {
    let out = dir().join(name);
    let (file, out_dir) = (dir().join("latency.toml"), out.clone());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = crate::util::in_fresh_netns(move || {
        floodgate()
            .env("RUST_LOG", "warn")
            .arg("run")
            .arg(file)
            .arg("--out")
            .arg(out_dir)
            .args(args)
            .output()
            .unwrap()
    });
    let bytes = std::fs::read(out.join("report.json"))
        .unwrap_or_else(|e| panic!("{name}: no report ({e}): {}", text(&output.stderr)));
    let report = scenario::read(&bytes).expect("the report reads back");
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    crate::schema::assert_valid("scenario.schema.json", &json);
    (output, report)
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// The three base runs, made once for every test here (each takes its
/// heavy turn first).
fn bases() -> &'static [PathBuf] {
    static BASES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    BASES.get_or_init(|| {
        (0..3)
            .map(|k| {
                let name = format!("base{k}");
                let (out, r) = run(&name, &[]);
                assert_eq!(code(&out), Some(0), "{}", text(&out.stdout));
                assert!(r.baseline.is_none());
                dir().join(name).join("report.json")
            })
            .collect()
    })
}

fn report_compare(files: &[&Path], args: &[&str]) -> Output {
    floodgate()
        .args(["report", "compare"])
        .args(files)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_identical_pair_and_two_runs_of_one_latency_bound_scenario_pass() {
    let _turn = crate::util::heavy_turn();
    let b = bases();
    let same = report_compare(&[&b[0], &b[0]], &[]);
    let stdout = text(&same.stdout);
    assert_eq!(code(&same), Some(0), "{stdout}{}", text(&same.stderr));
    for metric in ["latency.p50", "latency.p99", "rate.achieved", "errors"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(metric))
            .unwrap_or_else(|| panic!("no {metric} row: {stdout}"));
        assert!(line.contains("+0.0%"), "{line}");
        assert!(line.trim_end().ends_with("no"), "{line}");
    }
    assert!(stdout.contains("no regression against"), "{stdout}");
    // Two separate runs of the scenario: noise, not a regression.
    let two = report_compare(&[&b[0], &b[1]], &[]);
    assert_eq!(
        code(&two),
        Some(0),
        "{}{}",
        text(&two.stdout),
        text(&two.stderr)
    );
}

#[test]
fn a_20_percent_slowdown_exits_5_in_fail_mode_and_is_shown_in_warn_mode() {
    let _turn = crate::util::heavy_turn();
    let base = bases()[0].to_str().unwrap();
    let (out, r) = run("slower", &["--set", SLOWER, "--baseline", base]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), Some(5), "{stdout}{}", text(&out.stderr));
    let c = r.baseline.expect("the comparison is in the report");
    assert!(c.regression);
    let p50 = c.rows.iter().find(|r| r.metric == "latency.p50").unwrap();
    assert!(p50.regression, "{p50:?}");
    assert!(
        (0.15..0.25).contains(&p50.change),
        "a 20% slowdown, measured {p50:?}"
    );
    assert!(stdout.contains("REGRESSION against"), "{stdout}");
    assert!(
        stdout.contains("steady latency.p50: ")
            && stdout.contains("% slower, beyond the 5% tolerance"),
        "{stdout}"
    );
    // The same pair through `report compare`: 5, and 0 in warn mode with
    // the regression still shown.
    let slower = dir().join("slower/report.json");
    let fail = report_compare(&[Path::new(base), &slower], &[]);
    assert_eq!(code(&fail), Some(5), "{}", text(&fail.stdout));
    let warn = report_compare(&[Path::new(base), &slower], &["--baseline-mode", "warn"]);
    let stdout = text(&warn.stdout);
    assert_eq!(code(&warn), Some(0), "{stdout}");
    assert!(stdout.contains("REGRESSION"), "{stdout}");
    assert!(
        stdout.contains("--baseline-mode warn: reported, not failed"),
        "{stdout}"
    );
}

#[test]
fn a_run_inside_the_spread_of_three_base_runs_passes() {
    let _turn = crate::util::heavy_turn();
    let b = bases();
    let mut args = Vec::new();
    for base in b {
        args.extend(["--baseline", base.to_str().unwrap()]);
    }
    let (out, r) = run("again", &args);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), Some(0), "{stdout}{}", text(&out.stderr));
    let c = r.baseline.expect("the comparison is in the report");
    assert!(!c.regression, "{c:#?}");
    assert_eq!(c.base_files.len(), 3);
    // Every row shows the base runs' spread.
    assert!(!c.rows.is_empty());
    for row in &c.rows {
        let (min, max) = (row.base_min.unwrap(), row.base_max.unwrap());
        assert!(min <= row.base && row.base <= max, "{row:?}");
    }
    assert!(
        stdout.contains("no regression against 3 base runs"),
        "{stdout}"
    );
}

#[test]
fn runs_of_different_scenarios_are_refused_unless_forced() {
    let _turn = crate::util::heavy_turn();
    let base = &bases()[0];
    // The same scenario with one more comment line: another text, another
    // hash.
    let other = dir().join("other.toml");
    std::fs::write(&other, format!("# another scenario\n{LATENCY_BOUND}")).unwrap();
    let mut cmd = floodgate();
    cmd.arg("run")
        .arg(&other)
        .arg("--out")
        .arg(dir().join("other"))
        .arg("--baseline")
        .arg(base);
    let (code_, stderr) = exit_within(&mut cmd, Duration::from_secs(5));
    assert_eq!(code_, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--baseline {} is a run of scenario",
            base.display()
        )),
        "{stderr}"
    );
    assert!(
        !dir().join("other").exists(),
        "nothing starts: not even --out"
    );
    // A real run of it, then `report compare`: refused naming both
    // files and hashes, compared with --force.
    let (out, r) = crate::util::in_fresh_netns({
        let (other, out_dir) = (other.clone(), dir().join("other"));
        move || {
            let out = floodgate()
                .env("RUST_LOG", "warn")
                .arg("run")
                .arg(other)
                .arg("--out")
                .arg(&out_dir)
                .args(["--set", "phase.steady.duration=2s"])
                .output()
                .unwrap();
            let report = std::fs::read(out_dir.join("report.json")).unwrap();
            (out, scenario::read(&report).unwrap())
        }
    });
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let other_report = dir().join("other/report.json");
    let base_sha = scenario::read(&std::fs::read(base).unwrap())
        .unwrap()
        .scenario
        .sha256;
    let refused = report_compare(&[base, &other_report], &[]);
    let stderr = text(&refused.stderr);
    assert_eq!(code(&refused), Some(2), "{stderr}");
    for needle in [
        base.display().to_string(),
        base_sha,
        other_report.display().to_string(),
        r.scenario.sha256.clone(),
        "--force compares them anyway".into(),
    ] {
        assert!(stderr.contains(&needle), "{needle} not in {stderr}");
    }
    let forced = report_compare(&[base, &other_report], &["--force"]);
    let stdout = text(&forced.stdout);
    assert!(
        matches!(code(&forced), Some(0 | 5)),
        "{stdout}{}",
        text(&forced.stderr)
    );
    assert!(stdout.contains("note: compared with --force"), "{stdout}");
}

#[test]
fn a_bad_base_or_tolerance_exits_2_before_anything_starts() {
    let d = dir().join("bad");
    std::fs::create_dir_all(&d).unwrap();
    let garbage = d.join("garbage.json");
    std::fs::write(&garbage, "{\"schema\": \"floodgate.run/2\"}").unwrap();
    let missing = d.join("missing.json");
    let scenario_file = dir().join("latency.toml");
    let out = d.join("out");
    for (base, tolerance, says) in [
        (
            &missing,
            "5%",
            format!("--baseline cannot read {}", missing.display()),
        ),
        (
            &garbage,
            "5%",
            format!("--baseline {}: not a floodgate", garbage.display()),
        ),
        (&garbage, "5", "a bare number is a share".to_string()),
    ] {
        let mut cmd = floodgate();
        cmd.arg("run")
            .arg(&scenario_file)
            .arg("--out")
            .arg(&out)
            .arg("--baseline")
            .arg(base)
            .args(["--tolerance", tolerance]);
        // The run would take 6 s; refusing takes a moment.
        let (code, stderr) = exit_within(&mut cmd, Duration::from_secs(5));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&says), "{says:?} not in {stderr}");
        assert!(!out.exists(), "nothing starts: not even --out");
    }
    // `report compare` names the file it cannot read.
    let bad = report_compare(&[&garbage, &garbage], &[]);
    assert_eq!(code(&bad), Some(2));
    assert!(
        text(&bad.stderr).contains(&format!("{}: not a floodgate", garbage.display())),
        "{}",
        text(&bad.stderr)
    );
}
