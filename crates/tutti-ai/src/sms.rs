//! How an SMS is encoded and into how many parts it is split, as carriers bill it.
//!
//! 3GPP TS 23.038 defines the GSM 7-bit default alphabet and its extension table; a message written only in it
//! travels as GSM-7 (160 characters in one part, 153 per part once split, an extension character such as `€` or
//! `{` taking two), and any other character (a Vietnamese letter with its tone mark, a Chinese character, an
//! emoji) sends the whole message as UCS-2 (70 UTF-16 units in one part, 67 per part once split). A split never
//! cuts an escape pair or a surrogate pair in two, so parts can hold one unit less than the figures say; the
//! count here packs them the way a handset does.

use serde::Serialize;

/// The two encodings an SMS travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }

    /// Units in a message of one part, and per part once split.
    fn capacity(self) -> (usize, usize) {
        match self {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        }
    }
}

/// A message's encoding and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    /// Characters (Unicode scalar values).
    pub chars: usize,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Parts billed; 0 for an empty message.
    pub parts: usize,
}

/// The GSM 7-bit default alphabet (one septet each).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table (an escape and the character: two septets each).
const EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Septets a character takes in GSM-7, or `None` when GSM-7 cannot carry it.
fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding a message needs.
pub fn encoding(text: &str) -> Encoding {
    if text.chars().all(|c| septets(c).is_some()) { Encoding::Gsm7 } else { Encoding::Ucs2 }
}

/// Units each character takes in the message's encoding.
fn widths(text: &str, encoding: Encoding) -> impl Iterator<Item = usize> + '_ {
    text.chars().map(move |c| match encoding {
        Encoding::Gsm7 => septets(c).unwrap_or(1),
        Encoding::Ucs2 => c.len_utf16(),
    })
}

/// Packs characters into parts of `per` units without splitting one; returns the parts.
fn pack(widths: impl Iterator<Item = usize>, per: usize) -> usize {
    let mut parts = 1;
    let mut used = 0;
    for w in widths {
        if used + w > per {
            parts += 1;
            used = 0;
        }
        used += w;
    }
    parts
}

/// How `text` travels: its encoding, size and parts.
pub fn segments(text: &str) -> Segments {
    let encoding = encoding(text);
    let chars = text.chars().count();
    let units: usize = widths(text, encoding).sum();
    let (single, per) = encoding.capacity();
    let parts = match units {
        0 => 0,
        u if u <= single => 1,
        _ => pack(widths(text, encoding), per),
    };
    Segments { encoding, chars, units, parts }
}

/// How many characters of `text`, from its start, fit in `max_parts` parts of its own encoding (all of them
/// when it fits).
pub fn fits(text: &str, max_parts: usize) -> usize {
    let s = segments(text);
    if s.parts <= max_parts {
        return s.chars;
    }
    if max_parts == 0 {
        return 0;
    }
    let (single, per) = s.encoding.capacity();
    if max_parts == 1 {
        let mut used = 0;
        return widths(text, s.encoding)
            .take_while(|w| {
                used += w;
                used <= single
            })
            .count();
    }
    let (mut parts, mut used, mut count) = (1, 0, 0);
    for w in widths(text, s.encoding) {
        if used + w > per {
            if parts == max_parts {
                break;
            }
            parts += 1;
            used = 0;
        }
        used += w;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_latin_is_gsm7_and_splits_at_153() {
        let one = "a".repeat(160);
        assert_eq!(segments(&one), Segments { encoding: Encoding::Gsm7, chars: 160, units: 160, parts: 1 });
        assert_eq!(segments(&"a".repeat(161)).parts, 2);
        assert_eq!(segments(&"a".repeat(306)).parts, 2);
        assert_eq!(segments(&"a".repeat(307)).parts, 3);
        assert_eq!(segments("").parts, 0);
    }

    #[test]
    fn extension_characters_take_two_septets_and_are_never_split() {
        let s = segments(&"€".repeat(80));
        assert_eq!((s.encoding, s.units, s.parts), (Encoding::Gsm7, 160, 1));
        // 152 plain septets then a two-septet character: it moves whole to the second part.
        let text = format!("{}{{{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(segments(&text).parts, 2);
        let text = format!("{}{{{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&text).parts, 3, "152 + (2 + 151) + 1 would be 2 parts if the pair could be split");
    }

    #[test]
    fn vietnamese_and_chinese_travel_as_ucs2() {
        let vi = "Chào chị Lan, đơn hàng của chị đã được giao.";
        let s = segments(vi);
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(s.parts, 1);
        // Unmarked Vietnamese stays GSM-7: that is why brands send it without tone marks.
        assert_eq!(encoding("Chao chi Lan, don hang cua chi da duoc giao."), Encoding::Gsm7);
        assert_eq!(segments(&"好".repeat(70)).parts, 1);
        assert_eq!(segments(&"好".repeat(71)).parts, 2);
        assert_eq!(segments(&"好".repeat(134)).parts, 2);
        assert_eq!(segments(&"好".repeat(135)).parts, 3);
        // An emoji is two UTF-16 units, and a surrogate pair is never split.
        let s = segments(&format!("{}😀", "a".repeat(69)));
        assert_eq!((s.units, s.parts), (71, 2));
        assert_eq!(segments(&format!("{}😀{}", "a".repeat(66), "a".repeat(66))).parts, 3);
    }

    #[test]
    fn fits_counts_the_characters_that_go_in_the_parts_allowed() {
        assert_eq!(fits(&"a".repeat(200), 1), 160);
        assert_eq!(fits(&"a".repeat(400), 2), 306);
        assert_eq!(fits(&"好".repeat(100), 1), 70);
        assert_eq!(fits(&"好".repeat(100), 2), 100);
        assert_eq!(fits(&"好".repeat(200), 2), 134);
        assert_eq!(fits("short", 1), 5);
    }
}
