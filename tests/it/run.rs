//! `floodgate run`: the shipped smoke scenario end to end, thresholds that
//! fail and name themselves, windows that catch a stall the whole phase
//! hides, find-capacity against a server of known capacity, a starved
//! generator (exit 4), Ctrl-C (exit 130 with a partial report), and
//! invalid scenarios refused before anything starts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use floodgate_reports::scenario::{self, CapacityReport, ScenarioReport, Status};

use crate::util::floodgate;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test's files.
pub(crate) fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("floodgate-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `floodgate run FILE --out DIR ARGS...` in a fresh network
/// namespace (so the kernel counters are this run's alone, whatever other
/// tests overflow meanwhile); the report, if written.
pub(crate) fn run(file: &Path, out: &Path, args: &[&str]) -> (Output, Option<ScenarioReport>) {
    let (file, out_dir) = (file.to_path_buf(), out.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = crate::util::in_fresh_netns(move || {
        floodgate()
            .arg("run")
            .arg(file)
            .arg("--out")
            .arg(out_dir)
            .args(args)
            .output()
            .unwrap()
    });
    let report = std::fs::read(out.join("report.json"))
        .ok()
        .filter(|b| !b.is_empty())
        .map(|b| scenario::read(&b).expect("the report reads back, every run in it checked"));
    (output, report)
}

/// The run's stdout, once it has exited with `code` (else both outputs).
pub(crate) fn exited(out: &Output, code: i32) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes a scenario file.
pub(crate) fn scenario_file(d: &Path, toml: &str) -> PathBuf {
    let f = d.join("scenario.toml");
    std::fs::write(&f, toml).unwrap();
    f
}

#[test]
fn the_smoke_scenario_runs_end_to_end_and_passes() {
    let _turn = crate::util::heavy_turn();
    let d = dir("smoke");
    let (out, report) = run(&root().join("scenarios/smoke.toml"), &d, &[]);
    let stdout = exited(&out, 0);
    let r = report.expect("report.json");
    assert_eq!(r.status, Status::Pass);
    let kinds: Vec<&str> = r.phases.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "steady",
            "ramp",
            "closed",
            "pause",
            "connect-storm",
            "hold",
            "malformed",
            "backlog-probe"
        ]
    );
    assert!(r.phases.iter().all(|p| !p.skipped));
    // The warm-up and the ramp run over the same eight connections: the
    // ramp opened none of its own.
    let connects = |name: &str| {
        r.phases
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .run
            .as_ref()
            .unwrap()
            .connects
    };
    assert_eq!(connects("warmup") + connects("ramp"), 8, "{stdout}");
    assert_eq!(connects("ramp"), 0);
    // The scenario's text and hash are recorded.
    let file = std::fs::read_to_string(root().join("scenarios/smoke.toml")).unwrap();
    assert_eq!(r.scenario.text, file);
    assert_eq!(r.scenario.sha256.len(), 64);
    // The summary names each threshold with its measured value.
    assert!(
        stdout.contains("[pass] latency.p99 < 100ms over 1s: measured"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS: every threshold held"), "{stdout}");
    assert_series(&r);
    assert_samples_held_once(&r);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    crate::schema::assert_valid("scenario.schema.json", &json);
    // Beside it, every report file, each listed as it is written.
    for name in floodgate_render::FILES {
        let path = d.join(name);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "{} is missing or empty",
            path.display()
        );
        assert!(
            stdout.contains(&format!("wrote {}", path.display())),
            "{stdout}"
        );
    }
}

/// The 20 Hz accept-queue samples and the counter ticks are held once, by
/// the whole run's evidence: each load phase keeps its share's figures,
/// and its slice, read from that timeline by wall-clock time, has the
/// samples of its seconds (20 Hz, at least half of them kept).
fn assert_samples_held_once(r: &ScenarioReport) {
    let whole = r.evidence.as_ref().expect("the whole run's evidence");
    for p in &r.phases {
        let Some(run) = &p.run else { continue };
        let name = &p.name;
        let share = run.evidence.as_ref().expect("the phase's share");
        assert!(share.samples.is_empty(), "{name}: samples held twice");
        assert!(share.counter_ticks.is_empty(), "{name}: ticks held twice");
        assert_eq!(share.backlog, Some(128), "{name}");
        let slice = r.samples_of(run);
        // Half of 20 Hz, in whole samples: a phase shorter than 100 ms (a
        // closed loop finishing its 2,000 requests fast) may hold none.
        assert!(
            slice.len() as f64 >= (run.elapsed_s * 10.0).floor(),
            "{name}: {} samples over {:.1}s",
            slice.len(),
            run.elapsed_s
        );
    }
    assert!(!whole.samples.is_empty() && whole.samples_dropped == 0);
}

/// The smoke run's time series: every phase's intervals account for its
/// books; the open-loop phases offered their rate second by second (the
/// ramp's mean rate over each second); each interval's answered load is
/// its complete responses; the reference server listens here, so each
/// second of a load phase has accept-queue samples against the configured
/// backlog and the kernel's counter deltas.
fn assert_series(r: &ScenarioReport) {
    use floodgate_reports::Outcome;
    for p in &r.phases {
        let Some(run) = &p.run else { continue };
        let name = &p.name;
        assert!(!run.intervals.is_empty(), "{name}: no intervals");
        let offered: u64 = run.intervals.iter().map(|i| i.offered).sum();
        let ended: u64 = run.intervals.iter().map(|i| i.ok + i.errors).sum();
        assert_eq!(offered, run.scheduled, "{name}: offered");
        assert_eq!(ended, run.outcomes_total(), "{name}: outcomes");
        for (k, i) in run.intervals.iter().enumerate() {
            let n = |o: Outcome| i.outcomes.get(&o).copied().unwrap_or(0);
            assert_eq!(
                i.outcomes.values().sum::<u64>(),
                i.ok + i.errors,
                "{name}[{k}]"
            );
            assert_eq!(i.ok, n(Outcome::Ok), "{name}[{k}]");
            if run.plan.mode == floodgate_reports::run::Mode::Requests {
                let statuses = [
                    Outcome::Ok,
                    Outcome::Http1xx,
                    Outcome::Http3xx,
                    Outcome::Http4xx,
                    Outcome::Http5xx,
                ];
                let answered: u64 = statuses.iter().map(|o| n(*o)).sum();
                assert_eq!(i.answered, answered, "{name}[{k}]: {i:?}");
            }
            if i.duration_s >= 0.5 {
                let q = i
                    .accept_queue
                    .unwrap_or_else(|| panic!("{name}[{k}]: no accept-queue samples"));
                assert_eq!(q.backlog, 128, "{name}[{k}]");
                assert!(q.samples >= 5, "{name}[{k}]: {q:?} at 20 Hz");
                assert!(i.kernel.is_some(), "{name}[{k}]: no kernel deltas");
            }
        }
    }
    let offered = |name: &str| -> Vec<u64> {
        let p = r.phases.iter().find(|p| p.name == name).unwrap();
        p.run
            .as_ref()
            .unwrap()
            .intervals
            .iter()
            .map(|i| i.offered)
            .collect()
    };
    let near = |got: Vec<u64>, want: &[u64]| {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.abs_diff(*w) <= 2, "{got:?} vs {want:?}");
        }
    };
    near(offered("warmup"), &[100, 100]);
    near(offered("ramp"), &[150, 250, 350, 450]);
    // The storm connects at 200/s.
    near(offered("storm"), &[200, 200]);
}

