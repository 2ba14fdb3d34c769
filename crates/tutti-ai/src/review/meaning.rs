//! The gate's reading of meaning: a classifier that files each sentence of a draft under a rule family, or
//! none, so that a claim is caught however it is worded ("lãi chắc", "收益有保障", "money here simply can't
//! shrink"), not only in the phrases a pack lists.
//!
//! It is a multinomial logistic regression over the sentence's hashed features: words (Vietnamese also
//! without its marks), word pairs, character trigrams, Chinese characters and character pairs (as
//! [`crate::embed`] makes them), and a few shapes the words do not show: an id-like token (a short prefix and
//! digits), a phone-like number, an email address, a street address, a note's brackets or arrows, an
//! `@mention`, a label in capitals. It is trained when first needed, in a few milliseconds, on the labelled
//! sentences shipped in `data/review/meaning.jsonl` (and a pack's own `examples`), and deterministic: the same
//! data, the same weights.
//!
//! A rule opts in with `meaning: <family>`; the family's sentences are then violations of that rule when the
//! classifier gives the family at least [`THRESHOLD`], unless one of the rule's `except` phrases is in the
//! sentence. The held-out set it is measured on (`data/review/heldout.jsonl`) was written before it and is
//! never trained on.

use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use tutti_core::hash::fnv1a;

use crate::softmax::{Softmax, Training};
use crate::text;

/// The rule families the classifier knows, in class order after `clean`.
pub const FAMILIES: [&str; 6] =
    ["guaranteed_returns", "cure_claims", "superlatives", "internal_notes", "internal_ids", "personal_data"];

/// The probability from which a sentence is read as a family.
pub const THRESHOLD: f32 = 0.5;

/// The probability from which a sentence is uncertain: not a violation, but worth a model's second opinion.
pub const UNCERTAIN: f32 = 0.3;

/// The shipped training sentences.
pub const TRAINING_SET: &str = include_str!("../../data/review/meaning.jsonl");

const CLASSES: usize = FAMILIES.len() + 1;
const DIM: usize = 1 << 16;
const EPOCHS: usize = 40;

/// One labelled sentence.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    pub lang: String,
    /// A family, or `clean`.
    pub label: String,
    pub text: String,
}

/// Reads labelled sentences, one JSON object a line.
pub fn read_examples(jsonl: &str) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for (i, line) in jsonl.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let e: Example = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if e.label != "clean" && family_index(&e.label).is_none() {
            return Err(format!("line {}: `{}` is not a family ({})", i + 1, e.label, FAMILIES.join(", ")));
        }
        out.push(e);
    }
    Ok(out)
}

/// A family's index in [`FAMILIES`].
pub fn family_index(name: &str) -> Option<usize> {
    FAMILIES.iter().position(|f| *f == name)
}

/// How a sentence reads: the likeliest family and its probability (the rest is `clean` and the other
/// families).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub family: Option<usize>,
    pub probability: f32,
}

/// The trained classifier: `clean` and one class per family.
pub struct Meaning {
    softmax: Softmax,
}

impl std::fmt::Debug for Meaning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meaning").finish_non_exhaustive()
    }
}

impl Meaning {
    /// Trained on the shipped sentences, once per process.
    pub fn builtin() -> Arc<Meaning> {
        static BUILT: OnceLock<Arc<Meaning>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let examples = read_examples(TRAINING_SET).expect("the shipped training sentences are valid");
                Arc::new(Meaning::train(&examples))
            })
            .clone()
    }

    /// Trained on the shipped sentences and `extra` ones (a pack's examples).
    pub fn with_extra(extra: &[Example]) -> Meaning {
        let mut examples = read_examples(TRAINING_SET).expect("the shipped training sentences are valid");
        examples.extend_from_slice(extra);
        Meaning::train(&examples)
    }

    /// Trains on labelled sentences.
    pub fn train(examples: &[Example]) -> Meaning {
        let labelled: Vec<(Vec<(u32, f32)>, usize)> =
            examples.iter().map(|e| (features(&e.text).0, family_index(&e.label).map_or(0, |f| f + 1))).collect();
        let pairs: Vec<(&[(u32, f32)], usize)> = labelled.iter().map(|(x, c)| (x.as_slice(), *c)).collect();
        let mut softmax = Softmax::new(CLASSES, DIM);
        softmax.train(&pairs, &Training { epochs: EPOCHS, rate: 0.5, l2: 1e-5, seed: 7 });
        Meaning { softmax }
    }

    /// How a sentence reads.
    pub fn read(&self, sentence: &str) -> Reading {
        let (features, ideas) = features(sentence);
        let p = self.softmax.probabilities(&features);
        // A promise of returns speaks of money, its growth or its loss: a sentence that names none of them ("we
        // never share your details") is not read as one, however certain it sounds.
        static MONEY: OnceLock<u32> = OnceLock::new();
        let money = ideas & *MONEY.get_or_init(|| super::concepts::mask(&["money", "gain", "loss"])) != 0;
        let returns = family_index("guaranteed_returns").map(|f| f + 1);
        let (best, probability) = p
            .iter()
            .map(|v| *v as f32)
            .enumerate()
            .skip(1)
            .filter(|(i, _)| money || Some(*i) != returns)
            .fold((0, 0.0), |a, (i, v)| if v > a.1 { (i, v) } else { a });
        Reading { family: (best > 0).then(|| best - 1), probability }
    }
}

