//! Rule packs: YAML files, one pack per file, read with every problem located at its line and column.
//!
//! ```yaml
//! pack: finance
//! title: Financial services
//! rules:
//!   - id: guaranteed_returns
//!     kind: phrases            # phrases | require | personal_data | tone | length
//!     says: promises a return  # what a violation says
//!     why: China's Advertising Law art. 25 ...
//!     phrases: { en: [risk-free], vi: [không rủi ro], zh: [零风险] }
//!     patterns: { en: ['\d+ ?% guaranteed'] }   # regular expressions over lower-cased text
//!     except: { en: [not risk-free] }           # a hit overlapping one of these is not a violation
//!     fix: drop_sentence
//!   - id: sms_opt_out
//!     kind: require
//!     applies_to: { channels: [sms], languages: [vi], categories: [promotional] }   # only these drafts
//!     any_of: { vi: [từ chối] }
//!     at: start                                 # the phrase must open the body (default: anywhere)
//!     fix: { vi: "QC " }                        # added at the start when `at: start`, else at the end
//! ```
//!
//! A rule with `applies_to` checks only drafts of those channels, languages and categories; a draft whose
//! category is not known is checked (a rule for advertising is not skipped because nobody said what it was).
//! `length` rules take `max_chars` (characters per channel or `channel.field`) and `max_segments` (SMS parts,
//! counted in the message's own encoding, GSM-7 or UCS-2: see [`crate::sms`]).
//!
//! Languages are `en`, `vi`, `zh` and `any`; every phrase applies to every message whatever its language (a
//! Vietnamese email may quote a Chinese slogan), the key only says how the phrase is written.

use std::collections::BTreeMap;

use serde::Deserialize;
use tutti_core::yaml::{self, Pos, push_token};

use super::Severity;
use crate::text::Language;

/// Why a pack file cannot be used. `pos` is line 0 when the problem is the file itself (it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PackError {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pos.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.pos, self.message)
        }
    }
}

/// How a phrase list is keyed: by the language it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Written {
    En,
    Vi,
    Zh,
    Any,
}

pub type ByLanguage = BTreeMap<Written, Vec<String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Phrases,
    Require,
    PersonalData,
    Tone,
    Length,
}

/// `fix:` either names a repair or, for `require` rules, gives the text to add in each language.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FixFile {
    Named(String),
    Add(BTreeMap<Written, String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackFile {
    pub pack: String,
    #[serde(default)]
    pub title: Option<String>,
    pub rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub id: String,
    pub kind: Kind,
    pub says: String,
    #[serde(default)]
    pub why: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub phrases: ByLanguage,
    #[serde(default)]
    pub patterns: ByLanguage,
    #[serde(default)]
    pub except: ByLanguage,
    #[serde(default)]
    pub when: ByLanguage,
    #[serde(default)]
    pub any_of: ByLanguage,
    #[serde(default)]
    pub fix: Option<FixFile>,
    #[serde(default)]
    pub max_shouted_words: Option<usize>,
    #[serde(default)]
    pub max_exclamation_run: Option<usize>,
    #[serde(default)]
    pub max_exclamations: Option<usize>,
    #[serde(default)]
    pub max_chars: BTreeMap<String, usize>,
    #[serde(default)]
    pub max_segments: BTreeMap<String, usize>,
    #[serde(default)]
    pub applies_to: Scope,
    #[serde(default)]
    pub at: At,
    /// The family of the meaning classifier whose sentences break this rule too (see `meaning.rs`).
    #[serde(default)]
    pub meaning: Option<String>,
    /// Sentences of the rule's family, to train the classifier on beside the shipped ones.
    #[serde(default)]
    pub examples: ByLanguage,
    /// `patterns`, compiled when the file is checked.
    #[serde(skip)]
    pub compiled: Vec<regex::Regex>,
}

/// Which drafts a rule checks: each list, when given, must name the draft's channel, language or category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default)]
    pub categories: Vec<String>,
}

/// Where a `require` rule's phrase must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum At {
    #[default]
    Anywhere,
    /// Opening the body (after spaces).
    Start,
}

/// Which members each kind of rule takes (besides id, kind, says, why, severity and fix).
fn members_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Phrases => &["phrases", "patterns", "except", "meaning", "examples"],
        Kind::Require => &["when", "any_of", "except", "at"],
        Kind::PersonalData => &["meaning", "examples"],
        Kind::Tone => &["max_shouted_words", "max_exclamation_run", "max_exclamations"],
        Kind::Length => &["max_chars", "max_segments"],
    }
}

/// Which repairs each kind of rule can name.
fn fixes_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Phrases | Kind::PersonalData => &["drop_sentence", "none"],
        Kind::Require => &["none"],
        Kind::Tone => &["calm", "none"],
        Kind::Length => &["shorten", "none"],
    }
}

/// A deserialisation error's path as a JSON pointer (`/rules/3/id`), to find its line in the YAML.
pub(crate) fn json_pointer(path: &serde_path_to_error::Path) -> String {
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => pointer = push_token(&pointer, &index.to_string()),
            serde_path_to_error::Segment::Map { key } => pointer = push_token(&pointer, key),
            _ => {}
        }
    }
    pointer
}

