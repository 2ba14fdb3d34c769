//! The local creative tagger: no network, no model weights to download.
//!
//! Each trait of the taxonomy gets a multinomial logistic regression over hashed features of the creative's
//! text: words or Han characters, their pairs, the headline's words on their own (what a creative opens with
//! decides its structure), cue phrases from the taxonomy ([`crate::lexicon`]), and shapes (a question in the
//! headline, an exclamation, a percentage, a price). It is trained at start from a small labelled set shipped
//! in the repository (`data/creatives/train.jsonl`), which takes a few milliseconds, and is deterministic: the
//! same text always gets the same tags. A trait with no training examples is decided by its cues alone.
//! Language and length are not learned: they are measured.
//!
//! Confidence is the model's probability for the value it chose. The one-line justification names the cues that
//! spoke for that value.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::lexicon::DEFAULT_CUES;
use crate::softmax::{Softmax, Training};
use crate::text::{self, is_han, is_word_char, stands_alone};

/// A trait the tagger decides, with its values and the phrases that point at each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitDef {
    pub name: String,
    pub values: Vec<String>,
    /// Value -> cue phrases (any language).
    #[serde(default)]
    pub cues: BTreeMap<String, Vec<String>>,
}

/// What creatives are tagged with. `language` and `length` are always added; they are measured, not learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    pub traits: Vec<TraitDef>,
}

impl Default for Taxonomy {
    /// Tone (emotional or rational), purpose (educational or call to action), structure (problem first or
    /// solution first) and offer framing (discount, free trial, scarcity, social proof, value, none).
    fn default() -> Taxonomy {
        let values: &[(&str, &[&str])] = &[
            ("tone", &["emotional", "rational"]),
            ("purpose", &["educational", "call_to_action"]),
            ("structure", &["problem_first", "solution_first"]),
            ("offer", &["discount", "free_trial", "scarcity", "social_proof", "value", "none"]),
        ];
        let traits = values
            .iter()
            .map(|(name, values)| {
                let mut cues: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (t, v, phrases) in DEFAULT_CUES {
                    if t == name {
                        cues.entry((*v).to_owned()).or_default().extend(phrases.iter().map(|p| (*p).to_owned()));
                    }
                }
                TraitDef { name: (*name).to_owned(), values: values.iter().map(|v| (*v).to_owned()).collect(), cues }
            })
            .collect();
        Taxonomy { traits }
    }
}

impl Taxonomy {
    /// Reads a taxonomy file: `{"traits": [{"name", "values": [...], "cues": {"value": ["phrase", ...]}}]}`.
    pub fn from_json(text: &str) -> Result<Taxonomy, TaggerError> {
        serde_json::from_str(text).map_err(|e| TaggerError::Example { line: e.line(), message: e.to_string() })
    }
}

/// A problem with a taxonomy or a training set.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TaggerError {
    #[error("trait `{0}` is defined twice")]
    DuplicateTrait(String),
    #[error("trait `{0}` needs at least two values")]
    TooFewValues(String),
    #[error("trait `{name}` has cues for `{value}`, which is not one of its values")]
    UnknownCueValue { name: String, value: String },
    #[error("`{0}` is measured, not learned; it cannot be a trait of the taxonomy")]
    Reserved(String),
    #[error("line {line}: {message}")]
    Example { line: usize, message: String },
}

/// The text of a creative, as the tagger reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text<'a> {
    pub headline: &'a str,
    pub body: &'a str,
    pub call_to_action: &'a str,
}

/// A labelled creative: a line of `train.jsonl` or `eval.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    #[serde(default)]
    pub id: String,
    pub language: String,
    pub headline: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub call_to_action: String,
    /// Trait -> value.
    #[serde(flatten)]
    pub labels: BTreeMap<String, String>,
}

impl Example {
    pub fn text(&self) -> Text<'_> {
        Text { headline: &self.headline, body: &self.body, call_to_action: &self.call_to_action }
    }
}

/// Reads labelled creatives, one JSON object per line; blank lines are skipped.
pub fn read_examples(jsonl: &str) -> Result<Vec<Example>, TaggerError> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Example>(l).map_err(|e| TaggerError::Example { line: i + 1, message: e.to_string() })
        })
        .collect()
}