#[test]
fn a_threshold_that_cannot_hold_fails_the_run_and_names_itself() {
    let _turn = crate::util::heavy_turn();
    let d = dir("cannot-hold");
    let f = scenario_file(
        &d,
        r#"
name = "cannot-hold"
[defaults]
connections = 2
threads = 1
[[phase]]
name = "steady"
kind = "steady"
rate = "100/s"
duration = "1s"
thresholds = ["latency.p99 < 1us", "errors < 1%"]
"#,
    );
    let (out, report) = run(&f, &d, &[]);
    let stdout = exited(&out, 1);
    assert!(
        stdout.contains("[FAIL] latency.p99 < 1us: measured"),
        "{stdout}"
    );
    assert!(stdout.contains("[pass] errors < 1%"), "{stdout}");
    assert!(
        stdout.contains("phase \"steady\": `latency.p99 < 1us` failed, measured"),
        "{stdout}"
    );
    assert_eq!(report.unwrap().status, Status::Fail);
    // junit.xml fails exactly there, with the measured value.
    let xml = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).expect("junit.xml parses");
    let cases: Vec<_> = junit
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .map(|c| {
            let failed = match &c.status {
                quick_junit::TestCaseStatus::NonSuccess { message, .. } => {
                    message.as_ref().map(|m| m.to_string())
                }
                _ => None,
            };
            (c.name.to_string(), failed)
        })
        .collect();
    assert_eq!(cases.len(), 2, "{xml}");
    assert_eq!(cases[1], ("errors < 1%".to_string(), None), "{xml}");
    assert_eq!(cases[0].0, "latency.p99 < 1us");
    let message = cases[0].1.as_deref().expect("the latency case failed");
    assert!(
        message.starts_with("latency.p99 < 1us: measured "),
        "{message}"
    );
}

