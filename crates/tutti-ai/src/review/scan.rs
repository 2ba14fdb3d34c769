//! What the rules look at: a field's text lower-cased with a map back to the original, word boundaries that
//! know Chinese has none, and the scanners for contact details, identifiers, shouting and sentences.

use crate::text::{is_han, is_word_char};

/// A field's text (NFC) and its lower-cased form, with where each byte of the lower-cased form came from.
pub(crate) struct View<'a> {
    pub text: &'a str,
    pub lower: String,
    /// For each byte of `lower` (and one past the end), the byte offset in `text` of the character it came from.
    src: Vec<u32>,
}

impl<'a> View<'a> {
    pub fn new(text: &'a str) -> View<'a> {
        let mut lower = String::with_capacity(text.len());
        let mut src = Vec::with_capacity(text.len() + 1);
        for (at, c) in text.char_indices() {
            let before = lower.len();
            match c {
                // Typographic apostrophes, as marketing copy is usually typed: "can’t" is "can't".
                '\u{2018}' | '\u{2019}' => lower.push('\''),
                c if c.is_ascii() => lower.push(c.to_ascii_lowercase()),
                c => lower.extend(c.to_lowercase()),
            }
            src.resize(src.len() + lower.len() - before, at as u32);
        }
        src.push(text.len() as u32);
        View { text, lower, src }
    }

    /// The span of `text` that the lower-cased bytes `start..end` came from.
    pub fn original(&self, start: usize, end: usize) -> (usize, usize) {
        let from = self.src[start] as usize;
        let mut to = self.src[end] as usize;
        if to <= from {
            // The span ends inside one character's lower-case expansion: take the whole character.
            to = from + self.text[from..].chars().next().map_or(0, char::len_utf8);
        }
        (from, to)
    }
}

/// A letter of a script written with spaces between words (not a Chinese character).
fn is_spaced_letter(c: char) -> bool {
    c.is_alphabetic() && !is_han(c)
}

/// Email addresses in `text`, as byte spans.
pub(crate) fn emails(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find('@').map(|i| i + from) {
        let mut start = i;
        while start > 0 && local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < bytes.len() && domain(bytes[end]) {
            end += 1;
        }
        while end > i + 1 && bytes[end - 1] == b'.' {
            end -= 1;
        }
        let host = &text[i + 1..end];
        if start < i && host.contains('.') && !host.starts_with('.') {
            out.push((start, end));
        }
        from = end.max(i + 1);
    }
    out
}

/// A run of digits that may be a phone number or a long account or card number.
pub(crate) struct Number {
    pub start: usize,
    pub end: usize,
    pub digits: String,
}

/// Numbers of 9 or more digits, written with single spaces, dots, dashes or commas between groups, or a
/// bracketed area code (`(028) 3823-4567`), with an optional leading `+`; not order references (`#123456789`)
/// and not amounts with thousands separators (`100.000.000đ`).
pub(crate) fn long_numbers(text: &str) -> Vec<Number> {
    let bytes = text.as_bytes();
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = digit_at(i) || (matches!(bytes[i], b'+' | b'(') && digit_at(i + 1));
        let glued = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'#' | b'+' | b'('));
        if !starts || glued {
            i += 1;
            continue;
        }
        let start = i;
        if !digit_at(i) {
            i += 1;
        }
        let mut digits = String::new();
        let mut groups: Vec<usize> = vec![0];
        let mut separators = Vec::new();
        let mut end = i;
        while i < bytes.len() {
            if digit_at(i) {
                digits.push(bytes[i] as char);
                *groups.last_mut().unwrap() += 1;
                i += 1;
                end = i;
                continue;
            }
            let run = match (bytes[i], bytes.get(i + 1)) {
                (b')', Some(b' ')) | (b' ', Some(b'(')) => 2,
                (b' ' | b'.' | b'-' | b',', _) => 1,
                _ => 0,
            };
            // One kind of separator per number (a bracketed area code aside): `2026-11-22 10:30` is a date and a
            // time, not a ten-digit number.
            let kind = separators.iter().rev().find(|s| **s != b')');
            let mixed = run == 1 && kind.is_some_and(|k| *k != bytes[i]);
            if run == 0 || !digit_at(i + run) || mixed {
                break;
            }
            separators.push(if run == 2 { b')' } else { bytes[i] });
            groups.push(0);
            i += run;
        }
        let amount = groups.len() > 1
            && groups[0] <= 3
            && groups[1..].iter().all(|g| *g == 3)
            && separators.iter().all(|s| matches!(s, b'.' | b','));
        let word_after = text[end..].chars().next().is_some_and(is_word_char);
        if digits.len() >= 9 && !amount && !word_after {
            out.push(Number { start, end, digits });
        }
        i = i.max(end + 1);
    }
    out
}

