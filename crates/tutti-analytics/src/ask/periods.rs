//! Periods named in questions ("last month", "tháng trước", "上个月", "the past 90 days", "11月"), worked out in
//! the asker's time zone from the instant the question is asked. Text reaching here is lower-cased and, for
//! Vietnamese, without its tone marks (see [`super::fold`]).

use std::sync::LazyLock;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use regex::Regex;

use crate::query::Period;

/// A period found in a question, where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub at: usize,
    pub end: usize,
    pub period: Period,
    /// The period as the answer names it, in the question's language ("last month").
    pub name: String,
    /// The dates it covers, in words of the question's language.
    pub dates: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// What a phrase means, before it is worked out.
#[derive(Debug, Clone, Copy)]
enum Meaning {
    /// The current day, week... up to now.
    This(Unit),
    /// The one before the current.
    Last(Unit),
    /// The last `n` units up to now, the current one included.
    Recent(i64, Unit),
    /// A month of the year (1-12), of a year when given, else the latest one not in the future.
    Month(i8, Option<i16>),
    Year(i16),
}

struct Rule {
    re: Regex,
    read: fn(&regex::Captures<'_>) -> Option<Meaning>,
}

fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "day" | "days" | "ngay" | "天" | "日" => Unit::Day,
        "week" | "weeks" | "tuan" | "周" | "个星期" | "星期" | "个礼拜" => Unit::Week,
        "month" | "months" | "thang" | "个月" | "月" => Unit::Month,
        "quarter" | "quarters" | "quy" | "个季度" | "季度" => Unit::Quarter,
        "year" | "years" | "nam" | "年" => Unit::Year,
        _ => return None,
    })
}

fn count(cap: &regex::Captures<'_>, i: usize) -> Option<i64> {
    super::number(cap.get(i)?.as_str()).filter(|n| (1..=3660).contains(n))
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |re: &str, read: fn(&regex::Captures<'_>) -> Option<Meaning>| Rule {
        re: Regex::new(re).expect("a period pattern compiles"),
        read,
    };
    let n = r"(\d{1,4}|[a-z]+|[一二两三四五六七八九十百]+)";
    vec![
        // English: "the last 7 days", "past 3 months", "over 90 days", "in the previous 2 weeks".
        rule(
            &format!(
                r"\b(?:last|past|previous|over|in|within|recent)\s+(?:the\s+)?(?:last\s+|past\s+)?{n}\s+(days?|weeks?|months?|quarters?|years?)\b"
            ),
            |c| Some(Meaning::Recent(count(c, 1)?, unit(c.get(2)?.as_str())?)),
        ),
        // Vietnamese: "7 ngày qua", "30 ngày gần đây", "trong 3 tháng qua", "90 ngay vua qua".
        rule(
            &format!(
                r"(?:trong\s+)?{n}\s+(ngay|tuan|thang|quy|nam)\s+(?:qua|vua qua|gan day|gan nhat|truoc|tro lai day)"
            ),
            |c| Some(Meaning::Recent(count(c, 1)?, unit(c.get(2)?.as_str())?)),
        ),
        // Chinese: "过去7天", "最近30天", "近3个月", "过去两周".
        rule(
            &format!(r"(?:过去|最近|近|前)\s*{n}\s*(天|日|周|个星期|星期|个月|个季度|季度|年)"),
            |c| Some(Meaning::Recent(count(c, 1)?, unit(c.get(2)?.as_str())?)),
        ),
        rule(r"\b(?:today|so far today)\b|\bhom nay\b|今天|今日", |_| Some(Meaning::This(Unit::Day))),
        rule(r"\byesterday\b|\bhom qua\b|昨天|昨日", |_| Some(Meaning::Last(Unit::Day))),
        rule(r"\b(?:this|current)\s+(week|month|quarter|year)\b", |c| Some(Meaning::This(unit(c.get(1)?.as_str())?))),
        rule(r"\b(?:last|past|previous|prior)\s+(week|month|quarter|year)\b", |c| {
            Some(Meaning::Last(unit(c.get(1)?.as_str())?))
        }),
        rule(r"\b(tuan|thang|quy|nam)\s+(?:nay|hien tai)\b", |c| Some(Meaning::This(unit(c.get(1)?.as_str())?))),
        rule(r"\b(tuan|thang|quy)\s+(?:truoc|vua roi|roi)\b", |c| Some(Meaning::Last(unit(c.get(1)?.as_str())?))),
        rule(r"\bnam\s+(?:ngoai|truoc|roi)\b", |_| Some(Meaning::Last(Unit::Year))),
        rule(r"(?:本|这个|这|当)(周|星期|个星期|月|季度|个季度)|今年|本年", |c| {
            Some(Meaning::This(c.get(1).map(|m| unit(m.as_str())).unwrap_or(Some(Unit::Year))?))
        }),
        rule(r"(?:上一?个?)(周|星期|月|季度)|去年|上一年", |c| {
            Some(Meaning::Last(c.get(1).map(|m| unit(m.as_str())).unwrap_or(Some(Unit::Year))?))
        }),
        // A month by name or number: "November 2026", "in november", "tháng 11/2026", "tháng 11 năm 2026",
        // "2026年11月", "11月", "十一月".
        rule(
            r"\b(january|february|march|april|may|june|july|august|september|october|november|december)(?:\s*,?\s*(\d{4}))?\b",
            |c| {
                let name = c.get(1)?.as_str();
                let m = super::words::MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))? as i8 + 1;
                Some(Meaning::Month(m, c.get(2).and_then(|y| y.as_str().parse().ok())))
            },
        ),
        rule(r"\bthang\s+(\d{1,2})(?:\s*(?:/|-|nam)\s*(\d{4}))?\b", |c| {
            let m: i8 = c.get(1)?.as_str().parse().ok()?;
            Some(Meaning::Month(m, c.get(2).and_then(|y| y.as_str().parse().ok())))
        }),
        rule(r"(?:(\d{4})\s*年\s*)?(\d{1,2}|十[一二]?|[一二三四五六七八九])\s*月(?:份)?", |c| {
            let m = super::number(c.get(2)?.as_str())? as i8;
            Some(Meaning::Month(m, c.get(1).and_then(|y| y.as_str().parse().ok())))
        }),
        rule(r"(?:\bin\s+|\bnam\s+|\byear\s+)(\d{4})\b|(\d{4})\s*年", |c| {
            let y = c.get(1).or_else(|| c.get(2))?.as_str().parse().ok()?;
            Some(Meaning::Year(y))
        }),
    ]
});

