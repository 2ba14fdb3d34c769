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

/// Milliseconds in one of each unit a duration may use.
const UNITS: [(&str, Millis); 6] =
    [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 7 * 86_400_000)];

/// Parses a duration such as `5m`, `4h`, `14d`, `1h30m`, `2w` or `500ms` into milliseconds.
///
/// Units are `ms`, `s`, `m` (minutes), `h`, `d` (24 hours) and `w`; months and years are refused because
/// their length depends on the date (use a date trait for those).
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let hint = "write a duration such as `30s`, `5m`, `4h`, `7d`, `2w` or `1h30m`";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("an empty duration; {hint}"));
    }
    let mut total: Millis = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; {hint}"));
        }
        let amount: Millis = rest[..digits].parse().map_err(|_| format!("`{text}` is too long a duration"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some((_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("`{unit}` in `{text}` is not a unit of time; {hint}"));
        };
        total = amount
            .checked_mul(*scale)
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| *ms <= MAX_DURATION)
            .ok_or_else(|| format!("`{text}` is longer than ten years"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Reads a configuration duration: whole seconds (`30`) or text as [`parse_duration`] reads it (`500ms`, `30s`,
/// `5m`, `1h30m`, `7d`). For `#[serde(deserialize_with = ...)]`.
pub fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::Seconds(s) => Ok(std::time::Duration::from_secs(s)),
        Raw::Text(t) => {
            parse_duration(&t).map(|ms| std::time::Duration::from_millis(ms as u64)).map_err(serde::de::Error::custom)
        }
    }
}

/// The longest duration accepted: ten years.
pub const MAX_DURATION: Millis = 3653 * 86_400_000;

/// Formats milliseconds the way [`parse_duration`] reads them, largest units first (`1h30m`).
pub fn format_duration(ms: Millis) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs() as i64;
    if ms < 0 {
        out.push('-');
    }
    for (name, scale) in UNITS.iter().rev() {
        if rest >= *scale {
            out.push_str(&format!("{}{name}", rest / scale));
            rest %= scale;
        }
    }
    out
}

/// A time zone by IANA name (`Asia/Ho_Chi_Minh`, `UTC`), from the time zone database compiled into Tutti.
pub fn zone(name: &str) -> Option<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(name).ok()
}

/// A local time of day, `HH:MM` in 24-hour form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

impl TimeOfDay {
    /// Parses `HH:MM` (`09:00`, `21:30`).
    pub fn parse(text: &str) -> Result<TimeOfDay, String> {
        let bad =
            || format!("`{text}` is not a time of day; write `HH:MM` in 24-hour form, such as `09:00` or `21:30`");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(TimeOfDay { hour, minute })
    }

    fn minutes(self) -> i64 {
        i64::from(self.hour) * 60 + i64::from(self.minute)
    }

    /// The first instant at or after `now` when the clock in `tz` reads this time. On a day when the time does
    /// not exist (a daylight-saving gap) it is the instant the clocks jump to.
    pub fn next_at_or_after(self, now: Millis, tz: &jiff::tz::TimeZone) -> Millis {
        let Ok(ts) = jiff::Timestamp::from_millisecond(now) else { return now };
        let local = ts.to_zoned(tz.clone());
        let mut date = local.date();
        for _ in 0..3 {
            let civil = date.at(self.hour as i8, self.minute as i8, 0, 0);
            if let Ok(z) = civil.to_zoned(tz.clone()) {
                let at = z.timestamp().as_millisecond();
                if at >= now {
                    return at;
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        now
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// If `now` falls in the daily window from `start` to `end` (local time in `tz`, which may run past midnight,
/// such as 21:00 to 08:00), the instant the window ends; otherwise `None`.
pub fn window_end(now: Millis, start: TimeOfDay, end: TimeOfDay, tz: &jiff::tz::TimeZone) -> Option<Millis> {
    let ts = jiff::Timestamp::from_millisecond(now).ok()?;
    let local = ts.to_zoned(tz.clone());
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let inside = if start.minutes() <= end.minutes() {
        minute >= start.minutes() && minute < end.minutes()
    } else {
        minute >= start.minutes() || minute < end.minutes()
    };
    inside.then(|| end.next_at_or_after(now, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print() {
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("14d"), Ok(14 * 86_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        for bad in ["", "5", "m", "5 minutes", "3mo", "-5m", "99999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_times_in_a_zone() {
        let hanoi = zone("Asia/Ho_Chi_Minh").unwrap();
        // 2026-11-22T14:00Z is 21:00 in Hanoi.
        let now = parse_timestamp("2026-11-22T14:00:00Z").unwrap();
        let nine = TimeOfDay::parse("09:00").unwrap();
        assert_eq!(nine.next_at_or_after(now, &hanoi), parse_timestamp("2026-11-23T02:00:00Z").unwrap());
        let quiet = window_end(now, TimeOfDay::parse("21:00").unwrap(), TimeOfDay::parse("08:00").unwrap(), &hanoi);
        assert_eq!(quiet, Some(parse_timestamp("2026-11-23T01:00:00Z").unwrap()));
        let noon = parse_timestamp("2026-11-22T05:00:00Z").unwrap();
        assert_eq!(
            window_end(noon, TimeOfDay::parse("21:00").unwrap(), TimeOfDay::parse("08:00").unwrap(), &hanoi),
            None
        );
        assert!(zone("Mars/Olympus").is_none());
        assert!(TimeOfDay::parse("24:00").is_err());
        assert!(TimeOfDay::parse("9").is_err());
    }

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