/// Whether two phone numbers are the same line: the last nine digits agree (so `+84 90 111 2222` is
/// `090 111 2222`).
pub(crate) fn same_phone(a: &str, b: &str) -> bool {
    let tail = |s: &str| -> String {
        let d: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
        d[d.len().saturating_sub(9)..].iter().collect()
    };
    let (a, b) = (tail(a), tail(b));
    a.len() >= 7 && a == b
}

/// Raw identifiers: UUIDs, long hexadecimal keys and Tutti's own profile ids, as byte spans.
pub(crate) fn raw_ids(text: &str) -> Vec<(usize, usize, &'static str)> {
    let mut out = Vec::new();
    let token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':';
    let mut iter = text.char_indices().peekable();
    while let Some((start, c)) = iter.next() {
        if !token(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some((i, c)) = iter.peek().copied() {
            if !token(c) {
                break;
            }
            end = i + c.len_utf8();
            iter.next();
        }
        let word = &text[start..end];
        if word.contains("tutti:profile:") {
            out.push((start, end, "a Tutti profile id"));
        } else if let Some(at) = find_uuid(word) {
            out.push((start + at, start + at + 36, "a UUID"));
        } else if let Some((a, b)) = hex_run(word) {
            out.push((start + a, start + b, "a long hexadecimal key"));
        }
    }
    out
}

fn find_uuid(word: &str) -> Option<usize> {
    let b = word.as_bytes();
    (0..b.len().saturating_sub(35)).find(|&i| {
        b[i..i + 36].iter().enumerate().all(|(j, c)| match j {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }) && (i == 0 || !b[i - 1].is_ascii_hexdigit())
            && b.get(i + 36).is_none_or(|c| !c.is_ascii_hexdigit())
    })
}

/// A run of 16 or more hexadecimal characters with both letters and digits, and no other letter or digit
/// around it (an API key, a Mongo id, a hash).
fn hex_run(word: &str) -> Option<(usize, usize)> {
    let b = word.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let run = &b[start..i];
        // A run that is part of a longer word of other letters ("1Z999AA10123456784", a parcel's tracking
        // number) is not a key.
        let whole = (start == 0 || !b[start - 1].is_ascii_alphanumeric())
            && b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
        if whole && run.len() >= 16 && run.iter().any(u8::is_ascii_digit) && run.iter().any(u8::is_ascii_alphabetic) {
            return Some((start, i));
        }
    }
    None
}

