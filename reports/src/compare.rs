//! A run compared with its baseline, as data: one row per phase and
//! metric with the base and new figures, the change, its significance and
//! whether it counts as a regression. Computing it is
//! floodgate-runner's `compare`; rendering it is the renderers'.

use serde::{Deserialize, Serialize};

/// This run against one or more base runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The base reports, as given.
    pub base_files: Vec<String>,
    /// The smallest relative change that can count, e.g. 0.05.
    pub tolerance: f64,
    /// `fail` (a regression exits 5) or `warn` (it is reported only).
    pub mode: String,
    /// Some row is a regression.
    pub regression: bool,
    pub rows: Vec<ComparisonRow>,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
}

/// One phase's metric, base against new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub phase: String,
    /// `latency.p99`, `rate.achieved`, …
    pub metric: String,
    /// `ms`, `/s`, `%`.
    pub unit: String,
    /// The base figure (the median of the base runs' when there are several).
    pub base: f64,
    /// The lowest and highest of the base runs' figures, with several.
    pub base_min: Option<f64>,
    pub base_max: Option<f64>,
    pub new: f64,
    /// (new − base) / base; positive is worse for latency and errors,
    /// better for rates.
    pub change: f64,
    /// Two-sided Mann-Whitney U p-value over the per-interval samples.
    pub p_value: Option<f64>,
    pub regression: bool,
    /// Why it is, or is not, a regression, in words.
    pub why: String,
}
