//! `floodgate check FILE...`: every shipped scenario passes (exit 0), each
//! invalid one prints exactly its `.expected` message and exits 2, and
//! nothing is started or connected to.

use std::path::Path;
use std::process::{Output, Stdio};

fn check(args: &[&str]) -> Output {
    crate::util::floodgate()
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn toml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_scenarios_pass_check() {
    let files = toml_files("scenarios");
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = check(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in &files {
        assert!(stdout.contains(&format!("{f}: ok: scenario ")), "{stdout}");
    }
}

#[test]
fn each_invalid_scenario_exits_2_with_its_exact_message() {
    for path in toml_files("scenarios/invalid") {
        let expected = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(path.replace(".toml", ".expected")),
        )
        .unwrap();
        let out = check(&[&path]);
        assert_eq!(out.status.code(), Some(2), "{path}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr,
            format!("{expected}floodgate check: 1 of 1 file invalid\n"),
            "{path}"
        );
        assert!(
            out.stdout.is_empty(),
            "{path}: nothing is started or printed"
        );
    }
}

#[test]
fn one_invalid_file_fails_the_lot_and_the_valid_ones_are_still_reported() {
    let out = check(&[
        "scenarios/smoke.toml",
        "scenarios/invalid/bad-rate.toml",
        "no/such.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("scenarios/smoke.toml: ok: scenario \"smoke\", 8 phases"),
        "{stdout}"
    );
    assert!(stderr.contains("scenarios/invalid/bad-rate.toml:13:8: phase[1].rate: expected a rate like \"500/s\", found \"fast\""), "{stderr}");
    assert!(stderr.contains("cannot read no/such.toml: "), "{stderr}");
    assert!(
        stderr.ends_with("floodgate check: 2 of 3 files invalid\n"),
        "{stderr}"
    );
}

/// A valid scenario whose target listens here: check must not connect
/// to it, nor start anything.
#[test]
fn check_connects_to_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("floodgate-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("target.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"t\"\ntarget = \"http://{addr}/\"\n[[phase]]\nname = \"a\"\nkind = \"steady\"\nrate = \"1/s\"\nduration = \"1s\"\n"
        ),
    )
    .unwrap();
    let out = check(&[file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The child has exited: a connect it made would be in the queue.
    let accepted = listener.accept();
    assert_eq!(
        accepted.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The scenario's `[server]` takes every flag of `floodgate serve` as a
/// snake_case key (but `--listen`, which the run chooses, and
/// `--tls-self-signed-out`, whose certificate the run trusts itself;
/// `--no-reuse-address` is `reuse_address = false`): given a value of the
/// wrong type, each is refused for its value, never as an unknown key.
#[test]
fn the_server_table_takes_every_flag_of_floodgate_serve() {
    let help = crate::util::floodgate()
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let keys: Vec<String> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split([' ', '=']).next())
        .filter(|flag| !["listen", "tls-self-signed-out", "help"].contains(flag))
        .map(|flag| flag.strip_prefix("no-").unwrap_or(flag).replace('-', "_"))
        .collect();
    assert!(keys.len() >= 20, "{keys:?}");
    let dir = std::env::temp_dir().join(format!("floodgate-check-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for key in &keys {
        let file = dir.join("keys.toml");
        std::fs::write(
            &file,
            format!(
                "name = \"keys\"\n[server]\n{key} = {{ x = 1 }}\n[[phase]]\nname = \"a\"\nkind = \"pause\"\nduration = \"1s\"\n"
            ),
        )
        .unwrap();
        let out = check(&[file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains(&format!("server.{key}")), "{key}: {stderr}");
        assert!(!stderr.contains("unknown key"), "{key}: {stderr}");
    }
}
