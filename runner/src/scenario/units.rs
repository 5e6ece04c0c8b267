//! Quantities as people write them, the one parser for scenario files and
//! command-line flags alike: durations (`250ms`, `30s`, `2m`), rates
//! (`500/s`, `2k/s`, `1.5M/s`), shares (`1%`, `0.1%`) and sizes (`4KiB`).
//! A number without its unit is an error, not a guess (except where a
//! caller asks for [`duration_or_millis`]). The messages that name the
//! field belong to the callers; this module says only what went wrong.

use std::time::Duration;

/// Why a quantity did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitError {
    /// Not a number followed by one of the units allowed.
    Syntax,
    /// A negative quantity where none can be.
    Negative,
    /// Larger than the type holding it.
    TooLarge,
}

/// The units a duration may carry, longest suffix first so `ms` is not read
/// as `m` followed by garbage.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
];

/// A whole number with a unit: `ns`, `us`, `ms`, `s`, `m` or `h` (`500ms`,
/// `10s`, `2m`).
pub fn duration(text: &str) -> Result<Duration, UnitError> {
    parse_duration(text, false)
}

/// Like [`duration`], but a bare number means milliseconds
/// (`--accept-delay 5`).
pub fn duration_or_millis(text: &str) -> Result<Duration, UnitError> {
    parse_duration(text, true)
}

fn parse_duration(text: &str, bare_is_millis: bool) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') && trimmed.len() > 1 {
        return Err(UnitError::Negative);
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if number.is_empty() {
        return Err(UnitError::Syntax);
    }
    let nanos_per_unit = if unit.is_empty() && bare_is_millis {
        1_000_000
    } else {
        DURATION_UNITS
            .iter()
            .find(|(suffix, _)| *suffix == unit)
            .map(|(_, nanos)| *nanos)
            .ok_or(UnitError::Syntax)?
    };
    // Only digits are left, so the one way to fail is a number too large.
    let number: u64 = number.parse().map_err(|_| UnitError::TooLarge)?;
    number
        .checked_mul(nanos_per_unit)
        .map(Duration::from_nanos)
        .ok_or(UnitError::TooLarge)
}

/// A decimal number (`2`, `1.5`; no sign, no exponent) at the start of
/// `text`, and the rest.
fn decimal(text: &str) -> Result<(f64, &str), UnitError> {
    if text.starts_with('-') && text.len() > 1 {
        return Err(UnitError::Negative);
    }
    let int_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if int_end == 0 {
        return Err(UnitError::Syntax);
    }
    let mut end = int_end;
    if let Some(frac) = text[int_end..].strip_prefix('.') {
        let frac_len = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if frac_len == 0 {
            return Err(UnitError::Syntax);
        }
        end += 1 + frac_len;
    }
    let value: f64 = text[..end].parse().map_err(|_| UnitError::Syntax)?;
    if !value.is_finite() {
        return Err(UnitError::TooLarge);
    }
    Ok((value, &text[end..]))
}

/// A rate in events per second: a decimal number, an optional multiplier
/// `k` (thousand), `M` (million) or `G` (billion), then `/s`: `500/s`,
/// `2k/s`, `1.5M/s`. Zero is a rate; whether it is allowed is the caller's.
pub fn rate_per_s(text: &str) -> Result<f64, UnitError> {
    let (number, rest) = decimal(text.trim())?;
    let (multiplier, rest) = match rest.as_bytes().first() {
        Some(b'k') => (1e3, &rest[1..]),
        Some(b'M') => (1e6, &rest[1..]),
        Some(b'G') => (1e9, &rest[1..]),
        _ => (1.0, rest),
    };
    if rest != "/s" {
        return Err(UnitError::Syntax);
    }
    Ok(number * multiplier)
}

/// A share written as a percentage, given back as a fraction: `1%` is
/// 0.01, `0.1%` is 0.001. Whether more than 100% is allowed is the
/// caller's.
pub fn percent(text: &str) -> Result<f64, UnitError> {
    let (number, rest) = decimal(text.trim())?;
    if rest != "%" {
        return Err(UnitError::Syntax);
    }
    Ok(number / 100.0)
}

