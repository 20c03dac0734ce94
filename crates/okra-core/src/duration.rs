//! Durations as a cell spec writes them: `30s`, `5m`, `1h30m`, `500ms`.
//!
//! [`parse_duration`] reads the forms [`humantime`] reads (`1h30m`, `1h 30m`, `90min`, `1.5h`, …)
//! and refuses what a spec should never hold: an empty string, a number without a unit, a
//! negative duration, and anything longer than 365 days, since a Step Functions standard
//! execution lasts at most a year. [`format_duration`] writes the compact form back.

use std::time::Duration;

/// The longest duration a spec may hold: 365 days, the most a Step Functions execution lasts.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty or blank.
    #[error("a duration must not be empty; write one such as 30s, 5m or 1h30m")]
    Empty,
    /// A bare number, such as `30`.
    #[error("`{0}` has no unit; write one such as {0}s, {0}m or {0}h")]
    MissingUnit(String),
    /// A negative duration, such as `-5m`.
    #[error("`{0}` is negative; a duration must be 0 or more")]
    Negative(String),
    /// Not a duration at all.
    #[error("`{input}` is not a duration ({reason}); write one such as 30s, 5m or 1h30m")]
    Invalid {
        /// The string as given.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// Longer than [`MAX_DURATION`].
    #[error("`{0}` is longer than 365 days, the longest a Step Functions execution lasts")]
    TooLong(String),
}

/// Parses a duration such as `30s`, `5m`, `1h`, `1h30m`, `500ms` or `0s`.
///
/// # Errors
///
/// [`DurationError`] for an empty string, a number without a unit (`30`), a negative duration
/// (`-5m`), an unknown unit, or a duration over 365 days.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(s.to_string()));
    }
    if trimmed.bytes().any(|b| b.is_ascii_digit())
        && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(DurationError::MissingUnit(trimmed.to_string()));
    }
    let d = match humantime::parse_duration(trimmed) {
        Ok(d) => d,
        Err(humantime::DurationError::NumberOverflow) => {
            return Err(DurationError::TooLong(s.to_string()));
        }
        Err(humantime::DurationError::UnknownUnit { unit, .. }) if unit.is_empty() => {
            return Err(DurationError::MissingUnit(trimmed.to_string()));
        }
        Err(e) => {
            return Err(DurationError::Invalid {
                input: s.to_string(),
                reason: e.to_string(),
            });
        }
    };
    if d > MAX_DURATION {
        return Err(DurationError::TooLong(s.to_string()));
    }
    Ok(d)
}

/// Writes a duration in the compact form [`parse_duration`] reads back: `1h30m`, `500ms`, `2d`,
/// `0s`.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    if d.is_zero() {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut secs = d.as_secs();
    for (unit, size) in UNITS {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    let nanos = d.subsec_nanos();
    for (unit, n) in [
        ("ms", nanos / 1_000_000),
        ("us", nanos / 1_000 % 1_000),
        ("ns", nanos % 1_000),
    ] {
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_duration("30s"), Ok(secs(30)));
        assert_eq!(parse_duration("5m"), Ok(secs(300)));
        assert_eq!(parse_duration("1h"), Ok(secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Ok(secs(7 * 86_400)));
        assert_eq!(parse_duration(" 10m "), Ok(secs(600)));
    }

    #[test]
    fn accepts_exactly_365_days() {
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("8760h"), Ok(MAX_DURATION));
    }

    #[test]
    fn refuses_over_365_days() {
        assert_eq!(
            parse_duration("366d"),
            Err(DurationError::TooLong("366d".into()))
        );
        assert_eq!(
            parse_duration("365d1s"),
            Err(DurationError::TooLong("365d1s".into()))
        );
        // humantime's year is 365.25 days.
        assert_eq!(
            parse_duration("1y"),
            Err(DurationError::TooLong("1y".into()))
        );
        assert!(matches!(
            parse_duration("99999999999999999999999h"),
            Err(DurationError::TooLong(_) | DurationError::Invalid { .. })
        ));
    }

    #[test]
    fn refuses_bare_numbers() {
        assert_eq!(
            parse_duration("30"),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert_eq!(
            parse_duration("0"),
            Err(DurationError::MissingUnit("0".into()))
        );
        assert_eq!(
            parse_duration("1.5"),
            Err(DurationError::MissingUnit("1.5".into()))
        );
        assert_eq!(
            parse_duration("1h 30"),
            Err(DurationError::MissingUnit("1h 30".into()))
        );
    }

    #[test]
    fn refuses_negative_and_empty() {
        assert_eq!(
            parse_duration("-5m"),
            Err(DurationError::Negative("-5m".into()))
        );
        assert_eq!(
            parse_duration(" -1s"),
            Err(DurationError::Negative(" -1s".into()))
        );
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("   "), Err(DurationError::Empty));
    }

    #[test]
    fn refuses_garbage() {
        for s in ["5 parsecs", "m5", "five minutes", "5m!", "1h-30m", "PT5M"] {
            assert!(
                matches!(parse_duration(s), Err(DurationError::Invalid { .. })),
                "{s}: {:?}",
                parse_duration(s)
            );
        }
    }

    #[test]
    fn error_messages_help() {
        assert_eq!(
            parse_duration("30").unwrap_err().to_string(),
            "`30` has no unit; write one such as 30s, 30m or 30h"
        );
        assert_eq!(
            parse_duration("400d").unwrap_err().to_string(),
            "`400d` is longer than 365 days, the longest a Step Functions execution lasts"
        );
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(secs(30)), "30s");
        assert_eq!(format_duration(secs(300)), "5m");
        assert_eq!(format_duration(secs(5400)), "1h30m");
        assert_eq!(format_duration(secs(86_400 + 1)), "1d1s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::new(0, 1_001)), "1us1ns");
        assert_eq!(format_duration(MAX_DURATION), "365d");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(s in 0u64..=MAX_DURATION.as_secs(), n in 0u32..1_000_000_000) {
            let d = Duration::new(s, n).min(MAX_DURATION);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration(&s);
        }
    }
}
