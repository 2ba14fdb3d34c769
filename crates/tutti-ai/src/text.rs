//! Text handling shared by every AI task: normalisation, language detection and the features classifiers see,
//! for Vietnamese, Chinese and English alike.
//!
//! Vietnamese arrives both precomposed (NFC, what most keyboards type) and decomposed (NFD, what some macOS
//! tools and copy-paste paths produce), so everything is brought to NFC first: "giảm" must match "giảm" whatever
//! bytes spell it. Chinese has no spaces between words, so it is read as characters and character pairs; that
//! needs no dictionary and catches most two-character words. Vietnamese writes one syllable per space-separated
//! token, so syllable pairs stand in for its (mostly two-syllable) words.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A language the toolkit tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Vi,
    Zh,
    En,
    /// Anything else: other scripts, or Latin text without English or Vietnamese markers.
    Other,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Vi => "vi",
            Language::Zh => "zh",
            Language::En => "en",
            Language::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        match code.to_ascii_lowercase().as_str() {
            "vi" | "vie" | "vi-vn" => Some(Language::Vi),
            "zh" | "zho" | "chi" | "zh-cn" | "zh-hans" | "zh-tw" | "zh-hant" | "zh-hk" => Some(Language::Zh),
            "en" | "eng" | "en-us" | "en-gb" => Some(Language::En),
            "other" => Some(Language::Other),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// NFC: one spelling for every letter, as messages are stored and sent.
pub fn nfc(text: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(text).into_owned()
}

/// NFC and lower case.
pub fn normalize(text: &str) -> String {
    let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(text);
    nfc.to_lowercase()
}

/// Whether the text has letters with diacritics (or combining marks): Vietnamese typed with its accents, which
/// the phrases with accents already match.
pub fn has_diacritics(text: &str) -> bool {
    text.chars().any(|c| matches!(c as u32, 0xC0..=0x24F | 0x300..=0x36F | 0x1E00..=0x1EFF))
}

/// A phrase with its Vietnamese diacritics taken off ("không rủi ro" -> "khong rui ro"), for copy typed
/// without them (most SMS in Vietnam).
pub fn fold(phrase: &str) -> String {
    let nfd = icu_normalizer::DecomposingNormalizerBorrowed::new_nfd().normalize(phrase);
    nfd.chars()
        .filter(|c| !matches!(*c as u32, 0x300..=0x36F))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

/// A Han (Chinese) character: the unified ideographs, extension A and B, and the compatibility block.
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF)
}

/// A character that continues a word written with spaces (Latin and Vietnamese letters, digits); a Chinese
/// character is a word by itself.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_han(c)
}

/// Whether `hay[start..end]` stands as whole words: a side of it that is a word character does not run on into
/// another word character. A side in punctuation ("% off", "#1") or in Chinese has its boundary built in.
pub(crate) fn stands_alone(hay: &str, start: usize, end: usize) -> bool {
    let phrase = &hay[start..end];
    let glued =
        |edge: Option<char>, next: Option<char>| edge.is_some_and(is_word_char) && next.is_some_and(is_word_char);
    !glued(phrase.chars().next(), hay[..start].chars().next_back())
        && !glued(phrase.chars().next_back(), hay[end..].chars().next())
}

fn is_kana_or_hangul(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0xAC00..=0xD7AF | 0x1100..=0x11FF)
}

/// Letters only Vietnamese uses among the languages told apart here (after NFC).
fn is_vietnamese_letter(c: char) -> bool {
    matches!(c, 'đ' | 'Đ' | 'ă' | 'Ă' | 'ơ' | 'Ơ' | 'ư' | 'Ư' | 'ĩ' | 'Ĩ' | 'ũ' | 'Ũ')
        || matches!(c as u32, 0x1EA0..=0x1EF9)
}

/// Frequent English words, function words first, then the words ads are made of. Other Latin-script languages
/// share few of them.
const ENGLISH_MARKERS: &[&str] = &[
    "the", "and", "you", "your", "to", "of", "for", "with", "is", "are", "in", "on", "at", "our", "we", "it", "its",
    "this", "that", "from", "by", "a", "an", "all", "any", "until", "or", "be", "can", "will", "more", "how", "what",
    "why", "who", "when", "now", "get", "free", "new", "off", "sale", "shop", "buy", "price", "only", "first", "half",
    "day", "days", "hours", "time", "per", "one", "up", "out", "just", "every", "save",
];

