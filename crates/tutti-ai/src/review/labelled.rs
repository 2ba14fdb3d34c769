//! The labelled set the gate is measured on: reading it, and precision and recall per rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Draft, Gate, Recipient, UnknownPack};
use crate::text::Language;

/// A labelled message for measuring the gate.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    pub id: String,
    pub lang: String,
    pub channel: String,
    /// The flow's category (`promotional`, `transactional`), where a rule depends on it.
    #[serde(default)]
    pub category: Option<String>,
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
        d.category = self.category.clone();
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
