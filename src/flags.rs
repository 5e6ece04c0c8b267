//! Value parsers shared by the subcommands' flags: durations such as `10s`,
//! `500ms` or `2m`, parsed by the scenario files' own units module
//! (`floodgate_runner::scenario::units`), so a flag and a scenario file read
//! a quantity the same way. Flag definitions themselves live with each
//! subcommand. Also the byte escapes (`\r\n`, `\xNN`) of payload flags.

#![allow(
    dead_code,
    reason = "parsers are shared; not every subcommand uses each"
)]

use std::time::Duration;

use floodgate_runner::scenario::units::{self, UnitError};

/// Parses a whole number with a unit: `ns`, `us`, `ms`, `s`, `m` or `h`
/// (`500ms`, `10s`, `2m`). Use as a clap `value_parser`; clap names the flag
/// in front of the message.
pub fn duration(text: &str) -> Result<Duration, String> {
    units::duration(text).map_err(|e| message(e, text, ""))
}

/// Like [`duration`], but a bare number means milliseconds (`--accept-delay 5`).
pub fn duration_or_millis(text: &str) -> Result<Duration, String> {
    units::duration_or_millis(text)
        .map_err(|e| message(e, text, " (a bare number is milliseconds)"))
}

/// Parses `--start-at`: seconds since the Unix epoch (`1767225600`,
/// fractions allowed) or a UTC RFC 3339 time (`2026-01-01T00:00:00Z`).
pub fn instant(text: &str) -> Result<std::time::SystemTime, String> {
    let bad = || {
        format!(
            "expected seconds since the Unix epoch (e.g. 1767225600) or a UTC RFC 3339 time (e.g. 2026-01-01T00:00:00Z), got '{text}'"
        )
    };
    match text.parse::<f64>() {
        Ok(s) if (0.0..1e12).contains(&s) => Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(s)),
        Ok(_) => Err(bad()),
        Err(_) => humantime::parse_rfc3339(text).map_err(|_| bad()),
    }
}

/// Parses `--shard INDEX/COUNT`, from 0.
pub fn shard(text: &str) -> Result<floodgate_reports::scenario::Shard, String> {
    floodgate_reports::scenario::Shard::parse(text)
}

fn message(e: UnitError, text: &str, bare: &str) -> String {
    match e {
        UnitError::TooLarge => format!("duration '{text}' is too long"),
        UnitError::Syntax | UnitError::Negative => {
            format!("expected a duration like 500ms, 10s or 2m{bare}, got '{text}'")
        }
    }
}

/// Turns `\r`, `\n`, `\t`, `\\` and `\xNN` into bytes; anything else is literal.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b[i + 1], hex) {
                (b'r', _) => out.push(b'\r'),
                (b'n', _) => out.push(b'\n'),
                (b't', _) => out.push(b'\t'),
                (b'\\', _) => out.push(b'\\'),
                (b'x', Some(v)) => {
                    out.push(v);
                    i += 2;
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::unescape(r"PING\r\n"), b"PING\r\n");
        assert_eq!(super::unescape(r"\x00\x7f\\q\z"), b"\x00\x7f\\q\\z");
    }

    use super::*;

    #[test]
    fn start_at_is_unix_seconds_or_utc_rfc3339() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(instant("1767225600"), Ok(at));
        assert_eq!(instant("2026-01-01T00:00:00Z"), Ok(at));
        assert_eq!(instant("1767225600.5"), Ok(at + Duration::from_millis(500)));
        for bad in ["tomorrow", "-1", "NaN", "2026-01-01T00:00:00+02:00"] {
            assert!(instant(bad).is_err(), "{bad}");
        }
    }

    fn check(text: &str, expected: Result<Duration, &str>) {
        assert_eq!(duration(text), expected.map_err(str::to_string), "{text}");
    }

    #[test]
    fn durations_with_units() {
        check("500ms", Ok(Duration::from_millis(500)));
        check("10s", Ok(Duration::from_secs(10)));
        check("2m", Ok(Duration::from_secs(120)));
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
