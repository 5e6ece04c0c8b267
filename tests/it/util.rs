//! Starting the `floodgate` binary as a child process and stopping it by PID.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

/// The `floodgate` binary cargo built for these tests.
pub fn floodgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodgate"))
}

/// A `floodgate serve` child; killed (by its own PID) when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
    pub stdout: BufReader<ChildStdout>,
}

impl ServeProcess {
    /// Starts `floodgate serve --listen 127.0.0.1:0 ARGS...` and waits for
    /// its `listening on ADDR` lines (one per `--listen`).
    pub fn start(args: &[&str]) -> ServeProcess {
        let mut cmd = floodgate();
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let listens = args.iter().filter(|a| **a == "--listen").count().max(1);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start floodgate serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut addrs = Vec::new();
        while addrs.len() < listens {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).expect("read serve stdout");
            assert!(n > 0, "floodgate serve exited before listening");
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                addrs.push(addr.parse().expect("listening on <socket addr>"));
            }
        }
        ServeProcess {
            child,
            addrs,
            stdout,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal to this child only.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
