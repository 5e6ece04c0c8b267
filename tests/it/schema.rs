//! Checks JSON output against the committed schemas in `reports/schema/`
//! with the `jsonschema` crate (draft 2020-12). Every schema is registered
//! under its `$id`, so the `$ref`s between them resolve offline.

use std::path::{Path, PathBuf};

use jsonschema::{Registry, Validator};
use serde_json::Value;

/// The committed schemas; `$ref`s may point from one into another.
const SCHEMAS: [&str; 2] = ["result.schema.json", "probe.schema.json"];

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema")
}

/// The committed schema `reports/schema/NAME`.
pub fn load(name: &str) -> Value {
    let path = schema_dir().join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for the committed schema `name`, with every committed schema
/// registered under its `$id` and retrieval of anything else refused.
fn validator(name: &str) -> Validator {
    let mut registry = Registry::new();
    for file in SCHEMAS {
        let schema = load(file);
        let id = schema["$id"]
            .as_str()
            .unwrap_or_else(|| panic!("reports/schema/{file} has no $id"))
            .to_string();
        registry = registry
            .add(id, schema)
            .unwrap_or_else(|e| panic!("reports/schema/{file}: {e}"));
    }
    let registry = registry
        .prepare()
        .unwrap_or_else(|e| panic!("reports/schema/: {e}"));
    jsonschema::options()
        .offline()
        .with_registry(&registry)
        .build(&load(name))
        .unwrap_or_else(|e| panic!("reports/schema/{name}: {e}"))
}

/// Every way `doc` breaks the committed schema `name`, each with where it is.
pub fn violations(name: &str, doc: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Checks `doc` against the committed schema `name`, panicking with every
/// violation and where it is.
pub fn assert_valid(name: &str, doc: &Value) {
    let errors = violations(name, doc);
    assert!(
        errors.is_empty(),
        "does not match reports/schema/{name}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_committed_schemas_are_valid_json_schemas() {
    for file in SCHEMAS {
        if let Err(e) = jsonschema::meta::validate(&load(file)) {
            panic!("reports/schema/{file}: {e}");
        }
        // Builds, with its references resolved.
        validator(file);
    }
}

/// A real result of `floodgate load --out` (committed as a fuzz seed).
fn sample_result() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/report_json/open-poisson.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Breaks a good result in one way.
type Breakage = fn(&mut Value);

#[test]
fn the_result_schema_refuses_what_floodgate_never_writes() {
    assert_valid("result.schema.json", &sample_result());
    let cases: [(&str, Breakage); 6] = [
        ("a counter that is not an integer", |v| {
            v["evidence"]["counters"]["listen_overflows"] = "lots".into()
        }),
        ("an unknown field", |v| v["extra"] = 1.into()),
        ("a missing field", |v| {
            v.as_object_mut().unwrap().remove("seed");
        }),
        ("a negative seed", |v| v["seed"] = (-1).into()),
        ("schema_version 2", |v| v["schema_version"] = 2.into()),
        ("a diagnosis not in the enum", |v| {
            v["verdict"]["diagnosis"] = "made_up".into()
        }),
    ];
    let accepted: Vec<&str> = cases
        .iter()
        .filter(|(_, break_it)| {
            let mut v = sample_result();
            break_it(&mut v);
            violations("result.schema.json", &v).is_empty()
        })
        .map(|(what, _)| *what)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}