/// The features of a sentence, sublinear in counts and scaled to unit length, and the ideas it names.
fn features(sentence: &str) -> (Vec<(u32, f32)>, u32) {
    // (index, weight) pairs, summed per index after sorting: cheaper than a map for a few dozen features.
    let mut counts: Vec<(u32, f32)> = Vec::with_capacity(128);
    let lower = text::normalize(sentence);
    for (h, w) in crate::embed::normalized_features(&lower) {
        counts.push((((h >> 3) % DIM as u64) as u32, w));
    }
    // The shapes and the ideas, each a feature, and each pair of them another: the pairing ("your money" and
    // "can't shrink") is what makes most claims.
    let ideas = super::concepts::ideas(&lower);
    let mut present: Vec<u64> = shapes(sentence).into_iter().map(|shape| fnv1a(shape.as_bytes())).collect();
    for shape in &present {
        counts.push(((shape % DIM as u64) as u32, 1.5));
    }
    let shape_count = present.len();
    present.extend(
        (0..super::concepts::count())
            .filter(|i| ideas & (1 << i) != 0)
            .map(|i| fnv1a(super::concepts::name(i).as_bytes())),
    );
    for (k, a) in present.iter().enumerate() {
        if k >= shape_count {
            counts.push(((a % DIM as u64) as u32, 1.0));
        }
        for b in &present[k + 1..] {
            let pair = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(17);
            counts.push(((pair % DIM as u64) as u32, 1.0));
        }
    }
    counts.push((0, 1.0));
    counts.sort_unstable_by_key(|f| f.0);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(counts.len());
    for (k, v) in counts {
        match out.last_mut() {
            Some(last) if last.0 == k => last.1 += v,
            _ => out.push((k, v)),
        }
    }
    out.iter_mut().for_each(|f| f.1 = f.1.signum() * (1.0 + f.1.abs()).ln());
    let norm = out.iter().map(|f| f.1 * f.1).sum::<f32>().sqrt().max(1e-6);
    out.iter_mut().for_each(|f| f.1 /= norm);
    (out, ideas)
}

