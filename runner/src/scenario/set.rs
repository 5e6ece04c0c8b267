//! `--set KEY=VALUE` overrides: `phase.capacity.max=200k/s`,
//! `server.backlog=64`, `seed=7`. The value replaces (or adds) one key of
//! the document before validation, with a span into the override's own
//! text, so an override is validated the same way as the file and its
//! errors point at it. A phase is named by its `name` (or its index,
//! `phase.0.rate`).

use super::diagnostic::Diagnostic;
use super::document::{self, Key, Node, Origin, Span, Value};
use super::suggest::did_you_mean;

const FORM: &str = "expected KEY=VALUE, e.g. phase.capacity.max=200k/s or server.backlog=64";

/// Applies override number `index`, whose text is `assignment`, to `root`.
pub fn apply(root: &mut Node, index: usize, assignment: &str) -> Result<(), Diagnostic> {
    let origin = Origin::Set(index);
    let span = |range: std::ops::Range<usize>| Span { origin, range };
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(Diagnostic::new(&span(0..assignment.len()), "", FORM));
    };
    let mut segments = Vec::new();
    let mut at = 0;
    for segment in key.split('.') {
        let name = segment.trim();
        if name.is_empty() {
            return Err(Diagnostic::new(&span(at..at + segment.len()), "", FORM));
        }
        let lead = segment.len() - segment.trim_start().len();
        segments.push((name, at + lead..at + lead + name.len()));
        at += segment.len() + 1;
    }
    let value_at = key.len() + 1;
    let value_text = value.trim();
    let lead = value.len() - value.trim_start().len();
    let new = document::parse_value(value_text, origin, value_at + lead);

    let mut node = root;
    let mut path = String::new();
    let mut rest = segments.as_slice();
    while let [(name, range), tail @ ..] = rest {
        if path.is_empty() && *name == "phase" && !tail.is_empty() {
            let ((which, which_range), tail) = (&tail[0], &tail[1..]);
            let (i, phase) = find_phase(node, which).map_err(|hint| {
                Diagnostic::new(&span(which_range.clone()), format!("phase.{which}"), hint)
            })?;
            path = format!("phase[{i}]");
            node = phase;
            rest = tail;
            if rest.is_empty() {
                return Err(Diagnostic::new(
                    &span(which_range.clone()),
                    path,
                    "names a phase, not one of its keys: phase.NAME.KEY=VALUE",
                ));
            }
            continue;
        }
        let field = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        let Value::Table(entries) = &mut node.value else {
            return Err(Diagnostic::new(
                &span(range.clone()),
                path,
                "is not a table, so it has no keys to set",
            ));
        };
        let pos = match entries.iter().position(|(k, _)| k.name == *name) {
            Some(pos) => pos,
            None => {
                let placeholder = Node {
                    span: span(range.clone()),
                    value: Value::Table(Vec::new()),
                };
                let key = Key {
                    name: name.to_string(),
                    span: span(range.clone()),
                };
                entries.push((key, placeholder));
                entries.len() - 1
            }
        };
        if tail.is_empty() {
            entries[pos].1 = new;
            return Ok(());
        }
        path = field;
        node = &mut entries[pos].1;
        rest = tail;
    }
    Ok(())
}

/// The phase named `which` (or at index `which`), with its index.
fn find_phase<'a>(root: &'a mut Node, which: &str) -> Result<(usize, &'a mut Node), String> {
    let Some(Value::Array(phases)) = root_entry(root, "phase") else {
        return Err("the scenario has no [[phase]] to set a key of".to_string());
    };
    let name_of = |p: &Node| match p.get("name").map(|n| &n.value) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let names: Vec<String> = phases.iter().filter_map(name_of).collect();
    let found = phases
        .iter()
        .position(|p| name_of(p).as_deref() == Some(which))
        .or_else(|| which.parse::<usize>().ok().filter(|i| *i < phases.len()));
    match found {
        Some(i) => Ok((i, &mut phases[i])),
        None => Err(
            match did_you_mean(which, names.iter().map(String::as_str)) {
                Some(m) => format!("no phase named {which:?}; did you mean \"{m}\"?"),
                None => format!(
                    "no phase named {which:?}; the phases are {}",
                    names.join(", ")
                ),
            },
        ),
    }
}

fn root_entry<'a>(root: &'a mut Node, key: &str) -> Option<&'a mut Value> {
    match &mut root.value {
        Value::Table(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| &mut v.value),
        _ => None,
    }
}
