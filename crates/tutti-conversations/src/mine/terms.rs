//! The terms a sentence is compared by, in three languages: content words and adjacent pairs of them for
//! English and Vietnamese (Vietnamese with its marks taken off, so text typed without them meets text typed with
//! them), and for Chinese the characters and adjacent pairs of characters that are not function characters.
//! Terms are hashed to 64 bits; the display form is kept only where a label needs it.

use tutti_ai::text::is_han;
use tutti_core::hash::fnv1a;

/// English words that carry no topic: pronouns, particles, auxiliaries, politeness.
const ENGLISH_STOP: &[&str] = &[
    "a", "an", "the", "i", "i'm", "im", "me", "my", "we", "our", "us", "you", "your", "it", "its", "it's", "this",
    "that", "these", "those", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "have", "has",
    "had", "to", "of", "in", "on", "for", "with", "at", "by", "from", "and", "or", "but", "so", "if", "about", "just",
    "really", "very", "bit", "little", "quite", "can", "could", "would", "will", "should", "there", "here", "what",
    "how", "when", "where", "which", "who", "why", "any", "some", "all", "get", "got", "think", "yes", "yeah", "ok",
    "okay", "well", "um", "uh", "oh", "please", "thanks", "thank", "hi", "hello", "they", "them", "he", "she", "his",
    "her", "one", "not", "no", "that's", "there's", "what's", "want", "need", "know", "like", "make", "use", "go",
    "see", "say", "said", "tell", "let", "more", "much", "many", "now", "right", "don't", "dont", "also", "then",
    "than", "too", "as", "into", "up",
];

/// Vietnamese words that carry no topic, with their marks taken off.
const VIETNAMESE_STOP: &[&str] = &[
    "toi", "minh", "em", "anh", "chi", "ban", "ben", "ho", "no", "ta", "chung", "cac", "nhung", "mot", "cai", "con",
    "la", "va", "thi", "ma", "cua", "cho", "voi", "o", "tai", "tu", "den", "de", "nay", "kia", "do", "ay", "a", "ah",
    "da", "vang", "nhe", "nha", "nhi", "ha", "ne", "oi", "roi", "dang", "se", "duoc", "co", "khong", "chua", "cung",
    "van", "rat", "qua", "lam", "hon", "nhu", "the", "nao", "gi", "sao", "vay", "bao", "nhieu", "neu", "khi", "vi",
    "nen", "hay", "hoac", "thoi", "luon", "ve", "ra", "vao", "len", "xuong", "di", "lai", "nua", "them", "con", "moi",
    "dung", "phai", "biet", "thay", "muon", "can", "xin", "cam", "on", "chao", "uh", "um",
];

/// Chinese characters that carry no topic alone: particles, pronouns, measure words, the copula.
const STOP_HAN: &str = "的了是我你您他她它们吗呢吧啊呀哦嗯这那个些就都也很还在有和与及或而但可以会要想能把被给让对从到为么什哪儿吧嘛哈好请谢";

fn is_stop_han(c: char) -> bool {
    STOP_HAN.contains(c)
}

fn is_stop_word(word: &str) -> bool {
    ENGLISH_STOP.contains(&word) || VIETNAMESE_STOP.contains(&word)
}

/// Whether a sentence without marks reads as Vietnamese typed without them rather than as English: more of its
/// words are Vietnamese function words than English ones ("bao hanh bao lau vay em" against "can I export it").
pub fn reads_as_unmarked_vietnamese(lower: &str) -> bool {
    let (mut vietnamese, mut english) = (0, 0);
    for word in lower.split(|c: char| !c.is_alphanumeric() && c != '\'') {
        let (vi, en) = (VIETNAMESE_STOP.contains(&word), ENGLISH_STOP.contains(&word));
        if vi && !en {
            vietnamese += 1;
        } else if en && !vi {
            english += 1;
        }
    }
    vietnamese > english
}

/// One term (a word, a pair of words, a Chinese character or pair of characters): its hash. The lowest bit says
/// whether it can head a topic: a word or a Chinese pair can ("onboarding", "bảo hành" as "hanh", "发票"); a pair
/// of words or a single character cannot (they are for likeness only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Term(pub u64);