/// The shipped training set. Never the evaluation set.
pub const TRAINING_SET: &str = include_str!("../data/creatives/train.jsonl");

/// One decided trait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraitDecision {
    pub name: String,
    pub value: String,
    pub confidence: f64,
    pub why: String,
}

/// Hashed feature space: 2^16 weights per value.
const DIM_BITS: u32 = 16;
const DIM: usize = 1 << DIM_BITS;
const EPOCHS: usize = 40;

struct Model {
    values: Vec<String>,
    /// One row of `DIM` weights per value.
    softmax: Softmax,
    trained: bool,
}

/// A cue phrase, compiled: which trait and value it speaks for, and whether it must stand as a whole word.
struct Cue {
    name: usize,
    value: usize,
    whole_word: bool,
    phrase: String,
}

pub struct LocalTagger {
    taxonomy: Taxonomy,
    models: Vec<Model>,
    cues: Vec<Cue>,
    matcher: AhoCorasick,
}

impl std::fmt::Debug for LocalTagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTagger").field("taxonomy", &self.taxonomy).finish_non_exhaustive()
    }
}

/// What the tagger saw in one text.
struct Seen {
    features: Vec<(u32, f32)>,
    /// (cue index, in the headline)
    cues: Vec<(usize, bool)>,
}

impl LocalTagger {
    /// The default taxonomy trained on the shipped training set.
    pub fn new_default() -> LocalTagger {
        let examples = read_examples(TRAINING_SET).expect("the shipped training set is valid");
        LocalTagger::train(Taxonomy::default(), &examples).expect("the default taxonomy is valid")
    }

    /// A taxonomy of one's own, trained on the shipped examples (for the traits they label) and `extra` ones.
    pub fn with_taxonomy(taxonomy: Taxonomy, extra: &[Example]) -> Result<LocalTagger, TaggerError> {
        let mut examples = read_examples(TRAINING_SET).expect("the shipped training set is valid");
        examples.extend_from_slice(extra);
        LocalTagger::train(taxonomy, &examples)
    }