/// The shapes of a sentence the words do not show, as words of their own.
fn shapes(sentence: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let trimmed = sentence.trim();
    let first = trimmed.chars().next();
    // A sentence in brackets, as notes are written; not a short label that opens a message ("[QC] ...",
    // "【悦购】...", the sender's signature).
    if matches!(first, Some('(' | '[' | '【' | '（' | '{')) {
        let inner: String = trimmed.chars().skip(1).take_while(|c| !")]】）}".contains(*c)).collect();
        let rest = trimmed.chars().skip(inner.chars().count() + 2).filter(|c| c.is_alphanumeric()).count();
        if inner.chars().count() > 12 || rest == 0 {
            out.push("shapeopensbracket");
        }
    }
    if trimmed.contains(">>") || trimmed.contains("<<") {
        out.push("shapearrows");
    }
    if trimmed.starts_with("//") || trimmed.contains("###") {
        out.push("shapecodenote");
    }
    if trimmed.split_whitespace().any(|w| w.starts_with('@') && w.chars().nth(1).is_some_and(char::is_alphabetic))
        || trimmed.contains('@') && !trimmed.contains('.')
    {
        out.push("shapemention");
    }
    let label: String = trimmed.chars().take_while(|c| *c != ':' && *c != '：').collect();
    if label.len() < trimmed.len()
        && label.chars().any(char::is_alphabetic)
        && label.chars().any(char::is_uppercase)
        && label.chars().all(|c| !c.is_lowercase())
        && label.chars().count() <= 20
    {
        out.push("shapecapslabel");
    }
    let mut id_like = false;
    let mut long_number = false;
    let mut phone_like = false;
    for token in trimmed.split(|c: char| c.is_whitespace() || "()[]【】（），。,;:：=#".contains(c)) {
        let letters = token.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if letters >= 1 && digits >= 4 && token.chars().all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c)) {
            id_like = true;
        }
        if letters == 0 && digits >= 7 {
            long_number = true;
            if token.starts_with('0') || token.starts_with('+') || token.starts_with('1') && digits == 11 {
                phone_like = true;
            }
        }
    }
    // Numbers written in groups ("0903 112 458"): digits with spaces between.
    let grouped: usize = trimmed
        .split(|c: char| !(c.is_ascii_digit() || c == ' '))
        .map(|run| run.chars().filter(char::is_ascii_digit).count())
        .max()
        .unwrap_or(0);
    if grouped >= 9 {
        phone_like = true;
    }
    if id_like {
        out.push("shapeidtoken");
    }
    if long_number {
        out.push("shapelongnumber");
    }
    if phone_like {
        out.push("shapephone");
    }
    let email = !super::scan::emails(trimmed).is_empty();
    if email {
        out.push("shapeemail");
    }
    let address = street_address(trimmed);
    if address {
        out.push("shapeaddress");
    }
    if trimmed.contains('%') || trimmed.contains('％') {
        out.push("shapepercent");
    }
    if superlative_form(trimmed) {
        out.push("shapesuperlative");
    }
    if (phone_like || address || email) && titled_person(trimmed) {
        out.push("shapepersoncontact");
    }
    out
}

/// English words in -est that are not superlatives.
const NOT_SUPERLATIVE: [&str; 34] = [
    "interest",
    "request",
    "test",
    "rest",
    "west",
    "guest",
    "chest",
    "honest",
    "modest",
    "harvest",
    "forest",
    "latest",
    "contest",
    "protest",
    "suggest",
    "digest",
    "invest",
    "manifest",
    "earnest",
    "quest",
    "nest",
    "pest",
    "vest",
    "zest",
    "crest",
    "arrest",
    "priest",
    "attest",
    "conquest",
    "request",
    "biggest-ever",
    "southwest",
    "northwest",
    "midwest",
];

/// Words after 最 that say when or how many, not how good ("最晚周五发货", "最高可抵500元").
const NOT_CHINESE_SUPERLATIVE: [char; 11] = ['近', '后', '多', '少', '新', '晚', '早', '高', '低', '终', '初'];

/// Vietnamese words before "nhất" that make no claim ("ít nhất", "sớm nhất", "thống nhất").
const NOT_VIETNAMESE_SUPERLATIVE: [&str; 12] =
    ["ít", "sớm", "muộn", "chậm", "trễ", "thống", "duy", "cao", "tối", "nhiều", "mới", "gần"];

/// A superlative form: an English adjective in -est ("comfiest", "greatest"), "most ..." before an adjective,
/// a Chinese 最 before a quality, a Vietnamese adjective before "nhất".
fn superlative_form(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'')).filter(|w| !w.is_empty()).collect();
    let english = words.iter().any(|w| {
        w.len() > 4 && w.ends_with("est") && !NOT_SUPERLATIVE.contains(w) && w.chars().all(|c| c.is_ascii_alphabetic())
    }) || words
        .windows(2)
        .any(|p| p[0] == "most" && !["of", "people", "customers", "orders"].contains(&p[1]));
    let chinese = lower.char_indices().any(|(i, c)| {
        c == '最'
            && lower[i + c.len_utf8()..]
                .chars()
                .next()
                .is_some_and(|n| text::is_han(n) && !NOT_CHINESE_SUPERLATIVE.contains(&n))
    });
    // Typed without marks: "gioi nhat", "re nhat"; the words before it that make no claim are the list's,
    // folded, and "dong" ("đồng nhất", uniform), which only loses its meaning without marks.
    let unmarked = !text::has_diacritics(&lower)
        && words.windows(2).any(|p| {
            p[1] == "nhat" && p[0] != "dong" && !NOT_VIETNAMESE_SUPERLATIVE.iter().any(|n| text::fold(n) == p[0])
        })
        && !lower.contains("nhat dinh");
    // "nhất định" is "certainly", not a superlative.
    let vietnamese = unmarked
        || words.windows(3).any(|p| p[1] == "nhất" && !NOT_VIETNAMESE_SUPERLATIVE.contains(&p[0]) && p[2] != "định")
        || words.len() >= 2
            && words[words.len() - 1] == "nhất"
            && !NOT_VIETNAMESE_SUPERLATIVE.contains(&words[words.len() - 2]);
    english || chinese || vietnamese
}

