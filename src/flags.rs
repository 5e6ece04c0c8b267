//! Value parsers shared by the subcommands' flags: durations such as `10s`,
//! `500ms` or `2m`. Flag definitions themselves live with each subcommand.

#![allow(
    dead_code,
    reason = "parsers are shared; not every subcommand uses each"
)]

use std::time::Duration;

/// The units a duration may carry, longest suffix first so `ms` is not read
/// as `m` followed by garbage.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
];

/// Parses a whole number with a unit: `ns`, `us`, `ms`, `s`, `m` or `h`
/// (`500ms`, `10s`, `2m`). Use as a clap `value_parser`; clap names the flag
/// in front of the message.
pub fn duration(text: &str) -> Result<Duration, String> {
    parse(text, false)
}

/// Like [`duration`], but a bare number means milliseconds (`--accept-delay 5`).
pub fn duration_or_millis(text: &str) -> Result<Duration, String> {
    parse(text, true)
}

fn parse(text: &str, bare_is_millis: bool) -> Result<Duration, String> {
    let expected = || {
        let bare = if bare_is_millis {
            " (a bare number is milliseconds)"
        } else {
            ""
        };
        format!("expected a duration like 500ms, 10s or 2m{bare}, got '{text}'")
    };
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let nanos_per_unit = if unit.is_empty() && bare_is_millis {
        1_000_000
    } else {
        UNITS
            .iter()
            .find(|(suffix, _)| *suffix == unit)
            .map(|(_, nanos)| *nanos)
            .ok_or_else(expected)?
    };
    number
        .checked_mul(nanos_per_unit)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("duration '{text}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<Duration, &str>) {
        assert_eq!(duration(text), expected.map_err(str::to_string), "{text}");
    }

    #[test]
    fn durations_with_units() {
        check("500ms", Ok(Duration::from_millis(500)));
        check("10s", Ok(Duration::from_secs(10)));
        check("2m", Ok(Duration::from_secs(120)));
        check("1h", Ok(Duration::from_secs(3600)));
        check("250us", Ok(Duration::from_micros(250)));
        check("0s", Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_what_is_expected() {
        let msg = |t: &str| format!("expected a duration like 500ms, 10s or 2m, got '{t}'");
        for text in ["x", "", "10", "s", "1.5s", "-1s", "10 sec", "10S"] {
            check(text, Err(&msg(text)));
        }
        check(
            "99999999999999h",
            Err("duration '99999999999999h' is too long"),
        );
    }

    #[test]
    fn bare_numbers_are_milliseconds_only_where_allowed() {
        assert_eq!(duration_or_millis("5"), Ok(Duration::from_millis(5)));
        assert_eq!(duration_or_millis("2s"), Ok(Duration::from_secs(2)));
        assert!(duration("5").is_err());
    }
}
