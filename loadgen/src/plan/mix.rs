//! A mix of request kinds as a scenario file or the command line writes it
//! ([`MixEntry`], with the command line's syntax), and the checks of its
//! entries and of request body sizes.

use serde::{Deserialize, Serialize};

use super::{PlanError, is_method, is_request_path};

/// One weighted request kind of a mix: in a scenario file
/// `{ weight = 8, method = "GET", path = "/" }`, with `body_bytes`
/// defaulting to 0; on the command line `8 GET /` ([`MixEntry::parse_list`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// The share of requests of this kind, relative to the other entries.
    pub weight: u32,
    pub method: String,
    /// The request target, starting with `/`.
    pub path: String,
    /// A request body of this many bytes (a pattern that depends on the seed).
    #[serde(default)]
    pub body_bytes: usize,
}

impl MixEntry {
    /// Parses the command line's mix: `WEIGHT METHOD PATH [BODY_BYTES]`
    /// entries separated by commas or newlines (a mix file has one entry per
    /// line), e.g. `8 GET /, 1 POST /echo 1024`. Blank entries are skipped;
    /// an entry's index in errors (`mix[1].weight`) counts the others. Only
    /// the syntax is checked here: the values are checked with the rest of
    /// the plan.
    pub fn parse_list(list: &str) -> Result<Vec<MixEntry>, PlanError> {
        list.split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, item)| MixEntry::parse(i, item))
            .collect()
    }

    fn parse(i: usize, item: &str) -> Result<MixEntry, PlanError> {
        let err = |field: &str, reason: &str, got: &str| {
            PlanError::new(format!("mix[{i}]{field}"), reason).with_got(format!("{got:?}"))
        };
        let words: Vec<&str> = item.split_whitespace().collect();
        if !(3..=4).contains(&words.len()) {
            return Err(err(
                "",
                "must be 'WEIGHT METHOD PATH [BODY_BYTES]', e.g. '1 POST /echo 1024'",
                item,
            ));
        }
        let weight = words[0]
            .parse()
            .map_err(|_| err(".weight", "must be a whole number, at least 1", words[0]))?;
        let body_bytes = match words.get(3) {
            Some(b) => b
                .parse()
                .map_err(|_| err(".body_bytes", "must be a byte count", b))?,
            None => 0,
        };
        Ok(MixEntry {
            weight,
            method: words[1].to_string(),
            path: words[2].to_string(),
            body_bytes,
        })
    }

    /// For the plan echo: `GET /bytes/10`, `POST /echo (1024 body bytes)`.
    pub(super) fn label(&self) -> String {
        let MixEntry {
            method,
            path,
            body_bytes,
            ..
        } = self;
        if *body_bytes > 0 {
            format!("{method} {path} ({body_bytes} body bytes)")
        } else {
            format!("{method} {path}")
        }
    }
}

/// The command line's syntax, which [`MixEntry::parse_list`] reads back:
/// `8 GET /`, `1 POST /echo 1024`.
impl std::fmt::Display for MixEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.weight, self.method, self.path)?;
        if self.body_bytes > 0 {
            write!(f, " {}", self.body_bytes)?;
        }
        Ok(())
    }
}

/// Checks the entries of a mix: weights of at least 1 that add up to a
/// `u32`, method tokens, and paths a request line can carry.
pub(super) fn check_mix(mix: &[MixEntry]) -> Result<(), PlanError> {
    if mix.is_empty() {
        return Err(PlanError::new("mix", "must have at least one entry"));
    }
    let mut total = 0u32;
    for (i, e) in mix.iter().enumerate() {
        let field = |name: &str| format!("mix[{i}].{name}");
        if e.weight == 0 {
            return Err(PlanError::new(field("weight"), "must be at least 1").with_got(0));
        }
        total = total.checked_add(e.weight).ok_or_else(|| {
            PlanError::new(
                field("weight"),
                format!("makes the weights add up to more than {}", u32::MAX),
            )
            .with_got(e.weight)
        })?;
        if !is_method(&e.method) {
            return Err(PlanError::new(
                field("method"),
                "must be an HTTP method token such as GET or POST",
            )
            .with_got(format!("{:?}", e.method)));
        }
        if !is_request_path(&e.path) {
            return Err(PlanError::new(
                field("path"),
                "must start with / and hold no spaces or control characters",
            )
            .with_got(format!("{:?}", e.path)));
        }
        check_body_bytes(&field("body_bytes"), e.body_bytes)?;
    }
    Ok(())
}

/// The largest request body a plan sends: the reference server's limit
/// (`floodgate_proto::Limits::max_body_bytes`), past which `/echo` answers
/// 413. Each request kind's bytes are prepared in memory before the run.
pub fn max_body_bytes() -> usize {
    floodgate_proto::Limits::default().max_body_bytes
}

pub(super) fn check_body_bytes(field: &str, body_bytes: usize) -> Result<(), PlanError> {
    let max = max_body_bytes();
    if body_bytes > max {
        return Err(PlanError::new(
            field,
            format!("must be at most {max} (the reference server's request body limit)"),
        )
        .with_got(body_bytes));
    }
    Ok(())
}
