//! Cron schedules for flow triggers: the five fields of crontab(5), evaluated in a time zone.
//!
//! `minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or
//! a comma list of those; months and weekdays also by their English three-letter names; weekday 0 and 7 are
//! Sunday. As in Vixie cron, when both day fields are restricted a day matches if either matches. Times that do
//! not exist in the zone (a daylight-saving gap) fire when the clocks jump forward.

use crate::time::Millis;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses a five-field expression, or says which field is wrong.
    pub fn parse(source: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = source.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "`{source}` has {} fields; a schedule has five: minute hour day-of-month month day-of-week, \
                 such as `0 9 * * 1` (Mondays at 09:00)",
                fields.len()
            ));
        }
        let minutes = field(fields[0], "minute", 0, 59, &[])?;
        let hours = field(fields[1], "hour", 0, 23, &[])?;
        let days = field(fields[2], "day of month", 1, 31, &[])?;
        let months = field(fields[3], "month", 1, 12, &MONTHS)?;
        let mut weekdays = field(fields[4], "day of week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Cron {
            source: source.to_owned(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_restricted: !fields[2].starts_with('*'),
            weekdays_restricted: !fields[4].starts_with('*'),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn day_matches(&self, date: jiff::civil::Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let by_day = self.days & (1 << date.day()) != 0;
        let by_weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }

    /// The first firing strictly after `after`, in `tz`; `None` if there is none within five years (such as
    /// `0 0 30 2 *`).
    pub fn next_after(&self, after: Millis, tz: &jiff::tz::TimeZone) -> Option<Millis> {
        let start = jiff::Timestamp::from_millisecond(after).ok()?.to_zoned(tz.clone());
        let mut date = start.date();
        for _ in 0..(5 * 366) {
            if self.day_matches(date) {
                for hour in 0..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    for minute in 0..60 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let civil = date.at(hour as i8, minute as i8, 0, 0);
                        let Ok(zoned) = civil.to_zoned(tz.clone()) else { continue };
                        let at = zoned.timestamp().as_millisecond();
                        if at > after {
                            return Some(at);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// One field as a bit set of the values it allows.
fn field(text: &str, name: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let value = |v: &str| -> Result<u32, String> {
        let lower = v.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + min);
        }
        let n: u32 = v.parse().map_err(|_| format!("`{v}` is not a valid {name} in `{text}`"))?;
        if n < min || n > max {
            return Err(format!("{name} {n} is out of range {min}-{max} in `{text}`"));
        }
        Ok(n)
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("`{s}` is not a step in `{text}`"))?;
                if step == 0 {
                    return Err(format!("a step of 0 in `{text}`"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step > 1 { max } else { v })
        };
        if low > high {
            return Err(format!("the range {low}-{high} runs backwards in `{text}`"));
        }
        let mut v = low;
        while v <= high {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_timestamp, zone};

    fn at(text: &str) -> Millis {
        parse_timestamp(text).unwrap()
    }

    #[test]
    fn next_firings_in_a_zone() {
        let hanoi = zone("Asia/Ho_Chi_Minh").unwrap();
        let mondays = Cron::parse("0 9 * * mon").unwrap();
        // Sunday 2026-11-22 21:00 in Hanoi; next Monday 09:00 local is 02:00Z.
        assert_eq!(mondays.next_after(at("2026-11-22T14:00:00Z"), &hanoi), Some(at("2026-11-23T02:00:00Z")));
        // Strictly after: firing time itself moves on a week.
        assert_eq!(mondays.next_after(at("2026-11-23T02:00:00Z"), &hanoi), Some(at("2026-11-30T02:00:00Z")));
        let every_quarter = Cron::parse("*/15 * * * *").unwrap();
        let utc = zone("UTC").unwrap();
        assert_eq!(every_quarter.next_after(at("2026-11-22T10:07:00Z"), &utc), Some(at("2026-11-22T10:15:00Z")));
        // Vixie semantics: the 1st of the month or any Friday.
        let either = Cron::parse("0 0 1 * 5").unwrap();
        assert_eq!(either.next_after(at("2026-11-22T00:00:00Z"), &utc), Some(at("2026-11-27T00:00:00Z")));
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(at("2026-11-22T00:00:00Z"), &utc), None);
        // Sunday as 7.
        assert_eq!(
            Cron::parse("0 0 * * 7").unwrap(),
            Cron { source: "0 0 * * 7".into(), ..Cron::parse("0 0 * * 0").unwrap() }
        );
    }

    #[test]
    fn daylight_saving_gap_fires_when_clocks_jump() {
        let ny = zone("America/New_York").unwrap();
        // 2026-03-08 02:30 does not exist in New York.
        let daily = Cron::parse("30 2 * * *").unwrap();
        let fired = daily.next_after(at("2026-03-08T05:00:00Z"), &ny).unwrap();
        assert_eq!(fired, at("2026-03-08T07:30:00Z"));
    }

    #[test]
    fn refuses_bad_fields_by_name() {
        for (source, text) in [
            ("0 9 * *", "five"),
            ("60 * * * *", "minute 60"),
            ("* 24 * * *", "hour 24"),
            ("* * 0 * *", "day of month 0"),
            ("* * * 13 *", "month 13"),
            ("* * * * 8", "day of week 8"),
            ("*/0 * * * *", "step of 0"),
            ("5-1 * * * *", "backwards"),
            ("x * * * *", "not a valid minute"),
        ] {
            let error = Cron::parse(source).unwrap_err();
            assert!(error.contains(text), "{source}: {error}");
        }
    }
}
