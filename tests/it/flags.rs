//! Flags that are refused before anything starts, for every subcommand: one
//! table of (arguments, exit code, words stderr must hold); `probe`'s
//! `--pid` refusals, which need processes to name, are in `probe/pid.rs`.
//! Each row runs `floodgate` with no server to talk to; a row whose command
//! does not exit promptly started something it should have refused, and is
//! killed and reported.

use std::time::Duration;

use crate::util::{exit_within, floodgate};

/// How long a refused command may take: it validates and exits, nothing more.
const PROMPT: Duration = Duration::from_secs(5);

/// Runs `floodgate ARGS` and gives its exit code and stderr, or `None` for
/// the code if it was still running after [`PROMPT`] (then it is killed).
fn run(args: &[&str]) -> (Option<i32>, String) {
    exit_within(floodgate().args(args), PROMPT)
}

/// `serve` rows listen on a port of the kernel's choosing, so a row that is
/// wrongly accepted does not collide with anything while it runs.
const SERVE: &[&str] = &["serve", "--listen", "127.0.0.1:0"];

/// One refusal: the subcommand with the arguments every row of it takes,
/// the row's own arguments, the exit code, and words stderr must hold.
type Row = (
    &'static [&'static str],
    &'static [&'static str],
    i32,
    &'static [&'static str],
);

/// `load` rows without `--target` would start a reference server if
/// accepted; a row that gets that far fails on time.
const LOAD: &[&str] = &["load"];

/// `probe` rows probe a bare listener in floodgate if accepted, which
/// takes a second: a row that gets that far fails on its exit code.
const PROBE: &[&str] = &["probe", "backlog", "--subject", "socket"];

