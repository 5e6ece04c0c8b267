//! [`PlanError`]: an input that cannot run, named by its field.

/// An input that cannot run: the field, named as in [`PlanInput`](super::PlanInput) (`rate`,
/// `target`, `mix[1].path`, `headers[2]`), what is wrong with it and what is
/// allowed. Other fields the reason mentions are written in backticks
/// (`` `closed` ``), so a front end can put all of them in its own words.
///
/// Displays as `FIELD: REASON, got VALUE`, e.g.
/// `rate: must be above 0 and finite (requests per second), got -1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    field: String,
    reason: String,
    got: Option<String>,
}

impl PlanError {
    pub(super) fn new(field: impl Into<String>, reason: impl Into<String>) -> PlanError {
        PlanError {
            field: field.into(),
            reason: reason.into(),
            got: None,
        }
    }

    /// The offending value, as the field's display: numbers bare, strings
    /// quoted.
    pub(super) fn with_got(mut self, got: impl std::fmt::Display) -> PlanError {
        self.got = Some(got.to_string());
        self
    }

    /// The field path: `rate`, `target`, `mix[1].path`, `headers[2]`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong and what is allowed, without the value; other fields
    /// are named in backticks.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The offending value when one value is the problem (not for two
    /// fields that exclude each other): `-1`, `"ftp://x"`.
    pub fn got(&self) -> Option<&str> {
        self.got.as_deref()
    }

    /// The reason followed by the offending value: everything but the field.
    pub fn message(&self) -> String {
        match &self.got {
            Some(got) => format!("{}, got {got}", self.reason),
            None => self.reason.clone(),
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for PlanError {}
