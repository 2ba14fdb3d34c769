//! Pre-launch prediction: the click-through rate to expect of a creative not yet launched, from its tags and
//! its channel, with an interval for that one creative.
//!
//! Each tagged trait value moves the channel's rate by what creatives with that value did there (on the logit
//! scale, from the same posterior draws as the analysis); the moves add up as if traits were independent of each
//! other, which holds when values were assigned to creatives without regard to one another and overstates the
//! total when they travel together. The interval then widens by how much single creatives differ around their
//! expected rate (the channel prior's strength), because one creative is not the average of its kind. Values
//! with too few creatives behind them do not move the prediction and are listed as unknown.

use std::collections::BTreeMap;

use serde::Serialize;
use tutti_core::creative::{Creative, Totals};

use crate::analysis::{ChannelModel, Interval, Metric, Options};
use crate::stats::{Rng, quantile};

/// One trait value's part in a prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub name: String,
    pub value: String,
    pub creatives: usize,
    /// Creatives with this value against the channel as a whole (1.2: 20% more clicks).
    pub multiplier: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub channel: String,
    /// The expected click-through of a creative like this (mean), and where one such creative should land (95%).
    pub click_through: Interval,
    /// The channel's click-through as a whole, for comparison.
    pub channel_click_through: f64,
    pub parts: Vec<Part>,
    /// Tags that did not count: unknown on this channel or with too few creatives.
    pub unknown: Vec<String>,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Predicts from our creatives' performance on `channel`. `None` when the channel has no performance data.
pub fn predict(
    creatives: &[Creative],
    totals: &[Totals],
    channel: &str,
    tags: &BTreeMap<String, String>,
    options: &Options,
) -> Option<Prediction> {
    let members: Vec<usize> = (0..creatives.len())
        .filter(|&i| creatives[i].owner.is_ours() && creatives[i].channel == channel && totals[i].impressions > 0)
        .collect();
    if members.is_empty() {
        return None;
    }
    let root = Rng::new(options.seed ^ 0x7072_6564);
    let model = ChannelModel::fit(&members, creatives, totals, options, &root.fork(1));
    let all = model.group("", "").expect("the whole channel is a group");
    let base = model.samples(Metric::ClickThrough, all);
    let mut shift = vec![0.0; base.len()];
    let (mut parts, mut unknown) = (Vec::new(), Vec::new());
    for (name, value) in tags {
        match model.group(name, value).filter(|&g| model.creatives_in(g) >= options.min_creatives) {
            Some(g) => {
                let s = model.samples(Metric::ClickThrough, g);
                let mut ratio: Vec<f64> = s.iter().zip(base).map(|(x, b)| x / b).collect();
                for ((acc, x), b) in shift.iter_mut().zip(s).zip(base) {
                    *acc += logit(*x) - logit(*b);
                }
                parts.push(Part {
                    name: name.clone(),
                    value: value.clone(),
                    creatives: model.creatives_in(g),
                    multiplier: Interval::of(&mut ratio),
                });
            }
            None => unknown.push(format!("{name}={value}")),
        }
    }
    let mut rng = root.fork(2);
    let strength = model.ctr_prior.strength;
    let mut expected = 0.0;
    let mut one: Vec<f64> = base
        .iter()
        .zip(&shift)
        .map(|(b, s)| {
            let mu = sigmoid(logit(*b) + s);
            expected += mu;
            rng.beta((mu * strength).max(1e-3), ((1.0 - mu) * strength).max(1e-3))
        })
        .collect();
    one.sort_by(f64::total_cmp);
    let channel_click_through = base.iter().sum::<f64>() / base.len() as f64;
    Some(Prediction {
        channel: channel.to_owned(),
        click_through: Interval {
            mean: expected / base.len() as f64,
            low: quantile(&one, 0.025),
            high: quantile(&one, 0.975),
        },
        channel_click_through,
        parts,
        unknown,
    })
}
