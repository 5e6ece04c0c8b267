//! A find-capacity phase's SLO as the scenario states it: its terms, read
//! from the scenario text the report echoes (the phase's `slo` list), and
//! the p99 limit among them that the capacity chart draws as a line. When
//! the text does not say (an edited report), the steps' `why` may name it.

use floodgate_reports::scenario::{PhaseReport, ScenarioReport};

/// The `slo` terms of the phase named `phase`, as written; empty when the
/// scenario text does not parse or has none.
pub fn terms(report: &ScenarioReport, phase: &str) -> Vec<String> {
    let Ok(doc) = report.scenario.text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let phases = doc.get("phase").and_then(|p| p.as_array());
    phases
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_table())
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(phase))
        .and_then(|p| p.get("slo"))
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// The `latency.p99 < LIMIT` of the phase's SLO (or, failing that, of a
/// step's `why`), in milliseconds.
pub fn p99_limit_ms(report: &ScenarioReport, phase: &PhaseReport) -> Option<f64> {
    let whys = phase
        .capacity
        .iter()
        .flat_map(|c| &c.steps)
        .filter_map(|s| s.why.clone());
    terms(report, &phase.name)
        .into_iter()
        .chain(whys)
        .find_map(|t| p99_limit_in(&t))
}

/// The limit of the first `latency.p99 <` or `<=` in `text`, in ms.
fn p99_limit_in(text: &str) -> Option<f64> {
    let rest = text.split("latency.p99").nth(1)?.trim_start();
    let rest = rest
        .strip_prefix("<=")
        .or_else(|| rest.strip_prefix('<'))?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let value: f64 = rest[..end].parse().ok()?;
    let unit = rest[end..].trim_start();
    let scale = if unit.starts_with("ms") {
        1.0
    } else if unit.starts_with("us") || unit.starts_with("µs") {
        0.001
    } else if unit.starts_with('s') {
        1000.0
    } else {
        return None;
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p99_limit_reads_in_any_unit() {
        assert_eq!(p99_limit_in("latency.p99 < 10ms"), Some(10.0));
        assert_eq!(p99_limit_in("latency.p99 <= 1.5s"), Some(1500.0));
        assert_eq!(p99_limit_in("latency.p99 < 500us"), Some(0.5));
        assert_eq!(
            p99_limit_in("errors < 1%, latency.p99 < 25ms measured 31 ms"),
            Some(25.0)
        );
        assert_eq!(p99_limit_in("latency.p50 < 10ms"), None);
        assert_eq!(p99_limit_in("latency.p99 > 10ms"), None);
    }
}
