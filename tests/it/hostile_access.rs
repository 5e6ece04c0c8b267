//! The hostile-client suite's access cases (issue 14): bearer-token auth
//! (case 3), the allowlist (case 5) and per-client limits (case 6), each
//! against `floodgate serve` with its flags, while a background client
//! runs valid keep-alive requests that must all succeed.

use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::hostile::Background;
use crate::util::http::{Client, read_response, stats};
use crate::util::{ServeProcess, exit_within, floodgate};

const TOKEN: &str = "s3cret-token-0123456789";

fn token_file(name: &str, mode: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floodgate-access-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A client whose connection comes from `source` (any port).
fn client_from(source: Ipv4Addr, addr: SocketAddr) -> Client {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(IpAddr::V4(source), 0).into())
        .unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    Client {
        reader: BufReader::new(stream),
    }
}

/// Whether the server closed `c` without answering a request sent on it.
fn closed_unanswered(c: &mut Client) -> bool {
    let _ = std::io::Write::write_all(c.reader.get_mut(), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    !matches!(read_response(&mut c.reader), Ok(Some(_)))
}

fn request(path: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let method = if path.starts_with("/admin/") {
        "POST"
    } else {
        "GET"
    };
    let body = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}{body}\r\n")
}

/// Status, headers and body of one request on a fresh connection.
fn answer(
    addr: SocketAddr,
    path: &str,
    auth: Option<&str>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut c = Client::connect(addr);
    c.send(request(path, auth).as_bytes());
    let r = c.response();
    (r.status, r.headers, r.body)
}

#[test]
fn auth_refuses_every_wrong_token_alike_and_health_needs_none() {
    let file = token_file("all.token", 0o600);
    let server = ServeProcess::start(&["--auth-token-file", file.to_str().unwrap()]);
    let addr = server.addr();
    let bearer = format!("Bearer {TOKEN}");
    let background = Background::start_with(Client::connect(addr), &request("/", Some(&bearer)));

    let mut last = TOKEN.to_string();
    last.pop();
    last.push('4');
    let wrong = [
        None,
        Some(format!("Bearer {}", "x".repeat(TOKEN.len()))),
        Some("Bearer short".to_string()),
        Some(format!("Bearer {TOKEN}{TOKEN}")),
        Some(format!("Bearer {last}")),
        Some(format!("Basic {TOKEN}")),
    ];
    let first = answer(addr, "/", wrong[0].as_deref());
    assert_eq!(first.0, 401);
    assert!(
        first
            .1
            .iter()
            .any(|(n, v)| n == "www-authenticate" && v.starts_with("Bearer")),
        "{:?}",
        first.1
    );
    for auth in &wrong {
        assert_eq!(answer(addr, "/", auth.as_deref()), first, "{auth:?}");
    }
    assert_eq!(answer(addr, "/health", None).0, 200);
    assert_eq!(answer(addr, "/", Some(&bearer)).0, 200);
    // Without --admin the admin paths are not there, token or not.
    assert_eq!(
        answer(addr, "/admin/pause-accept?ms=1", Some(&bearer)).0,
        404
    );

    let mut c = Client::connect(addr);
    c.send(request("/stats", Some(&bearer)).as_bytes());
    let s: serde_json::Value = serde_json::from_slice(&c.response().body).unwrap();
    assert!(
        s["unauthorized"].as_u64() >= Some(wrong.len() as u64),
        "{s}"
    );
    assert!(background.finish() > 0);
}

#[test]
fn with_auth_scope_admin_only_the_admin_endpoints_need_the_token() {
    let file = token_file("admin.token", 0o600);
    let server = ServeProcess::start(&[
        "--admin",
        "--auth-scope",
        "admin",
        "--auth-token-file",
        file.to_str().unwrap(),
    ]);
    let addr = server.addr();
    let background = Background::start(addr);
    assert_eq!(answer(addr, "/", None).0, 200);
    assert_eq!(answer(addr, "/admin/pause-accept?ms=1", None).0, 401);
    assert_eq!(
        answer(addr, "/admin/pause-accept?ms=1", Some("Bearer nope")).0,
        401
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        answer(addr, "/admin/pause-accept?ms=1", Some(&bearer)).0,
        200
    );
    assert!(background.finish() > 0);
}

