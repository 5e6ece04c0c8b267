//! Scenario files (`scenarios/*.toml`): a run of phases with thresholds,
//! parsed and validated offline, before anything starts. Running a scenario
//! is not here.
//!
//! The text becomes a [`ScenarioFile`], the TOML document with a span on
//! every key and value (`document`), which `--set KEY=VALUE` overrides can
//! change ([`ScenarioFile::set`]); [`ScenarioFile::validate`] then gives a
//! [`Scenario`] (`model`) with units applied (`units`), thresholds parsed
//! (`threshold`) and every phase's load checked by the engine's own plan
//! validation, or every error at once as [`Errors`] (`diagnostic`), each
//! shown as `FILE:LINE:COL: FIELD: what is wrong; what is allowed` with the
//! source line and a caret. Nothing here resolves a name or connects.
//!
//! - `document`: the spanned TOML tree.
//! - `checker`: typed getters that collect diagnostics; `validate` (the
//!   top level, `[server]`, `[defaults]`) and `phase` (each `[[phase]]`)
//!   use them; `plan_check` runs each phase's load through the engine's
//!   plan validation.
//! - `set`: the `--set` overrides.
//! - `metric`: the metric names thresholds use.
//! - `suggest`: did-you-mean.

mod access;
mod checker;
pub mod diagnostic;
mod document;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod metric;
pub mod model;
mod phase;
mod plan_check;
mod set;
mod suggest;
pub mod threshold;
pub mod units;
mod validate;

use std::path::Path;

pub use diagnostic::{Diagnostic, Errors, Sources};
pub use document::{Origin, Span};
pub use model::{BacklogProbe, FindCapacity, LoadSettings, Phase, PhaseKind, Scenario};
pub use threshold::{Bound, Metric, Op, Stat, Threshold};

use document::Node;

/// A parsed scenario file: its text and the TOML document with every
/// value's span, plus the `--set` overrides applied so far. Not yet
/// validated.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    sources: Sources,
    root: Node,
}

impl ScenarioFile {
    /// Parses `text`, shown in messages as `name` (the path as given).
    /// Fails only on TOML syntax; what the keys mean is checked by
    /// [`ScenarioFile::validate`].
    pub fn parse(name: impl Into<String>, text: impl Into<String>) -> Result<ScenarioFile, Errors> {
        let sources = Sources {
            file_name: name.into(),
            file_text: text.into(),
            sets: Vec::new(),
        };
        match document::parse(&sources.file_text) {
            Ok(root) => Ok(ScenarioFile { sources, root }),
            Err(errors) => {
                let mut diagnostics: Vec<Diagnostic> = errors
                    .iter()
                    .map(|e| {
                        let span = Span {
                            origin: Origin::File,
                            range: e.span().unwrap_or(0..0),
                        };
                        let message = e.message().trim_end();
                        Diagnostic::new(&span, "", format!("invalid TOML: {message}"))
                    })
                    .collect();
                diagnostics.sort();
                Err(Errors {
                    diagnostics,
                    sources,
                })
            }
        }
    }

    /// Applies `--set KEY=VALUE` (`phase.capacity.max=200k/s`,
    /// `server.backlog=64`): the value replaces or adds that key. The value
    /// is a TOML value when it parses as one, a string otherwise. Only
    /// the key's path is checked here; the value is validated with the
    /// rest by [`ScenarioFile::validate`], its errors pointing into the
    /// override.
    pub fn set(&mut self, assignment: &str) -> Result<(), Errors> {
        let index = self.sources.sets.len();
        self.sources.sets.push(assignment.to_string());
        set::apply(&mut self.root, index, assignment).map_err(|d| Errors {
            sources: self.sources.clone(),
            diagnostics: vec![d],
        })
    }

    /// Validates the document into a [`Scenario`]; every error at once.
    pub fn validate(&self) -> Result<Scenario, Errors> {
        validate::validate(&self.root, &self.sources).map_err(|diagnostics| Errors {
            sources: self.sources.clone(),
            diagnostics,
        })
    }

    /// The texts the scenario was read from.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }
}

/// Parses `text` (shown as `name`), applies the `sets` overrides and
/// validates: every error of all three at once.
pub fn check(name: &str, text: &str, sets: &[String]) -> Result<Scenario, Errors> {
    let mut file = ScenarioFile::parse(name, text)?;
    let mut set_errors = Vec::new();
    for s in sets {
        if let Err(e) = file.set(s) {
            set_errors.extend(e.diagnostics);
        }
    }
    match file.validate() {
        Ok(scenario) if set_errors.is_empty() => Ok(scenario),
        Ok(_) => Err(Errors {
            sources: file.sources.clone(),
            diagnostics: set_errors,
        }),
        Err(mut e) => {
            e.diagnostics.extend(set_errors);
            e.diagnostics.sort();
            Err(e)
        }
    }
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Displays every error with its snippet.
    #[error("{0}")]
    Invalid(Errors),
}

/// Reads the scenario file at `path` and [`check`]s it; messages name the
/// file as `path` is written.
pub fn load(path: &Path, sets: &[String]) -> Result<Scenario, LoadError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: name.clone(),
        source,
    })?;
    check(&name, &text, sets).map_err(LoadError::Invalid)
}
