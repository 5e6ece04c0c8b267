//! A small JSON Schema checker for the keywords the committed schemas in
//! `reports/schema/` use (type, enum, required, properties,
//! additionalProperties: false, items, minItems, minimum, exclusiveMinimum,
//! anyOf, and `$ref` to `FILE#/json/pointer` beside the schema). The
//! jsonschema crate would add a long dependency tree to every build for a
//! few tests.

use std::path::{Path, PathBuf};

use serde_json::Value;

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

/// Checks `doc` against the committed schema `name`, panicking with the
/// first violation and where it is.
pub fn assert_valid(name: &str, doc: &Value) {
    if let Err(e) = validate(&load(name), doc) {
        panic!("does not match reports/schema/{name}: {e}");
    }
}

pub fn validate(schema: &Value, doc: &Value) -> Result<(), String> {
    check(schema, doc, "$")
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        _ => false,
    }
}

/// Resolves `FILE#/pointer` against the schema folder.
fn resolve(reference: &str) -> Result<Value, String> {
    let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    load(file)
        .pointer(pointer)
        .cloned()
        .ok_or_else(|| format!("$ref {reference} points at nothing"))
}

fn check(s: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(Value::String(reference)) = s.get("$ref") {
        check(&resolve(reference)?, v, at)?;
    }
    if let Some(Value::Array(options)) = s.get("anyOf") {
        if !options.iter().any(|o| check(o, v, at).is_ok()) {
            return Err(format!("{at}: {v} matches none of anyOf"));
        }
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))),
            _ => return Err(format!("{at}: bad type keyword")),
        };
        if !ok {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        if !allowed.contains(v) {
            return Err(format!("{at}: {v} not in {allowed:?}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            if n < min {
                return Err(format!("{at}: {n} < minimum {min}"));
            }
        }
        if let Some(min) = s.get("exclusiveMinimum").and_then(Value::as_f64) {
            if n <= min {
                return Err(format!("{at}: {n} <= exclusiveMinimum {min}"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing required {r:?}"));
                }
            }
        }
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, child, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: unexpected property {k:?}"));
                }
                None => {}
            }
        }
    }
    if let Some(arr) = v.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if (arr.len() as u64) < min {
                return Err(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, item) in arr.iter().enumerate() {
                check(items, item, &format!("{at}[{i}]"))?;
            }
        }
    }
    Ok(())
}

#[test]
fn the_checker_rejects_what_it_should() {
    let s: Value = serde_json::from_str(
        r#"{"type":"object","additionalProperties":false,"required":["a"],
            "properties":{"a":{"type":"integer","minimum":1},"b":{"type":["string","null"],"enum":["x",null]},
            "v":{"$ref":"result.schema.json#/properties/verdict/properties/diagnosis"},
            "c":{"anyOf":[{"type":"string"},{"type":"integer","minimum":5}]}}}"#,
    )
    .unwrap();
    let doc = |t: &str| serde_json::from_str::<Value>(t).unwrap();
    assert!(validate(&s, &doc(r#"{"a":1,"b":"x"}"#)).is_ok());
    assert!(validate(&s, &doc(r#"{"a":1,"b":null}"#)).is_ok());
    assert!(validate(&s, &doc(r#"{"b":"x"}"#)).is_err());
    assert!(validate(&s, &doc(r#"{"a":0}"#)).is_err());
    assert!(validate(&s, &doc(r#"{"a":1.5}"#)).is_err());
    assert!(validate(&s, &doc(r#"{"a":1,"c":2}"#)).is_err());
    assert!(validate(&s, &doc(r#"{"a":1,"c":"s"}"#)).is_ok());
    assert!(validate(&s, &doc(r#"{"a":1,"c":7}"#)).is_ok());
    assert!(validate(&s, &doc(r#"{"a":1,"d":2}"#)).is_err());
    assert!(validate(&s, &doc(r#"{"a":1,"b":"y"}"#)).is_err());
    assert!(validate(&s, &doc(r#"{"a":1,"v":"no_overflow"}"#)).is_ok());
    assert!(validate(&s, &doc(r#"{"a":1,"v":"made_up"}"#)).is_err());
}