    /// Checks the taxonomy and trains one model per trait on the examples that label it.
    pub fn train(taxonomy: Taxonomy, examples: &[Example]) -> Result<LocalTagger, TaggerError> {
        let mut seen_names = std::collections::HashSet::new();
        for t in &taxonomy.traits {
            if t.name == "language" || t.name == "length" {
                return Err(TaggerError::Reserved(t.name.clone()));
            }
            if !seen_names.insert(t.name.as_str()) {
                return Err(TaggerError::DuplicateTrait(t.name.clone()));
            }
            if t.values.len() < 2 {
                return Err(TaggerError::TooFewValues(t.name.clone()));
            }
            if let Some(v) = t.cues.keys().find(|v| !t.values.contains(v)) {
                return Err(TaggerError::UnknownCueValue { name: t.name.clone(), value: v.clone() });
            }
        }
        let mut cues = Vec::new();
        for (n, t) in taxonomy.traits.iter().enumerate() {
            for (value, phrases) in &t.cues {
                let v = t.values.iter().position(|x| x == value).expect("checked above");
                for phrase in phrases {
                    let phrase = text::normalize(phrase);
                    if phrase.is_empty() {
                        continue;
                    }
                    let whole_word = phrase.chars().any(|c| c.is_alphabetic() && !is_han(c));
                    cues.push(Cue { name: n, value: v, whole_word, phrase });
                }
            }
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(cues.iter().map(|c| c.phrase.as_str()))
            .expect("cue phrases are plain strings");
        let mut tagger = LocalTagger {
            models: taxonomy
                .traits
                .iter()
                .map(|t| Model { values: t.values.clone(), softmax: Softmax::new(t.values.len(), DIM), trained: false })
                .collect(),
            taxonomy,
            cues,
            matcher,
        };
        let seen: Vec<Seen> = examples.iter().map(|e| tagger.see(e.text())).collect();
        for n in 0..tagger.models.len() {
            let name = tagger.taxonomy.traits[n].name.clone();
            let labelled: Vec<(usize, usize)> = examples
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let value = e.labels.get(&name)?;
                    tagger.models[n].values.iter().position(|v| v == value).map(|v| (i, v))
                })
                .collect();
            if labelled.len() >= 2 {
                train_model(&mut tagger.models[n], &seen, &labelled, n as u64);
            }
        }
        Ok(tagger)
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    fn see(&self, t: Text<'_>) -> Seen {
        let headline = text::normalize(t.headline);
        let rest = text::normalize(&format!("{}\n{}", t.body, t.call_to_action));
        let mut names: Vec<String> = Vec::with_capacity(64);
        let head_tokens = text::tokens(&headline);
        let rest_tokens = text::tokens(&rest);
        for (prefix, tokens) in [("", &head_tokens), ("", &rest_tokens)] {
            for (i, tok) in tokens.iter().enumerate() {
                names.push(format!("{prefix}t:{tok}"));
                if let Some(next) = tokens.get(i + 1) {
                    names.push(format!("p:{tok}\u{1}{next}"));
                }
            }
        }
        for tok in head_tokens.iter().take(12) {
            names.push(format!("h:{tok}"));
        }
        let mut cues = Vec::new();
        for (in_headline, hay) in [(true, headline.as_str()), (false, rest.as_str())] {
            for m in self.matcher.find_overlapping_iter(hay) {
                let cue = &self.cues[m.pattern().as_usize()];
                if cue.whole_word && !stands_alone(hay, m.start(), m.end()) {
                    continue;
                }
                cues.push((m.pattern().as_usize(), in_headline));
                let t = &self.taxonomy.traits[cue.name];
                let value = &t.values[cue.value];
                names.push(format!("c:{}={value}", t.name));
                if in_headline {
                    names.push(format!("hc:{}={value}", t.name));
                }
            }
        }
        let all = format!("{headline}\n{rest}");
        // A headline in quotation marks is somebody's words: a testimonial.
        let quoted = ['"', '“', '「', '『'].iter().any(|q| headline.trim_start().starts_with(*q));
        let shapes = [
            ("shape:headline_quoted", quoted),
            ("shape:headline_question", headline.contains('?') || headline.contains('？')),
            ("shape:exclamation", all.contains('!') || all.contains('！')),
            ("shape:percent", all.contains('%') || all.contains('％')),
            ("shape:number", all.chars().any(|c| c.is_ascii_digit())),
            (
                "shape:money",
                all.contains('$') || all.contains('€') || all.contains('¥') || all.contains('元') || all.contains('đ'),
            ),
        ];
        for (name, on) in shapes {
            if on {
                names.push(name.to_owned());
            }
        }
        names.push("bias".to_owned());
        let mut counts: HashMap<u32, f32> = HashMap::with_capacity(names.len());
        for name in &names {
            *counts.entry(hash(name.as_bytes())).or_default() += 1.0;
        }
        // Sublinear counts, then unit length: long bodies do not shout down short headlines.
        let mut features: Vec<(u32, f32)> = counts.into_iter().map(|(k, v)| (k, 1.0 + v.ln())).collect();
        features.sort_unstable_by_key(|f| f.0);
        let norm = features.iter().map(|f| f.1 * f.1).sum::<f32>().sqrt().max(1e-6);
        features.iter_mut().for_each(|f| f.1 /= norm);
        Seen { features, cues }
    }

