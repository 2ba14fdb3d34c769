//! Mid-campaign alerts: a comparison whose verdict changed since the last look (a value became likely better or
//! worse, or stopped being so).

use std::collections::HashMap;

use serde::Serialize;

use crate::analysis::{Comparison, Metric, Report, Verdict};
use crate::render::sentence;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub channel: String,
    pub trait_name: String,
    pub metric: Metric,
    pub a: String,
    pub b: String,
    pub probability: Option<f64>,
    pub verdict: Verdict,
    /// The verdict at the last look (`None`: the pair was not there).
    pub before: Option<Verdict>,
    pub message: String,
}

/// The comparison read as `a` against `b` with `a <= b`, so that both looks key the same way.
fn oriented(c: &Comparison) -> (String, String, Option<f64>, Verdict) {
    if c.a <= c.b {
        (c.a.clone(), c.b.clone(), c.probability, c.verdict)
    } else {
        let flipped = match c.verdict {
            Verdict::Better => Verdict::Worse,
            Verdict::Worse => Verdict::Better,
            v => v,
        };
        (c.b.clone(), c.a.clone(), c.probability.map(|p| 1.0 - p), flipped)
    }
}

/// What changed between two reports. A call that appears, flips or goes away is an alert; an unchanged one is
/// not, so looking often does not repeat old news.
pub fn alerts(before: &Report, now: &Report) -> Vec<Alert> {
    let mut old: HashMap<(String, String, Metric, String, String), Verdict> = HashMap::new();
    for ch in &before.channels {
        for t in &ch.traits {
            for c in &t.comparisons {
                let (a, b, _, v) = oriented(c);
                old.insert((ch.channel.clone(), t.name.clone(), c.metric, a, b), v);
            }
        }
    }
    let called = |v: Verdict| matches!(v, Verdict::Better | Verdict::Worse);
    let mut out = Vec::new();
    for ch in &now.channels {
        for t in &ch.traits {
            for c in &t.comparisons {
                let (a, b, probability, verdict) = oriented(c);
                let key = (ch.channel.clone(), t.name.clone(), c.metric, a.clone(), b.clone());
                let was = old.get(&key).copied();
                let changed = was != Some(verdict) && (called(verdict) || was.is_some_and(called));
                if !changed {
                    continue;
                }
                let message = if called(verdict) {
                    sentence(&ch.channel, &t.name, c)
                } else {
                    format!(
                        "{}, {}: {} vs {} on {} is no longer called ({:?} before, now {:?})",
                        ch.channel,
                        t.name,
                        a,
                        b,
                        c.metric.label(),
                        was.unwrap_or(Verdict::Inconclusive),
                        verdict
                    )
                };
                out.push(Alert {
                    channel: ch.channel.clone(),
                    trait_name: t.name.clone(),
                    metric: c.metric,
                    a,
                    b,
                    probability,
                    verdict,
                    before: was,
                    message,
                });
            }
        }
    }
    out
}
