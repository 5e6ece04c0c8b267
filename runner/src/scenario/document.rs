//! The parsed TOML document with a span on every key and value: `toml`'s
//! document (`DeTable`, whose keys and values are `serde_spanned::Spanned`)
//! becomes a tree of [`Node`]s, and
//! `--set` overrides graft nodes of their own into it. What the keys mean is
//! not known here; `validate` reads the tree.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Where a value was written: in the scenario file, or in the `n`th
/// `--set KEY=VALUE` override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    File,
    Set(usize),
}

/// A byte range in the text of its [`Origin`]. Ordered as the text reads:
/// the file first, then each override.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub origin: Origin,
    pub range: Range<usize>,
}

impl Ord for Span {
    fn cmp(&self, other: &Span) -> std::cmp::Ordering {
        (self.origin, self.range.start, self.range.end).cmp(&(
            other.origin,
            other.range.start,
            other.range.end,
        ))
    }
}

impl PartialOrd for Span {
    fn partial_cmp(&self, other: &Span) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// A key of a table and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

/// A TOML value whose children carry their spans.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// Scenario files have no use for dates; kept so the message can say
    /// what was found.
    Datetime(String),
    Array(Vec<Node>),
    /// Keys in the order written.
    Table(Vec<(Key, Node)>),
}

impl Value {
    /// What the value is, for "found …" in messages: strings quoted,
    /// numbers bare, containers by kind.
    pub fn found(&self) -> String {
        match self {
            Value::String(s) => format!("{s:?}"),
            Value::Integer(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Datetime(d) => format!("the date {d}"),
            Value::Array(_) => "an array".to_string(),
            Value::Table(_) => "a table".to_string(),
        }
    }
}

impl Node {
    /// The value of `key` when this is a table that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Table(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses a scenario file's text into its root table, or gives every
/// syntax error `toml` finds.
pub fn parse(text: &str) -> Result<Node, Vec<toml::de::Error>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors);
    }
    let range = root.span();
    Ok(table_node(root.into_inner(), Origin::File, range, 0))
}

/// Parses the VALUE of `--set KEY=VALUE`: a TOML value when it is one
/// (`64`, `true`, `"x"`, `[1, 2]`), otherwise the text as a string, so
/// `200k/s` needs no quotes. `offset`: where `text` starts in the
/// override.
pub fn parse_value(text: &str, origin: Origin, offset: usize) -> Node {
    match DeValue::parse(text) {
        Ok(v) => {
            let range = v.span();
            node(v.into_inner(), origin, range, offset)
        }
        Err(_) => Node {
            span: Span {
                origin,
                range: offset..offset + text.len(),
            },
            value: Value::String(text.to_string()),
        },
    }
}

fn node(value: DeValue<'_>, origin: Origin, range: Range<usize>, offset: usize) -> Node {
    let span = Span {
        origin,
        range: range.start + offset..range.end + offset,
    };
    let value = match value {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Integer(i) => Value::Integer(
            i64::from_str_radix(i.as_str(), i.radix()).unwrap_or(if i.as_str().starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            }),
        ),
        DeValue::Float(f) => Value::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Boolean(b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| {
                    let r = item.span();
                    node(item.into_inner(), origin, r, offset)
                })
                .collect(),
        ),
        DeValue::Table(t) => return table_node(t, origin, range, offset),
    };
    Node { span, value }
}

fn table_node(table: DeTable<'_>, origin: Origin, range: Range<usize>, offset: usize) -> Node {
    let entries = table
        .into_iter()
        .map(|(k, v)| {
            let key_range = k.span();
            let key = Key {
                name: k.into_inner().into_owned(),
                span: Span {
                    origin,
                    range: key_range.start + offset..key_range.end + offset,
                },
            };
            let r = v.span();
            (key, node(v.into_inner(), origin, r, offset))
        })
        .collect();
    Node {
        span: Span {
            origin,
            range: range.start + offset..range.end + offset,
        },
        value: Value::Table(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_keeps_its_span() {
        let text = "a = 1\n[t]\nb = \"x\"\nc = [true, 2.5]\n";
        let root = parse(text).unwrap();
        let t = root.get("t").unwrap();
        let b = t.get("b").unwrap();
        assert_eq!(&text[b.span.range.clone()], "\"x\"");
        let Value::Array(items) = &t.get("c").unwrap().value else {
            panic!("an array")
        };
        assert_eq!(&text[items[1].span.range.clone()], "2.5");
        let Value::Table(entries) = &t.value else {
            panic!("a table")
        };
        assert_eq!(&text[entries[0].0.span.range.clone()], "b");
    }

    #[test]
    fn datetimes_are_values() {
        let root = parse("d = 1979-05-27\n").unwrap();
        assert_eq!(
            root.get("d").unwrap().value,
            Value::Datetime("1979-05-27".into())
        );
    }

    #[test]
    fn set_values_are_toml_or_strings() {
        let n = parse_value("64", Origin::Set(0), 10);
        assert_eq!(n.value, Value::Integer(64));
        assert_eq!(n.span.range, 10..12);
        let n = parse_value("200k/s", Origin::Set(1), 4);
        assert_eq!(n.value, Value::String("200k/s".into()));
        assert_eq!(n.span.range, 4..10);
        let n = parse_value("\"1s\"", Origin::Set(0), 0);
        assert_eq!(n.value, Value::String("1s".into()));
        assert_eq!(n.span.range, 0..4);
    }
}
