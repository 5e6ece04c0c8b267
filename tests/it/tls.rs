//! `floodgate serve` over TLS (issue 14): `floodgate load` loads it end to
//! end over https, trusting the self-signed certificate the server wrote;
//! a client that never sends a ClientHello is closed at the handshake
//! timeout without delaying anyone (hostile case 1); plaintext HTTP and
//! random bytes to the TLS port are closed and the server keeps serving
//! (hostile case 2); bad TLS flags exit 2 before anything starts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{ServeProcess, exit_within, floodgate};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floodgate-tls-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir.join(name)
}

/// `floodgate serve --tls-self-signed`, its certificate written to a file.
fn tls_server(name: &str, extra: &[&str]) -> (ServeProcess, PathBuf) {
    let cert = temp(&format!("{name}.pem"));
    let mut args = vec![
        "--tls-self-signed",
        "--tls-self-signed-out",
        cert.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = ServeProcess::start(&args);
    (server, cert)
}

/// `floodgate load` of `requests` GETs over https, trusting `cert`.
fn load_https(addr: SocketAddr, cert: &Path, requests: &str, out: &Path) -> Output {
    floodgate()
        .args(["load", "--target"])
        .arg(format!("https://localhost:{}/", addr.port()))
        .args(["--ca", cert.to_str().unwrap()])
        .args(["--requests", requests, "--connections", "4", "--out"])
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run floodgate load")
}

fn ok_count(out: &Path) -> (u64, Value) {
    let v: Value = serde_json::from_slice(&std::fs::read(out).expect("read --out")).unwrap();
    (v["outcomes"]["ok"].as_u64().unwrap_or(0), v)
}

/// Reads until the server closes or `limit` passes; the time it took, or
/// `None` if it was still open.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) if started.elapsed() < limit => return Some(started.elapsed()),
            Ok(0) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

#[test]
fn floodgate_load_serves_every_request_over_https() {
    let (server, cert) = tls_server("e2e", &[]);
    let out = temp("e2e.json");
    let o = load_https(server.addr(), &cert, "300", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ok, v) = ok_count(&out);
    assert_eq!(ok, 300, "every request ok over https: {}", v["outcomes"]);
}

#[test]
fn a_stalled_handshake_delays_nobody_and_is_closed_at_the_timeout() {
    let (server, cert) = tls_server("stall", &["--handshake-timeout", "2s"]);
    // Connects and never sends a ClientHello.
    let mut stalled = TcpStream::connect(server.addr()).unwrap();
    let started = Instant::now();
    let out = temp("stall.json");
    let o = load_https(server.addr(), &cert, "50", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ok, _) = ok_count(&out);
    assert_eq!(ok, 50);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "others were served at once, not after the stalled handshake: {:?}",
        started.elapsed()
    );
    let closed = closed_within(&mut stalled, Duration::from_secs(5))
        .map(|_| started.elapsed())
        .expect("the stalled client is closed");
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(4),
        "closed at the 2 s handshake timeout, not {closed:?}"
    );
}

#[test]
fn plaintext_and_random_bytes_to_the_tls_port_are_closed_and_it_keeps_serving() {
    let (server, cert) = tls_server("plain", &[]);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        &garbage[..],
    ] {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        let _ = s.write_all(bytes);
        assert!(
            closed_within(&mut s, Duration::from_secs(3)).is_some(),
            "a connection that is not TLS is closed"
        );
    }
    let out = temp("plain.json");
    let o = load_https(server.addr(), &cert, "20", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ok_count(&out).0, 20, "the server is healthy afterwards");
}

#[test]
fn bad_tls_flags_exit_2_before_anything_starts() {
    let missing = temp("missing.pem");
    let cert = temp("flags-cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    for (args, needle) in [
        (vec!["--tls-cert", cert.to_str().unwrap()], "--tls-key"),
        (
            vec![
                "--tls-self-signed",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                cert.to_str().unwrap(),
            ],
            "--tls-self-signed",
        ),
        (
            vec![
                "--tls-cert",
                missing.to_str().unwrap(),
                "--tls-key",
                missing.to_str().unwrap(),
            ],
            "missing.pem",
        ),
        (
            vec!["--tls-self-signed-out", cert.to_str().unwrap()],
            "--tls-self-signed",
        ),
        (
            vec!["--model", "threads", "--tls-self-signed"],
            "--model threads serves plain HTTP only",
        ),
    ] {
        let mut cmd = floodgate();
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(&args);
        let (code, stderr) = exit_within(&mut cmd, Duration::from_secs(10));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?} names {needle}: {stderr}");
    }
}
