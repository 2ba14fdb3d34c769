//! Reading a goal: its shape (win back, nurture, promote, cart recovery, announce, upsell), its audience
//! (VIPs, a city, repeat buyers), its channels, budget, timeframe and holdout, in Vietnamese, Chinese and
//! English. Phrases are matched on lower-cased NFC text at word boundaries where words have them; Vietnamese
//! also matches text typed without tone marks. What a goal leaves out is left `None` here and decided, with an
//! assumption said, by the planner.

pub mod amounts;
pub mod words;

use tutti_ai::text::{self, Language};
use tutti_core::money::Money;

use crate::plan::Shape;

/// What a goal says.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub language: Language,
    /// The shapes named, in the order of [`words::SHAPES`] (the planner takes the first, `Promote` last).
    pub shapes: Vec<Shape>,
    pub vip: bool,
    /// A city named, by its canonical name.
    pub city: Option<String>,
    /// "Bought at least N times".
    pub repeat: Option<u32>,
    pub channels: Vec<String>,
    /// The budget, and whether its currency was written (else the language's).
    pub budget: Option<(Money, bool)>,
    pub days: Option<u32>,
    pub no_holdout: bool,
    /// A share written as the holdout ("holdout 20%").
    pub holdout: Option<f64>,
}

/// A goal prepared for matching.
pub(crate) struct Text {
    lower: String,
    folded: Option<String>,
}

impl Text {
    pub(crate) fn new(goal: &str) -> Text {
        let lower = text::nfc(goal).to_lowercase();
        let folded = (!text::has_diacritics(&lower)).then(|| text::fold(&lower));
        Text { lower, folded }
    }

    /// Whether `phrase` is in the goal, as a whole word where it is written in Latin letters.
    pub(crate) fn has(&self, phrase: &str) -> bool {
        let phrase = text::nfc(phrase).to_lowercase();
        if found(&self.lower, &phrase) {
            return true;
        }
        match &self.folded {
            Some(folded) => found(folded, &text::fold(&phrase)),
            None => false,
        }
    }

    pub(crate) fn any(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.has(p))
    }

    pub(crate) fn lower(&self) -> &str {
        &self.lower
    }
}

fn found(hay: &str, phrase: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() && !is_han(c);
    let mut from = 0;
    while let Some(at) = hay[from..].find(phrase) {
        let start = from + at;
        let end = start + phrase.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let glued = |edge: Option<char>, inner: Option<char>| edge.is_some_and(word) && inner.is_some_and(word);
        if !glued(before, phrase.chars().next()) && !glued(after, phrase.chars().next_back()) {
            return true;
        }
        from = start + phrase.chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF)
}

/// The currency a budget written without one is in: Vietnamese goals in dong, Chinese in yuan, others in
/// dollars.
pub fn language_currency(language: Language) -> &'static str {
    match language {
        Language::Vi => "VND",
        Language::Zh => "CNY",
        _ => "USD",
    }
}

/// Reads what the goal says; nothing is assumed here.
pub fn read(goal: &str) -> Reading {
    let t = Text::new(goal);
    let language = match text::detect(goal) {
        Language::Other => Language::En,
        l => l,
    };
    let shapes = words::SHAPES.iter().filter(|(_, phrases)| t.any(phrases)).map(|(s, _)| *s).collect();
    let city = words::PLACES.iter().find(|(_, spellings)| t.any(spellings)).map(|(c, _)| (*c).to_owned());
    let channels = words::CHANNELS.iter().filter(|c| t.any(c.words)).map(|c| c.name.to_owned()).collect();
    let repeat = t.any(words::REPEAT).then(|| repeat_count(t.lower()).unwrap_or(2));
    Reading {
        language,
        shapes,
        vip: t.any(words::VIP),
        city,
        repeat,
        channels,
        budget: amounts::budget(t.lower(), language_currency(language)),
        days: amounts::timeframe(t.lower()),
        no_holdout: t.any(words::NO_HOLDOUT),
        holdout: holdout_share(t.lower()),
    }
}

/// The count in "bought at least 3 times", "mua từ 3 lần", "至少购买3次"; "twice" is 2.
fn repeat_count(lower: &str) -> Option<u32> {
    for (marker, after) in [("at least ", true), ("từ ", true), ("ít nhất ", true), ("至少购买", true), ("买过", true)]
    {
        if let Some(at) = lower.find(marker) {
            let rest = &lower[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if after && let Ok(n) = digits.parse::<u32>() {
                return Some(n.clamp(1, 100));
            }
        }
    }
    if lower.contains("three times") || lower.contains("ba lần") || lower.contains("三次") {
        return Some(3);
    }
    None
}

/// "holdout 20%", "20% control", "nhóm đối chứng 20%", "对照组20%".
fn holdout_share(lower: &str) -> Option<f64> {
    for marker in ["holdout", "hold out", "control", "đối chứng", "对照组"] {
        let Some(at) = lower.find(marker) else { continue };
        let window: String = lower[at.saturating_sub(8)..].chars().take(marker.chars().count() + 16).collect();
        let digits: String = window
            .split('%')
            .next()
            .unwrap_or("")
            .chars()
            .rev()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if window.contains('%')
            && let Ok(n) = digits.parse::<u32>()
            && (1..=50).contains(&n)
        {
            return Some(n as f64 / 100.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_story_s8_goal_in_three_languages() {
        for goal in [
            "Bring back lapsed VIP customers in Hanoi, budget 50 million VND, email and Zalo, two weeks",
            "Kéo lại khách VIP lâu không mua ở Hà Nội, ngân sách 50 triệu, email và Zalo, trong hai tuần",
            "召回河内的流失VIP客户，预算5000万越南盾，邮件和Zalo，两周",
        ] {
            let r = read(goal);
            assert_eq!(r.shapes.first(), Some(&Shape::WinBack), "{goal}");
            assert!(r.vip, "{goal}");
            assert_eq!(r.city.as_deref(), Some("Hà Nội"), "{goal}");
            assert_eq!(r.channels, ["email", "zalo"], "{goal}");
            assert_eq!(
                r.budget.as_ref().map(|(m, _)| m.clone()),
                Some(Money::new(50_000_000_000_000, "VND")),
                "{goal}"
            );
            assert_eq!(r.days, Some(14), "{goal}");
        }
        assert_eq!(read("Keo lai khach VIP lau khong mua o Ha Noi").shapes.first(), Some(&Shape::WinBack));
    }

    #[test]
    fn words_are_whole_words() {
        let r = read("Wholesale partners newsletter");
        assert!(!r.shapes.contains(&Shape::Promote), "sale inside wholesale");
        assert_eq!(r.channels, ["email"]);
        assert_eq!(read("only customers who bought at least 3 times").repeat, Some(3));
        assert_eq!(read("only customers who bought twice").repeat, Some(2));
        assert_eq!(read("announce to everyone, holdout 20%").holdout, Some(0.2));
    }
}
