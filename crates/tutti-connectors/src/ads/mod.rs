//! `ads`: campaigns and ad sets paused, resumed and given a daily budget on Meta and Google Ads, each change
//! read before and after, so what was done is on record with what it replaced.
//!
//! - `ads.pause` / `ads.resume` with `topic` (every campaign and ad set the table lists for it, `topics`) or one
//!   `target`.
//! - `ads.set_daily_budget` with `target` (or `creative`, looked up in `creatives`), `amount` and `currency`
//!   (without it, the ad account's: `meta_currency` on Meta; Google Ads takes micros of its account's).
//!
//! A target is written `meta:campaign:<id>`, `meta:adset:<id>`, `google:campaign:<id>` or
//! `google:ad_group:<id>`. The calls (`meta.rs`, `google.rs`) follow Meta's Marketing API (the campaign and ad
//! set nodes: `GET` with `fields`, `POST` of `status` and `daily_budget`) and the Google Ads API's REST interface
//! (`googleAds:search` for the state, `campaigns:mutate`, `adGroups:mutate` and `campaignBudgets:mutate` with
//! an `updateMask`). Pausing what is paused changes nothing, so a repeated action is harmless. The answer lists
//! each change: `{"target", "before": {...}, "after": {...}}`.

mod config;
mod google;
mod meta;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::CheckedConfig;
use crate::http::{Http, parse_url};
use crate::{Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings, optional_text};

pub static KIND: Kind = Kind {
    name: "ads",
    channel: "ads",
    operations: &[
        Operation::taking("pause", &["topic", "target", "reason"]),
        Operation::taking("resume", &["topic", "target", "reason"]),
        Operation::taking("set_daily_budget", &["target", "creative", "amount", "currency", "reason"]),
    ],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Meta,
    Google,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Campaign,
    /// A Meta ad set or a Google Ads ad group.
    AdSet,
}

/// A campaign or ad set on a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub platform: Platform,
    pub level: Level,
    pub id: String,
}

impl Target {
    pub fn parse(written: &str) -> Result<Target, String> {
        let bad = || {
            format!(
                "`{written}` is not a target: meta:campaign:<id>, meta:adset:<id>, google:campaign:<id> or \
                 google:ad_group:<id>"
            )
        };
        let mut parts = written.split(':');
        let (Some(p), Some(l), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let (platform, level) = match (p, l) {
            ("meta", "campaign") => (Platform::Meta, Level::Campaign),
            ("meta", "adset") => (Platform::Meta, Level::AdSet),
            ("google", "campaign") => (Platform::Google, Level::Campaign),
            ("google", "ad_group") => (Platform::Google, Level::AdSet),
            _ => return Err(bad()),
        };
        if id.is_empty() || id.len() > 24 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Target { platform, level, id: id.to_owned() })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p, l) = match (self.platform, self.level) {
            (Platform::Meta, Level::Campaign) => ("meta", "campaign"),
            (Platform::Meta, Level::AdSet) => ("meta", "adset"),
            (Platform::Google, Level::Campaign) => ("google", "campaign"),
            (Platform::Google, Level::AdSet) => ("google", "ad_group"),
        };
        write!(f, "{p}:{l}:{}", self.id)
    }
}

/// What a change asks of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    Pause,
    Resume,
    DailyBudget(tutti_core::money::Money),
}

impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Ads {
            http: Http::new(&settings.allow_private, settings.concurrency),
            meta: self.meta,
            google: self.google,
            topics: self.topics,
            creatives: self.creatives,
        })
    }
}

struct Ads {
    http: Http,
    meta: Option<config::Meta>,
    google: Option<config::Google>,
    topics: BTreeMap<String, Vec<Target>>,
    creatives: BTreeMap<String, Target>,
}

impl Ads {
    fn targets(&self, payload: &Value) -> Result<Vec<Target>, Failure> {
        match (optional_text(payload, "topic")?, optional_text(payload, "target")?) {
            (Some(topic), None) => match self.topics.get(topic) {
                Some(list) => Ok(list.clone()),
                // Nothing spends on the topic: nothing to pause, and that is not an error.
                None => Ok(Vec::new()),
            },
            (None, Some(t)) => Target::parse(t).map(|t| vec![t]).map_err(Failure::permanent),
            _ => Err(Failure::permanent("give one of `topic` and `target`")),
        }
    }

