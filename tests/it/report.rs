//! `floodgate report render`: a report.json in, every report file out;
//! a file that is not a report refused with exit 2, naming it, and
//! nothing written.

use std::path::PathBuf;

use crate::util::floodgate;

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("floodgate-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `floodgate report render FILE --out DIR`.
fn render(file: &std::path::Path, out_dir: &std::path::Path) -> std::process::Output {
    floodgate()
        .args(["report", "render"])
        .arg(file)
        .arg("--out")
        .arg(out_dir)
        .output()
        .unwrap()
}

#[test]
fn report_render_writes_every_file_from_a_report() {
    let d = dir("good");
    let file = d.join("report.json");
    let mut bytes = Vec::new();
    crate::schema::sample_scenario_report()
        .write_json(&mut bytes)
        .unwrap();
    std::fs::write(&file, bytes).unwrap();
    let out_dir = d.join("out/nested");
    let out = render(&file, &out_dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for name in floodgate_render::FILES {
        let path = out_dir.join(name);
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(meta.len() > 0, "{} is empty", path.display());
        assert!(
            stdout.contains(&format!("wrote {}", path.display())),
            "{stdout}"
        );
    }
    let page = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(page.contains("<figure id=\"chart-latency\""));
}

#[test]
fn report_render_refuses_a_file_that_is_not_a_report_with_exit_2() {
    let d = dir("bad");
    let cases = [
        ("not-json.json", "{ not json".to_string()),
        (
            "other-schema.json",
            serde_json::to_string(&{
                let mut v = serde_json::to_value(crate::schema::sample_scenario_report()).unwrap();
                v["schema"] = "floodgate.run/1".into();
                v
            })
            .unwrap(),
        ),
    ];
    for (name, body) in cases {
        let file = d.join(name);
        std::fs::write(&file, body).unwrap();
        let out_dir = d.join(format!("out-{name}"));
        let out = render(&file, &out_dir);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "floodgate report render: error: {}: ",
                file.display()
            )),
            "{stderr}"
        );
        assert!(!out_dir.exists(), "{name}: nothing is written");
    }
    let missing = d.join("missing.json");
    let out = floodgate()
        .args(["report", "render"])
        .arg(&missing)
        .args(["--out", "unused"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("cannot read {}", missing.display())));
}

#[test]
fn report_render_help_lists_the_exit_codes() {
    let out = floodgate()
        .args(["report", "render", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(
        help.contains("Exit codes:") && help.contains("2    usage error"),
        "{help}"
    );
}
