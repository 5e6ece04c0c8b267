//! End-to-end tests of `floodgate load`: the no-target main path with its
//! JSON result checked against the committed schema, a `floodgate serve`
//! child as target (`/delay/20`, `--verify`), bad flags, an unreachable
//! target, Ctrl-C, and `--malformed` against the reference server and
//! against a lax server that accepts what it should refuse.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{ServeProcess, floodgate};

/// A fresh path for an `--out` file in the test's temp directory.
fn out_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floodgate-load-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir.join(name)
}

fn load(args: &[&str]) -> Output {
    let mut cmd: Command = floodgate();
    cmd.arg("load").args(args).env("RUST_LOG", "warn");
    cmd.output().expect("run floodgate load")
}

/// `floodgate load ARGS` exits 2 with `needle` in its message.
fn usage_error(args: &[&str], needle: &str) {
    let o = load(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

/// Reads a `--out` file, and checks it reads back through the checking
/// reader into the run model without losing a field: every result a test
/// looks at round-trips, whatever its mode and sections.
fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read --out file");
    let value: Value = serde_json::from_str(&text).expect("--out is JSON");
    let run = floodgate_reports::read(text.as_bytes())
        .unwrap_or_else(|e| panic!("{} does not read back: {e}", path.display()));
    assert_eq!(
        serde_json::to_value(&run).unwrap(),
        value,
        "{} lost something in the run model",
        path.display()
    );
    value
}

/// Checks the books balance and returns the outcomes object.
fn balanced(result: &Value) -> &serde_json::Map<String, Value> {
    let outcomes = result["outcomes"].as_object().expect("outcomes object");
    let sum: u64 = outcomes.values().map(|v| v.as_u64().expect("count")).sum();
    assert_eq!(
        Some(sum),
        result["scheduled"].as_u64(),
        "scheduled == sum of outcomes: {outcomes:?}"
    );
    outcomes
}

#[test]
fn load_without_target_writes_a_balanced_result_that_matches_the_schema() {
    let out = out_path("no-target.json");
    let o = load(&[
        "--requests",
        "200",
        "--connections",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("seed"),
        "the summary prints the seed: {stdout}"
    );
    let r = read_json(&out);
    crate::schema::assert_valid("result.schema.json", &r);
    let outcomes = balanced(&r);
    assert_eq!(r["scheduled"], 200);
    assert_eq!(outcomes["ok"], 200, "{outcomes:?}");
    assert_eq!(r["partial"], false);
    for field in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            r["latency_us"][field].as_u64().is_some_and(|v| v > 0),
            "latency_us.{field}"
        );
    }
    assert!(r["achieved_rate_per_s"].as_f64().is_some_and(|v| v > 0.0));
    assert!(r["seed"].is_u64());

    // What reports and merges will read: the file reads back through the
    // checking reader into the run model without losing a field, and the
    // model writes the same document again.
    let back = floodgate_reports::read(&std::fs::read(&out).unwrap())
        .unwrap_or_else(|e| panic!("the result does not read back: {e}"));
    assert_eq!(serde_json::to_value(&back).unwrap(), r);
    let mut again = Vec::new();
    back.write_json(&mut again).unwrap();
    assert_eq!(floodgate_reports::read(&again).unwrap(), back);
    assert_eq!(back.histograms.decode().unwrap().response_time.len(), 200);
}

