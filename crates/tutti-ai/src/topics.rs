//! Topic and objection classification into a configurable taxonomy, in Vietnamese, Chinese and English.
//!
//! A taxonomy (YAML, see `taxonomy/objections.yaml`) lists topics, each with examples in every language it
//! should understand. A text belongs to the topic of the example it covers best, when that is at least the
//! taxonomy's threshold; otherwise to no topic. "Covers" is measured on [`crate::embed::features`]: the share
//! of the example's weight whose features the text has, each feature weighted by how few topics use it (so
//! "data" in every topic's examples counts little, "bảo mật" a lot), and at least one whole word or pair must
//! be shared (fragments alone are not a match). That is how "lo ngại bảo mật dữ liệu",
//! "担心数据安全" and "worried about data security" land on one topic, and so on one content task
//! ([`TopicTaxonomy::key`]).
//!
//! With a provider routed for embeddings (`routes = { embed = "openai" }`), [`Semantic`] adds the provider's
//! space: the examples are embedded once by that model, and a text the lexical method leaves without a topic
//! goes to the topic of its nearest example by cosine when that reaches the taxonomy's
//! `embedding_threshold`. This is what finds "khách sợ thông tin bị lộ" without a shared word. Lexical first:
//! it is exact where it speaks, and free.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::embed::{Feature, dot, features, is_word_like};
use crate::generate::CallNote;
use crate::provider::Embeddings;
use crate::provider::route::Router;
use crate::text::{self, Language};

/// The taxonomy shipped with Tutti.
pub const BUILTIN: &str = include_str!("../taxonomy/objections.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    taxonomy: String,
    #[serde(default = "default_threshold")]
    threshold: f32,
    #[serde(default = "default_embedding_threshold")]
    embedding_threshold: f32,
    topics: Vec<TopicFile>,
}

fn default_threshold() -> f32 {
    0.42
}

fn default_embedding_threshold() -> f32 {
    0.8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicFile {
    id: String,
    #[serde(default)]
    label: BTreeMap<String, String>,
    examples: BTreeMap<String, Vec<String>>,
}

/// One topic: its id, its label per language code.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub id: String,
    pub label: BTreeMap<String, String>,
}

impl Topic {
    /// The label in `language`, else in English, else the id.
    pub fn label(&self, language: Language) -> &str {
        self.label.get(language.code()).or_else(|| self.label.get("en")).unwrap_or(&self.id)
    }
}

/// A text's topic, how close it came and to which example.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    pub topic: &'a Topic,
    pub score: f32,
    pub example: &'a str,
    /// `lexical`, or the `provider/model` whose vectors matched.
    pub method: String,
}

/// A loaded taxonomy with its examples embedded.
#[derive(Debug)]
pub struct TopicTaxonomy {
    pub name: String,
    pub threshold: f32,
    /// The least cosine to the nearest example, in a provider's space, that counts as a match.
    pub embedding_threshold: f32,
    topics: Vec<Topic>,
    examples: Vec<Example>,
}

#[derive(Debug)]
struct Example {
    topic: usize,
    text: String,
    /// Features weighted by rarity across topics, in hash order, and their total.
    features: Vec<Feature>,
    total: f32,
}