/// The units a size may carry, longest suffix first.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("B", 1),
];

/// A whole number of bytes with a unit: `B`, `KiB`, `MiB`, `GiB` (powers of
/// two) or `kB`, `MB`, `GB` (powers of ten): `512B`, `4KiB`.
pub fn size_bytes(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') && trimmed.len() > 1 {
        return Err(UnitError::Negative);
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if number.is_empty() {
        return Err(UnitError::Syntax);
    }
    let per_unit = SIZE_UNITS
        .iter()
        .find(|(suffix, _)| *suffix == unit)
        .map(|(_, n)| *n)
        .ok_or(UnitError::Syntax)?;
    let number: u64 = number.parse().map_err(|_| UnitError::TooLarge)?;
    number.checked_mul(per_unit).ok_or(UnitError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use UnitError::*;

    #[test]
    fn durations() {
        let table: &[(&str, Result<Duration, UnitError>)] = &[
            ("250ms", Ok(Duration::from_millis(250))),
            ("30s", Ok(Duration::from_secs(30))),
            ("2m", Ok(Duration::from_secs(120))),
            ("1h", Ok(Duration::from_secs(3600))),
            ("250us", Ok(Duration::from_micros(250))),
            ("7ns", Ok(Duration::from_nanos(7))),
            ("0ms", Ok(Duration::ZERO)),
            (" 10s ", Ok(Duration::from_secs(10))),
            ("10", Err(Syntax)),
            ("", Err(Syntax)),
            ("s", Err(Syntax)),
            ("fast", Err(Syntax)),
            ("1.5s", Err(Syntax)),
            ("10 sec", Err(Syntax)),
            ("10S", Err(Syntax)),
            ("-1s", Err(Negative)),
            ("99999999999999h", Err(TooLarge)),
            ("99999999999999999999999s", Err(TooLarge)),
        ];
        for (text, expected) in table {
            assert_eq!(duration(text), *expected, "{text:?}");
        }
        assert_eq!(duration_or_millis("5"), Ok(Duration::from_millis(5)));
        assert_eq!(duration_or_millis("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn rates() {
        let table: &[(&str, Result<f64, UnitError>)] = &[
            ("500/s", Ok(500.0)),
            ("2k/s", Ok(2_000.0)),
            ("1.5M/s", Ok(1_500_000.0)),
            ("1G/s", Ok(1e9)),
            ("0/s", Ok(0.0)),
            ("0.5/s", Ok(0.5)),
            ("500", Err(Syntax)),
            ("500/m", Err(Syntax)),
            ("2K/s", Err(Syntax)),
            ("fast", Err(Syntax)),
            ("1./s", Err(Syntax)),
            (".5/s", Err(Syntax)),
            ("1e3/s", Err(Syntax)),
            ("inf/s", Err(Syntax)),
            ("-5/s", Err(Negative)),
        ];
        for (text, expected) in table {
            assert_eq!(rate_per_s(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn percents() {
        let table: &[(&str, Result<f64, UnitError>)] = &[
            ("1%", Ok(0.01)),
            ("0.1%", Ok(0.001)),
            ("100%", Ok(1.0)),
            ("0%", Ok(0.0)),
            ("5", Err(Syntax)),
            ("5 %", Err(Syntax)),
            ("%", Err(Syntax)),
            ("-1%", Err(Negative)),
        ];
        for (text, expected) in table {
            assert_eq!(percent(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn sizes() {
        let table: &[(&str, Result<u64, UnitError>)] = &[
            ("4KiB", Ok(4096)),
            ("1MiB", Ok(1 << 20)),
            ("2GiB", Ok(2 << 30)),
            ("512B", Ok(512)),
            ("4kB", Ok(4000)),
            ("4KB", Ok(4000)),
            ("3MB", Ok(3_000_000)),
            ("4096", Err(Syntax)),
            ("4kib", Err(Syntax)),
            ("1.5KiB", Err(Syntax)),
            ("-1B", Err(Negative)),
            ("99999999999999999GiB", Err(TooLarge)),
        ];
        for (text, expected) in table {
            assert_eq!(size_bytes(text), *expected, "{text:?}");
        }
    }
}
