//! The reading half of validation: a [`Checker`] collects every
//! [`Diagnostic`] while typed getters turn a table's [`Node`]s into values
//! with units applied, and [`Table`] reports the keys a table does not
//! take. A getter that fails records why and gives `None`, so validation
//! goes on and finds the next error.

use std::time::Duration;

use super::diagnostic::{Diagnostic, Sources};
use super::document::{Node, Span, Value};
use super::suggest::did_you_mean;
use super::threshold::{self, Threshold};
use super::units::{self, UnitError};

/// The diagnostics found so far, and the texts the spans point into.
#[derive(Debug)]
pub struct Checker<'s> {
    pub sources: &'s Sources,
    pub diagnostics: Vec<Diagnostic>,
}

/// A table's entries under a field path (`phase[2]`, `server`), with its
/// unknown keys already reported.
pub struct Table<'a> {
    pub node: &'a Node,
    pub path: String,
}

impl<'a> Table<'a> {
    /// The field path of `key` in this table: `phase[2].rate`.
    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }
}

/// Examples in messages, so each kind of value reads the same everywhere.
pub const DURATION: &str = "a duration like \"250ms\", \"30s\" or \"2m\"";
pub const RATE: &str = "a rate like \"500/s\"";
pub const SHARE: &str = "a share like \"5%\"";

impl<'s> Checker<'s> {
    pub fn new(sources: &'s Sources) -> Checker<'s> {
        Checker {
            sources,
            diagnostics: Vec::new(),
        }
    }

    pub fn error(&mut self, span: &Span, field: impl Into<String>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(span, field, message));
    }

