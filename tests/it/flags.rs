//! Flags that are refused before anything starts, for every subcommand but
//! `probe`: one table of (arguments, exit code, words stderr must hold).
//! Each row runs `floodgate` with no server to talk to; a row whose command
//! does not exit promptly started something it should have refused, and is
//! killed and reported.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::floodgate;

/// How long a refused command may take: it validates and exits, nothing more.
const PROMPT: Duration = Duration::from_secs(5);

/// Runs `floodgate ARGS` and gives its exit code and stderr, or `None` for
/// the code if it was still running after [`PROMPT`] (then it is killed).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut child: Child = floodgate()
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start floodgate");
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("try_wait on the child") {
            break status.code();
        }
        if started.elapsed() > PROMPT {
            // Kills this child only, by its own PID.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (code, stderr)
}

/// `serve` rows listen on a port of the kernel's choosing, so a row that is
/// wrongly accepted does not collide with anything while it runs.
const SERVE: &[&str] = &["serve", "--listen", "127.0.0.1:0"];

/// `load` rows without `--target` would start a reference server if
/// accepted; a row that gets that far fails on time.
const LOAD: &[&str] = &["load"];

#[test]
fn refused_flags_exit_before_anything_starts_and_name_the_flag() {
    let rows: &[(&[&str], &[&str], i32, &[&str])] = &[
        // serve: timeouts of zero, and an accept delay without bound.
        (
            SERVE,
            &["--idle-timeout", "0s"],
            2,
            &["--idle-timeout", "at least 1ms"],
        ),
        (
            SERVE,
            &["--header-timeout", "0s"],
            2,
            &["--header-timeout", "at least 1ms"],
        ),
        (
            SERVE,
            &["--write-timeout", "0ms"],
            2,
            &["--write-timeout", "at least 1ms"],
        ),
        (
            SERVE,
            &["--idle-timeout", "999us"],
            2,
            &["--idle-timeout", "at least 1ms", "999us"],
        ),
        (
            SERVE,
            &["--accept-delay", "61s"],
            2,
            &["--accept-delay", "at most 60s"],
        ),
        (
            SERVE,
            &["--accept-delay", "60001"],
            2,
            &["--accept-delay", "at most 60s"],
        ),
        // load: bodies past the reference server's limit, headers that
        // would contradict the request's own framing, an --out that cannot
        // be written.
        (
            LOAD,
            &["--body-bytes", "1048577"],
            2,
            &["--body-bytes 1048577: must be at most 1048576"],
        ),
        (
            LOAD,
            &["--mix", "1 GET /, 1 POST /echo 2000000"],
            2,
            &["--mix entry 2 BODY_BYTES 2000000: must be at most 1048576"],
        ),
        (
            LOAD,
            &["-H", "Content-Length: 5"],
            2,
            &["--header \"Content-Length: 5\": must not set Content-Length"],
        ),
        (
            LOAD,
            &["-H", "X-A: b", "-H", "transfer-encoding: chunked"],
            2,
            &["--header \"transfer-encoding: chunked\": must not set"],
        ),
        (
            LOAD,
            &["-H", "Host: elsewhere"],
            2,
            &["--header \"Host: elsewhere\"", "--target"],
        ),
        (
            LOAD,
            &["-H", "Connection: close"],
            2,
            &["--header \"Connection: close\"", "--mode"],
        ),
        (
            LOAD,
            &["-H", "X-A: b\r\nX-B: c"],
            2,
            &[
                "--header \"X-A: b\\r\\nX-B: c\": must be 'Name: value'",
                "no CR or LF",
            ],
        ),
        (
            LOAD,
            &["--target", "http://127.0.0.1:1/a b"],
            2,
            &["--target \"http://127.0.0.1:1/a b\": has a PATH with spaces"],
        ),
        (
            LOAD,
            &["--target", "http://127.0.0.1:1/a\r\nX: y"],
            2,
            &["--target", "has a PATH with spaces or control characters"],
        ),
        (
            LOAD,
            &["--out", "/nonexistent-floodgate-dir/r.json"],
            2,
            &[
                "--out /nonexistent-floodgate-dir/r.json",
                "No such file or directory",
            ],
        ),
        (LOAD, &["--out", "/"], 2, &["--out /", "directory"]),
    ];
    let mut failures = Vec::new();
    for (command, args, code, words) in rows {
        let all: Vec<&str> = command.iter().chain(args.iter()).copied().collect();
        let (got, stderr) = run(&all);
        let missing: Vec<&&str> = words.iter().filter(|w| !stderr.contains(**w)).collect();
        if got != Some(*code) || !missing.is_empty() {
            let got = got.map_or("no exit within 5 s".to_string(), |c| format!("exit {c}"));
            failures.push(format!(
                "floodgate {}: {got} (expected {code}), missing {missing:?} in stderr:\n{stderr}",
                all.join(" ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
