//! Times as a person reads them: in the time zone they chose (the `tutti_zone` cookie, an IANA name such as
//! `Asia/Ho_Chi_Minh`), else UTC.

use axum::http::HeaderMap;
use jiff::tz::TimeZone;

/// The zone a person's pages show times in.
#[derive(Clone)]
pub struct Zone {
    name: String,
    zone: TimeZone,
}

impl Zone {
    pub fn of(headers: &HeaderMap) -> Zone {
        Zone::chosen(headers).unwrap_or_else(|| Zone { name: "UTC".into(), zone: TimeZone::UTC })
    }

    /// The zone the person chose, if they chose one the bundled database knows.
    pub fn chosen(headers: &HeaderMap) -> Option<Zone> {
        crate::sessions::cookie(headers, "tutti_zone").and_then(Zone::named)
    }

    /// The zone with this IANA name, if the bundled database knows it.
    pub fn named(name: &str) -> Option<Zone> {
        if name.len() > 64 {
            return None;
        }
        let zone = TimeZone::get(name).ok()?;
        Some(Zone { name: name.to_owned(), zone })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `2026-12-06 17:04:05 +07`, to the second.
    pub fn show(&self, ms: i64) -> String {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(ts) => ts.to_zoned(self.zone.clone()).strftime("%Y-%m-%d %H:%M:%S %:z").to_string(),
            Err(_) => String::from("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_shown_in_the_chosen_zone_and_an_unknown_zone_is_utc() {
        let noon_utc = 1_780_000_000_000 - 1_780_000_000_000 % 86_400_000 + 12 * 3_600_000;
        let hanoi = Zone::named("Asia/Ho_Chi_Minh").expect("a zone the bundle has");
        assert!(hanoi.show(noon_utc).ends_with("19:00:00 +07:00"), "{}", hanoi.show(noon_utc));
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "tutti_zone=Mars/Olympus".parse().unwrap());
        assert_eq!(Zone::of(&headers).name(), "UTC");
        assert!(Zone::of(&headers).show(noon_utc).ends_with("12:00:00 +00:00"));
    }
}
