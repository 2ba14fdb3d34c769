//! Time as the core sees it: milliseconds since the Unix epoch, passed in by the caller.

use std::str::FromStr;

/// Milliseconds since 1970-01-01T00:00:00Z. The core never reads a clock; callers pass `Millis` in.
pub type Millis = i64;

/// Parses an ISO-8601 / RFC 3339 timestamp such as `2026-11-22T10:00:00.123Z` or `...+07:00`.
///
/// Returns `None` for anything that is not a complete date-time with an offset. Segment clients always send an
/// offset; a date-time without one is ambiguous and refused rather than guessed.
pub fn parse_timestamp(text: &str) -> Option<Millis> {
    let ts = jiff::Timestamp::from_str(text.trim()).ok()?;
    Some(ts.as_millisecond())
}

/// Formats milliseconds as RFC 3339 in UTC with millisecond precision, e.g. `2026-11-22T10:00:00.123Z`.
pub fn format_timestamp(ms: Millis) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => String::from("invalid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_client_formats() {
        let z = parse_timestamp("2026-11-22T10:00:00.123Z").unwrap();
        assert_eq!(parse_timestamp("2026-11-22T17:00:00.123+07:00"), Some(z));
        assert_eq!(parse_timestamp("2026-11-22T10:00:00.123456+00:00"), Some(z));
        assert_eq!(format_timestamp(z), "2026-11-22T10:00:00.123Z");
        assert_eq!(parse_timestamp("2026-11-22T10:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