/// Someone named with a title: "Mrs Patel", "Mr. Hill", "chị Phương", "bà Tư", "刘女士", "王先生", "孙阿姨".
fn titled_person(sentence: &str) -> bool {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let latin = words.windows(2).any(|p| {
        let title = p[0].trim_end_matches('.').to_lowercase();
        ["mr", "mrs", "ms", "miss", "dr", "anh", "chị", "bà", "ông", "cô", "chú"].contains(&title.as_str())
            && p[1].chars().next().is_some_and(char::is_uppercase)
    });
    let han = ["先生", "女士", "小姐", "阿姨", "奶奶", "爷爷", "大爷"]
        .iter()
        .any(|t| sentence.match_indices(t).any(|(i, _)| sentence[..i].chars().next_back().is_some_and(text::is_han)));
    latin || han
}

/// A street address: a house number followed by a capitalised street name ("12 Baker Street", "45/2 Lê Văn
/// Sỹ"), or a Chinese one (路, 街, 号, 室, 栋 next to digits).
fn street_address(sentence: &str) -> bool {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let numbered = words.windows(2).any(|w| {
        let number = w[0].chars().next().is_some_and(|c| c.is_ascii_digit())
            && w[0].chars().all(|c| c.is_ascii_alphanumeric() || "/-".contains(c))
            && w[0].chars().filter(char::is_ascii_digit).count() <= 4;
        number && w[1].chars().next().is_some_and(char::is_uppercase)
    });
    let han = sentence.char_indices().any(|(i, c)| {
        "路街号室栋弄".contains(c)
            && sentence[..i].chars().next_back().is_some_and(|p| p.is_ascii_digit() || "路街".contains(p))
    }) || ["路", "街"].iter().any(|s| sentence.contains(s)) && sentence.chars().any(|c| c.is_ascii_digit());
    numbered || han
}

/// Words that make a code the customer's own business (an order, a parcel, a coupon, a product, a booking),
/// not an internal identifier.
const CUSTOMER_CODES: [&str; 40] = [
    "order",
    "tracking",
    "parcel",
    "shipment",
    "courier",
    "coupon",
    "voucher",
    "promo",
    "code ",
    "sku",
    "item",
    "product",
    "booking",
    "reference",
    "flight",
    "invoice",
    "receipt",
    "model",
    "đơn",
    "vận đơn",
    "mã giảm",
    "mã ưu đãi",
    "mã sp",
    "sản phẩm",
    "hóa đơn",
    "đặt chỗ",
    "chuyến bay",
    "giảm giá",
    "订单",
    "单号",
    "快递",
    "运单",
    "优惠码",
    "券",
    "商品",
    "编号为您",
    "发票",
    "航班",
    "预订",
    "型号",
];

/// An internal identifier beyond doubt: a token of a short prefix and at least five digits ("CUS209931",
/// "KH-0045821", "u_48812093"), in a sentence that says nothing of an order, a parcel, a coupon or a product.
fn internal_id(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    if CUSTOMER_CODES.iter().any(|w| lower.contains(w)) {
        return false;
    }
    sentence.split(|c: char| c.is_whitespace() || "()[]【】（），。,;:：=#".contains(c)).any(|token| {
        let token = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let letters = token.chars().take_while(char::is_ascii_alphabetic).count();
        let digits = token.chars().filter(char::is_ascii_digit).count();
        (1..=6).contains(&letters)
            && digits >= 5
            && token.chars().all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c))
            && token.chars().skip(letters).all(|c| c.is_ascii_digit() || "-_/".contains(c))
    })
}

/// Words that introduce a date of birth.
const BIRTH: [&str; 12] = [
    "born on",
    "born in",
    "date of birth",
    "dob",
    "birthday is",
    "sinh ngày",
    "ngày sinh",
    "sinh năm",
    "生日是",
    "出生于",
    "出生日期",
    "生于",
];