    /// `node` as a table at `path` that takes only `allowed` keys; each
    /// other key is an error with a did-you-mean. `None` (and an error)
    /// when it is not a table.
    pub fn table<'a>(&mut self, node: &'a Node, path: &str, allowed: &[&str]) -> Option<Table<'a>> {
        let Value::Table(entries) = &node.value else {
            self.error(
                &node.span,
                path,
                format!("expected a table, found {}", node.value.found()),
            );
            return None;
        };
        let table = Table {
            node,
            path: path.to_string(),
        };
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                let hint = match did_you_mean(&key.name, allowed.iter().copied()) {
                    Some(m) => format!("did you mean \"{m}\"?"),
                    None => format!("allowed here: {}", allowed.join(", ")),
                };
                self.error(
                    &key.span,
                    table.field(&key.name),
                    format!("unknown key; {hint}"),
                );
            }
        }
        Some(table)
    }

    /// A key a table must have: an error at the table when it is missing.
    pub fn required<'a>(&mut self, t: &Table<'a>, key: &str, why: &str) -> Option<&'a Node> {
        let node = t.get(key);
        if node.is_none() {
            self.error(&t.node.span, t.field(key), format!("missing; {why}"));
        }
        node
    }

    fn wrong(&mut self, node: &Node, field: &str, expected: &str) {
        self.error(
            &node.span,
            field,
            format!("expected {expected}, found {}", node.value.found()),
        );
    }

    pub fn string(&mut self, node: &Node, field: &str, expected: &str) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong(node, field, expected);
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match node.value {
            Value::Boolean(b) => Some(b),
            _ => {
                self.wrong(node, field, "true or false");
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn integer(&mut self, node: &Node, field: &str, min: u64, max: u64) -> Option<u64> {
        let allowed = if max == u64::MAX {
            format!("a whole number, at least {min}")
        } else {
            format!("a whole number from {min} to {max}")
        };
        match node.value {
            Value::Integer(i) => match u64::try_from(i) {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    self.error(&node.span, field, format!("must be {allowed}, found {i}"));
                    None
                }
            },
            _ => {
                self.wrong(node, field, &allowed);
                None
            }
        }
    }

    /// A duration string; `nonzero` refuses `0s`.
    pub fn duration(&mut self, node: &Node, field: &str, nonzero: bool) -> Option<Duration> {
        let Value::String(s) = &node.value else {
            self.wrong(node, field, DURATION);
            return None;
        };
        match units::duration(s) {
            Ok(d) if nonzero && d.is_zero() => {
                self.error(
                    &node.span,
                    field,
                    format!("must be longer than zero, found {s:?}"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(UnitError::TooLarge) => {
                self.error(&node.span, field, format!("is too long, found {s:?}"));
                None
            }
            Err(_) => {
                self.wrong(node, field, DURATION);
                None
            }
        }
    }

    /// A rate string in requests per second; `nonzero` refuses `0/s`.
    pub fn rate(&mut self, node: &Node, field: &str, nonzero: bool) -> Option<f64> {
        let Value::String(s) = &node.value else {
            self.wrong(node, field, RATE);
            return None;
        };
        match units::rate_per_s(s) {
            Ok(r) if nonzero && r == 0.0 => {
                self.error(
                    &node.span,
                    field,
                    format!("must be above zero, found {s:?}"),
                );
                None
            }
            Ok(r) => Some(r),
            Err(UnitError::Negative) => {
                self.error(
                    &node.span,
                    field,
                    format!("cannot be below zero; expected {RATE}, found {s:?}"),
                );
                None
            }
            Err(_) => {
                self.wrong(node, field, RATE);
                None
            }
        }
    }

    /// A percentage, as a fraction above 0 and at most `max` (below it,
    /// unless `inclusive`).
    pub fn share(&mut self, node: &Node, field: &str, max: f64, inclusive: bool) -> Option<f64> {
        let Value::String(s) = &node.value else {
            self.wrong(node, field, SHARE);
            return None;
        };
        match units::percent(s) {
            Ok(f) if f > 0.0 && (f < max || inclusive && f == max) => Some(f),
            Ok(_) => {
                let bound = if inclusive { "at most" } else { "below" };
                self.error(
                    &node.span,
                    field,
                    format!("must be above 0% and {bound} {}%, found {s:?}", max * 100.0),
                );
                None
            }
            Err(_) => {
                self.wrong(node, field, SHARE);
                None
            }
        }
    }

    /// A byte count: a whole number or a size like `"4KiB"`.
    pub fn size(&mut self, node: &Node, field: &str) -> Option<u64> {
        let expected = "a size like \"4KiB\" or a whole number of bytes";
        match &node.value {
            Value::Integer(i) => match u64::try_from(*i) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.wrong(node, field, expected);
                    None
                }
            },
            Value::String(s) => match units::size_bytes(s) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.wrong(node, field, expected);
                    None
                }
            },
            _ => {
                self.wrong(node, field, expected);
                None
            }
        }
    }

    /// A number above 1 (an integer or a float).
    pub fn factor(&mut self, node: &Node, field: &str) -> Option<f64> {
        let f = match node.value {
            Value::Integer(i) => i as f64,
            Value::Float(f) => f,
            _ => {
                self.wrong(node, field, "a number above 1, like 2 or 1.5");
                return None;
            }
        };
        if f.is_finite() && f > 1.0 {
            Some(f)
        } else {
            self.error(
                &node.span,
                field,
                format!(
                    "must be above 1, like 2 or 1.5, found {}",
                    node.value.found()
                ),
            );
            None
        }
    }

    /// A list of thresholds; each bad one is an error pointing into its
    /// string.
    pub fn thresholds(&mut self, node: &Node, field: &str) -> Vec<Threshold> {
        let Value::Array(items) = &node.value else {
            self.wrong(
                node,
                field,
                "a list of thresholds like [\"latency.p99 < 25ms\"]",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let Some(text) = self.string(item, &field, "a threshold like \"latency.p99 < 25ms\"")
            else {
                continue;
            };
            match threshold::parse(&text) {
                Ok(t) => out.push(t),
                Err(e) => {
                    let source = self.sources.text(item.span.origin);
                    let span = inner_span(item, &text, source, e.at);
                    self.error(&span, field, e.message);
                }
            }
        }
        out
    }
}

/// The span of bytes `at` of a string value, when the string is written
/// without escapes (so its bytes are the source's); the whole string
/// otherwise.
pub fn inner_span(node: &Node, text: &str, source: &str, at: std::ops::Range<usize>) -> Span {
    let r = &node.span.range;
    let written = source.get(r.clone()).unwrap_or("");
    let quoted = written.len() == text.len() + 2
        && (written.starts_with('"') || written.starts_with('\''))
        && written.get(1..written.len() - 1) == Some(text);
    if quoted {
        Span {
            origin: node.span.origin,
            range: r.start + 1 + at.start..r.start + 1 + at.end,
        }
    } else {
        node.span.clone()
    }
}