/// Every period named in `text`, in the order written; overlapping finds keep the earlier-listed rule's.
pub fn find(text: &str, lang: &str, now: i64, tz: &TimeZone, zone_name: &str) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    for rule in RULES.iter() {
        for cap in rule.re.captures_iter(text) {
            let whole = cap.get(0).expect("group 0 is the match");
            if found.iter().any(|f| whole.start() < f.end && f.at < whole.end()) {
                continue;
            }
            let Some(meaning) = (rule.read)(&cap) else { continue };
            if let Some((period, name, dates)) = work_out(meaning, lang, now, tz, zone_name) {
                found.push(Found { at: whole.start(), end: whole.end(), period, name, dates });
            }
        }
    }
    found.sort_by_key(|f| f.at);
    found
}

/// The period used when a question names none: the last 30 days.
pub fn default_period(lang: &str, now: i64, tz: &TimeZone, zone_name: &str) -> Option<(Period, String, String)> {
    work_out(Meaning::Recent(30, Unit::Day), lang, now, tz, zone_name)
}

fn start(d: Date, tz: &TimeZone) -> Option<i64> {
    Some(d.to_zoned(tz.clone()).ok()?.timestamp().as_millisecond())
}

fn first_of(d: Date, u: Unit) -> Option<Date> {
    Some(match u {
        Unit::Day => d,
        Unit::Week => d.checked_sub(jiff::Span::new().days(i64::from(d.weekday().since(Weekday::Monday)))).ok()?,
        Unit::Month => d.first_of_month(),
        Unit::Quarter => Date::new(d.year(), (d.month() - 1) / 3 * 3 + 1, 1).ok()?,
        Unit::Year => Date::new(d.year(), 1, 1).ok()?,
    })
}

