//! Local text embeddings: hashed features in a fixed number of dimensions, for similarity and clustering. No
//! download, no model: the same text gives the same vector on every machine.
//!
//! Features, from the normalised text (NFC, lower case):
//! - Latin words (English, Vietnamese): the word, the word with its Vietnamese marks taken off (so "bao mat"
//!   typed without diacritics meets "bảo mật"), adjacent word pairs, and the word's character trigrams (so
//!   "securities" meets "security");
//! - Chinese: each character, and each pair of adjacent characters (most Chinese words are two characters).
//!
//! Each feature is hashed (FNV-1a) to a dimension and a sign, and the vector is scaled to length 1, so the dot
//! product of two vectors is their cosine similarity. Vectors of different languages share little: meaning
//! across languages comes from examples in each language (see [`crate::topics`]), or from a provider's
//! embeddings when one is configured.

use tutti_core::hash::Fnv1a;

use crate::text::{self, is_han};

/// The number of dimensions.
pub const DIM: usize = 512;

/// A unit-length vector (all zeros for a text with no features).
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(pub Vec<f32>);

/// The dot product: the cosine of two unit vectors (over the shorter's length). Summed in eight lanes, which
/// the compiler turns into vector instructions: a provider's 1,536-number vectors are compared millions of
/// times in a mining.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a_lanes, a_rest) = a[..n].as_chunks::<8>();
    let (b_lanes, b_rest) = b[..n].as_chunks::<8>();
    let mut lanes = [0f32; 8];
    for (x, y) in a_lanes.iter().zip(b_lanes) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + rest
}

/// `v` scaled to length 1 (all zeros stays all zeros).
pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl Embedding {
    /// Cosine similarity, from -1 to 1 (0 when either is empty).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        dot(&self.0, &other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|v| *v == 0.0)
    }
}

/// A Vietnamese word without its marks (`bảo` -> `bao`, `đ` -> `d`); `None` when it has none.
fn unmarked(word: &str) -> Option<String> {
    text::has_diacritics(word).then(|| text::fold(word))
}

/// A feature of a text: its hash (which also names its kind) and its weight.
pub type Feature = (u64, f32);

/// The features of a text, each once (weights of repeats added), in hash order.
pub fn features(text: &str) -> Vec<Feature> {
    normalized_features(&text::normalize(text))
}

/// [`features`] of a text already normalised ([`text::normalize`]: NFC, lower case).
pub fn normalized_features(normal: &str) -> Vec<Feature> {
    let tokens = text::tokens(normal);
    let mut out: Vec<Feature> = Vec::with_capacity(tokens.len() * 6);
    // The low three bits of a feature's hash say its kind. A feature is hashed from its parts as they come
    // (a trigram's three characters, a pair's two words), with no string built for it.
    let mut push = |kind: u64, parts: &[&[u8]], weight: f32| {
        let mut h = Fnv1a::seeded(kind);
        parts.iter().for_each(|p| {
            h.write(p);
        });
        out.push(((h.finish() & !7) | kind, weight))
    };
    let mut previous: Option<(String, bool)> = None;
    for token in &tokens {
        let han = token.chars().next().is_some_and(is_han);
        let word = if han {
            push(KIND_HAN, &[token.as_bytes()], 0.7);
            token.clone()
        } else if token.chars().all(char::is_alphanumeric) {
            let plain = unmarked(token).unwrap_or_else(|| token.clone());
            push(KIND_WORD, &[plain.as_bytes()], 1.0);
            // Trigrams of "^word$", each hashed from the bytes of its three characters.
            let mut pieces: Vec<&[u8]> = Vec::with_capacity(plain.len() + 2);
            pieces.push(b"^");
            pieces.extend(plain.char_indices().map(|(i, c)| &plain.as_bytes()[i..i + c.len_utf8()]));
            pieces.push(b"$");
            if pieces.len() > 5 {
                for w in pieces.windows(3) {
                    push(KIND_TRIGRAM, w, 0.25);
                }
            }
            plain
        } else {
            previous = None;
            continue;
        };
        if let Some((p, p_han)) = &previous {
            match (*p_han, han) {
                (true, true) => push(KIND_HAN_PAIR, &[p.as_bytes(), word.as_bytes()], 1.0),
                (false, false) => push(KIND_PAIR, &[p.as_bytes(), b" ", word.as_bytes()], 0.7),
                _ => {}
            }
        }
        previous = Some((word, han));
    }
    out.sort_unstable_by_key(|f| f.0);
    out.dedup_by(|later, first| {
        if later.0 == first.0 {
            first.1 += later.1;
            true
        } else {
            false
        }
    });
    out
}

const KIND_HAN: u64 = 1;
const KIND_HAN_PAIR: u64 = 2;
const KIND_WORD: u64 = 3;
const KIND_TRIGRAM: u64 = 4;
const KIND_PAIR: u64 = 5;

/// Whether a feature is a whole word or a pair (evidence of meaning), not a fragment (a trigram, a lone Chinese
/// character).
pub fn is_word_like(feature: u64) -> bool {
    matches!(feature & 7, KIND_WORD | KIND_PAIR | KIND_HAN_PAIR)
}

/// The embedding of a text.
pub fn embed(text: &str) -> Embedding {
    let mut v = vec![0f32; DIM];
    for (h, w) in features(text) {
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[((h >> 3) % DIM as u64) as usize] += sign * w;
    }
    Embedding(unit(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dot_product_in_lanes_is_the_plain_sum() {
        for (n, m) in [(0, 0), (1, 1), (7, 7), (8, 8), (9, 9), (17, 17), (1536, 1536), (20, 13), (5, 30)] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
            let b: Vec<f32> = (0..m).map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-3 * (1.0 + plain.abs()), "{n}x{m}");
        }
    }

    #[test]
    fn similar_texts_are_near_and_unrelated_ones_far() {
        let a = embed("worried about data security");
        assert!((a.cosine(&a) - 1.0).abs() < 1e-5);
        assert!(a.cosine(&embed("concerns about the security of our data")) > 0.3);
        assert!(a.cosine(&embed("the price is too high")) < 0.15);
        // Vietnamese typed without marks meets the marked spelling; decomposed input meets precomposed.
        let vi = embed("lo ngại bảo mật dữ liệu");
        assert!(vi.cosine(&embed("lo ngai bao mat du lieu")) > 0.9);
        assert!(vi.cosine(&embed("lo nga\u{0323}i ba\u{0309}o mâ\u{0323}t dữ liệu")) > 0.99);
        let zh = embed("担心数据安全");
        assert!(zh.cosine(&embed("数据安全让我们很担心")) > 0.5);
        assert!(zh.cosine(&embed("价格太贵了")) < 0.15);
        assert!(embed("").is_empty() && embed("!!!").is_empty());
    }
}
