//! The served-after-resume check on a service that does not speak HTTP: a
//! Redis-like line server (`PING\r\n` → `+PONG\r\n`) in Python, stopped by
//! its PID, probed with `--check accept` and with its payload.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{out_path, run};
use crate::util::floodgate;

/// A line server with a listen(2) backlog of 16 on 127.0.0.1; killed by
/// its PID when dropped.
struct LineServer {
    child: Child,
    port: u16,
}

const SERVER: &str = r#"
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    buf = b""
    while True:
        d = c.recv(4096)
        if not d:
            return
        buf += d
        while b"\r\n" in buf:
            _, buf = buf.split(b"\r\n", 1)
            c.sendall(b"+PONG\r\n")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

impl LineServer {
    fn start() -> LineServer {
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (the CI installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        LineServer { child, port }
    }
}

impl Drop for LineServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn probe(server: &LineServer, name: &str, check: &[&str]) -> (i32, Value) {
    let path = out_path(name);
    let out = run(floodgate()
        .args(["probe", "backlog", "--target"])
        .arg(format!("tcp://127.0.0.1:{}", server.port))
        .args(["--pid", &server.child.id().to_string(), "--backlog", "16"])
        .args(check)
        .arg("--out")
        .arg(&path));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    (out.status.code().unwrap_or(-1), r)
}

#[test]
fn a_raw_tcp_service_is_shown_served_by_its_accept_queue_and_its_own_protocol() {
    let server = LineServer::start();
    // tcp:// checks the accept queue drains by default.
    let (code, r) = probe(&server, "tcp-accept", &[]);
    assert_eq!(
        (code, &r["capacity"], &r["unserved"]),
        (0, &17.into(), &0.into()),
        "{r:#}"
    );
    // With its own protocol: every held connection answers PING.
    let ping = ["--check-payload", r"PING\r\n", "--check-delimiter", r"\r\n"];
    let (code, r) = probe(&server, "tcp-ping", &ping);
    assert_eq!(
        (code, &r["capacity"], &r["served"]),
        (0, &17.into(), &17.into()),
        "{r:#}"
    );
    // An HTTP check of a service that does not speak HTTP serves nobody.
    let (code, r) = probe(&server, "tcp-http", &["--check", "http"]);
    assert_eq!((code, &r["served"]), (1, &0.into()), "{r:#}");
}
