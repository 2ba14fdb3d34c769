//! The review gate: every message Tutti generates (or a marketer writes into a flow) is checked before it can be
//! sent, against rule packs: regulated claims (financial services, health), general marketing hygiene
//! (unproven superlatives, prize claims, internal notes, shouting, length per channel), personal data (another
//! customer's contact details, raw identifiers) and a company's own brand rules.
//!
//! A [`Gate`] holds the compiled packs: Tutti's own (`packs/*.yaml`, built in) and any pack files from the review
//! directory, which add packs or replace a built-in one of the same name. All phrases of all packs sit in one
//! Aho-Corasick automaton, so a review reads each field once whatever the number of rules; the few regular
//! expressions run after it. [`Gate::review`] names, for each violation, the rule, what it says, the field and
//! the offending span. [`Gate::revise`] repairs what a rule says how to repair (drop the offending sentence, add
//! the missing disclosure, calm the shouting, shorten), so a failing draft can be revised and reviewed again;
//! with a model configured, the model revises with the violations as feedback instead.
//!
//! Matching is on lower-cased NFC text, at word boundaries for words written with spaces (Chinese has none).
//! Vietnamese phrases also match copy typed without diacritics ("khong rui ro"), but only in fields with no
//! diacritics at all, so that accented copy is never matched through its folded form ("lãi" is not "lại").
//!
//! Reviewing is in `check.rs`, repairing in `revise.rs`, the labelled set and its measures in `labelled.rs`;
//! the pack format in `pack.rs` and the field scanner in `scan.rs`.

mod check;
mod concepts;
mod labelled;
pub mod meaning;
mod pack;
mod revise;
mod scan;

pub(crate) use revise::sign_off_at;

pub(crate) use pack::json_pointer;

use std::collections::BTreeMap;
use std::path::Path;

use aho_corasick::AhoCorasick;
use regex::Regex;
use serde::{Deserialize, Serialize};

pub use pack::PackError;
use pack::{FixFile, Kind, PackFile, Written};
use scan::View;

use crate::text::{self, Language};

pub use labelled::{Labelled, LabelledRecipient, Measured, measure, read_labelled};
/// Tutti's own packs: (name, source).
pub const BUILTIN_PACKS: [(&str, &str); 3] = [
    ("general", include_str!("../../packs/general.yaml")),
    ("finance", include_str!("../../packs/finance.yaml")),
    ("health", include_str!("../../packs/health.yaml")),
];

/// How much a violation matters: `block` fails the review, `warn` is reported and lets it pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Block,
    Warn,
}

/// A message to review: its channel and its fields in order (`subject`, `body`, ...). The last field is the
/// body, where required text is added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub channel: String,
    /// The language it is written in; detected from the body when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// The flow's category (`promotional`, `transactional`, ...), when known: rules for advertising check only
    /// promotional drafts, and every draft whose category is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub fields: Vec<(String, String)>,
}

impl Draft {
    pub fn new(channel: &str, fields: &[(&str, &str)]) -> Draft {
        Draft {
            channel: channel.to_owned(),
            language: None,
            category: None,
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), text::nfc(v))).collect(),
        }
    }

    /// The same draft, of a known category.
    pub fn of_category(mut self, category: &str) -> Draft {
        self.category = Some(category.to_owned());
        self
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn body_index(&self) -> Option<usize> {
        self.fields.len().checked_sub(1)
    }

    pub fn language(&self) -> Language {
        self.language.unwrap_or_else(|| {
            let body = self.body_index().map(|i| self.fields[i].1.as_str()).unwrap_or_default();
            text::detect(body)
        })
    }
}

/// Who the message goes to: their own contact details may appear in it, their identifiers may not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    /// Their user id, anonymous ids and profile id: none may appear in copy.
    #[serde(default)]
    pub ids: Vec<String>,
}

/// One rule broken, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// `pack.rule`, such as `finance.guaranteed_returns`.
    pub rule: String,
    /// What the rule says is wrong.
    pub says: String,
    /// Why the rule exists (the law or the guideline), as its pack says.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    pub severity: Severity,
    pub field: String,
    /// The offending span in characters (Unicode scalar values) of the field's NFC text; for a missing
    /// requirement, the phrase that made it required, or the whole field.
    pub start: usize,
    pub end: usize,
    /// The offending text.
    pub excerpt: String,
    /// Details beyond what the rule says (the limit and the length, what kind of identifier).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A review's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// No violation that blocks.
    pub passed: bool,
    pub violations: Vec<Violation>,
    /// Sentences the meaning classifier leans towards a rule's family (from [`meaning::UNCERTAIN`] up to the
    /// threshold), as the violations they would be: not failures, but what a model can be asked about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncertain: Vec<Violation>,
}

/// Which packs a review applies (at most 64 packs are loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection(u64);

/// A pack name that is not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no review pack `{name}`; loaded: {loaded}")]
pub struct UnknownPack {
    pub name: String,
    pub loaded: String,
}

/// What one loaded pack holds, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackInfo {
    pub name: String,
    pub title: String,
    /// `builtin` or the file it was read from.
    pub source: String,
    pub rules: Vec<String>,
}