/// A keep-alive HTTP server on loopback that answers every request at once,
/// except that requests arriving in `[stall_at, stall_at + stall)` after
/// its first request are held until the stall ends.
fn stalling_server(stall_at: Duration, stall: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let first = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let first = first.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                let mut line = String::new();
                loop {
                    // One request head: lines up to the blank one.
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line != "\r\n" {
                        continue;
                    }
                    let t0 = *first.get_or_init(Instant::now);
                    let end = t0 + stall_at + stall;
                    let now = Instant::now();
                    if now >= t0 + stall_at && now < end {
                        // The stall this server exists to make.
                        std::thread::sleep(end - now);
                    }
                    if conn
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn windows_catch_a_stall_that_the_whole_phase_percentile_hides() {
    let _turn = crate::util::heavy_turn();
    let d = dir("stall");
    let (out, report) = crate::util::in_fresh_netns(move || {
        let addr = stalling_server(Duration::from_secs(4), Duration::from_secs(2));
        run_stall(&d, addr)
    });
    let stdout = exited(&out, 1);
    let r = report.unwrap();
    let t = &r.phases[0].thresholds;
    // A fifth of the requests waited: the whole phase's median does not
    // show it, the windows around the stall do.
    assert_eq!(t[0].status, scenario::Judged::Pass, "{stdout}");
    assert_eq!(t[1].status, scenario::Judged::Fail, "{stdout}");
    let w = t[1].failed_window.expect("the failing window");
    assert!((3.0..=5.0).contains(&w.start_s), "{w:?}");
}

#[test]
fn abort_on_fail_stops_the_run_at_the_failed_window_and_writes_the_report() {
    let _turn = crate::util::heavy_turn();
    let d = dir("abort");
    let (out, report) = crate::util::in_fresh_netns(move || {
        let addr = stalling_server(Duration::from_secs(3), Duration::from_secs(2));
        let extra = "abort_on_fail = true\n[[phase]]\nname = \"after\"\nkind = \"pause\"\nduration = \"1s\"\n";
        run_stall_with(&d, addr, "30s", extra)
    });
    let stdout = exited(&out, 1);
    let r = report.unwrap();
    assert!(r.partial);
    let run = r.phases[0].run.as_ref().unwrap();
    // The stall ends 5 s in; its windows are judged once their requests
    // had their 3 s read timeout: well before the phase's 30 s.
    assert!(
        run.partial && run.elapsed_s < 20.0,
        "ran {} s: {stdout}",
        run.elapsed_s
    );
    assert_eq!(r.phases[0].thresholds[1].status, scenario::Judged::Fail);
    assert!(r.phases[1].skipped, "{stdout}");
    assert!(
        r.reasons.iter().any(|w| w.contains("abort_on_fail")),
        "{:?}",
        r.reasons
    );
}

/// The stall scenario against `addr`, run from this thread's namespace.
fn run_stall(d: &Path, addr: std::net::SocketAddr) -> (Output, Option<ScenarioReport>) {
    run_stall_with(d, addr, "10s", "")
}

/// The stall scenario, its phase `duration` long, with `extra` TOML after
/// the phase's keys.
fn run_stall_with(
    d: &Path,
    addr: std::net::SocketAddr,
    duration: &str,
    extra: &str,
) -> (Output, Option<ScenarioReport>) {
    let f = scenario_file(
        d,
        &format!(
            r#"
name = "stall"
target = "http://{addr}/"
[defaults]
connections = 4
threads = 1
read_timeout = "3s"
[[phase]]
name = "steady"
kind = "steady"
rate = "100/s"
duration = "{duration}"
thresholds = ["latency.p50 < 100ms", "latency.p50 < 100ms over 2s"]
{extra}"#
        ),
    );
    let output = floodgate()
        .arg("run")
        .arg(&f)
        .arg("--out")
        .arg(d)
        .output()
        .unwrap();
    let report = std::fs::read(d.join("report.json"))
        .ok()
        .map(|b| scenario::read(&b).expect("the report reads back"));
    (output, report)
}

#[test]
fn find_capacity_finds_the_knee_of_a_server_of_known_capacity() {
    let _turn = crate::util::heavy_turn();
    // Fifty connections, each request held 50 ms by the server: at most
    // 1,000 requests a second. (With 10 ms, the server's own per-request
    // cost on a loaded 2-core runner, about 1.5 ms, moved the knee 15%.)
    let d = dir("capacity");
    let f = scenario_file(
        &d,
        r#"
name = "knee"
# The test is about the knee, not the generator: on a runner shared with
# builds, 1.5% of sends were once 25 ms late at 500/s.
max_lag = "5%"
[defaults]
connections = 50
threads = 1
read_timeout = "5s"
mix = [ { weight = 1, method = "GET", path = "/delay/50" } ]
[[phase]]
name = "capacity"
kind = "find-capacity"
start = "250/s"
max = "4k/s"
step = "2s"
settle = "1s"
cooldown = "500ms"
precision = "5%"
max_steps = 20
slo = ["latency.p99 < 100ms"]
thresholds = ["capacity >= 1/s"]
"#,
    );
    let c = assert_capacity(&f, &d, 1000.0, "latency.p99");
    // The fit describes the passing steps: R² over 0.9, and each one's rate
    // predicted from its concurrency (N = X·R) within 20%. Far below the
    // knee each unit of concurrency serves one request per 50 ms, 20/s; the
    // steps near the knee queue (N past the 50 connections) and bend the
    // curve, which moved λ to 23/s in runs, so λ is held to 20/s within 30%.
    let usl = c.usl.expect("a USL report");
    let passing: Vec<_> = c.steps.iter().filter(|s| s.verdict == "pass").collect();
    assert_eq!(usl.points as usize, passing.len(), "{usl:?}");
    if passing.len() >= floodgate_runner::usl::MIN_POINTS {
        let fit = usl.fit.expect("a fit of enough points");
        assert!(
            (14.0..=26.0).contains(&fit.lambda_per_s) && fit.r_squared > 0.9,
            "{fit:?}"
        );
        for s in passing {
            let x = s.run.achieved_rate_per_s;
            let n = x * s.run.latency_us.mean / 1e6;
            let predicted = floodgate_runner::usl::throughput(&fit, n);
            assert!(
                (predicted - x).abs() <= x * 0.2,
                "at N = {n:.1} the fit predicts {predicted:.0}/s, measured {x:.0}/s: {fit:?}"
            );
        }
    } else {
        assert!(usl.note.is_some_and(|n| n.contains("needs at least 6")));
    }
}

#[test]
fn a_connect_storm_find_capacity_finds_the_accept_rate() {
    let _turn = crate::util::heavy_turn();
    // A server that accepts one connection per 10 ms behind a backlog of
    // 8: about 100 connects a second before its accept queue overflows.
    let d = dir("accept-capacity");
    let f = scenario_file(
        &d,
        r#"
name = "accept-capacity"
[server]
backlog = 8
accept_delay = "10ms"
[defaults]
connections = 32
threads = 1
connect_timeout = "3s"
[[phase]]
name = "capacity"
kind = "find-capacity"
mode = "connect"
start = "25/s"
max = "800/s"
step = "2s"
settle = "1s"
cooldown = "1s"
precision = "5%"
max_steps = 20
slo = ["listen_overflows == 0"]
"#,
    );
    assert_capacity(&f, &d, 100.0, "accept queue overflowed");
}

/// Runs the find-capacity scenario `f`: it passes, its capacity is within
/// 15% of `known`, and its first failing step failed for `why`.
fn assert_capacity(f: &Path, d: &Path, known: f64, why: &str) -> CapacityReport {
    let (out, report) = run(f, d, &[]);
    let stdout = exited(&out, 0);
    let c = report.unwrap().phases[0].capacity.clone().unwrap();
    let capacity = c.finding.capacity_per_s.expect("a confirmed capacity");
    assert!(
        (known * 0.85..=known * 1.15).contains(&capacity),
        "capacity {capacity}/s, not within 15% of {known}/s: {stdout}"
    );
    assert!(
        c.finding
            .first_fail_why
            .as_ref()
            .is_some_and(|w| w.contains(why)),
        "{stdout}"
    );
    c
}

#[test]
fn a_slow_accepting_server_fails_on_its_overflows_and_the_summary_says_why() {
    let _turn = crate::util::heavy_turn();
    let d = dir("overflow");
    let (out, report) = run(&root().join("scenarios/backlog-overflow.toml"), &d, &[]);
    let stdout = exited(&out, 1);
    assert!(
        stdout.contains("the whole run: `listen_overflows == 0` failed, measured"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: accept queue overflowed"),
        "{stdout}"
    );
    assert_eq!(report.unwrap().status, Status::Fail);
}

#[test]
fn slowloris_holds_only_against_a_server_without_a_header_deadline() {
    let _turn = crate::util::heavy_turn();
    let f = root().join("scenarios/slowloris.toml");
    // The reference server closes every trickling connection at its 1 s
    // header timeout.
    let d = dir("slowloris");
    let (out, report) = run(&f, &d, &[]);
    let stdout = exited(&out, 0);
    let hold = report.unwrap().phases[0].run.clone().unwrap();
    assert_eq!(hold.scheduled, 256);
    assert_eq!(
        hold.outcomes[&floodgate_reports::Outcome::Ok],
        0,
        "{stdout}"
    );
    // With a deadline past the phase, every one is still held at the end.
    let (out, _) = run(&f, &d, &["--set", "server.header_timeout=30s"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[FAIL] outcome.ok == 0: measured 256"),
        "{stdout}"
    );
}

#[test]
fn a_starved_generator_is_inconclusive_not_a_failure() {
    let _turn = crate::util::heavy_turn();
    let d = dir("starved");
    let f = scenario_file(
        &d,
        r#"
name = "starved"
[defaults]
# One thread asked for a million requests a second over many connections.
connections = 1000
threads = 1
[[phase]]
name = "flood"
kind = "steady"
rate = "1M/s"
duration = "1s"
thresholds = ["latency.p99 < 1us"]
"#,
    );
    let (out, report) = run(&f, &d, &[]);
    let stdout = exited(&out, 4);
    assert!(stdout.contains("could not hold the schedule"), "{stdout}");
    assert_eq!(report.unwrap().status, Status::Inconclusive);
}

#[test]
fn ctrl_c_mid_phase_exits_130_with_a_partial_report() {
    let _turn = crate::util::heavy_turn();
    let d = dir("interrupt");
    let f = scenario_file(
        &d,
        r#"
name = "long"
[defaults]
connections = 2
threads = 1
[[phase]]
name = "long"
kind = "steady"
rate = "100/s"
duration = "60s"
[[phase]]
name = "after"
kind = "pause"
duration = "1s"
"#,
    );
    let (f2, d2) = (f.clone(), d.clone());
    let mut child = crate::util::in_fresh_netns(move || {
        floodgate()
            .arg("run")
            .arg(&f2)
            .arg("--out")
            .arg(&d2)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    // The first progress line says the phase is sending.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !line.contains("phase=\"long\"") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "stderr ended");
        assert!(Instant::now() < deadline, "no progress line");
    }
    // SAFETY: kill(2) on the child this test started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let r = scenario::read(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(r.status, Status::Interrupted);
    assert!(r.partial);
    let run = r.phases[0].run.as_ref().expect("the phase that ran");
    assert!(run.partial && run.scheduled > 0, "{run:?}");
    assert_eq!(run.outcomes_total(), run.scheduled);
    assert!(r.phases[1].skipped);
}

#[test]
fn an_invalid_scenario_is_refused_before_anything_starts() {
    let _turn = crate::util::heavy_turn();
    let d = dir("invalid");
    let f = scenario_file(
        &d,
        "name = \"x\"\n[[phase]]\nname = \"a\"\nkind = \"steady\"\nrate = \"fast\"\nduration = \"1s\"\n",
    );
    let (out, report) = run(&f, &d, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("scenario.toml:5:8: phase[0].rate"),
        "{stderr}"
    );
    assert!(report.is_none(), "nothing ran, nothing was written");
    // --set is validated the same way.
    let f = root().join("scenarios/smoke.toml");
    let (out, _) = run(&f, &d, &["--set", "phase.ramp.to=quick"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("phase[1].to"),
        "{}",
        text(&out.stderr)
    );
    // An --out that cannot be written: exit 2, nothing started.
    let (out, _) = run(&f, Path::new("/proc/floodgate-cannot-write"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot write --out"));
}