    /// Tags a text: every trait of the taxonomy, then `language` and `length`.
    pub fn tag(&self, t: Text<'_>) -> Vec<TraitDecision> {
        let seen = self.see(t);
        let mut out = Vec::with_capacity(self.models.len() + 2);
        for (n, model) in self.models.iter().enumerate() {
            let probabilities = if model.trained { model.probabilities(&seen.features) } else { self.vote(n, &seen) };
            let Some((best, p)) = probabilities.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1)) else {
                continue;
            };
            out.push(TraitDecision {
                name: self.taxonomy.traits[n].name.clone(),
                value: model.values[best].clone(),
                confidence: p,
                why: self.why(n, best, &seen),
            });
        }
        let all = format!("{} {} {}", t.headline, t.body, t.call_to_action);
        let language = text::detect(&all);
        out.push(TraitDecision {
            name: "language".to_owned(),
            value: language.code().to_owned(),
            confidence: 1.0,
            why: "measured from the script and common words".to_owned(),
        });
        let (length, units) = length(&all);
        out.push(TraitDecision {
            name: "length".to_owned(),
            value: length.to_owned(),
            confidence: 1.0,
            why: format!("{units} words (two Han characters count as one)"),
        });
        out
    }

    /// Cue votes, for a trait nobody labelled examples of: the share of its cues each value got.
    fn vote(&self, n: usize, seen: &Seen) -> Vec<f64> {
        let values = self.models[n].values.len();
        let mut votes = vec![0.0; values];
        for &(c, in_headline) in &seen.cues {
            if self.cues[c].name == n {
                votes[self.cues[c].value] += if in_headline { 2.0 } else { 1.0 };
            }
        }
        let total: f64 = votes.iter().sum();
        if total == 0.0 {
            return vec![1.0 / values as f64; values];
        }
        votes.iter().map(|v| v / total).collect()
    }

    fn why(&self, n: usize, value: usize, seen: &Seen) -> String {
        let mut phrases: Vec<&str> = Vec::new();
        for &(c, _) in &seen.cues {
            let cue = &self.cues[c];
            if cue.name == n && cue.value == value && !phrases.contains(&cue.phrase.as_str()) {
                phrases.push(&cue.phrase);
            }
        }
        if phrases.is_empty() {
            "local classifier: from the wording as a whole, no single cue".to_owned()
        } else {
            let quoted: Vec<String> = phrases.iter().take(4).map(|p| format!("\"{p}\"")).collect();
            format!("local classifier: cues {}", quoted.join(", "))
        }
    }
}

/// `short`, `medium` or `long`, from words (Latin) and Han characters (two count as a word).
fn length(all: &str) -> (&'static str, usize) {
    let words = all.split_whitespace().filter(|w| w.chars().any(is_word_char)).count();
    let han = all.chars().filter(|c| is_han(*c)).count();
    let units = words + han / 2;
    let label = match units {
        0..=14 => "short",
        15..=35 => "medium",
        _ => "long",
    };
    (label, units)
}

fn hash(bytes: &[u8]) -> u32 {
    let h = tutti_core::hash::fnv1a(bytes);
    ((h >> 32) ^ h) as u32 & (DIM as u32 - 1)
}

impl Model {
    fn probabilities(&self, features: &[(u32, f32)]) -> Vec<f64> {
        self.softmax.probabilities(features)
    }
}

/// Trains a trait's model on its labelled examples (example index, value index).
fn train_model(model: &mut Model, seen: &[Seen], labelled: &[(usize, usize)], seed: u64) {
    let examples: Vec<(&[(u32, f32)], usize)> =
        labelled.iter().map(|&(example, value)| (seen[example].features.as_slice(), value)).collect();
    model.softmax.train(&examples, &Training { epochs: EPOCHS, rate: 1.0, l2: 1e-4, seed });
    model.trained = true;
}

/// Accuracy per trait and language on labelled examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// Trait -> language -> (correct, total).
    pub by_trait: BTreeMap<String, BTreeMap<String, (usize, usize)>>,
    /// How far confidence can be trusted: for learned traits, (correct, total) of the tags whose confidence fell
    /// below 0.6, in [0.6, 0.7), [0.7, 0.8), [0.8, 0.9), and in [0.9, 1.0].
    pub by_confidence: [(usize, usize); 5],
}

impl Evaluation {
    pub fn accuracy(&self, name: &str, language: Option<&str>) -> Option<f64> {
        let per = self.by_trait.get(name)?;
        let (c, t) = per
            .iter()
            .filter(|(l, _)| language.is_none_or(|x| x == l.as_str()))
            .fold((0, 0), |(c, t), (_, (c2, t2))| (c + c2, t + t2));
        (t > 0).then(|| c as f64 / t as f64)
    }
}