#[derive(Debug)]
enum Check {
    Phrases { patterns: Vec<Regex> },
    Require { conditional: bool, at_start: bool },
    PersonalData,
    Tone { shouted: usize, run: usize, total: usize },
    Length { max: BTreeMap<String, usize>, segments: BTreeMap<String, usize> },
}

#[derive(Debug, Clone)]
enum Fix {
    None,
    DropSentence,
    Calm,
    Shorten,
    /// Text to add by language: at the start of the body for a rule whose phrase must open it, else at the end.
    Add {
        texts: BTreeMap<Option<Language>, String>,
        at_start: bool,
    },
}

#[derive(Debug)]
struct Rule {
    id: String,
    pack: usize,
    says: String,
    why: String,
    severity: Severity,
    scope: pack::Scope,
    check: Check,
    fix: Fix,
    /// The classifier family whose sentences break it too.
    meaning: Option<usize>,
}

impl Rule {
    /// Whether the rule checks this draft at all (its `applies_to`).
    fn applies(&self, draft: &Draft) -> bool {
        let scope = &self.scope;
        (scope.channels.is_empty() || scope.channels.contains(&draft.channel))
            && (scope.languages.is_empty() || scope.languages.contains(&draft.language()))
            && (scope.categories.is_empty()
                || draft.category.as_ref().is_none_or(|c| scope.categories.iter().any(|s| s == c)))
    }
}

/// A `require` rule over a whole draft: the first phrase that made it required (field, byte span), and whether
/// a phrase that satisfies it was found.
#[derive(Default)]
struct Requirement {
    because: Option<(usize, usize, usize)>,
    met: bool,
}

/// What a phrase in the automaton does for its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Hit,
    Except,
    When,
    AnyOf,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    rule: u32,
    role: Role,
}

/// The compiled rule packs.
#[derive(Debug)]
pub struct Gate {
    packs: Vec<PackInfo>,
    rules: Vec<Rule>,
    plain: AhoCorasick,
    plain_meta: Vec<Meta>,
    /// Vietnamese phrases without diacritics, for fields typed without them.
    folded: AhoCorasick,
    folded_meta: Vec<Meta>,
    /// Contact details the company itself uses (its hotline, its support address), allowed in any message.
    allowed: Vec<String>,
    /// The meaning classifier (the shipped one, or one trained with the packs' examples too).
    meaning: std::sync::Arc<meaning::Meaning>,
}

impl Gate {
    /// Tutti's own packs.
    pub fn builtin() -> Gate {
        Gate::from_sources(&[]).expect("the built-in review packs compile")
    }

    /// Tutti's own packs and every `*.yaml` file of `dir` (a file may replace a built-in pack of its name).
    pub fn load(dir: Option<&Path>) -> Result<Gate, PackError> {
        let mut sources = Vec::new();
        if let Some(dir) = dir {
            let unreadable = |e: std::io::Error| PackError {
                file: dir.display().to_string(),
                pos: Default::default(),
                message: format!("cannot read the review directory: {e}"),
            };
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .map_err(unreadable)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            paths.sort();
            for path in paths {
                let source = std::fs::read_to_string(&path).map_err(|e| PackError {
                    file: path.display().to_string(),
                    pos: Default::default(),
                    message: format!("cannot read: {e}"),
                })?;
                sources.push((path.display().to_string(), source));
            }
        }
        Gate::from_sources(&sources)
    }

    /// Tutti's own packs and the given pack files, as (file name for errors, YAML source).
    pub fn from_sources(files: &[(String, String)]) -> Result<Gate, PackError> {
        let mut parsed: Vec<(String, PackFile)> = Vec::new();
        for (name, source) in BUILTIN_PACKS {
            parsed.push(("builtin".into(), pack::parse(&format!("<builtin {name}.yaml>"), source)?));
        }
        for (file, source) in files {
            let p = pack::parse(file, source)?;
            if let Some(earlier) = parsed.iter().position(|(_, q)| q.pack == p.pack) {
                if parsed[earlier].0 != "builtin" {
                    return Err(PackError {
                        file: file.clone(),
                        pos: tutti_core::yaml::Pos { line: 1, column: 1 },
                        message: format!("pack `{}` is also defined in {}", p.pack, parsed[earlier].0),
                    });
                }
                parsed[earlier] = (file.clone(), p);
            } else {
                parsed.push((file.clone(), p));
            }
        }
        if parsed.len() > 64 {
            return Err(PackError {
                file: files.last().map(|f| f.0.clone()).unwrap_or_default(),
                pos: Default::default(),
                message: format!("{} packs are loaded; the limit is 64", parsed.len()),
            });
        }
        Gate::compile(parsed)
    }

