//! What is wrong with a scenario, and how it is shown: a [`Diagnostic`]
//! names the field (`phase[1].rate`), says what is wrong and what is
//! allowed, and points at the value; [`Errors`] holds every diagnostic of
//! one file with the texts they point into, and displays each as
//! `FILE:LINE:COL: FIELD: MESSAGE` followed by the source line and a caret
//! (rendered by `annotate-snippets`).

use std::fmt;
use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use super::document::{Origin, Span};

/// One thing wrong with a scenario.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where the offending value (or the table missing a key) was written.
    pub span: Span,
    /// The field in the scenario's words: `phase[1].rate`, `server.backlog`,
    /// `thresholds[0]`; empty for a TOML syntax error.
    pub field: String,
    /// What is wrong; what is allowed.
    pub message: String,
}

impl Diagnostic {
    pub fn new(span: &Span, field: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span: span.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// `FIELD: MESSAGE`, or the message alone when there is no field.
    pub fn headline(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// The texts diagnostics point into: the scenario file (by the name it is
/// shown with) and each `--set KEY=VALUE` override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub file_name: String,
    pub file_text: String,
    pub sets: Vec<String>,
}

impl Sources {
    /// The text a span of `origin` points into.
    pub fn text(&self, origin: Origin) -> &str {
        self.get(origin).1
    }

    fn get(&self, origin: Origin) -> (&str, &str) {
        match origin {
            Origin::File => (&self.file_name, &self.file_text),
            Origin::Set(i) => ("--set", self.sets.get(i).map_or("", String::as_str)),
        }
    }
}

/// Every error found in one scenario, in the order of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errors {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
}

impl Errors {
    /// One `FILE:LINE:COL: FIELD: MESSAGE` line per diagnostic, without the
    /// snippets.
    pub fn headlines(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|d| {
                let (name, text) = self.sources.get(d.span.origin);
                let (line, col) = line_col(text, d.span.range.start);
                format!("{name}:{line}:{col}: {}", d.headline())
            })
            .collect()
    }
}

impl fmt::Display for Errors {
    /// Each headline followed by the source line and a caret under the
    /// value, as rustc shows its errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let renderer = Renderer::plain();
        for (d, headline) in self.diagnostics.iter().zip(self.headlines()) {
            writeln!(f, "{headline}")?;
            let (_, text) = self.sources.get(d.span.origin);
            let range = clamp(text, &d.span.range);
            let group = Group::with_level(Level::ERROR).element(
                Snippet::source(text)
                    .line_start(1)
                    .annotation(AnnotationKind::Primary.span(range)),
            );
            writeln!(f, "{}", renderer.render(&[group]))?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// `range` within `text`, on character boundaries, and on one line (a
/// caret under a multi-line table would show the whole table).
fn clamp(text: &str, range: &Range<usize>) -> Range<usize> {
    let start = floor_char_boundary(text, range.start.min(text.len()));
    let end = floor_char_boundary(text, range.end.clamp(start, text.len()));
    let end = text[start..end].find('\n').map_or(end, |i| start + i);
    start..end
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // "bé = " is five characters and six bytes.
        assert_eq!(line_col(text, 12), (2, 6));
        assert_eq!(line_col(text, 999), (3, 1));
    }
}