impl TopicTaxonomy {
    /// The shipped taxonomy, loaded once.
    pub fn builtin() -> &'static TopicTaxonomy {
        static BUILT: OnceLock<TopicTaxonomy> = OnceLock::new();
        BUILT.get_or_init(|| TopicTaxonomy::from_yaml(BUILTIN).expect("the shipped taxonomy is valid"))
    }

    /// Reads a taxonomy file; the error names what is wrong and where.
    pub fn from_yaml(source: &str) -> Result<TopicTaxonomy, String> {
        let (value, positions) =
            tutti_core::yaml::load(source).map_err(|e| format!("line {}: {}", e.pos.line, e.message))?;
        let file: File = serde_path_to_error::deserialize(&value).map_err(|e| {
            let at = positions.key(&crate::review::json_pointer(e.path()));
            format!("line {}: {}: {}", at.line, e.path(), e.inner())
        })?;
        if !(0.0..=1.0).contains(&file.threshold) {
            return Err(format!("`threshold` is from 0 to 1, not {}", file.threshold));
        }
        if !(0.0..=1.0).contains(&file.embedding_threshold) {
            return Err(format!("`embedding_threshold` is from 0 to 1, not {}", file.embedding_threshold));
        }
        let mut topics = Vec::new();
        let mut examples: Vec<(usize, String, Vec<Feature>)> = Vec::new();
        for (i, t) in file.topics.into_iter().enumerate() {
            if t.id.is_empty() || !t.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(format!("topic `{}`: an id is a-z, 0-9 and `_`", t.id));
            }
            if topics.iter().any(|o: &Topic| o.id == t.id) {
                return Err(format!("topic `{}` is defined twice", t.id));
            }
            for (code, list) in &t.examples {
                if Language::from_code(code).is_none() {
                    return Err(format!("topic `{}`: `{code}` is not a language code (vi, zh, en...)", t.id));
                }
                for e in list {
                    let f = features(e);
                    if f.is_empty() {
                        return Err(format!("topic `{}`: the example {e:?} has no words", t.id));
                    }
                    examples.push((i, text::nfc(e), f));
                }
            }
            if !examples.iter().any(|(at, _, _)| *at == i) {
                return Err(format!("topic `{}` has no examples", t.id));
            }
            topics.push(Topic { id: t.id, label: t.label });
        }
        // How many topics use each feature.
        let mut used: BTreeMap<u64, std::collections::BTreeSet<usize>> = BTreeMap::new();
        for (topic, _, f) in &examples {
            for (h, _) in f {
                used.entry(*h).or_default().insert(*topic);
            }
        }
        let n = topics.len() as f32;
        let examples = examples
            .into_iter()
            .map(|(topic, text, f)| {
                let features: Vec<Feature> =
                    f.into_iter().map(|(h, w)| (h, w * (1.0 + n / used[&h].len() as f32).ln())).collect();
                let total = features.iter().map(|(_, w)| w).sum();
                Example { topic, text, features, total }
            })
            .collect();
        Ok(TopicTaxonomy {
            name: file.taxonomy,
            threshold: file.threshold,
            embedding_threshold: file.embedding_threshold,
            topics,
            examples,
        })
    }

    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// The topic of `text`, if it covers one of the examples well enough.
    pub fn classify(&self, text: &str) -> Option<Match<'_>> {
        let mine = features(text);
        if mine.is_empty() {
            return None;
        }
        let best = self
            .examples
            .iter()
            .filter_map(|e| {
                let (mut covered, mut word) = (0f32, false);
                for (h, w) in &e.features {
                    if mine.binary_search_by_key(h, |f| f.0).is_ok() {
                        covered += w;
                        word |= is_word_like(*h);
                    }
                }
                word.then_some((e, covered / e.total))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (best.1 >= self.threshold).then(|| Match {
            topic: &self.topics[best.0.topic],
            score: best.1,
            example: &best.0.text,
            method: "lexical".into(),
        })
    }

    /// Every example's text, in the order [`Semantic::new`] expects their vectors.
    pub fn example_texts(&self) -> Vec<String> {
        self.examples.iter().map(|e| e.text.clone()).collect()
    }

    /// The topic of the example nearest to `vector` in `semantic`'s space, when close enough.
    pub fn classify_vector(&self, semantic: &Semantic, vector: &[f32]) -> Option<Match<'_>> {
        let (i, score) =
            semantic.vectors.iter().enumerate().map(|(i, e)| (i, dot(e, vector))).max_by(|a, b| a.1.total_cmp(&b.1))?;
        let example = self.examples.get(i)?;
        (score >= self.embedding_threshold).then(|| Match {
            topic: &self.topics[example.topic],
            score,
            example: &example.text,
            method: format!("{}/{}", semantic.provider, semantic.model),
        })
    }

    /// The topic of `text`: lexically, else in the space of the provider routed for embeddings (its vectors of
    /// the examples made once and kept in `semantic`). Without such a provider, or when it fails, lexical only.
    /// Says which embedding calls were made, for the audit trail.
    pub async fn classify_with<'t>(
        &'t self,
        text: &str,
        router: &Router,
        semantic: &SemanticCache,
        now_ms: i64,
    ) -> (Option<Match<'t>>, Vec<CallNote>) {
        let mut calls = Vec::new();
        if let Some(m) = self.classify(text) {
            return (Some(m), calls);
        }
        if !router.has_remote_for(crate::provider::Task::Embed) || text.trim().is_empty() {
            return (None, calls);
        }
        let space = match semantic.get() {
            Some(s) => s,
            None => {
                let texts = self.example_texts();
                let examples = router.embed(&texts, now_ms).await;
                calls.push(CallNote::of_embeddings("examples", &texts, &examples));
                match Semantic::new(self, examples) {
                    Some(made) => semantic.set(made),
                    None => return (None, calls),
                }
            }
        };
        let texts = [text.to_owned()];
        let mine = router.embed(&texts, now_ms).await;
        calls.push(CallNote::of_embeddings("text", &texts, &mine));
        if mine.provider != space.provider || mine.model != space.model {
            return (None, calls);
        }
        let matched = mine.vectors.first().and_then(|v| self.classify_vector(&space, v));
        (matched, calls)
    }

    /// A stable key for what a text is about: `topic:<id>` when it has a topic, else the text itself trimmed,
    /// lower-cased, with its spaces collapsed (so the same words still meet).
    pub fn key(&self, text: &str) -> String {
        match self.classify(text) {
            Some(m) => m.key(),
            None => text::normalize(text).split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

impl Match<'_> {
    /// `topic:<id>`.
    pub fn key(&self) -> String {
        format!("topic:{}", self.topic.id)
    }
}

/// A taxonomy's examples as one provider's model embeds them.
#[derive(Debug, Clone)]
pub struct Semantic {
    pub provider: String,
    pub model: String,
    vectors: Vec<Vec<f32>>,
}

impl Semantic {
    /// The examples' vectors (from [`TopicTaxonomy::example_texts`]). `None` when they came from the local
    /// fallback (the provider failed: its space is not there to match in) or do not fit the taxonomy.
    pub fn new(taxonomy: &TopicTaxonomy, embeddings: Embeddings) -> Option<Semantic> {
        let fits = embeddings.vectors.len() == taxonomy.examples.len();
        (!embeddings.local && embeddings.fallback_reason.is_none() && fits).then_some(Semantic {
            provider: embeddings.provider,
            model: embeddings.model,
            vectors: embeddings.vectors,
        })
    }
}

/// The examples' vectors, made on first need and kept (a failed attempt is tried again next time).
#[derive(Debug, Default)]
pub struct SemanticCache(std::sync::Mutex<Option<std::sync::Arc<Semantic>>>);

impl SemanticCache {
    pub fn get(&self) -> Option<std::sync::Arc<Semantic>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, s: Semantic) -> std::sync::Arc<Semantic> {
        let s = std::sync::Arc::new(s);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worry_in_three_languages_is_one_topic() {
        let t = TopicTaxonomy::builtin();
        for text in
            ["lo ngại bảo mật dữ liệu", "担心数据安全", "worried about data security", "Worried about   DATA security"]
        {
            assert_eq!(t.key(text), "topic:data_security", "{text}");
        }
        assert_eq!(t.key("Hôm nay trời đẹp quá"), "hôm nay trời đẹp quá", "no topic: the words themselves");
    }

    #[test]
    fn bad_files_are_refused_naming_the_problem() {
        let e = TopicTaxonomy::from_yaml("taxonomy: x\ntopics:\n  - id: Price\n    examples: { en: [price] }\n")
            .unwrap_err();
        assert!(e.contains("`Price`"), "{e}");
        let e =
            TopicTaxonomy::from_yaml("taxonomy: x\ntopics:\n  - id: p\n    examples: { xx: [price] }\n").unwrap_err();
        assert!(e.contains("`xx`"), "{e}");
        let e = TopicTaxonomy::from_yaml("taxonomy: x\ntopics:\n  - id: p\n    exemples: {}\n").unwrap_err();
        assert!(e.contains("line 4") || e.contains("exemples"), "{e}");
        let e = TopicTaxonomy::from_yaml("taxonomy: x\nthreshold: 2\ntopics: []\n").unwrap_err();
        assert!(e.contains("threshold"), "{e}");
    }
}