    fn compile(parsed: Vec<(String, PackFile)>) -> Result<Gate, PackError> {
        let mut packs = Vec::new();
        let mut rules = Vec::new();
        let mut plain: Vec<String> = Vec::new();
        let mut plain_meta = Vec::new();
        let mut folded: Vec<String> = Vec::new();
        let mut folded_meta = Vec::new();
        let mut examples: Vec<meaning::Example> = Vec::new();
        for (index, (source, file)) in parsed.into_iter().enumerate() {
            packs.push(PackInfo {
                name: file.pack.clone(),
                title: file.title.clone().unwrap_or_else(|| file.pack.clone()),
                source,
                rules: file.rules.iter().map(|r| format!("{}.{}", file.pack, r.id)).collect(),
            });
            for mut r in file.rules {
                let at = rules.len() as u32;
                let mut add = |lists: &pack::ByLanguage, role: Role| {
                    for (written, list) in lists {
                        for phrase in list {
                            // Lowered exactly as the text it is looked for in.
                            let lower = View::new(&text::nfc(phrase)).lower;
                            if *written == Written::Vi {
                                let f = text::fold(&lower);
                                if f != lower {
                                    folded.push(f);
                                    folded_meta.push(Meta { rule: at, role });
                                }
                            }
                            plain.push(lower);
                            plain_meta.push(Meta { rule: at, role });
                        }
                    }
                };
                add(&r.phrases, Role::Hit);
                add(&r.except, Role::Except);
                let family = r.meaning.as_deref().and_then(meaning::family_index);
                for (written, list) in r.examples.iter().filter(|_| family.is_some()) {
                    let lang = written.language().map_or("any", Language::code);
                    examples.extend(list.iter().map(|t| meaning::Example {
                        lang: lang.to_owned(),
                        label: r.meaning.clone().unwrap_or_default(),
                        text: text::nfc(t),
                    }));
                }
                add(&r.when, Role::When);
                add(&r.any_of, Role::AnyOf);
                let check = match r.kind {
                    Kind::Phrases => Check::Phrases { patterns: std::mem::take(&mut r.compiled) },
                    Kind::Require => Check::Require {
                        conditional: r.when.values().any(|l| !l.is_empty()),
                        at_start: r.at == pack::At::Start,
                    },
                    Kind::PersonalData => Check::PersonalData,
                    Kind::Tone => Check::Tone {
                        shouted: r.max_shouted_words.unwrap_or(2),
                        run: r.max_exclamation_run.unwrap_or(2),
                        total: r.max_exclamations.unwrap_or(4),
                    },
                    Kind::Length => Check::Length { max: r.max_chars.clone(), segments: r.max_segments.clone() },
                };
                let fix = match (&r.fix, r.kind) {
                    (Some(FixFile::Add(texts)), _) => Fix::Add {
                        texts: texts.iter().map(|(w, t)| (w.language(), text::nfc(t))).collect(),
                        at_start: r.at == pack::At::Start,
                    },
                    (Some(FixFile::Named(n)), _) if n == "none" => Fix::None,
                    (_, Kind::Phrases | Kind::PersonalData) => Fix::DropSentence,
                    (_, Kind::Tone) => Fix::Calm,
                    (_, Kind::Length) => Fix::Shorten,
                    (_, Kind::Require) => Fix::None,
                };
                rules.push(Rule {
                    id: format!("{}.{}", file.pack, r.id),
                    pack: index,
                    says: r.says,
                    why: r.why.unwrap_or_default(),
                    severity: r.severity,
                    scope: r.applies_to,
                    check,
                    fix,
                    meaning: family,
                });
            }
        }
        let build = |patterns: &[String]| AhoCorasick::new(patterns).expect("phrases are bounded in number and size");
        Ok(Gate {
            packs,
            rules,
            plain: build(&plain),
            plain_meta,
            folded: build(&folded),
            folded_meta,
            allowed: Vec::new(),
            meaning: if examples.is_empty() {
                meaning::Meaning::builtin()
            } else {
                std::sync::Arc::new(meaning::Meaning::with_extra(&examples))
            },
        })
    }

    /// Contact details the company itself uses, allowed in any message (its hotline, its support address).
    pub fn allow_contacts(mut self, contacts: impl IntoIterator<Item = String>) -> Gate {
        self.allowed.extend(contacts.into_iter().map(|c| c.trim().to_lowercase()));
        self
    }

    /// What the selected packs ask of copy, one line a rule ("finance.guaranteed_returns: never: promises a
    /// return, or says there is no risk"), for a model's instructions.
    pub fn rules_in_words(&self, selection: Selection) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| selection.0 & (1 << r.pack) != 0)
            .map(|r| {
                let how = match r.check {
                    Check::Require { .. } => "include what is missing when",
                    _ => "never write copy that",
                };
                format!("{}: {how} {}", r.id, r.says)
            })
            .collect()
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// The packs to apply, by name.
    pub fn select<S: AsRef<str>>(&self, names: &[S]) -> Result<Selection, UnknownPack> {
        let mut bits = 0u64;
        for name in names {
            let name = name.as_ref();
            match self.packs.iter().position(|p| p.name == name) {
                Some(i) => bits |= 1 << i,
                None => {
                    return Err(UnknownPack {
                        name: name.to_owned(),
                        loaded: self.packs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        Ok(Selection(bits))
    }

    /// Every loaded pack.
    pub fn all(&self) -> Selection {
        Selection(if self.packs.len() >= 64 { u64::MAX } else { (1u64 << self.packs.len()) - 1 })
    }
}
