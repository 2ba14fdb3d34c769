//! Topic and objection classification into a configurable taxonomy, in Vietnamese, Chinese and English.
//!
//! A taxonomy (YAML, see `taxonomy/objections.yaml`) lists topics, each with examples in every language it
//! should understand. A text belongs to the topic of the example it covers best, when that is at least the
//! taxonomy's threshold; otherwise to no topic. "Covers" is measured on [`crate::embed::features`]: the share
//! of the example's weight whose features the text has, each feature weighted by how few topics use it (so
//! "data" in every topic's examples counts little, "bảo mật" a lot), and at least one whole word or pair must
//! be shared (fragments alone are not a match). That is how "lo ngại bảo mật dữ liệu",
//! "担心数据安全" and "worried about data security" land on one topic, and so on one content task
//! ([`Taxonomy::key`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::embed::{Feature, features, is_word_like};
use crate::text::{self, Language};

/// The taxonomy shipped with Tutti.
pub const BUILTIN: &str = include_str!("../taxonomy/objections.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    taxonomy: String,
    #[serde(default = "default_threshold")]
    threshold: f32,
    topics: Vec<TopicFile>,
}

fn default_threshold() -> f32 {
    0.42
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
}

/// A loaded taxonomy with its examples embedded.
#[derive(Debug)]
pub struct Taxonomy {
    pub name: String,
    pub threshold: f32,
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

impl Taxonomy {
    /// The shipped taxonomy, loaded once.
    pub fn builtin() -> &'static Taxonomy {
        static BUILT: OnceLock<Taxonomy> = OnceLock::new();
        BUILT.get_or_init(|| Taxonomy::from_yaml(BUILTIN).expect("the shipped taxonomy is valid"))
    }

    /// Reads a taxonomy file; the error names what is wrong and where.
    pub fn from_yaml(source: &str) -> Result<Taxonomy, String> {
        let (value, positions) =
            tutti_core::yaml::load(source).map_err(|e| format!("line {}: {}", e.pos.line, e.message))?;
        let file: File = serde_path_to_error::deserialize(&value).map_err(|e| {
            let at = positions.key(&crate::review::json_pointer(e.path()));
            format!("line {}: {}: {}", at.line, e.path(), e.inner())
        })?;
        if !(0.0..=1.0).contains(&file.threshold) {
            return Err(format!("`threshold` is from 0 to 1, not {}", file.threshold));
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
        Ok(Taxonomy { name: file.taxonomy, threshold: file.threshold, topics, examples })
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
        })
    }

    /// A stable key for what a text is about: `topic:<id>` when it has a topic, else the text itself trimmed,
    /// lower-cased, with its spaces collapsed (so the same words still meet).
    pub fn key(&self, text: &str) -> String {
        match self.classify(text) {
            Some(m) => format!("topic:{}", m.topic.id),
            None => text::normalize(text).split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worry_in_three_languages_is_one_topic() {
        let t = Taxonomy::builtin();
        for text in
            ["lo ngại bảo mật dữ liệu", "担心数据安全", "worried about data security", "Worried about   DATA security"]
        {
            assert_eq!(t.key(text), "topic:data_security", "{text}");
        }
        assert_eq!(t.key("Hôm nay trời đẹp quá"), "hôm nay trời đẹp quá", "no topic: the words themselves");
    }

    #[test]
    fn bad_files_are_refused_naming_the_problem() {
        let e =
            Taxonomy::from_yaml("taxonomy: x\ntopics:\n  - id: Price\n    examples: { en: [price] }\n").unwrap_err();
        assert!(e.contains("`Price`"), "{e}");
        let e = Taxonomy::from_yaml("taxonomy: x\ntopics:\n  - id: p\n    examples: { xx: [price] }\n").unwrap_err();
        assert!(e.contains("`xx`"), "{e}");
        let e = Taxonomy::from_yaml("taxonomy: x\ntopics:\n  - id: p\n    exemples: {}\n").unwrap_err();
        assert!(e.contains("line 4") || e.contains("exemples"), "{e}");
        let e = Taxonomy::from_yaml("taxonomy: x\nthreshold: 2\ntopics: []\n").unwrap_err();
        assert!(e.contains("threshold"), "{e}");
    }
}
