//! `probe backlog --target ADDR --pid PID` refuses, with exit 2 and before
//! anything is stopped, every PID but one that owns the listener at ADDR:
//! 0 and negative numbers (process groups), floodgate itself, its parent,
//! its process group, a process that does not exist, one that does not own
//! the listener (the message names the one that does), and any PID when
//! nothing listens at ADDR here. And it takes the PID of a listener's owner.
//!
//! Every refused probe runs with a process group of its own, or as the
//! child of a shell this test starts, so that a regression stops only
//! processes of this test: never the test binary, nor anything beyond it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

use super::state;
use crate::util::{ServeProcess, exit_within, floodgate, in_fresh_netns};

/// How long a refused probe may take: it checks the PID and exits. A probe
/// that wrongly goes ahead takes longer (the burst's window, then the serve
/// check), and one that stopped itself never exits; both are killed then.
const PROMPT: Duration = Duration::from_secs(5);

/// A `sleep` child, killed (by its own PID) when dropped; it listens on
/// nothing.
struct Sleeper(Child);

impl Sleeper {
    /// Starts `sleep 60`, in a process group of its own if `own_group`.
    fn start(own_group: bool) -> Sleeper {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        if own_group {
            cmd.process_group(0);
        }
        Sleeper(cmd.spawn().expect("start sleep"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `probe backlog --target ADDR --pid PID` as a command, in a process group
/// of its own.
fn probe(addr: &str, pid: &str) -> Command {
    let mut cmd = floodgate();
    cmd.args(["probe", "backlog", "--target", addr, "--pid", pid])
        .process_group(0);
    cmd
}

/// The same probe run by `sh -c SCRIPT` with `$0` the floodgate binary and
/// `$1` the target; the script passes the PID it names as `$$`.
fn probe_from_shell(script: &str, addr: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script])
        .arg(env!("CARGO_BIN_EXE_floodgate"))
        .arg(addr)
        .process_group(0);
    cmd
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
fn closed_port() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    addr.to_string()
}

#[test]
fn pid_that_does_not_own_the_target_listener_is_refused_before_anything_is_stopped() {
    let server = ServeProcess::start(&[]);
    let addr = server.addr().to_string();
    let sleeper = Sleeper::start(true);
    // A process group this test leads, for the probe to join.
    let leader = Sleeper::start(true);
    let mut in_group = probe(&addr, &leader.pid().to_string());
    in_group.process_group(leader.pid());
    let (server_pid, sleeper_pid) = (server.pid().to_string(), sleeper.pid().to_string());
    let nowhere = closed_port();
    let rows: Vec<(&str, Command, Vec<String>)> = vec![
        (
            "0",
            probe(&addr, "0"),
            vec!["--pid 0: must be above 0".into(), "process group".into()],
        ),
        (
            "a negative PID (a process group, safely one that cannot exist)",
            probe(&addr, "-2147483647"),
            vec!["--pid -2147483647: must be above 0".into()],
        ),
        (
            "floodgate itself",
            probe_from_shell(r#"exec "$0" probe backlog --target "$1" --pid "$$""#, &addr),
            vec!["is floodgate itself".into()],
        ),
        (
            "its parent",
            probe_from_shell(
                r#""$0" probe backlog --target "$1" --pid "$$"; exit "$?""#,
                &addr,
            ),
            vec!["is floodgate's parent".into()],
        ),
        (
            "its process group",
            in_group,
            vec![
                format!("--pid {}", leader.pid()),
                "floodgate's own process group".into(),
            ],
        ),
        (
            "a process that does not exist",
            probe(&addr, "2147483647"),
            vec!["--pid 2147483647: there is no process 2147483647".into()],
        ),
        (
            "a process that does not own the listener",
            probe(&addr, &sleeper_pid),
            vec![
                format!("--pid {sleeper_pid}: process {sleeper_pid} (sleep) does not own"),
                format!("the listener on {addr}"),
                format!("owned by process {server_pid} (floodgate)"),
            ],
        ),
        (
            "a target where nothing listens here",
            probe(&nowhere, &server_pid),
            vec![
                format!("--pid {server_pid}"),
                format!("nothing listens on {nowhere} in this network namespace"),
            ],
        ),
    ];
    let mut failures = Vec::new();
    let count = rows.len();
    for (what, mut cmd, words) in rows {
        let (code, stderr) = exit_within(&mut cmd, PROMPT);
        let missing: Vec<&String> = words.iter().filter(|w| !stderr.contains(*w)).collect();
        if code != Some(2) || !missing.is_empty() {
            let got = code.map_or("no exit within 5 s".to_string(), |c| format!("exit {c}"));
            failures.push(format!(
                "--pid {what}: {got} (expected 2), missing {missing:?} in stderr:\n{stderr}"
            ));
        }
        // Refused before anything was stopped (a stop is resumed within
        // the probe's run, so this catches a probe that went ahead only if
        // it is still running; the exit code above catches the rest).
        for pid in [server.pid(), sleeper.pid(), leader.pid()] {
            if state(pid) == "T" {
                failures.push(format!("--pid {what}: process {pid} was left stopped"));
                // SAFETY: kill(2) on the PID of a child this test started.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The owner is found through the listener's socket inode, not its address:
/// a server on the wildcard address is the owner of a target on loopback.
/// In a fresh network namespace, so the wildcard listener is reachable from
/// nothing but this test.
#[test]
fn pid_of_the_listener_owner_is_accepted_through_a_wildcard_listener() {
    let (status, report) = in_fresh_netns(|| {
        let server = ServeProcess::start(&["--listen", "0.0.0.0:0", "--backlog", "8"]);
        let target = format!("127.0.0.1:{}", server.addr().port());
        let out = floodgate()
            .args(["probe", "backlog", "--target", &target, "--backlog", "8"])
            .arg(format!("--pid={}", server.pid()))
            .output()
            .expect("run floodgate probe backlog");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        assert_ne!(state(server.pid()), "T");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    });
    assert!(status.success(), "{status:?}\n{report}");
    assert!(report.contains("capacity: 9"), "{report}");
}