/// Reads one pack file. `file` names it in errors.
pub fn parse(file: &str, source: &str) -> Result<PackFile, PackError> {
    let (value, positions) =
        yaml::load(source).map_err(|e| PackError { file: file.to_owned(), pos: e.pos, message: e.message })?;
    let at = |pointer: &str, message: String| PackError { file: file.to_owned(), pos: positions.of(pointer), message };
    let at_key =
        |pointer: &str, message: String| PackError { file: file.to_owned(), pos: positions.key(pointer), message };
    let mut pack: PackFile = serde_path_to_error::deserialize(&value).map_err(|e| {
        let pointer = json_pointer(e.path());
        let shown = e.path().to_string();
        let message = if shown == "." { e.inner().to_string() } else { format!("{shown}: {}", e.inner()) };
        at_key(&pointer, message)
    })?;
    if !is_name(&pack.pack) {
        return Err(at("/pack", format!("`{}` is not a pack name: use a-z, 0-9, `_` and `-`", pack.pack)));
    }
    let raw_rules = value.get("rules").and_then(|r| r.as_array()).map(Vec::as_slice).unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for (i, rule) in pack.rules.iter_mut().enumerate() {
        let base = format!("/rules/{i}");
        if !is_name(&rule.id) {
            return Err(at(
                &format!("{base}/id"),
                format!("`{}` is not a rule id: use a-z, 0-9, `_` and `-`", rule.id),
            ));
        }
        if seen.contains(&rule.id) {
            return Err(at(&format!("{base}/id"), format!("rule `{}` is defined twice in this pack", rule.id)));
        }
        seen.push(rule.id.clone());
        let allowed = members_of(rule.kind);
        if let Some(members) = raw_rules.get(i).and_then(|r| r.as_object()) {
            for key in members.keys() {
                let common = ["id", "kind", "says", "why", "severity", "fix", "applies_to"].contains(&key.as_str());
                if !common && !allowed.contains(&key.as_str()) {
                    return Err(at_key(
                        &push_token(&base, key),
                        format!(
                            "`{key}` does not apply to a `{}` rule (it takes {})",
                            kind_name(rule.kind),
                            if allowed.is_empty() { "no other members".to_owned() } else { allowed.join(", ") }
                        ),
                    ));
                }
            }
        }
        let empty = |lists: &ByLanguage| lists.values().all(Vec::is_empty);
        match rule.kind {
            Kind::Phrases if empty(&rule.phrases) && empty(&rule.patterns) && rule.meaning.is_none() => {
                return Err(at(&base, "a `phrases` rule needs `phrases`, `patterns` or `meaning`".into()));
            }
            Kind::Require if empty(&rule.any_of) => {
                return Err(at(&base, "a `require` rule needs `any_of`: the phrases that satisfy it".into()));
            }
            Kind::Length if rule.max_chars.is_empty() && rule.max_segments.is_empty() => {
                return Err(at(
                    &base,
                    "a `length` rule needs `max_chars`, such as `{sms: 160}`, or `max_segments`, such as `{sms: 2}`"
                        .into(),
                ));
            }
            _ => {}
        }
        if let Some(family) = &rule.meaning
            && super::meaning::family_index(family).is_none()
        {
            return Err(at(
                &format!("{base}/meaning"),
                format!("`{family}` is not a family the classifier knows: {}", super::meaning::FAMILIES.join(", ")),
            ));
        }
        if rule.meaning.is_none() && rule.examples.values().any(|l| !l.is_empty()) {
            return Err(at(
                &format!("{base}/examples"),
                "`examples` train the classifier for `meaning`: name it".into(),
            ));
        }
        for (w, list) in rule.patterns.iter() {
            for (j, p) in list.iter().enumerate() {
                match regex::Regex::new(p) {
                    Ok(compiled) => rule.compiled.push(compiled),
                    Err(e) => {
                        let pointer = format!("{base}/patterns/{}/{j}", written_name(*w));
                        return Err(at(&pointer, format!("the pattern does not compile: {e}")));
                    }
                }
            }
        }
        for (name, lists) in [("phrases", &rule.phrases), ("except", &rule.except), ("when", &rule.when)]
            .into_iter()
            .chain([("any_of", &rule.any_of)])
        {
            for (w, list) in lists {
                if let Some(j) = list.iter().position(|p| p.trim().is_empty()) {
                    let pointer = format!("{base}/{name}/{}/{j}", written_name(*w));
                    return Err(at(&pointer, "an empty phrase would match everything".into()));
                }
            }
        }
        match &rule.fix {
            Some(FixFile::Named(name)) if !fixes_of(rule.kind).contains(&name.as_str()) => {
                let mut can = fixes_of(rule.kind).join(", ");
                if rule.kind == Kind::Require {
                    can.push_str(", or the text to add by language ({en: ..., vi: ..., zh: ...})");
                }
                return Err(at(
                    &format!("{base}/fix"),
                    format!("`{name}` is not a fix for a `{}` rule; use {can}", kind_name(rule.kind)),
                ));
            }
            Some(FixFile::Add(_)) if rule.kind != Kind::Require => {
                return Err(at(
                    &format!("{base}/fix"),
                    format!("text to add is a fix for `require` rules; a `{}` rule takes a name", kind_name(rule.kind)),
                ));
            }
            _ => {}
        }
    }
    Ok(pack)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Phrases => "phrases",
        Kind::Require => "require",
        Kind::PersonalData => "personal_data",
        Kind::Tone => "tone",
        Kind::Length => "length",
    }
}

fn written_name(w: Written) -> &'static str {
    match w {
        Written::En => "en",
        Written::Vi => "vi",
        Written::Zh => "zh",
        Written::Any => "any",
    }
}

impl Written {
    pub fn language(self) -> Option<Language> {
        match self {
            Written::En => Some(Language::En),
            Written::Vi => Some(Language::Vi),
            Written::Zh => Some(Language::Zh),
            Written::Any => None,
        }
    }
}