/// The language of a text, from its script and, for Latin text, Vietnamese letters or common English words.
/// `text` need not be normalised.
pub fn detect(text: &str) -> Language {
    let text = normalize(text);
    let (mut han, mut latin, mut vietnamese, mut other_cjk) = (0usize, 0usize, 0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
        } else if is_kana_or_hangul(c) {
            other_cjk += 1;
        } else if c.is_alphabetic() && (c.is_ascii() || (c as u32) < 0x0250 || (0x1E00..=0x1EFF).contains(&(c as u32)))
        {
            latin += 1;
            if is_vietnamese_letter(c) {
                vietnamese += 1;
            }
        }
    }
    if other_cjk > 0 && other_cjk * 5 >= han {
        return Language::Other;
    }
    if han > 0 && han * 2 >= latin.min(han * 4) && han >= 2 {
        return Language::Zh;
    }
    if latin == 0 {
        return if han > 0 { Language::Zh } else { Language::Other };
    }
    // Vietnamese letters are frequent (one syllable in three or four carries one); a loanword's é is not.
    if vietnamese >= 2 && vietnamese * 40 >= latin {
        return Language::Vi;
    }
    let words: Vec<&str> = text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect();
    let english = words.iter().filter(|w| ENGLISH_MARKERS.contains(w)).count();
    if english >= 1 && english * 15 >= words.len().min(60) {
        Language::En
    } else if vietnamese >= 1 {
        Language::Vi
    } else {
        Language::Other
    }
}

/// Tokens for a classifier: words (Latin, split on anything that is not a letter or digit, digits folded to
/// `0`), and for Han text each character as its own token. Text must already be normalised.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    for c in text.chars() {
        if is_han(c) {
            flush(&mut word, &mut out);
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.push(if c.is_ascii_digit() { '0' } else { c });
        } else {
            flush(&mut word, &mut out);
            if matches!(c, '%' | '?' | '!' | '$' | '€' | '¥' | '₫' | '？' | '！' | '％') {
                out.push(c.to_string());
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_three_languages_and_others() {
        assert_eq!(detect("Giảm 40% cho đơn hàng đầu tiên, mua ngay hôm nay"), Language::Vi);
        assert_eq!(detect("本周新客立减40%，立即抢购"), Language::Zh);
        assert_eq!(detect("Save 25% on the router this week"), Language::En);
        assert_eq!(detect("今日は良い天気ですね"), Language::Other);
        assert_eq!(detect("Das ist ein Test ohne Marker"), Language::Other);
        // Chinese with a Latin brand name is still Chinese.
        assert_eq!(detect("ProjectFlow免费试用30天，无需绑定信用卡"), Language::Zh);
        // Vietnamese without diacritics on most words still has a few.
        assert_eq!(detect("Tai app ngay de nhan uu dai, giảm đến 50%"), Language::Vi);
    }

    #[test]
    fn decomposed_vietnamese_matches_precomposed() {
        let nfd = "gia\u{0309}m gia\u{0301}"; // "giảm giá" with combining marks
        assert_eq!(normalize(nfd), "giảm giá");
        assert_eq!(detect(nfd), detect("giảm giá"));
    }

    #[test]
    fn folding_takes_off_vietnamese_diacritics() {
        assert_eq!(fold("không rủi ro, đảm bảo lợi nhuận"), "khong rui ro, dam bao loi nhuan");
        assert!(has_diacritics("Đầu tư"));
        assert!(!has_diacritics("dau tu 投资"));
    }

    #[test]
    fn tokens_split_words_and_han_characters() {
        assert_eq!(tokens(&normalize("Save 25% NOW!")), ["save", "00", "%", "now", "!"]);
        assert_eq!(tokens("立减40%"), ["立", "减", "00", "%"]);
        assert_eq!(tokens("giảm giá"), ["giảm", "giá"]);
    }
}