#[test]
fn a_token_file_others_can_read_is_refused_before_start() {
    let file = token_file("open.token", 0o644);
    let mut cmd = floodgate();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--auth-token-file"])
        .arg(&file);
    let (code, stderr) = exit_within(&mut cmd, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");

    let empty = token_file("empty.token", 0o600);
    std::fs::write(&empty, "\n").unwrap();
    let mut cmd = floodgate();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--auth-token-file"])
        .arg(&empty);
    let (code, stderr) = exit_within(&mut cmd, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("empty"), "{stderr}");
}

#[test]
fn the_allowlist_closes_other_peers_at_accept() {
    let server = ServeProcess::start(&["--allow", "127.0.0.2/32"]);
    let addr = server.addr();
    let background = Background::start_with(
        client_from(Ipv4Addr::new(127, 0, 0, 2), addr),
        "GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let mut outsider = client_from(Ipv4Addr::new(127, 0, 0, 1), addr);
    assert!(closed_unanswered(&mut outsider), "127.0.0.1 is not allowed");
    let mut insider = client_from(Ipv4Addr::new(127, 0, 0, 2), addr);
    assert_eq!(insider.get("/").status, 200);
    let s = {
        insider.send(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = insider.response();
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    assert!(s["refused_by_allowlist"].as_u64() >= Some(1), "{s}");
    assert!(background.finish() > 0);
}

#[test]
fn on_a_dual_stack_listener_a_mapped_peer_is_judged_by_its_ipv4_address() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        assert!(std::env::var_os("CI").is_none(), "no IPv6 on the CI runner");
        eprintln!("skipped: no IPv6 here");
        return;
    }
    let served = ServeProcess::start(&["--listen", "[::]:0", "--allow", "127.0.0.1/32"]);
    let port = served.addr().port();
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = client_from(Ipv4Addr::new(127, 0, 0, 1), v4);
    assert_eq!(c.get("/").status, 200, "::ffff:127.0.0.1 is 127.0.0.1");

    let refused = ServeProcess::start(&["--listen", "[::]:0", "--allow", "127.0.0.2/32"]);
    let v4 = SocketAddr::from(([127, 0, 0, 1], refused.addr().port()));
    let mut c = client_from(Ipv4Addr::new(127, 0, 0, 1), v4);
    assert!(
        closed_unanswered(&mut c),
        "::ffff:127.0.0.1 is not 127.0.0.2"
    );
}

#[test]
fn the_excess_of_one_client_is_refused_and_the_others_are_unaffected() {
    let server = ServeProcess::start(&["--per-ip-max-connections", "2"]);
    let addr = server.addr();
    let background = Background::start_with(
        client_from(Ipv4Addr::new(127, 0, 0, 9), addr),
        "GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let two = Ipv4Addr::new(127, 0, 0, 2);
    let mut held: Vec<Client> = (0..2).map(|_| client_from(two, addr)).collect();
    for c in &mut held {
        assert_eq!(c.get("/").status, 200);
    }
    let mut third = client_from(two, addr);
    assert!(closed_unanswered(&mut third), "a third from 127.0.0.2");
    let mut other = client_from(Ipv4Addr::new(127, 0, 0, 3), addr);
    assert_eq!(other.get("/").status, 200, "127.0.0.3 is unaffected");
    // A slot comes back when its connection closes.
    drop(held.pop());
    crate::util::http::wait_until(Duration::from_secs(5), "a slot freed", || {
        let mut c = client_from(two, addr);
        !closed_unanswered(&mut c)
    });
    assert!(stats(addr)["refused_per_ip"].as_u64() >= Some(1));
    assert!(background.finish() > 0);
}

#[test]
fn over_its_rate_a_client_gets_429_with_retry_after_and_others_do_not() {
    let server = ServeProcess::start(&["--per-ip-rate", "0.5", "--per-ip-burst", "3"]);
    let addr = server.addr();
    let mut greedy = client_from(Ipv4Addr::new(127, 0, 0, 4), addr);
    let statuses: Vec<u16> = (0..5).map(|_| greedy.get("/").status).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    greedy.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = greedy.response();
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let mut other = client_from(Ipv4Addr::new(127, 0, 0, 5), addr);
    assert_eq!(other.get("/").status, 200, "127.0.0.5 is unaffected");
    let mut c = client_from(Ipv4Addr::new(127, 0, 0, 6), addr);
    c.send(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
    let s: serde_json::Value = serde_json::from_slice(&c.response().body).unwrap();
    assert!(s["rate_limited"].as_u64() >= Some(3), "{s}");
}