/// Runs of shouted words (two or more letters, every letter upper case), as byte spans with their length in
/// words. Numbers, Chinese and most punctuation do not break a run; a word in lower case or the end of a
/// sentence (`.`, `?`, `。`, `？`, a line break) does.
pub(crate) fn shouted_runs(text: &str) -> Vec<(usize, usize, usize)> {
    let mut runs = Vec::new();
    let mut current: Option<(usize, usize, usize)> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((start, c)) = iter.next() {
        if matches!(c, '.' | '?' | '。' | '？' | '\n') {
            runs.extend(current.take());
            continue;
        }
        if !is_spaced_letter(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        let mut letters = 1;
        let mut upper = c.is_uppercase();
        while let Some((i, c)) = iter.peek().copied() {
            if !is_spaced_letter(c) {
                break;
            }
            letters += 1;
            upper &= c.is_uppercase();
            end = i + c.len_utf8();
            iter.next();
        }
        if letters >= 2 && upper {
            current = Some(match current {
                Some((s, _, n)) => (s, end, n + 1),
                None => (start, end, 1),
            });
        } else if let Some(run) = current.take() {
            runs.push(run);
        }
    }
    runs.extend(current);
    runs
}

pub(crate) fn is_bang(c: char) -> bool {
    c == '!' || c == '！'
}

/// Sentence spans (byte ranges) of `text`: a sentence ends after `.`, `!`, `?` or `…` followed by a space or the
/// end, after `。`, `！`, `？` or `；` (Chinese needs no space), or at a line break.
pub(crate) fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let end = i + c.len_utf8();
        let next = iter.peek().map(|(_, n)| *n);
        let closes = match c {
            '。' | '！' | '？' | '；' | '\n' => true,
            '.' | '!' | '?' | '…' => next.is_none_or(char::is_whitespace),
            _ => false,
        };
        if closes {
            // Keep closing runs ("!!!", "?!") together.
            let mut end = end;
            while let Some((j, n)) = iter.peek().copied() {
                if !matches!(n, '.' | '!' | '?' | '！' | '？' | '。') {
                    break;
                }
                end = j + n.len_utf8();
                iter.next();
            }
            out.push((start, end));
            start = end;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_spans_map_back_to_the_original() {
        let v = View::new("Không RỦI RO – can’t LOSE");
        let at = v.lower.find("rủi ro").unwrap();
        let (a, b) = v.original(at, at + "rủi ro".len());
        assert_eq!(&v.text[a..b], "RỦI RO");
        let at = v.lower.find("can't lose").unwrap();
        let (a, b) = v.original(at, at + "can't lose".len());
        assert_eq!(&v.text[a..b], "can’t LOSE");
    }

    #[test]
    fn boundaries_hold_for_latin_and_not_for_chinese() {
        let v = View::new("secure cure Acme团队 第一次");
        let bounded = |s: usize, e: usize| crate::text::stands_alone(&v.lower, s, e);
        let cure = v.lower.find("cure").unwrap();
        assert!(!bounded(cure, cure + 4), "inside secure");
        let cure = v.lower.rfind("cure").unwrap();
        assert!(bounded(cure, cure + 4));
        let acme = v.lower.find("acme").unwrap();
        assert!(bounded(acme, acme + 4), "a Chinese character ends a Latin word");
        let first = v.lower.find("第一").unwrap();
        assert!(bounded(first, first + "第一".len()), "Chinese has no word boundaries to check");
    }

    #[test]
    fn emails_numbers_and_ids_are_found() {
        let t = "Mail lan.nguyen@example.com. Gọi 0912 345 678, +84 90 111 2222 hoặc (028) 3823-4567; đơn #123456789; \
                 giá 100.000.000đ; id 7d3f2a9c-4b1e-4f5a-9c2d-8e6b1a0f3c21 và 5f1e2d3c4b5a69788796a5b4; thẻ 4111 1111 1111 1111";
        let e: Vec<&str> = emails(t).iter().map(|(a, b)| &t[*a..*b]).collect();
        assert_eq!(e, ["lan.nguyen@example.com"]);
        let n: Vec<&str> = long_numbers(t).iter().map(|n| &t[n.start..n.end]).collect();
        assert_eq!(n, ["0912 345 678", "+84 90 111 2222", "(028) 3823-4567", "4111 1111 1111 1111"]);
        let ids: Vec<&str> = raw_ids(t).iter().map(|(a, b, _)| &t[*a..*b]).collect();
        assert_eq!(ids, ["7d3f2a9c-4b1e-4f5a-9c2d-8e6b1a0f3c21", "5f1e2d3c4b5a69788796a5b4"]);
        assert!(same_phone("+84 90 111 2222", "090-111-2222"));
        assert!(!same_phone("0912 345 678", "090 111 2222"));
    }

    #[test]
    fn shouting_and_sentences() {
        let runs = shouted_runs("HUGE SALE TODAY only, VIP and CRM. SIÊU SALE HÔM NAY");
        let words: Vec<usize> = runs.iter().map(|r| r.2).collect();
        assert_eq!(words, [3, 1, 1, 4]);
        let t = "Giảm giá!!! Xả kho. 今天八折。Mua ngay\nHết";
        let s: Vec<&str> = sentences(t).iter().map(|(a, b)| &t[*a..*b]).collect();
        assert_eq!(s, ["Giảm giá!!!", " Xả kho.", " 今天八折。", "Mua ngay\n", "Hết"]);
    }
}