impl Term {
    fn head(hash: u64) -> Term {
        Term(hash & !1)
    }

    fn other(hash: u64) -> Term {
        Term(hash | 1)
    }

    /// Whether the term can head a topic.
    pub fn can_head(self) -> bool {
        self.0 & 1 == 0
    }
}

/// The terms of `normal` (NFC, lower case), each once and sorted, into `out` (cleared first).
pub fn terms(normal: &str, out: &mut Vec<Term>) {
    out.clear();
    let mut previous: Option<u64> = None;
    let mut previous_han: Option<char> = None;
    let mut word = String::new();
    let mut folded = String::new();
    let mut flush_word = |word: &mut String, previous: &mut Option<u64>, out: &mut Vec<Term>| {
        if word.is_empty() {
            return;
        }
        fold_into(word, &mut folded);
        word.clear();
        if is_stop_word(&folded) || folded.chars().count() < 2 && !folded.chars().all(|c| c.is_ascii_digit()) {
            return;
        }
        let h = fnv1a(folded.as_bytes());
        out.push(Term::head(h));
        if let Some(p) = *previous {
            out.push(Term::other(p.rotate_left(17) ^ h ^ 0x9e37_79b9_7f4a_7c15));
        }
        *previous = Some(h);
    };
    for c in normal.chars() {
        if is_han(c) {
            flush_word(&mut word, &mut previous, out);
            previous = None;
            if is_stop_han(c) {
                previous_han = None;
                continue;
            }
            let mut buffer = [0u8; 4];
            let h = fnv1a(c.encode_utf8(&mut buffer).as_bytes());
            out.push(Term::other(h));
            if let Some(p) = previous_han {
                let mut pair = [0u8; 8];
                let n = p.encode_utf8(&mut pair).len();
                let m = c.encode_utf8(&mut pair[n..]).len();
                out.push(Term::head(fnv1a(&pair[..n + m])));
            }
            previous_han = Some(c);
        } else if c.is_alphanumeric() || c == '\'' && !word.is_empty() {
            previous_han = None;
            word.push(if c.is_ascii_digit() { '0' } else { c });
        } else {
            flush_word(&mut word, &mut previous, out);
            previous_han = None;
            // A sentence's punctuation ends a run of pairs; a space does not.
            if !c.is_whitespace() {
                previous = None;
            }
        }
    }
    flush_word(&mut word, &mut previous, out);
    out.sort_unstable();
    out.dedup();
}

/// `word` with Vietnamese marks and đ taken off, and a trailing English plural `s` on longer words.
fn fold_into(word: &str, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        out.push_str(word);
    } else {
        out.push_str(&tutti_ai::text::fold(word));
    }
    if out.len() > 4 && out.ends_with('s') && !out.ends_with("ss") && out.is_ascii() {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Vec<Term> {
        let mut out = Vec::new();
        terms(&tutti_ai::text::normalize(text), &mut out);
        out
    }

    fn shared(a: &str, b: &str) -> usize {
        let (a, b) = (of(a), of(b));
        a.iter().filter(|t| b.contains(t)).count()
    }

    #[test]
    fn function_words_carry_nothing() {
        assert!(of("is it the one that you can do?").is_empty());
        assert!(of("Dạ vâng, em cảm ơn anh nhé").is_empty());
        assert!(of("这个是你的吗").is_empty());
    }

    #[test]
    fn marks_plurals_and_pairs() {
        assert!(shared("lo ngại bảo mật dữ liệu", "lo ngai bao mat du lieu") >= 5, "typed without marks");
        assert!(shared("worried about security", "security worries") >= 1);
        assert_eq!(shared("too many contracts", "the contract"), 1);
        assert!(shared("这个价格太贵了", "价格太贵") >= 4, "价, 格, 贵 and the pairs 价格, 太贵");
        assert_eq!(shared("giao hàng chậm", "hàng giao chậm"), 3, "the words, not the pairs, in another order");
    }
}
