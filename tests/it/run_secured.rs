//! `floodgate run` against a reference server its scenario secures
//! (`[server]` TLS, bearer token, allowlist, per-client limits): the run's
//! own load and backlog probe get in, and a bad key is refused at its line
//! and column before anything starts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use floodgate_reports::Outcome;
use floodgate_reports::scenario::Status;

use crate::run::{dir, exited, run, scenario_file, text};

/// A token file only its owner can read, as the server insists.
fn token_file(d: &Path, mode: u32) {
    let f = d.join("token");
    std::fs::write(&f, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_run_loads_its_own_tls_and_token_protected_server_and_every_request_succeeds() {
    let _turn = crate::util::heavy_turn();
    let d = dir("secured");
    token_file(&d, 0o600);
    // The token file is named relative to the scenario file.
    let f = scenario_file(
        &d,
        r#"name = "secured"
seed = 7
thresholds = ["errors == 0"]
[server]
tls_self_signed = true
handshake_timeout = "2s"
auth_token_file = "token"
allow = ["127.0.0.1/32"]
per_ip_max_connections = 64
per_ip_rate = "10000/s"
per_ip_burst = 1000
[defaults]
connections = 4
threads = 1
mix = [
    { weight = 1, method = "GET", path = "/" },
    { weight = 1, method = "POST", path = "/echo", body_bytes = "256B" },
]
[[phase]]
name = "steady"
kind = "steady"
rate = "200/s"
duration = "2s"
"#,
    );
    let (out, report) = run(&f, &d, &[]);
    let stdout = exited(&out, 0);
    let r = report.expect("report.json");
    assert_eq!(r.status, Status::Pass);
    let phase = r.phases[0].run.as_ref().unwrap();
    assert!(
        phase.target.starts_with("https://127.0.0.1:"),
        "{}",
        phase.target
    );
    let ok = phase.outcomes.get(&Outcome::Ok).copied().unwrap_or(0);
    assert_eq!(ok, phase.scheduled, "every request got in: {stdout}");
    assert!(ok >= 350, "{ok} of about 400");
}

#[test]
fn a_backlog_probe_passes_the_token_to_the_admin_endpoint() {
    let _turn = crate::util::heavy_turn();
    let d = dir("secured-probe");
    token_file(&d, 0o600);
    let f = scenario_file(
        &d,
        r#"name = "secured-probe"
[server]
backlog = 64
auth_token_file = "token"
[[phase]]
name = "probe"
kind = "backlog-probe"
connects = 120
window = "600ms"
serve_timeout = "3s"
thresholds = ["probe.capacity >= 1"]
"#,
    );
    let (out, report) = run(&f, &d, &[]);
    let stdout = exited(&out, 0);
    let r = report.expect("report.json");
    let probe = r.phases[0].probe.as_ref().expect("the probe ran");
    assert!(probe.holds(), "{stdout}");
}

#[test]
fn an_unusable_server_key_is_refused_at_its_line_before_anything_starts() {
    let _turn = crate::util::heavy_turn();
    let d = dir("secured-invalid");
    token_file(&d, 0o644);
    let phase = "[[phase]]\nname = \"a\"\nkind = \"steady\"\nrate = \"10/s\"\nduration = \"1s\"\n";
    for (server, needle) in [
        (
            "auth_token_file = \"token\"\n",
            "scenario.toml:3:19: server.auth_token_file",
        ),
        ("allow = [\"10.0.0.0/33\"]\n", "server.allow[0]"),
        ("per_ip_rate = \"5/s\"\n", "needs per_ip_burst"),
        (
            "tls_cert = \"missing.pem\"\ntls_key = \"missing.pem\"\n",
            "missing.pem",
        ),
        (
            "handshake_timeout = \"1s\"\n",
            "needs tls_cert + tls_key or tls_self_signed",
        ),
    ] {
        let f = scenario_file(&d, &format!("name = \"x\"\n[server]\n{server}{phase}"));
        let (out, report) = run(&f, &d, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{server}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{server}: wants {needle:?}: {stderr}"
        );
        assert!(report.is_none(), "nothing ran, nothing was written");
    }
    // The probe speaks plain HTTP to the admin endpoint: TLS and a probe
    // phase cannot go together.
    let f = scenario_file(
        &d,
        "name = \"x\"\n[server]\ntls_self_signed = true\n[[phase]]\nname = \"p\"\nkind = \"backlog-probe\"\n",
    );
    let (out, _) = run(&f, &d, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plain HTTP"), "{stderr}");
}