/// Tags every example and counts the traits it got right, per language (`language` is checked too).
pub fn evaluate(tagger: &LocalTagger, examples: &[Example]) -> Evaluation {
    let decided: Vec<Vec<TraitDecision>> = examples.iter().map(|e| tagger.tag(e.text())).collect();
    evaluate_decisions(examples, &decided)
}

/// Accuracy of decisions already made (by the local tagger or a model), one list per example in order.
pub fn evaluate_decisions(examples: &[Example], decisions: &[Vec<TraitDecision>]) -> Evaluation {
    let mut eval = Evaluation::default();
    for (e, decided) in examples.iter().zip(decisions) {
        let mut labels = e.labels.clone();
        labels.insert("language".to_owned(), e.language.clone());
        for d in decided {
            if let Some(expected) = labels.get(&d.name) {
                let slot = eval.by_trait.entry(d.name.clone()).or_default().entry(e.language.clone()).or_insert((0, 0));
                slot.1 += 1;
                let right = *expected == d.value;
                if right {
                    slot.0 += 1;
                }
                if d.name != "language" && d.name != "length" {
                    let bucket = ((d.confidence - 0.5).max(0.0) * 10.0).floor().min(4.0) as usize;
                    eval.by_confidence[bucket].1 += 1;
                    eval.by_confidence[bucket].0 += usize::from(right);
                }
            }
        }
    }
    eval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only_for_latin_cues() {
        assert!(stands_alone("get 50% off now", 8, 11));
        assert!(!stands_alone("offer", 0, 3));
        assert!(!stands_alone("wholesale", 5, 9));
        assert!(stands_alone("特价sale", 6, 10));
    }

    #[test]
    fn a_bad_taxonomy_is_refused_with_its_reason() {
        let t = |name: &str, values: &[&str]| TraitDef {
            name: name.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            cues: BTreeMap::new(),
        };
        let err = |traits| LocalTagger::train(Taxonomy { traits }, &[]).unwrap_err();
        assert_eq!(err(vec![t("tone", &["a"])]), TaggerError::TooFewValues("tone".into()));
        assert_eq!(err(vec![t("x", &["a", "b"]), t("x", &["a", "b"])]), TaggerError::DuplicateTrait("x".into()));
        assert_eq!(err(vec![t("length", &["a", "b"])]), TaggerError::Reserved("length".into()));
        let mut bad = t("mood", &["calm", "loud"]);
        bad.cues.insert("angry".into(), vec!["grr".into()]);
        assert_eq!(err(vec![bad]), TaggerError::UnknownCueValue { name: "mood".into(), value: "angry".into() });
    }

    #[test]
    fn a_trait_without_examples_is_decided_by_its_cues() {
        let mut cues = BTreeMap::new();
        cues.insert("urgent".to_owned(), vec!["hôm nay".to_owned(), "today".to_owned(), "今天".to_owned()]);
        cues.insert("relaxed".to_owned(), vec!["anytime".to_owned()]);
        let taxonomy = Taxonomy {
            traits: vec![TraitDef { name: "urgency".into(), values: vec!["urgent".into(), "relaxed".into()], cues }],
        };
        let tagger = LocalTagger::train(taxonomy, &[]).unwrap();
        for headline in ["Chỉ hôm nay!", "Only today", "今天下单"] {
            let d = tagger.tag(Text { headline, ..Text::default() });
            assert_eq!(d[0].value, "urgent", "{headline}");
            assert!(d[0].why.contains("cues"), "{}", d[0].why);
        }
    }

    #[test]
    fn language_and_length_are_measured() {
        let tagger = LocalTagger::new_default();
        let d = tagger.tag(Text { headline: "Giảm 30% hôm nay", body: "", call_to_action: "Mua ngay" });
        let get = |n: &str| d.iter().find(|x| x.name == n).unwrap().value.clone();
        assert_eq!(get("language"), "vi");
        assert_eq!(get("length"), "short");
        let long = "word ".repeat(40);
        let d = tagger.tag(Text { headline: "How it works", body: &long, call_to_action: "" });
        assert_eq!(d.iter().find(|x| x.name == "length").unwrap().value, "long");
    }
}