    async fn apply(&self, target: &Target, change: &Change, now: i64) -> Result<Value, Failure> {
        match target.platform {
            Platform::Meta => {
                let m = self.meta.as_ref().ok_or_else(|| Failure::permanent("Meta is not configured"))?;
                meta::apply(&self.http, m, target, change, now).await
            }
            Platform::Google => {
                let g = self.google.as_ref().ok_or_else(|| Failure::permanent("Google Ads is not configured"))?;
                google::apply(&self.http, g, target, change, now).await
            }
        }
    }

    async fn act(&self, action: &Action<'_>) -> Result<Value, Failure> {
        KIND.check(action)?;
        let p = action.payload;
        let (targets, change) = match action.operation {
            "pause" => (self.targets(p)?, Change::Pause),
            "resume" => (self.targets(p)?, Change::Resume),
            "set_daily_budget" => {
                let target = match (optional_text(p, "target")?, optional_text(p, "creative")?) {
                    (Some(t), None) => Target::parse(t).map_err(Failure::permanent)?,
                    (None, Some(c)) => self.creatives.get(c).cloned().ok_or_else(|| {
                        Failure::permanent(format!("creative `{c}` has no target in [connectors.ads] creatives"))
                    })?,
                    _ => return Err(Failure::permanent("give one of `target` and `creative`")),
                };
                // Without a currency the amount is in the ad account's: Meta's as configured (its minor units
                // depend on it); Google Ads takes micros of whatever its account is in.
                let currency = match (p.get("currency").filter(|c| !c.is_null()), target.platform) {
                    (Some(c), _) => c.clone(),
                    (None, Platform::Meta) => match self.meta.as_ref().and_then(|m| m.currency.clone()) {
                        Some(c) => json!(c),
                        None => {
                            return Err(Failure::permanent(
                                "give `currency`, or set `meta_currency` in [connectors.ads]",
                            ));
                        }
                    },
                    (None, Platform::Google) => json!("XXX"),
                };
                let amount = json!({"amount": p.get("amount").cloned().unwrap_or(Value::Null), "currency": currency});
                let money = tutti_core::money::Money::from_value(&amount).map_err(Failure::permanent)?;
                (vec![target], Change::DailyBudget(money))
            }
            other => return Err(crate::unknown_operation("ads", other)),
        };
        let mut changes = Vec::new();
        for target in &targets {
            let mut change_record = self.apply(target, &change, action.now).await?;
            change_record["target"] = json!(target.to_string());
            changes.push(change_record);
        }
        Ok(json!({"changes": changes, "reason": p.get("reason").cloned().unwrap_or(Value::Null)}))
    }
}

impl Sender for Ads {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move { self.act(&action).await })
    }

    /// Reads one configured target's state the way every change begins, changing nothing; with no target
    /// configured, reaches the platforms' hosts.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            let now = jiff::Timestamp::now().as_millisecond();
            let first = self.topics.values().flatten().chain(self.creatives.values()).next();
            match first {
                Some(target) => {
                    let state = match target.platform {
                        Platform::Meta => {
                            meta::read(&self.http, self.meta.as_ref().expect("checked"), target, now).await?
                        }
                        Platform::Google => {
                            google::read(&self.http, self.google.as_ref().expect("checked"), target, now).await?.0
                        }
                    };
                    Ok(json!({"target": target.to_string(), "state": state}))
                }
                None => Ok(json!({"targets": 0})),
            }
        })
    }
}

/// Reads a platform's answer: 2xx is its JSON, 429 and 5xx are worth retrying, the rest is permanent with the
/// platform's message.
pub(super) fn answer(answer: &crate::http::Answer, platform: &str, now: i64) -> Result<Value, Failure> {
    match answer.status {
        200..=299 => Ok(answer.json()),
        408 | 429 | 500..=599 => Err(Failure::Transient {
            error: format!("HTTP {} from {platform}", answer.status),
            retry_after: crate::http::retry_after(&answer.headers, now),
        }),
        status => {
            let v = answer.json();
            let message = v["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
            Err(Failure::permanent(format!(
                "{platform} refused the change (HTTP {status}): {}",
                crate::http::truncate(&message, 300)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_and_written_back_the_same() {
        for t in
            ["meta:campaign:120210000000001", "meta:adset:23850000000101", "google:campaign:456", "google:ad_group:789"]
        {
            assert_eq!(Target::parse(t).unwrap().to_string(), t);
        }
        for bad in ["meta:ad:1", "meta:adset:", "meta:adset:12a", "tiktok:campaign:1", "meta:adset:1:2"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
