//! Numbers as goals write them: budgets with their currency ("50 million VND", "50 triệu", "50.000.000đ",
//! "5000万越南盾", "5万元", "$2,000") and timeframes ("two weeks", "2 tuần", "两周", "a month", "10 天").

use tutti_core::money::Money;

/// Number words in the three languages (and the Chinese numerals a goal uses for small counts).
const NUMBER_WORDS: &[(&str, f64)] = &[
    ("a", 1.0),
    ("an", 1.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("một", 1.0),
    ("hai", 2.0),
    ("ba", 3.0),
    ("bốn", 4.0),
    ("năm", 5.0),
    ("sáu", 6.0),
    ("bảy", 7.0),
    ("tám", 8.0),
    ("chín", 9.0),
    ("mười", 10.0),
    ("一", 1.0),
    ("两", 2.0),
    ("二", 2.0),
    ("三", 3.0),
    ("四", 4.0),
    ("五", 5.0),
    ("六", 6.0),
    ("七", 7.0),
    ("八", 8.0),
    ("九", 9.0),
    ("十", 10.0),
];

/// A number written with digits (thousands grouped by `,` or `.` as Vietnamese writes them, or a decimal
/// point) at the start of `text`: the value and how many bytes it took.
fn digits_at(text: &str) -> Option<(f64, usize)> {
    let bytes = text.as_bytes();
    let mut end = 0;
    while end < bytes.len() && (bytes[end].is_ascii_digit() || matches!(bytes[end], b',' | b'.' | b'_')) {
        end += 1;
    }
    while end > 0 && matches!(bytes[end - 1], b',' | b'.' | b'_') {
        end -= 1;
    }
    if end == 0 || !bytes[0].is_ascii_digit() {
        return None;
    }
    let raw = &text[..end];
    // Groups of three after every separator: thousands ("50.000.000", "30,000,000"); else a decimal point.
    let groups: Vec<&str> = raw.split([',', '.', '_']).collect();
    let thousands = groups.len() > 1 && groups[1..].iter().all(|g| g.len() == 3);
    let value =
        if thousands { groups.concat().parse().ok()? } else { raw.replace(',', ".").replace('_', "").parse().ok()? };
    Some((value, end))
}

/// A number at the start of `text`, in digits or in words: the value and the bytes it took.
fn number_at(text: &str) -> Option<(f64, usize)> {
    if let Some(found) = digits_at(text) {
        return Some(found);
    }
    let word_end = text.find(|c: char| !c.is_alphabetic()).unwrap_or(text.len());
    let word = &text[..word_end];
    if let Some((_, v)) = NUMBER_WORDS.iter().find(|(w, _)| *w == word) {
        return Some((*v, word_end));
    }
    // A Chinese numeral stands alone before its unit (两周, 三个月).
    let first = text.chars().next()?;
    NUMBER_WORDS
        .iter()
        .find(|(w, _)| w.chars().count() == 1 && w.starts_with(first) && !first.is_ascii())
        .map(|(_, v)| (*v, first.len_utf8()))
}

/// Multipliers written after a number.
const SCALES: &[(&str, f64)] = &[
    ("million", 1e6),
    ("mil", 1e6),
    ("m", 1e6),
    ("billion", 1e9),
    ("bn", 1e9),
    ("thousand", 1e3),
    ("k", 1e3),
    ("triệu", 1e6),
    ("tr", 1e6),
    ("tỷ", 1e9),
    ("tỉ", 1e9),
    ("nghìn", 1e3),
    ("ngàn", 1e3),
    ("亿", 1e8),
    ("万", 1e4),
    ("千", 1e3),
];

/// Currency words and marks, longest first where one contains another.
const CURRENCIES: &[(&str, &str)] = &[
    ("越南盾", "VND"),
    ("人民币", "CNY"),
    ("美元", "USD"),
    ("美金", "USD"),
    ("元", "CNY"),
    ("块", "CNY"),
    ("rmb", "CNY"),
    ("cny", "CNY"),
    ("yuan", "CNY"),
    ("vnd", "VND"),
    ("vnđ", "VND"),
    ("đồng", "VND"),
    ("dong", "VND"),
    ("đ", "VND"),
    ("usd", "USD"),
    ("dollars", "USD"),
    ("dollar", "USD"),
    ("sgd", "SGD"),
    ("eur", "EUR"),
];

/// A budget found in `text` (lower-cased): an amount next to a budget word or a currency. `default_currency`
/// is for an amount written without one (the goal's language decides it).
pub fn budget(text: &str, default_currency: &str) -> Option<(Money, bool)> {
    let anchors = ["budget", "ngân sách", "预算", "spend", "chi phí", "花费"];
    let mut best: Option<(Money, bool)> = None;
    for (i, _) in text.char_indices() {
        let prefix_sign = text[..i].trim_end().ends_with('$') || text[..i].trim_end().ends_with('¥');
        let Some((mut value, used)) = digits_at(&text[i..]) else { continue };
        // Inside a number already read ("1,5": not the 5 alone).
        let mut before = text[..i].chars().rev();
        let (b1, b2) = (before.next(), before.next());
        if b1.is_some_and(|c| c.is_ascii_digit())
            || (b1.is_some_and(|c| matches!(c, ',' | '.' | '_')) && b2.is_some_and(|c| c.is_ascii_digit()))
        {
            continue;
        }
        let mut rest = text[i + used..].trim_start();
        let mut money_scale = false;
        for (word, factor) in SCALES {
            if let Some(after) = rest.strip_prefix(word)
                && !after.starts_with(|c: char| c.is_alphabetic() && c.is_ascii() && *word != "tr")
            {
                value *= factor;
                rest = after.trim_start();
                // "15 triệu", "50 million": amounts of money even with no currency or budget word beside.
                money_scale = *factor >= 1e4;
                break;
            }
        }
        let mut currency = CURRENCIES.iter().find(|(w, _)| rest.starts_with(w)).map(|(_, c)| *c);
        if prefix_sign {
            currency = Some(if text[..i].trim_end().ends_with('$') { "USD" } else { "CNY" });
        }
        let near_anchor =
            anchors.iter().any(|a| text[..i].rfind(a).is_some_and(|at| text[at..i].chars().count() <= 16));
        if currency.is_none() && !near_anchor && !money_scale {
            continue;
        }
        let stated = currency.is_some();
        let currency = currency.unwrap_or(default_currency);
        let amount = serde_json::json!({"amount": value, "currency": currency});
        if let Ok(money) = Money::from_value(&amount)
            && best.as_ref().is_none_or(|(b, _)| money.micros > b.micros)
        {
            best = Some((money, stated));
        }
    }
    best
}

/// Units of time, in days.
const UNITS: &[(&str, u32)] = &[
    ("weeks", 7),
    ("week", 7),
    ("days", 1),
    ("day", 1),
    ("months", 30),
    ("month", 30),
    ("fortnight", 14),
    ("tuần", 7),
    ("ngày", 1),
    ("tháng", 30),
    ("个星期", 7),
    ("星期", 7),
    ("周", 7),
    ("天", 1),
    ("日", 1),
    ("个月", 30),
    ("月", 30),
];

/// A timeframe in `text` (lower-cased): a number of days, weeks or months. `None` when none is written.
pub fn timeframe(text: &str) -> Option<u32> {
    if text.contains("fortnight") {
        return Some(14);
    }
    for (i, _) in text.char_indices() {
        if i > 0 && text[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() && c.is_ascii()) {
            continue;
        }
        let Some((value, used)) = number_at(&text[i..]) else { continue };
        let rest = text[i + used..].trim_start();
        if let Some((_, days)) = UNITS.iter().find(|(u, _)| rest.starts_with(u)) {
            let total = (value * *days as f64).round();
            if (1.0..=365.0).contains(&total) {
                return Some(total as u32);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vnd(units: i64) -> Money {
        Money::new(units * 1_000_000, "VND")
    }

    #[test]
    fn budgets_in_three_languages() {
        let b = |t: &str, d: &str| budget(t, d).map(|(m, _)| m);
        assert_eq!(b("budget 50 million vnd, email and zalo", "USD"), Some(vnd(50_000_000)));
        assert_eq!(b("ngân sách 50 triệu, email và zalo", "VND"), Some(vnd(50_000_000)));
        assert_eq!(b("ngân sách 50tr", "VND"), Some(vnd(50_000_000)));
        assert_eq!(b("chi 50.000.000đ trong 2 tuần", "VND"), Some(vnd(50_000_000)));
        assert_eq!(b("预算5000万越南盾，邮件和zalo", "CNY"), Some(vnd(50_000_000)));
        assert_eq!(b("预算5万元", "CNY"), Some(Money::new(50_000 * 1_000_000, "CNY")));
        assert_eq!(b("a $2,000 budget", "VND"), Some(Money::new(2_000 * 1_000_000, "USD")));
        assert_eq!(b("budget of 30,000,000 vnd", "USD"), Some(vnd(30_000_000)));
        assert_eq!(b("email 2 weeks", "VND"), None, "a timeframe is no budget");
        assert_eq!(b("ngân sách 1,5 tỷ", "VND"), Some(vnd(1_500_000_000)));
    }

    #[test]
    fn timeframes_in_three_languages() {
        assert_eq!(timeframe("two weeks"), Some(14));
        assert_eq!(timeframe("over the next 3 weeks"), Some(21));
        assert_eq!(timeframe("a month"), Some(30));
        assert_eq!(timeframe("trong hai tuần"), Some(14));
        assert_eq!(timeframe("10 ngày"), Some(10));
        assert_eq!(timeframe("两周内"), Some(14));
        assert_eq!(timeframe("一个月"), Some(30));
        assert_eq!(timeframe("两个星期"), Some(14));
        assert_eq!(timeframe("budget 50 million"), None);
    }
}
