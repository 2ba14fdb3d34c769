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

mod pack;
pub(crate) use pack::json_pointer;
mod scan;

use std::collections::BTreeMap;
use std::path::Path;

use aho_corasick::AhoCorasick;
use regex::Regex;
use serde::{Deserialize, Serialize};

pub use pack::PackError;
use pack::{FixFile, Kind, PackFile, Written};
use scan::View;

use crate::text::{self, Language};

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
    pub fields: Vec<(String, String)>,
}

impl Draft {
    pub fn new(channel: &str, fields: &[(&str, &str)]) -> Draft {
        Draft {
            channel: channel.to_owned(),
            language: None,
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), text::nfc(v))).collect(),
        }
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
    Require { conditional: bool },
    PersonalData,
    Tone { shouted: usize, run: usize, total: usize },
    Length { max: BTreeMap<String, usize> },
}

#[derive(Debug, Clone)]
enum Fix {
    None,
    DropSentence,
    Calm,
    Shorten,
    Add(BTreeMap<Option<Language>, String>),
}

#[derive(Debug)]
struct Rule {
    id: String,
    pack: usize,
    says: String,
    why: String,
    severity: Severity,
    check: Check,
    fix: Fix,
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
                add(&r.when, Role::When);
                add(&r.any_of, Role::AnyOf);
                let check = match r.kind {
                    Kind::Phrases => Check::Phrases { patterns: std::mem::take(&mut r.compiled) },
                    Kind::Require => Check::Require { conditional: r.when.values().any(|l| !l.is_empty()) },
                    Kind::PersonalData => Check::PersonalData,
                    Kind::Tone => Check::Tone {
                        shouted: r.max_shouted_words.unwrap_or(2),
                        run: r.max_exclamation_run.unwrap_or(2),
                        total: r.max_exclamations.unwrap_or(4),
                    },
                    Kind::Length => Check::Length { max: r.max_chars.clone() },
                };
                let fix = match (&r.fix, r.kind) {
                    (Some(FixFile::Add(texts)), _) => {
                        Fix::Add(texts.iter().map(|(w, t)| (w.language(), text::nfc(t))).collect())
                    }
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
                    check,
                    fix,
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
        })
    }

    /// Contact details the company itself uses, allowed in any message (its hotline, its support address).
    pub fn allow_contacts(mut self, contacts: impl IntoIterator<Item = String>) -> Gate {
        self.allowed.extend(contacts.into_iter().map(|c| c.trim().to_lowercase()));
        self
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

    /// Reviews a draft for a recipient against the selected packs.
    pub fn review(&self, draft: &Draft, recipient: &Recipient, selection: Selection) -> Review {
        let on = |rule: &Rule| selection.0 & (1 << rule.pack) != 0;
        let mut violations = Vec::new();
        // For `require` rules, over all fields: what made each required (first hit) and whether it is met.
        let mut required: BTreeMap<u32, Requirement> = BTreeMap::new();
        for (fi, (field, value)) in draft.fields.iter().enumerate() {
            let view = View::new(value);
            // (rule, role) -> spans in `view.lower`
            let mut hits: BTreeMap<(u32, Role), Vec<(usize, usize)>> = BTreeMap::new();
            let mut collect = |automaton: &AhoCorasick, meta: &[Meta]| {
                for m in automaton.find_overlapping_iter(view.lower.as_str()) {
                    let meta = meta[m.pattern().as_usize()];
                    if on(&self.rules[meta.rule as usize]) && text::stands_alone(&view.lower, m.start(), m.end()) {
                        hits.entry((meta.rule, meta.role)).or_default().push((m.start(), m.end()));
                    }
                }
            };
            collect(&self.plain, &self.plain_meta);
            if !text::has_diacritics(value) {
                collect(&self.folded, &self.folded_meta);
            }
            for (ri, rule) in self.rules.iter().enumerate().filter(|(_, r)| on(r)) {
                let r = ri as u32;
                let excepts = hits.get(&(r, Role::Except)).map(Vec::as_slice).unwrap_or_default();
                let kept = |spans: Option<&Vec<(usize, usize)>>| -> Vec<(usize, usize)> {
                    let mut spans: Vec<(usize, usize)> = spans
                        .into_iter()
                        .flatten()
                        .copied()
                        .filter(|(s, e)| !excepts.iter().any(|(xs, xe)| xs < e && s < xe))
                        .collect();
                    spans.sort_by_key(|(s, e)| (*s, usize::MAX - e));
                    let mut out: Vec<(usize, usize)> = Vec::new();
                    for span in spans {
                        if out.last().is_none_or(|last| span.0 >= last.1) {
                            out.push(span);
                        }
                    }
                    out
                };
                let mut flag = |start: usize, end: usize, detail: String| {
                    violations.push(self.violation(rule, field, value, (start, end), detail));
                };
                match &rule.check {
                    Check::Phrases { patterns } => {
                        let mut found = hits.get(&(r, Role::Hit)).cloned().unwrap_or_default();
                        for p in patterns {
                            found.extend(p.find_iter(&view.lower).map(|m| (m.start(), m.end())));
                        }
                        for (s, e) in kept(Some(&found)) {
                            let (s, e) = view.original(s, e);
                            flag(s, e, String::new());
                        }
                    }
                    Check::Require { .. } => {
                        let entry = required.entry(r).or_default();
                        if entry.because.is_none()
                            && let Some((s, e)) = kept(hits.get(&(r, Role::When))).first().copied()
                        {
                            let (s, e) = view.original(s, e);
                            entry.because = Some((fi, s, e));
                        }
                        entry.met |= hits.contains_key(&(r, Role::AnyOf));
                    }
                    Check::PersonalData => {
                        for (s, e) in scan::emails(value) {
                            let address = value[s..e].to_lowercase();
                            let own = recipient.emails.iter().any(|m| m.trim().eq_ignore_ascii_case(&address));
                            if !own && !self.allowed.contains(&address) {
                                flag(s, e, "an email address that is not the recipient's".into());
                            }
                        }
                        for n in scan::long_numbers(value) {
                            if n.digits.len() > 15 {
                                flag(n.start, n.end, "a long number, like a card or account number".into());
                                continue;
                            }
                            let own = recipient.phones.iter().any(|p| scan::same_phone(p, &n.digits));
                            let allowed = self.allowed.iter().any(|a| scan::same_phone(a, &n.digits));
                            if !own && !allowed {
                                flag(n.start, n.end, "a phone number that is not the recipient's".into());
                            }
                        }
                        for (s, e, what) in scan::raw_ids(value) {
                            flag(s, e, format!("{what}: internal identifiers never go in copy"));
                        }
                        for id in
                            recipient.ids.iter().filter(|id| id.len() >= 6 && id.chars().any(|c| c.is_ascii_digit()))
                        {
                            for (s, _) in value.match_indices(id.as_str()) {
                                flag(s, s + id.len(), "the recipient's own identifier".into());
                            }
                        }
                    }
                    Check::Tone { shouted, run, total } => {
                        for (s, e, words) in scan::shouted_runs(value) {
                            if words > *shouted {
                                flag(s, e, format!("{words} words in capitals; at most {shouted}"));
                            }
                        }
                        let mut count = 0;
                        let mut streak: Option<(usize, usize, usize)> = None;
                        let mut streaks = Vec::new();
                        for (i, c) in value.char_indices() {
                            if scan::is_bang(c) {
                                count += 1;
                                streak = Some(match streak {
                                    Some((s, _, n)) => (s, i + c.len_utf8(), n + 1),
                                    None => (i, i + c.len_utf8(), 1),
                                });
                            } else {
                                streaks.extend(streak.take());
                            }
                        }
                        streaks.extend(streak);
                        let long: Vec<_> = streaks.iter().filter(|(_, _, n)| n > run).collect();
                        for (s, e, n) in &long {
                            flag(*s, *e, format!("{n} exclamation marks in a row; at most {run}"));
                        }
                        if count > *total && long.is_empty() {
                            let mut seen = 0;
                            if let Some((s, e, _)) = streaks.iter().find(|(_, _, n)| {
                                seen += n;
                                seen > *total
                            }) {
                                flag(*s, *e, format!("{count} exclamation marks; at most {total}"));
                            }
                        }
                    }
                    Check::Length { max } => {
                        let key = format!("{}.{field}", draft.channel);
                        let limit = max.get(&key).or_else(|| {
                            (fi + 1 == draft.fields.len() || field == "body" || field == "text")
                                .then(|| max.get(&draft.channel))
                                .flatten()
                        });
                        let chars = value.chars().count();
                        if let Some(limit) = limit
                            && chars > *limit
                        {
                            let cut = value.char_indices().nth(*limit).map_or(value.len(), |(i, _)| i);
                            flag(cut, value.len(), format!("{chars} characters; at most {limit} for {key}"));
                        }
                    }
                }
            }
        }
        for (r, Requirement { because, met }) in required {
            let rule = &self.rules[r as usize];
            let Check::Require { conditional } = rule.check else { continue };
            if met || (conditional && because.is_none()) {
                continue;
            }
            let (fi, s, e, detail) = match because {
                Some((fi, s, e)) => (fi, s, e, "required because of this".to_owned()),
                None => {
                    let fi = draft.body_index().unwrap_or_default();
                    (fi, 0, draft.fields.get(fi).map_or(0, |f| f.1.len()), String::new())
                }
            };
            if let Some((field, value)) = draft.fields.get(fi) {
                violations.push(self.violation(rule, field, value, (s, e), detail));
            }
        }
        let passed = violations.iter().all(|v| v.severity == Severity::Warn);
        Review { passed, violations }
    }

    fn violation(&self, rule: &Rule, field: &str, value: &str, (s, e): (usize, usize), detail: String) -> Violation {
        let start = value[..s].chars().count();
        Violation {
            rule: rule.id.clone(),
            says: rule.says.clone(),
            why: rule.why.clone(),
            severity: rule.severity,
            field: field.to_owned(),
            start,
            end: start + value[s..e].chars().count(),
            excerpt: value[s..e].to_owned(),
            detail,
        }
    }

    /// Repairs what the violated rules say how to repair. `None` when nothing could be repaired, or the
    /// repair leaves no body.
    pub fn revise(&self, draft: &Draft, review: &Review) -> Option<Draft> {
        let language = draft.language();
        let mut out = draft.clone();
        let mut changed = false;
        let mut additions: Vec<String> = Vec::new();
        let rule_of = |id: &str| self.rules.iter().find(|r| r.id == id);
        // Drops first (they need the spans as reviewed), then calming, additions and shortening.
        for (fi, (field, value)) in draft.fields.iter().enumerate() {
            let mut drop: Vec<(usize, usize)> = Vec::new();
            for v in review.violations.iter().filter(|v| &v.field == field) {
                if let Some(Fix::DropSentence) = rule_of(&v.rule).map(|r| &r.fix) {
                    let start = value.char_indices().nth(v.start).map_or(value.len(), |(i, _)| i);
                    if let Some(sentence) = scan::sentences(value).into_iter().find(|(s, e)| *s <= start && start < *e)
                    {
                        drop.push(sentence);
                    }
                }
            }
            if !drop.is_empty() {
                let mut kept = String::with_capacity(value.len());
                let mut at = 0;
                drop.sort_unstable();
                drop.dedup();
                for (s, e) in drop {
                    if s >= at {
                        kept.push_str(&value[at..s]);
                        at = e;
                    }
                }
                kept.push_str(&value[at..]);
                out.fields[fi].1 = kept.trim().to_owned();
                changed = true;
            }
        }
        for v in &review.violations {
            let Some(rule) = rule_of(&v.rule) else { continue };
            let Some(fi) = out.fields.iter().position(|(k, _)| *k == v.field) else { continue };
            match &rule.fix {
                Fix::Calm => {
                    let calmed = calm(&out.fields[fi].1);
                    changed |= calmed != out.fields[fi].1;
                    out.fields[fi].1 = calmed;
                }
                Fix::Add(texts) => {
                    if let Some(t) =
                        texts.get(&Some(language)).or_else(|| texts.get(&None)).or_else(|| texts.values().next())
                        && !additions.contains(t)
                    {
                        additions.push(t.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(bi) = out.body_index() {
            for t in &additions {
                let body = &mut out.fields[bi].1;
                let joiner = if body.is_empty() || language == Language::Zh { "" } else { " " };
                if !body.ends_with(['.', '!', '?', '。', '！', '？']) && !body.is_empty() {
                    body.push(if language == Language::Zh { '。' } else { '.' });
                }
                body.push_str(joiner);
                body.push_str(t);
                changed = true;
            }
        }
        for v in &review.violations {
            if let Some(Fix::Shorten) = rule_of(&v.rule).map(|r| &r.fix)
                && let Some(fi) = out.fields.iter().position(|(k, _)| *k == v.field)
            {
                let limit = v.start;
                let shortened = shorten(&out.fields[fi].1, limit);
                changed |= shortened != out.fields[fi].1;
                out.fields[fi].1 = shortened;
            }
        }
        let body_left = out.body_index().is_some_and(|bi| !out.fields[bi].1.trim().is_empty());
        (changed && body_left).then_some(out)
    }
}

/// Sentence case for shouted runs, one exclamation mark where there were several.
fn calm(value: &str) -> String {
    let mut out = value.to_owned();
    for (s, e, _) in scan::shouted_runs(value).into_iter().rev() {
        let lower = value[s..e].to_lowercase();
        let mut chars = lower.chars();
        let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
        out.replace_range(s..e, &(first + chars.as_str()));
    }
    let mut calmed = String::with_capacity(out.len());
    let mut last_bang = false;
    for c in out.chars() {
        let bang = scan::is_bang(c);
        if !(bang && last_bang) {
            calmed.push(c);
        }
        last_bang = bang || (last_bang && c == ' ');
    }
    calmed
}

/// Cuts to at most `limit` characters: at the last sentence that fits, or the last word with an ellipsis.
fn shorten(value: &str, limit: usize) -> String {
    if value.chars().count() <= limit {
        return value.to_owned();
    }
    let cut = value.char_indices().nth(limit).map_or(value.len(), |(i, _)| i);
    if let Some((_, end)) = scan::sentences(value).into_iter().take_while(|(_, e)| *e <= cut).last() {
        return value[..end].trim_end().to_owned();
    }
    let room = value.char_indices().nth(limit.saturating_sub(1)).map_or(value.len(), |(i, _)| i);
    let head = &value[..room];
    let at = head.rfind(char::is_whitespace).filter(|i| *i > 0).unwrap_or(head.len());
    format!("{}…", head[..at].trim_end())
}

/// A labelled message for measuring the gate.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    pub id: String,
    pub lang: String,
    pub channel: String,
    pub packs: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    pub body: String,
    #[serde(default)]
    pub recipient: Option<LabelledRecipient>,
    /// The rules it breaks; empty for clean copy.
    pub expect: Vec<String>,
    /// Written after the packs, and first measured before any pack was changed for it.
    #[serde(default)]
    pub fresh: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LabelledRecipient {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

impl Labelled {
    pub fn draft(&self) -> Draft {
        let mut fields = Vec::new();
        if let Some(s) = &self.subject {
            fields.push(("subject", s.as_str()));
        }
        fields.push(("body", self.body.as_str()));
        let mut d = Draft::new(&self.channel, &fields);
        d.language = Language::from_code(&self.lang);
        d
    }

    pub fn recipient(&self) -> Recipient {
        let r = self.recipient.as_ref();
        Recipient {
            emails: r.and_then(|r| r.email.clone()).into_iter().collect(),
            phones: r.and_then(|r| r.phone.clone()).into_iter().collect(),
            ids: r.and_then(|r| r.user_id.clone()).into_iter().collect(),
        }
    }
}

/// Reads labelled messages, one JSON object per line.
pub fn read_labelled(jsonl: &str) -> Result<Vec<Labelled>, String> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// How the gate did on labelled messages, per language.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    /// Messages that break a rule, and of those, how many were failed naming every expected rule.
    pub violating: usize,
    pub caught: usize,
    /// Clean messages, and of those, how many were failed anyway.
    pub clean: usize,
    pub false_positives: usize,
    /// What went wrong, for the report: (message id, what).
    pub misses: Vec<(String, String)>,
}

impl Measured {
    pub fn recall(&self) -> f64 {
        if self.violating == 0 { 1.0 } else { self.caught as f64 / self.violating as f64 }
    }

    pub fn false_positive_rate(&self) -> f64 {
        if self.clean == 0 { 0.0 } else { self.false_positives as f64 / self.clean as f64 }
    }
}

/// Reviews every labelled message: a violating message counts as caught when it fails and every rule it is
/// labelled with is named; a clean message is a false positive when it fails.
pub fn measure(gate: &Gate, examples: &[Labelled]) -> Result<BTreeMap<String, Measured>, UnknownPack> {
    let mut out: BTreeMap<String, Measured> = BTreeMap::new();
    for ex in examples {
        let review = gate.review(&ex.draft(), &ex.recipient(), gate.select(&ex.packs)?);
        let m = out.entry(ex.lang.clone()).or_default();
        let named: Vec<&str> = review.violations.iter().map(|v| v.rule.as_str()).collect();
        if ex.expect.is_empty() {
            m.clean += 1;
            if !review.passed {
                m.false_positives += 1;
                let what: Vec<String> =
                    review.violations.iter().map(|v| format!("{} at `{}`", v.rule, v.excerpt)).collect();
                m.misses.push((ex.id.clone(), format!("clean, but failed: {}", what.join("; "))));
            }
        } else {
            m.violating += 1;
            let missing: Vec<&str> = ex.expect.iter().map(String::as_str).filter(|r| !named.contains(r)).collect();
            if !review.passed && missing.is_empty() {
                m.caught += 1;
            } else {
                m.misses.push((ex.id.clone(), format!("missed {}", missing.join(", "))));
            }
        }
    }
    Ok(out)
}
