//! The dependency directions ARCHITECTURE.md states, checked against what
//! `cargo metadata` resolves: which of our crates each crate may depend on,
//! and the crates that must stay free of sockets and runtimes. A new
//! dependency that breaks a boundary fails here, in the README's test
//! command, before it lands.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each of our crates and the crates of ours it may depend on directly
/// (normal dependencies), as ARCHITECTURE.md draws them.
const ALLOWED: &[(&str, &[&str])] = &[
    ("floodgate-proto", &[]),
    ("floodgate-reports", &[]),
    ("floodgate-render", &["floodgate-reports"]),
    ("floodgate-kernel", &["floodgate-reports"]),
    ("floodgate-server", &["floodgate-proto"]),
    (
        "floodgate-loadgen",
        &["floodgate-proto", "floodgate-kernel", "floodgate-reports"],
    ),
    (
        "floodgate-probe",
        &["floodgate-proto", "floodgate-kernel", "floodgate-reports"],
    ),
    (
        "floodgate-runner",
        &[
            "floodgate-loadgen",
            "floodgate-probe",
            "floodgate-server",
            "floodgate-kernel",
            "floodgate-reports",
        ],
    ),
    (
        "floodgate",
        &["floodgate-runner", "floodgate-render", "floodgate-reports"],
    ),
];

/// Crates that mean sockets, syscalls or an async runtime.
const SOCKETS_AND_RUNTIMES: &[&str] = &[
    "socket2",
    "libc",
    "nix",
    "rustix",
    "mio",
    "polling",
    "async-io",
    "async-std",
    "async-executor",
    "async-task",
    "tokio",
    "rustls",
];

/// The async runtime the reference server uses; no other crate of ours may
/// name it.
const SERVER_RUNTIME: &[&str] = &["async-std", "async-io", "async-executor", "event-listener"];

struct Graph {
    /// package id → name
    names: BTreeMap<String, String>,
    /// package id → normal dependency ids
    normal: BTreeMap<String, Vec<String>>,
    /// our crates by name → id
    ours: BTreeMap<String, String>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect::<BTreeMap<_, _>>();
    let ours = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap().to_owned();
            (names[&id].clone(), id)
        })
        .collect();
    let normal = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            (node["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    Graph {
        names,
        normal,
        ours,
    }
}

impl Graph {
    fn id(&self, name: &str) -> &str {
        self.ours
            .get(name)
            .unwrap_or_else(|| panic!("{name} is named in ALLOWED but is not a workspace crate"))
    }

    fn direct(&self, name: &str) -> BTreeSet<String> {
        self.normal[self.id(name)]
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }

    /// Every crate `name` pulls in for a normal build.
    fn transitive(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.id(name).to_owned()];
        while let Some(id) = todo.pop() {
            for dep in &self.normal[&id] {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }
}

#[test]
fn our_crates_depend_only_in_the_directions_architecture_md_draws() {
    let g = graph();
    let listed: BTreeSet<&str> = ALLOWED.iter().map(|(n, _)| *n).collect();
    for name in g.ours.keys() {
        assert!(
            listed.contains(name.as_str()),
            "{name} is a workspace crate missing from ALLOWED and ARCHITECTURE.md"
        );
    }
    for (name, allowed) in ALLOWED {
        let ours: BTreeSet<String> = g
            .direct(name)
            .into_iter()
            .filter(|d| g.ours.contains_key(d))
            .collect();
        let extra: Vec<_> = ours
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "{name} must not depend on {extra:?}");
    }
}

#[test]
fn reports_render_and_proto_know_nothing_of_sockets_or_runtimes() {
    let g = graph();
    for name in ["floodgate-reports", "floodgate-render", "floodgate-proto"] {
        let all = g.transitive(name);
        let bad: Vec<_> = SOCKETS_AND_RUNTIMES
            .iter()
            .filter(|c| all.contains(**c))
            .collect();
        assert!(bad.is_empty(), "{name} pulls in {bad:?}");
    }
}

#[test]
fn the_async_runtime_does_not_leave_the_server() {
    let g = graph();
    for name in g.ours.keys() {
        if name == "floodgate-server" {
            continue;
        }
        let direct = g.direct(name);
        let bad: Vec<_> = SERVER_RUNTIME
            .iter()
            .filter(|c| direct.contains(**c))
            .collect();
        assert!(bad.is_empty(), "{name} depends on {bad:?} itself");
    }
    // Nor does it reach the load engine, the probe or the kernel crate by
    // any path.
    for name in ["floodgate-loadgen", "floodgate-kernel", "floodgate-reports"] {
        let all = g.transitive(name);
        assert!(!all.contains("async-std"), "{name} pulls in async-std");
    }
}