#[test]
fn delay_20ms_measures_p50_within_1ms_of_20ms() {
    let _turn = crate::util::heavy_turn();
    let server = ServeProcess::start(&[]);
    let out = out_path("delay.json");
    let target = format!("http://{}/delay/20", server.addr());
    // Up to three runs: on a shared 2-core machine other tests can starve
    // the server's timer for a whole run, and that lateness is the
    // server's, not the generator's. A generator that mismeasures fails
    // every run.
    let mut p50s = Vec::new();
    for _ in 0..3 {
        let o = load(&[
            // Late sends are kept (not generator_lagged) for the same reason.
            "--lag-threshold",
            "1s",
            "--target",
            &target,
            "--rate",
            "40",
            "--connections",
            "4",
            "--requests",
            "60",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = read_json(&out);
        let outcomes = balanced(&r);
        assert_eq!(outcomes["ok"], 60, "{outcomes:?}");
        let p50 = r["latency_us"]["p50"].as_i64().unwrap();
        if (p50 - 20_000).abs() <= 1_000 {
            return;
        }
        p50s.push(p50);
    }
    panic!("p50 not within 1 ms of 20 ms in any run: {p50s:?} µs");
}

/// Closed loop: each request is due when the last one on its connection
/// ended, so against `/delay/20` its response time is the 20 ms of its own
/// answer, not that plus its predecessor's, and the service time (from the
/// actual send) agrees with it.
#[test]
fn closed_loop_measures_each_request_from_when_the_last_one_ended() {
    let _turn = crate::util::heavy_turn();
    let server = ServeProcess::start(&[]);
    let out = out_path("closed-delay.json");
    let target = format!("http://{}/delay/20", server.addr());
    // Up to three runs, as in the open-loop test above: a starved server
    // timer is the server's lateness; a mismeasuring generator fails every
    // run.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let o = load(&[
            "--target",
            &target,
            "--closed",
            "--connections",
            "2",
            "--requests",
            "40",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = read_json(&out);
        let outcomes = balanced(&r);
        assert_eq!(outcomes["ok"], 40, "{outcomes:?}");
        let response = r["latency_us"]["p50"].as_i64().unwrap();
        let service = r["service_time_us"]["p50"].as_i64().unwrap();
        assert_eq!(r["service_time_us"]["count"], 40);
        if (response - 20_000).abs() <= 1_000 && (response - service).abs() <= 100 {
            return;
        }
        seen.push((response, service));
    }
    panic!("response/service p50 not both within 1 ms of 20 ms in any run: {seen:?} µs");
}

#[test]
fn verify_passes_against_the_reference_server() {
    let server = ServeProcess::start(&[]);
    let out = out_path("verify.json");
    let target = format!("http://{}/", server.addr());
    let o = load(&[
        "--target",
        &target,
        "--mix",
        "1 POST /echo 3000, 1 GET /bytes/70000, 1 GET /",
        "--verify",
        "--requests",
        "90",
        "--connections",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = read_json(&out);
    let outcomes = balanced(&r);
    assert_eq!(outcomes["ok"], 90, "{outcomes:?}");
}

/// The same --seed gives the same request mix (and, in open loop, the same
/// intended times; the library's schedule tests compare those directly).
#[test]
fn same_seed_same_request_mix() {
    let server = ServeProcess::start(&[]);
    let target = format!("http://{}/", server.addr());
    let mix = |seed: &str, name: &str| {
        let out = out_path(name);
        let o = load(&[
            "--target",
            &target,
            "--seed",
            seed,
            "--mix",
            "1 GET /, 1 GET /health, 2 GET /bytes/10",
            "--requests",
            "300",
            "--connections",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = read_json(&out);
        assert_eq!(
            r["seed"],
            seed.parse::<u64>().unwrap(),
            "the seed is in the result"
        );
        let counts: Vec<u64> = r["plan"]["requests_mix"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["scheduled"].as_u64().unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 300);
        counts
    };
    let first = mix("7", "seed-a.json");
    assert!(first.iter().all(|n| *n > 0), "every kind drawn: {first:?}");
    assert_eq!(first, mix("7", "seed-b.json"));
}

/// A --mix-file holds one entry per line; a bad entry is named by the
/// file and its number.
#[test]
fn a_mix_file_has_one_entry_per_line() {
    let mix = out_path("mix.txt");
    std::fs::write(&mix, "3 GET /\n\n1 POST /echo 16\n").unwrap();
    let out = out_path("mix-file.json");
    let o = load(&[
        "--mix-file",
        mix.to_str().unwrap(),
        "--requests",
        "40",
        "--connections",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = read_json(&out);
    let kinds: Vec<&str> = r["plan"]["requests_mix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["request"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["GET /", "POST /echo (16 body bytes)"]);
    assert_eq!(balanced(&r)["ok"], 40);

    std::fs::write(&mix, "3 GET /\n1 POST echo\n").unwrap();
    let file = mix.display().to_string();
    usage_error(
        &["--mix-file", &file],
        &format!("--mix-file {file} entry 2 PATH \"echo\": must start with /"),
    );
}

#[test]
fn unreachable_target_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("http://{addr}/");
    let o = load(&["--target", &target, "--requests", "10"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "could not run: {stderr}");
    assert!(
        stderr.contains("cannot connect to --target") && stderr.contains(&addr.to_string()),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_writes_a_partial_result_and_exits_130() {
    let server = ServeProcess::start(&[]);
    let out = out_path("ctrl-c.json");
    let target = format!("http://{}/", server.addr());
    let mut child = floodgate()
        .args([
            "load",
            "--target",
            &target,
            "--rate",
            "200",
            "--duration",
            "60s",
            "--out",
        ])
        .arg(&out)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start floodgate load");
    // Waits for the first progress line: requests are flowing.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = lines
            .next()
            .expect("load exited early")
            .expect("read stderr");
        if line.contains("progress") {
            break;
        }
        assert!(Instant::now() < deadline, "no progress line");
    }
    // Keeps draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    // SAFETY: kill(2) on the PID of the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "load did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let r = read_json(&out);
    crate::schema::assert_valid("result.schema.json", &r);
    assert_eq!(r["partial"], true);
    let outcomes = balanced(&r);
    assert!(outcomes["ok"].as_u64().unwrap() > 0);
    assert!(r["elapsed_s"].as_f64().unwrap() < 30.0);
}

/// `floodgate load` in connect mode at 200 connects/s against a reference
/// server that accepts 50/s (`--accept-delay 20`), inside a fresh network
/// namespace so the kernel counters in the result belong to this test.
fn connect_storm_against_slow_accept(backlog: &'static str, name: &'static str) -> Value {
    crate::util::in_fresh_netns(move || {
        let server = ServeProcess::start(&["--backlog", backlog, "--accept-delay", "20"]);
        let out = out_path(name);
        let target = format!("http://{}/", server.addr());
        let run = load(&[
            "--target",
            &target,
            "--mode",
            "connect",
            "--rate",
            "200",
            "--duration",
            "800ms",
            "--connect-timeout",
            "500ms",
            // On a busy machine a late send is not what this test is about.
            "--lag-threshold",
            "1s",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "load failed: {run:?}");
        let r = read_json(&out);
        // With kernel evidence, samples and, on overflow, a verdict's notes.
        crate::schema::assert_valid("result.schema.json", &r);
        r
    })
}

#[test]
fn load_result_carries_an_overflow_verdict_with_kernel_evidence() {
    let r = connect_storm_against_slow_accept("8", "overflow.json");
    balanced(&r);
    let verdict = &r["verdict"];
    assert_eq!(verdict["diagnosis"], "accept_queue_overflow", "{verdict}");
    let evidence = &r["evidence"];
    assert!(
        evidence["counters"]["listen_overflows"].as_u64().unwrap() > 0,
        "{evidence}"
    );
    assert_eq!(evidence["backlog"], 8);
    assert_eq!(
        evidence["max_queue_depth"], 9,
        "accept queue holds backlog + 1"
    );
    assert!(!evidence["samples"].as_array().unwrap().is_empty());
    assert!(r["outcomes"]["connect_timeout"].as_u64().unwrap() > 0);
    assert!(
        verdict["summary"]
            .as_str()
            .unwrap()
            .contains("ListenOverflows +")
    );
}

#[test]
fn the_same_storm_against_an_adequate_backlog_gets_no_overflow() {
    let r = connect_storm_against_slow_accept("1024", "adequate.json");
    balanced(&r);
    assert_eq!(r["verdict"]["diagnosis"], "no_overflow", "{}", r["verdict"]);
    assert_eq!(r["evidence"]["counters"]["listen_overflows"], 0);
    assert_eq!(r["outcomes"]["connect_timeout"], 0);
    assert_eq!(r["outcomes"]["ok"], r["scheduled"], "{}", r["outcomes"]);
}

/// Runs `floodgate load --malformed 0.1` against `target` and returns the
/// result, checked against the schema with both books balanced.
fn malformed_run(target: &str, requests: &str, name: &str, save: Option<&Path>) -> Value {
    let out = out_path(name);
    let mut args = vec![
        "--target",
        target,
        "--malformed",
        "0.1",
        "--requests",
        requests,
        "--connections",
        "8",
        "--seed",
        "5",
        "--read-timeout",
        "5s",
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(dir) = save {
        args.extend(["--malformed-save", dir.to_str().unwrap()]);
    }
    let o = load(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("malformed traffic"), "{stdout}");
    let r = read_json(&out);
    crate::schema::assert_valid("result.schema.json", &r);
    balanced(&r);
    let m = &r["malformed"];
    let sum: u64 = m["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(Some(sum), m["scheduled"].as_u64(), "malformed books: {m}");
    // Valid and malformed together are the requests asked for.
    assert_eq!(
        r["scheduled"].as_u64().unwrap() + sum,
        requests.parse::<u64>().unwrap()
    );
    r
}

#[test]
fn malformed_traffic_leaves_the_reference_server_up_and_valid_load_succeeding() {
    let server = ServeProcess::start(&[]);
    let before = crate::util::http::stats(server.addr());
    let target = format!("http://{}/", server.addr());
    let r = malformed_run(&target, "2000", "malformed.json", None);
    let m = &r["malformed"];
    let count = |k: &str| m["outcomes"][k].as_u64().unwrap();
    // About a tenth of 2000, from the seeded draw.
    let sent = m["scheduled"].as_u64().unwrap();
    assert!((120..=280).contains(&sent), "{m}");
    // Every malformed input was refused: answered 4xx/5xx or closed.
    assert_eq!(
        count("answered_error") + count("closed_without_answer"),
        sent,
        "{m}"
    );
    assert_eq!(m["unexpected"], 0, "{m}");
    assert!(count("answered_error") > 0 && count("closed_without_answer") > 0);
    // Both sources were used.
    assert!(m["by_source"]["known"].as_u64().unwrap() > 0, "{m}");
    assert!(m["by_source"]["byte_flip"].as_u64().unwrap() > 0, "{m}");
    // The valid load kept succeeding and no reply crossed connections.
    assert!(m["valid_success_rate"].as_f64().unwrap() >= 0.999, "{m}");
    assert_eq!(m["valid_lost"], 0, "{m}");
    assert!(m["echo_checks"].as_u64().unwrap() > 50, "{m}");
    assert_eq!(m["echo_mismatches"], 0, "{m}");
    assert_eq!(r["outcomes"]["verify_mismatch"], 0);
    // The server saw them as protocol errors (each input makes the
    // reference count at least one) and still answers.
    let after = crate::util::http::stats(server.addr());
    let grew =
        after["protocol_errors"].as_u64().unwrap() - before["protocol_errors"].as_u64().unwrap();
    assert!(
        grew >= sent,
        "protocol_errors grew by {grew} for {sent} inputs"
    );
    let health = crate::util::http::get(server.addr(), "/health");
    assert_eq!(health.status, 200);
}

/// A lax server that answers every head with 200 and echoes a body of the
/// Content-Length it can make out, however malformed the request: what
/// malformed traffic is meant to catch. One thread per connection, each
/// ending at EOF or after a 5 s read timeout.
fn lax_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk) {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0)
                        .min(1 << 16);
                    while buf.len() < end + 4 + len {
                        match s.read(&mut chunk) {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
                    let mut reply =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .into_bytes();
                    reply.extend_from_slice(&body);
                    if s.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn malformed_inputs_a_lax_server_accepts_are_unexpected_and_saved_for_replay() {
    let addr = lax_server();
    let target = format!("http://{addr}/");
    let dir = out_path("malformed-save");
    let _ = std::fs::remove_dir_all(&dir);
    let r = malformed_run(&target, "400", "malformed-lax.json", Some(&dir));
    let m = &r["malformed"];
    assert!(
        m["outcomes"]["answered_success"].as_u64().unwrap() > 0,
        "{m}"
    );
    let unexpected = m["unexpected"].as_u64().unwrap();
    assert!(unexpected > 0, "{m}");
    // Echoes still match: the lax server does not cross connections.
    assert_eq!(m["echo_mismatches"], 0, "{m}");
    let coinciding = m["coinciding"].as_u64().unwrap();
    assert!(coinciding >= unexpected, "{m}");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("--malformed-save directory was created")
        .map(|e| e.unwrap().path())
        .collect();
    // Named by hash, so equal inputs share a file.
    assert!(
        !files.is_empty() && files.len() as u64 <= coinciding,
        "{files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        // The http_connection harness layout: config (half-close at the
        // end), no script, then the input, which the reference refuses.
        assert_eq!(&bytes[..2], &[4, 0], "{}", f.display());
        assert!(
            floodgate_loadgen::malformed::is_malformed(&bytes[2..]),
            "{}",
            f.display()
        );
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, floodgate_loadgen::malformed::file_name(&bytes));
    }
}

#[test]
fn malformed_inputs_to_a_server_that_never_answers_hang_and_are_saved() {
    // Accepts and holds every connection, reading nothing and closing
    // nothing, until the test process ends.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let target = format!("http://{addr}/");
    let dir = out_path("malformed-save-hung");
    let _ = std::fs::remove_dir_all(&dir);
    let out = out_path("malformed-hung.json");
    let o = load(&[
        "--target",
        &target,
        "--malformed",
        "0.5",
        "--seed",
        "3",
        "--requests",
        "16",
        "--connections",
        "4",
        "--read-timeout",
        "300ms",
        "--out",
        out.to_str().unwrap(),
        "--malformed-save",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = read_json(&out);
    balanced(&r);
    let m = &r["malformed"];
    let hung = m["outcomes"]["hung"].as_u64().unwrap();
    assert!(hung > 0, "{m}");
    assert_eq!(m["unexpected"].as_u64().unwrap(), hung, "{m}");
    assert_eq!(m["valid_success_rate"], 0.0, "{m}");
    assert_eq!(
        m["valid_lost"].as_u64().unwrap(),
        r["scheduled"].as_u64().unwrap(),
        "{m}"
    );
    let saved = std::fs::read_dir(&dir).expect("inputs were saved").count();
    assert!(saved > 0);
}

#[test]
fn the_same_seed_sends_the_same_malformed_inputs() {
    let server = ServeProcess::start(&[]);
    let target = format!("http://{}/", server.addr());
    let draw = |name: &str| {
        let r = malformed_run(&target, "600", name, None);
        (
            r["malformed"]["scheduled"].clone(),
            r["malformed"]["by_source"].clone(),
            r["plan"]["requests_mix"].clone(),
        )
    };
    let first = draw("malformed-seed-a.json");
    assert!(first.0.as_u64().unwrap() > 0);
    assert_eq!(first, draw("malformed-seed-b.json"));
}

/// Log lines are coloured only on a terminal: piped to a file or another
/// program, stderr carries plain text, whatever NO_COLOR says.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let o = floodgate()
        .args(["load", "--requests", "1", "--connections", "1"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run floodgate load");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // The reference server's start is logged at info: there are log lines.
    assert!(
        stderr.contains("started the reference server"),
        "no log line in: {stderr}"
    );
    assert!(!stderr.contains("\x1b["), "ANSI escapes in: {stderr:?}");
}
