//! A budget split across creatives by Thompson sampling, proposed for a person to approve.
//!
//! Each creative's value per unit of money (clicks, or conversions, per currency unit) is drawn many times from
//! its posterior: its click-through (and conversion) rate shrunk toward the channel's, times the impressions a
//! unit of money bought it (the channel's average when it has not spent yet). A creative's share of the budget
//! is the floor plus the rest in proportion to how often it was the best draw: the likely best get most, the
//! uncertain keep enough to keep learning, and none drops below the floor. The result is a proposal: it changes
//! nothing by itself; applying it is a person's decision.

use serde::Serialize;
use tutti_core::creative::{Creative, Totals};

use crate::analysis::{Interval, bounded};
use crate::stats::{BetaPrior, Rng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Clicks,
    Conversions,
}

#[derive(Debug, Clone)]
pub struct BudgetOptions {
    pub channel: String,
    /// Only this campaign's creatives, when given.
    pub campaign: Option<String>,
    /// The budget to split, in millionths of the currency unit.
    pub budget_micros: i64,
    /// The least share any creative keeps (lowered to half an equal share when there are too many creatives for
    /// it, so that at least half the budget follows the evidence).
    pub floor: f64,
    pub objective: Objective,
    pub draws: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    pub creative: String,
    pub probability_best: f64,
    pub share: f64,
    pub budget_micros: i64,
    /// Its share of the spend so far.
    pub current_share: f64,
    /// Clicks or conversions per currency unit.
    pub value_per_unit: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetProposal {
    pub channel: String,
    pub campaign: Option<String>,
    pub objective: Objective,
    pub budget_micros: i64,
    pub floor: f64,
    /// Best first.
    pub allocations: Vec<Allocation>,
    /// Always `proposed`: a person approves it.
    pub status: &'static str,
}

pub fn propose_budget(
    creatives: &[Creative],
    totals: &[Totals],
    options: &BudgetOptions,
) -> Result<BudgetProposal, String> {
    let members: Vec<usize> = (0..creatives.len())
        .filter(|&i| {
            let c = &creatives[i];
            c.owner.is_ours()
                && c.channel == options.channel
                && options.campaign.as_ref().is_none_or(|k| &c.campaign == k)
                && totals[i].impressions > 0
        })
        .collect();
    if members.is_empty() {
        return Err(format!("no creative of ours on `{}` has performance to go on", options.channel));
    }
    if options.budget_micros <= 0 {
        return Err("the budget must be more than 0".to_owned());
    }
    let n = members.len();
    // At most half an equal share, so that at least half the budget follows the evidence.
    let floor = options.floor.clamp(0.0, 0.5 / n as f64);
    let counts: Vec<(u64, u64, u64)> = members.iter().map(|&i| bounded(&totals[i])).collect();
    let ctr_prior = BetaPrior::fit(counts.iter().map(|&(imps, clicks, _)| (imps, clicks)));
    let cvr_prior = BetaPrior::fit(counts.iter().map(|&(_, clicks, conv)| (clicks, conv)));
    let (spent, shown): (i64, u64) =
        members.iter().fold((0, 0), |(s, n), &i| (s + totals[i].spend_micros, n + totals[i].impressions));
    let channel_per_unit = if spent > 0 { shown as f64 / (spent as f64 / 1e6) } else { 1.0 };
    let per_unit: Vec<f64> = members
        .iter()
        .map(|&i| {
            let t = &totals[i];
            if t.spend_micros > 0 { t.impressions as f64 / (t.spend_micros as f64 / 1e6) } else { channel_per_unit }
        })
        .collect();
    let draws = options.draws.max(100);
    let mut rng = Rng::new(options.seed);
    let mut wins = vec![0usize; n];
    let mut values = vec![Vec::with_capacity(draws); n];
    for _ in 0..draws {
        let mut best = (f64::NEG_INFINITY, 0);
        for (m, &(imps, clicks, conv)) in counts.iter().enumerate() {
            let ctr = rng.beta(ctr_prior.alpha() + clicks as f64, ctr_prior.beta() + (imps - clicks) as f64);
            let value = per_unit[m]
                * ctr
                * match options.objective {
                    Objective::Clicks => 1.0,
                    Objective::Conversions => {
                        rng.beta(cvr_prior.alpha() + conv as f64, cvr_prior.beta() + (clicks - conv) as f64)
                    }
                };
            values[m].push(value);
            if value > best.0 {
                best = (value, m);
            }
        }
        wins[best.1] += 1;
    }
    let mut allocations: Vec<Allocation> = members
        .iter()
        .enumerate()
        .map(|(m, &i)| {
            let p = wins[m] as f64 / draws as f64;
            let share = floor + (1.0 - n as f64 * floor) * p;
            Allocation {
                creative: creatives[i].id.clone(),
                probability_best: p,
                share,
                budget_micros: (share * options.budget_micros as f64).round() as i64,
                current_share: if spent > 0 { totals[i].spend_micros as f64 / spent as f64 } else { 1.0 / n as f64 },
                value_per_unit: Interval::of(&mut values[m]),
            }
        })
        .collect();
    allocations.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| a.creative.cmp(&b.creative)));
    Ok(BudgetProposal {
        channel: options.channel.clone(),
        campaign: options.campaign.clone(),
        objective: options.objective,
        budget_micros: options.budget_micros,
        floor,
        allocations,
        status: "proposed",
    })
}
