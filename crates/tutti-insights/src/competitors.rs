//! What competitors lean on: the share of each trait value in each owner's creatives, by month of launch.

use std::collections::BTreeMap;

use serde::Serialize;
use tutti_core::creative::{Creative, Owner};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shares {
    /// `ours` or the competitor's name.
    pub owner: String,
    /// `YYYY-MM` of launch, `all` for every creative, or `undated`.
    pub period: String,
    pub creatives: usize,
    /// Value -> share of this owner's creatives in the period that carry it.
    pub shares: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraitView {
    pub name: String,
    /// Per owner: every period, then `all`.
    pub rows: Vec<Shares>,
}

/// (owner, period) -> value -> creatives.
type Counts<'a> = BTreeMap<(String, String), BTreeMap<&'a str, usize>>;

pub fn competitor_view(creatives: &[Creative]) -> Vec<TraitView> {
    let mut counts: BTreeMap<&str, Counts<'_>> = BTreeMap::new();
    for c in creatives {
        let owner = match &c.owner {
            Owner::Ours => "ours".to_owned(),
            Owner::Competitor(name) => name.clone(),
        };
        let period = c.launched.map_or("undated".to_owned(), |d| format!("{:04}-{:02}", d.year(), d.month()));
        for (name, tag) in &c.tags {
            let per = counts.entry(name.as_str()).or_default();
            for p in [period.clone(), "all".to_owned()] {
                *per.entry((owner.clone(), p)).or_default().entry(tag.value.as_str()).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|(name, per)| TraitView {
            name: name.to_owned(),
            rows: per
                .into_iter()
                .map(|((owner, period), values)| {
                    let total: usize = values.values().sum();
                    Shares {
                        owner,
                        period,
                        creatives: total,
                        shares: values.into_iter().map(|(v, n)| (v.to_owned(), n as f64 / total as f64)).collect(),
                    }
                })
                .collect(),
        })
        .collect()
}