fn step(d: Date, u: Unit, n: i64) -> Option<Date> {
    let span = match u {
        Unit::Day => jiff::Span::new().days(n),
        Unit::Week => jiff::Span::new().weeks(n),
        Unit::Month => jiff::Span::new().months(n),
        Unit::Quarter => jiff::Span::new().months(3 * n),
        Unit::Year => jiff::Span::new().years(n),
    };
    d.checked_add(span).ok()
}

fn rfc(ms: i64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

fn work_out(m: Meaning, lang: &str, now: i64, tz: &TimeZone, zone_name: &str) -> Option<(Period, String, String)> {
    let today = jiff::Timestamp::from_millisecond(now).ok()?.to_zoned(tz.clone()).date();
    let (from_day, to_day, up_to_now) = match m {
        Meaning::This(u) => (first_of(today, u)?, today.tomorrow().ok()?, true),
        Meaning::Last(u) => {
            let this = first_of(today, u)?;
            (step(this, u, -1)?, this, false)
        }
        Meaning::Recent(n, u) => {
            let from = match u {
                Unit::Day => step(today, u, -(n - 1))?,
                _ => step(today.tomorrow().ok()?, u, -n)?,
            };
            (from, today.tomorrow().ok()?, true)
        }
        Meaning::Month(month, year) => {
            if !(1..=12).contains(&month) {
                return None;
            }
            let year = year.unwrap_or_else(|| if month > today.month() { today.year() - 1 } else { today.year() });
            let first = Date::new(year, month, 1).ok()?;
            (first, first.last_of_month().tomorrow().ok()?, false)
        }
        Meaning::Year(y) => {
            if !(1970..=2200).contains(&y) {
                return None;
            }
            (Date::new(y, 1, 1).ok()?, Date::new(y + 1, 1, 1).ok()?, false)
        }
    };
    let from = start(from_day, tz)?;
    let mut to = start(to_day, tz)?;
    if up_to_now {
        // Up to now, rounded up to the whole second the instant is written in, so this second's events count.
        to = to.min(now.max(from + 1).div_euclid(1000) * 1000 + if now.rem_euclid(1000) == 0 { 0 } else { 1000 });
    }
    let last_day = to_day.yesterday().ok()?;
    let name = name_of(m, lang);
    let dates = super::words::date_range(lang, from_day, last_day, zone_name);
    Some((Period { from: rfc(from, tz), to: rfc(to, tz), label: Some(name.clone()) }, name, dates))
}

fn name_of(m: Meaning, lang: &str) -> String {
    let unit_word = |u: Unit, plural: bool| -> &'static str {
        match (lang, u, plural) {
            ("vi", Unit::Day, _) => "ngày",
            ("vi", Unit::Week, _) => "tuần",
            ("vi", Unit::Month, _) => "tháng",
            ("vi", Unit::Quarter, _) => "quý",
            ("vi", Unit::Year, _) => "năm",
            ("zh", Unit::Day, _) => "天",
            ("zh", Unit::Week, _) => "周",
            ("zh", Unit::Month, _) => "个月",
            ("zh", Unit::Quarter, _) => "个季度",
            ("zh", Unit::Year, _) => "年",
            (_, Unit::Day, p) => {
                if p {
                    "days"
                } else {
                    "day"
                }
            }
            (_, Unit::Week, p) => {
                if p {
                    "weeks"
                } else {
                    "week"
                }
            }
            (_, Unit::Month, p) => {
                if p {
                    "months"
                } else {
                    "month"
                }
            }
            (_, Unit::Quarter, p) => {
                if p {
                    "quarters"
                } else {
                    "quarter"
                }
            }
            (_, Unit::Year, p) => {
                if p {
                    "years"
                } else {
                    "year"
                }
            }
        }
    };
    match (lang, m) {
        ("vi", Meaning::This(Unit::Day)) => "hôm nay".into(),
        ("vi", Meaning::Last(Unit::Day)) => "hôm qua".into(),
        ("vi", Meaning::This(u)) => format!("{} này", unit_word(u, false)),
        ("vi", Meaning::Last(Unit::Year)) => "năm ngoái".into(),
        ("vi", Meaning::Last(u)) => format!("{} trước", unit_word(u, false)),
        ("vi", Meaning::Recent(n, u)) => format!("{n} {} qua", unit_word(u, true)),
        ("vi", Meaning::Month(mo, _)) => format!("tháng {mo}"),
        ("vi", Meaning::Year(y)) => format!("năm {y}"),
        ("zh", Meaning::This(Unit::Day)) => "今天".into(),
        ("zh", Meaning::Last(Unit::Day)) => "昨天".into(),
        ("zh", Meaning::This(Unit::Year)) => "今年".into(),
        ("zh", Meaning::Last(Unit::Year)) => "去年".into(),
        ("zh", Meaning::This(Unit::Month)) => "本月".into(),
        ("zh", Meaning::Last(Unit::Month)) => "上个月".into(),
        ("zh", Meaning::This(Unit::Week)) => "本周".into(),
        ("zh", Meaning::Last(Unit::Week)) => "上周".into(),
        ("zh", Meaning::This(_)) => "本季度".into(),
        ("zh", Meaning::Last(_)) => "上季度".into(),
        ("zh", Meaning::Recent(n, u)) => format!("过去{n}{}", unit_word(u, true)),
        ("zh", Meaning::Month(mo, _)) => format!("{mo}月"),
        ("zh", Meaning::Year(y)) => format!("{y}年"),
        (_, Meaning::This(Unit::Day)) => "today".into(),
        (_, Meaning::Last(Unit::Day)) => "yesterday".into(),
        (_, Meaning::This(u)) => format!("this {}", unit_word(u, false)),
        (_, Meaning::Last(u)) => format!("last {}", unit_word(u, false)),
        (_, Meaning::Recent(n, u)) => format!("the last {n} {}", unit_word(u, n != 1)),
        (_, Meaning::Month(mo, _)) => super::words::MONTHS[(mo - 1) as usize].to_owned(),
        (_, Meaning::Year(y)) => y.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, lang: &str) -> Vec<(String, String)> {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").unwrap();
        // Sunday 6 December 2026, 10:00 in Ho Chi Minh City.
        let now = tutti_core::time::parse_timestamp("2026-12-06T10:00:00+07:00").unwrap();
        find(text, lang, now, &tz, "Asia/Ho_Chi_Minh").into_iter().map(|f| (f.period.from, f.period.to)).collect()
    }

    #[test]
    fn the_same_period_in_three_languages() {
        let november = vec![("2026-11-01T00:00:00+07:00".to_owned(), "2026-12-01T00:00:00+07:00".to_owned())];
        assert_eq!(at("revenue last month", "en"), november);
        assert_eq!(at("doanh thu thang truoc", "vi"), november);
        assert_eq!(at("上个月的收入", "zh"), november);
        assert_eq!(at("sales in november", "en"), november);
        assert_eq!(at("thang 11/2026", "vi"), november);
        assert_eq!(at("2026年11月", "zh"), november);
        assert_eq!(at("十一月", "zh"), november);
    }

    #[test]
    fn recent_spans_include_today_up_to_now() {
        let seven = at("the last 7 days", "en");
        assert_eq!(seven[0].0, "2026-11-30T00:00:00+07:00");
        assert_eq!(seven[0].1, "2026-12-06T10:00:00+07:00");
        assert_eq!(at("7 ngay qua", "vi"), seven);
        assert_eq!(at("过去七天", "zh"), seven);
        assert_eq!(at("over 90 days", "en")[0].0, "2026-09-08T00:00:00+07:00");
        assert_eq!(at("this week", "en")[0].0, "2026-11-30T00:00:00+07:00", "weeks start on Monday");
        assert_eq!(
            at("last week", "en")[0],
            ("2026-11-23T00:00:00+07:00".to_owned(), "2026-11-30T00:00:00+07:00".to_owned())
        );
        assert_eq!(at("quý trước".to_owned().as_str(), "vi"), vec![]);
        assert_eq!(at("quy truoc", "vi")[0].0, "2026-07-01T00:00:00+07:00");
        assert_eq!(at("去年", "zh")[0].0, "2025-01-01T00:00:00+07:00");
        assert_eq!(at("this month vs last month", "en").len(), 2);
    }
}
