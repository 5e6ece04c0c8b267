//! A phase's load checked by the load engine's own plan validation
//! (`Plan::validate`), so a scenario accepts exactly the loads the engine
//! runs. The plan's field names (`mix[1].path`, `rate`) are mapped back to
//! the phase's (`phase[2].mix[1].path`, `phase[1].to`) with the span of the
//! value the phase got them from, its own table or `[defaults]`.

use std::time::Duration;

use floodgate_loadgen::plan::{MixEntry, Plan, PlanError, PlanInput};

use super::checker::{Checker, Table};
use super::document::{Node, Span, Value};
use super::model::{Phase, PhaseKind};

/// The phase's load through the engine's plan validation. The plan stops
/// at its first error, so each error's field is replaced by a valid
/// stand-in and the plan checked again, until it passes: every error at
/// once. `before`: the diagnostics count before this phase's kind was
/// read; a plan error about a field already reported since then is not
/// repeated.
pub fn check_plan(
    c: &mut Checker,
    t: &Table,
    defaults_node: Option<&Node>,
    phase: &Phase,
    target: Option<&str>,
    before: usize,
) {
    let Some(mut input) = phase.plan_input(target, 0) else {
        return;
    };
    // Each round fixes one field; a plan has far fewer than this.
    for _ in 0..32 {
        let Err(e) = Plan::validate(input.clone()) else {
            return;
        };
        let (field, span) = locate(t, defaults_node, &phase.kind, &e);
        let already = c.diagnostics[before..]
            .iter()
            .any(|d| field.starts_with(&d.field) || d.field.starts_with(&field));
        if !already {
            c.error(&span, field, e.message());
        }
        if !stand_in(&mut input, e.field()) {
            return;
        }
    }
}

/// Replaces the value of plan field `field` by one the plan accepts;
/// false for a field it does not know.
fn stand_in(input: &mut PlanInput, field: &str) -> bool {
    let second = Duration::from_secs(1);
    match field {
        "rate" => input.rate_per_s = Some(1.0),
        "connections" => input.connections = 1,
        "threads" => input.threads = 1,
        "duration" => input.duration = Some(second),
        "requests" => input.requests = None,
        "connect_timeout" => input.connect_timeout = second,
        "read_timeout" => input.read_timeout = second,
        "malformed" => input.malformed = None,
        "mix" => input.mix = None,
        "target" | "ca" | "insecure" => input.target = None,
        _ => {
            let Some(i) = field
                .strip_prefix("mix[")
                .and_then(|r| r.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
            else {
                return false;
            };
            let Some(entry) = input.mix.as_mut().and_then(|m| m.get_mut(i)) else {
                return false;
            };
            *entry = MixEntry {
                weight: 1,
                method: "GET".into(),
                path: "/".into(),
                body_bytes: 0,
            };
        }
    }
    true
}

/// The scenario field and span a plan error is about.
fn locate(
    t: &Table,
    defaults_node: Option<&Node>,
    kind: &PhaseKind,
    e: &PlanError,
) -> (String, Span) {
    let plan_field = e.field();
    let head_end = plan_field.find(['.', '[']).unwrap_or(plan_field.len());
    let (head, rest) = plan_field.split_at(head_end);
    let key = match (head, kind) {
        ("rate", PhaseKind::Ramp { .. }) => "to",
        ("rate", PhaseKind::FindCapacity(_)) => "start",
        ("duration", PhaseKind::FindCapacity(_)) => "step",
        ("malformed", _) => "fraction",
        (other, _) => other,
    };
    let (mut field, mut node) = match (t.get(key), defaults_node.and_then(|d| d.get(key))) {
        (Some(n), _) => (t.field(key), n),
        (None, Some(n)) => (format!("defaults.{key}"), n),
        (None, None) => return (t.field(key), t.node.span.clone()),
    };
    // Walk `[1].path` down the value, as far as it goes.
    let mut rest = rest;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else { break };
            let Ok(i) = r[..close].parse::<usize>() else {
                break;
            };
            let Value::Array(items) = &node.value else {
                break;
            };
            let Some(item) = items.get(i) else { break };
            field.push_str(&rest[..close + 2]);
            node = item;
            rest = &r[close + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let Some(child) = node.get(&r[..end]) else {
                break;
            };
            field.push('.');
            field.push_str(&r[..end]);
            node = child;
            rest = &r[end..];
        } else {
            break;
        }
    }
    // What could not be walked is still named.
    field.push_str(rest);
    (field, node.span.clone())
}