/// A date of birth beyond doubt: a birth word and a year from 1900 to 2099 ("Emma's date of birth is
/// 14/03/1992", "sinh ngày 14/03/1992", "生日是1992年3月14日"). A greeting on the recipient's birthday names no
/// year.
fn date_of_birth(sentence: &str) -> bool {
    // The year first: it is cheap, and most sentences have none.
    let bytes = sentence.as_bytes();
    let year = bytes.windows(4).enumerate().any(|(i, w)| {
        (w.starts_with(b"19") || w.starts_with(b"20"))
            && w.iter().all(u8::is_ascii_digit)
            && (i == 0 || !bytes[i - 1].is_ascii_digit())
            && bytes.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
    });
    if !year {
        return false;
    }
    let lower = sentence.to_lowercase();
    BIRTH.iter().any(|w| lower.match_indices(w).any(|(i, _)| text::stands_alone(&lower, i, i + w.len())))
}

/// The sentences of `text` that lean towards a family (at least [`UNCERTAIN`]), as (byte span, family,
/// probability); those at [`THRESHOLD`] or more read as it.
pub(super) fn read_sentences(meaning: &Meaning, text_in: &str) -> Vec<(usize, usize, usize, f32)> {
    let mut out = Vec::new();
    for (start, end) in super::scan::sentences(text_in) {
        let sentence = &text_in[start..end];
        if sentence.trim().chars().count() < 4 {
            continue;
        }
        let mut reading = meaning.read(&text::nfc(sentence));
        if reading.family.is_none_or(|_| reading.probability < THRESHOLD) && internal_id(sentence) {
            reading = Reading { family: family_index("internal_ids"), probability: 1.0 };
        }
        if reading.family.is_none_or(|_| reading.probability < THRESHOLD) && date_of_birth(sentence) {
            reading = Reading { family: family_index("personal_data"), probability: 1.0 };
        }
        if let Some(f) = reading.family.filter(|_| reading.probability >= UNCERTAIN) {
            let lead = sentence.len() - sentence.trim_start().len();
            out.push((start + lead, start + sentence.trim_end().len(), f, reading.probability));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_training_set_reads_back_and_covers_every_family_in_every_language() {
        let examples = read_examples(TRAINING_SET).unwrap();
        for lang in ["vi", "zh", "en"] {
            for label in FAMILIES.iter().chain(["clean"].iter()) {
                let n = examples.iter().filter(|e| e.lang == lang && e.label == *label).count();
                assert!(n >= 20, "{lang} {label}: {n}");
            }
        }
        let model = Meaning::builtin();
        let right = examples
            .iter()
            .filter(|e| {
                let r = model.read(&e.text);
                let got = r.family.filter(|_| r.probability >= THRESHOLD).map_or("clean", |f| FAMILIES[f]);
                got == e.label
            })
            .count();
        assert!(right as f64 >= 0.95 * examples.len() as f64, "{right} of {} on the training set", examples.len());
    }

    #[test]
    fn a_date_of_birth_needs_a_birth_word_and_a_year() {
        assert!(date_of_birth("Your sister Emma's date of birth is 14/03/1992."));
        assert!(date_of_birth("Em gái chị sinh ngày 14/03/1992."));
        assert!(date_of_birth("您妹妹的生日是1992年3月14日。"));
        assert!(!date_of_birth("Happy birthday, Emma!"));
        assert!(!date_of_birth("Our shop was born in a garage, and 2,000 customers later we still pack by hand."));
    }

    #[test]
    fn a_promise_of_returns_speaks_of_money() {
        let model = Meaning::builtin();
        let returns = family_index("guaranteed_returns");
        let certain = model.read("We will never, ever share your details with anyone.");
        assert!(certain.family != returns || certain.probability < THRESHOLD, "{certain:?}");
        let promise = model.read("Your money can never shrink here, whatever the market does.");
        assert_eq!(promise.family, returns);
        assert!(promise.probability >= THRESHOLD, "{promise:?}");
    }

    #[test]
    fn shapes_say_what_words_do_not() {
        assert!(shapes("Hồ sơ KH-0045821 đã cập nhật").contains(&"shapeidtoken"));
        assert!(shapes("(Note: serial returner, COD only.)").contains(&"shapeopensbracket"));
        assert!(shapes("INTERNAL: VIP, call back").contains(&"shapecapslabel"));
        assert!(shapes("call 0903 112 458 today").contains(&"shapephone"));
        assert!(shapes("lives at 12 Baker Street").contains(&"shapeaddress"));
        assert!(!shapes("Code SUMMER25 gives 15% off").contains(&"shapeidtoken"));
    }
}
