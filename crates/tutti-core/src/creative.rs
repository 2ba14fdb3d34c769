//! Creatives (ads, posts, emails: whatever was shown to people and measured), their tags and their daily
//! performance. The data model of creative intelligence; the analysis lives in `tutti-insights`.

use std::collections::BTreeMap;

pub use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Whose creative it is: ours (with performance) or a named competitor's (tags only, for the competitor view).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Ours,
    Competitor(String),
}

impl Owner {
    pub fn is_ours(&self) -> bool {
        matches!(self, Owner::Ours)
    }
}

/// Where a tag came from. A manual tag wins over the others and is kept when the creative is tagged again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagSource {
    /// The local classifier (no network, no model weights).
    Local,
    /// A large model through an OpenAI-compatible endpoint.
    Model,
    /// A person.
    Manual,
}

/// One trait's value for a creative, with how sure the tagger was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub value: String,
    /// In `[0, 1]`; 1 for manual tags.
    pub confidence: f64,
    pub source: TagSource,
    /// A one-line justification, when the tagger gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Tag {
    pub fn manual(value: impl Into<String>) -> Tag {
        Tag { value: value.into(), confidence: 1.0, source: TagSource::Manual, why: None }
    }
}

/// A creative: an ad, a post, an email, whatever was shown to people and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creative {
    pub id: String,
    #[serde(default)]
    pub campaign: String,
    pub channel: String,
    /// A language tag (`vi`, `zh`, `en`, ...); empty when unknown.
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub headline: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub call_to_action: String,
    #[serde(default)]
    pub landing_url: String,
    pub owner: Owner,
    #[serde(default)]
    pub launched: Option<Date>,
    /// Trait name -> its tag.
    #[serde(default)]
    pub tags: BTreeMap<String, Tag>,
}

impl Creative {
    /// The value of a trait, if tagged.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.get(name).map(|t| t.value.as_str())
    }
}

/// One creative's numbers for one day. Money is in millionths of the account currency's unit (as Google Ads
/// reports `cost_micros`): exact sums, and no table of how many decimals each currency has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Daily {
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub spend_micros: i64,
    /// When the source reports it.
    pub revenue_micros: Option<i64>,
}

/// A row of performance: a creative on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Performance {
    pub creative: String,
    pub date: Date,
    #[serde(flatten)]
    pub numbers: Daily,
}

/// Sums of [`Daily`] over any span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub spend_micros: i64,
    pub revenue_micros: i64,
    pub days: u32,
}

impl Totals {
    pub fn add(&mut self, d: &Daily) {
        // As reported: conversions may exceed clicks (view-through, several per click); the analysis bounds
        // them where a rate needs it.
        self.impressions += d.impressions;
        self.clicks += d.clicks;
        self.conversions += d.conversions;
        self.spend_micros += d.spend_micros;
        self.revenue_micros += d.revenue_micros.unwrap_or(0);
        self.days += 1;
    }

    /// Adds another span's sums (`days` keeps the longer span: spans of different creatives overlap in time).
    pub fn merge(&mut self, other: &Totals) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.spend_micros += other.spend_micros;
        self.revenue_micros += other.revenue_micros;
        self.days = self.days.max(other.days);
    }
}