#[test]
fn refused_flags_exit_before_anything_starts_and_name_the_flag() {
    let rows: &[Row] = &[
        // serve: the admin endpoints on a non-loopback address.
        (
            SERVE,
            &["--admin", "--listen", "0.0.0.0:0"],
            2,
            &[
                "--admin on 0.0.0.0:0",
                "off loopback (127.0.0.0/8, ::1) they need a token",
            ],
        ),
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
        // serve: what clap and the duration parser refuse.
        (
            SERVE,
            &["--idle-timeout", "x"],
            2,
            &[
                "--idle-timeout",
                "expected a duration like 500ms, 10s or 2m, got 'x'",
            ],
        ),
        (
            SERVE,
            &["--shutdown-grace", "10"],
            2,
            &["--shutdown-grace", "expected a duration like 500ms"],
        ),
        (
            SERVE,
            &["--accept-delay", "1.5s"],
            2,
            &["--accept-delay", "a bare number is milliseconds"],
        ),
        (
            SERVE,
            &["--max-connections", "0"],
            2,
            &["--max-connections"],
        ),
        (SERVE, &["--backlog", "lots"], 2, &["--backlog", "lots"]),
        (SERVE, &["--listen", "localhost"], 2, &["--listen"]),
        (SERVE, &["--bogus"], 2, &["--bogus"]),
        (&["frobnicate"], &[], 2, &["frobnicate"]),
        // load: what the plan refuses, in the flags' words.
        (LOAD, &["--rate", "0"], 2, &["--rate 0: must be above 0"]),
        (
            LOAD,
            &["--rate", "5", "--closed"],
            2,
            &["--rate: cannot be combined with --closed"],
        ),
        (LOAD, &["--target", "ftp://x"], 2, &["--target \"ftp://x\""]),
        (LOAD, &["--connections", "0"], 2, &["--connections 0"]),
        (LOAD, &["--threads", "0"], 2, &["--threads 0"]),
        (LOAD, &["--requests", "0"], 2, &["--requests 0"]),
        (
            LOAD,
            &["--duration", "0s"],
            2,
            &["--duration", "must be longer than zero"],
        ),
        (
            LOAD,
            &["--duration", "ten"],
            2,
            &["--duration", "expected a duration like 500ms"],
        ),
        (
            LOAD,
            &["--mode", "sideways"],
            2,
            &["--mode", "sideways", "requests"],
        ),
        (
            LOAD,
            &["--mode", "hold", "--requests", "5"],
            2,
            &["--requests 5: must be unset in --mode hold"],
        ),
        (
            LOAD,
            &["--mix", "1 GET /, x GET /"],
            2,
            &["--mix entry 2 WEIGHT \"x\": must be a whole number"],
        ),
        (
            LOAD,
            &["--mix", "1 GET /", "--body-bytes", "10"],
            2,
            &["--body-bytes: cannot be combined with --mix"],
        ),
        (
            LOAD,
            &["--header", "A: b", "--header", "nocolon"],
            2,
            &["--header \"nocolon\": must be 'Name: value'"],
        ),
        (
            LOAD,
            &["--payload", "PING"],
            2,
            &["--payload: is for tcp:// targets"],
        ),
        (
            LOAD,
            &["--target", "tcp://127.0.0.1:1"],
            2,
            &["--expect-bytes: is needed (or --expect-delimiter)"],
        ),
        (
            LOAD,
            &["--insecure"],
            2,
            &["--insecure: is for https:// targets"],
        ),
        (
            LOAD,
            &["--malformed", "0"],
            2,
            &["--malformed 0: must be a fraction"],
        ),
        (
            LOAD,
            &["--malformed", "0.6"],
            2,
            &["--malformed 0.6: must be a fraction"],
        ),
        (
            LOAD,
            &["--malformed", "-0.1"],
            2,
            &["--malformed -0.1: must be a fraction"],
        ),
        (LOAD, &["--malformed", "lots"], 2, &["--malformed"]),
        (
            LOAD,
            &["--malformed", "0.1", "--mode", "connect"],
            2,
            &["--malformed: needs an http:// target and --mode requests or churn"],
        ),
        (LOAD, &["--malformed-save", "/tmp/x"], 2, &["--malformed"]),
        (
            LOAD,
            &["--mix-file", "/nonexistent-floodgate-dir/mix.txt"],
            2,
            &["--mix-file /nonexistent-floodgate-dir/mix.txt"],
        ),
        (
            LOAD,
            &["--payload-file", "/nonexistent-floodgate-dir/p.bin"],
            2,
            &["--payload-file /nonexistent-floodgate-dir/p.bin"],
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
        // probe: an --out that cannot be written, opened before anything
        // starts (in lab mode too, before the namespace), and a
        // --check-path that is not a request target.
        (
            PROBE,
            &["--out", "/nonexistent-floodgate-dir/p.json"],
            2,
            &[
                "--out /nonexistent-floodgate-dir/p.json",
                "No such file or directory",
            ],
        ),
        (PROBE, &["--out", "/"], 2, &["--out /", "directory"]),
        (
            &["probe", "backlog", "--netns"],
            &["--out", "/nonexistent-floodgate-dir/p.json"],
            2,
            &["--out /nonexistent-floodgate-dir/p.json"],
        ),
        (
            PROBE,
            &["--check-path", "health"],
            2,
            &["--check-path \"health\": must be a request target that starts with '/'"],
        ),
        (
            PROBE,
            &["--check-path", "/a b"],
            2,
            &[
                "--check-path \"/a b\": must be a request target that starts with '/'",
                "no spaces or control characters",
            ],
        ),
        (
            PROBE,
            &["--check-path", "/a\r\nX: y"],
            2,
            &["--check-path \"/a\\r\\nX: y\": must be a request target that starts with '/'"],
        ),
        (
            &["probe", "backlog", "--netns"],
            &["--check-path", "/x\ny"],
            2,
            &["--check-path \"/x\\ny\""],
        ),
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

/// Every subcommand's `--help` ends with the one exit-code table, as the
/// top level's does.
#[test]
fn every_help_lists_the_exit_codes() {
    for args in [
        &[][..],
        &["run"],
        &["load"],
        &["serve"],
        &["check"],
        &["probe", "backlog"],
    ] {
        let out = crate::util::floodgate()
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            help.contains(floodgate_runner::exit::EXIT_CODES_HELP),
            "floodgate {args:?} --help lacks the exit codes:\n{help}"
        );
    }
}
