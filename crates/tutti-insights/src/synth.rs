//! Synthetic campaigns with planted ground truth, for tests, benchmarks and demonstrations.
//!
//! Each creative gets random values for each trait; its true click-through and conversion rates are the
//! channel's base rates times the planted effects of its values, then spread by a creative-level Beta draw
//! (creatives differ for reasons no tag captures). Daily impressions vary around the channel's mean; clicks and
//! conversions are binomial draws from the true rates. What the analysis should find is therefore known.

use std::collections::BTreeMap;

use jiff::ToSpan;
use jiff::civil::Date;

use crate::stats::{BetaPrior, Rng};
use tutti_core::creative::{Creative, Daily, Owner, Performance, Tag};

#[derive(Debug, Clone)]
pub struct TraitSpec {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ChannelSpec {
    pub name: String,
    pub creatives: usize,
    pub base_click_through: f64,
    pub base_conversion: f64,
    /// Mean impressions per creative per day.
    pub daily_impressions: u64,
    /// Cost of 1,000 impressions, in millionths of the currency unit.
    pub cpm_micros: i64,
}

/// A planted effect: creatives with `value` of `trait_name` on `channel` have their rates multiplied by one plus
/// the lift.
#[derive(Debug, Clone)]
pub struct Effect {
    pub channel: String,
    pub trait_name: String,
    pub value: String,
    pub click_through_lift: f64,
    pub conversion_lift: f64,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub campaign: String,
    pub start: Date,
    pub days: u32,
    pub channels: Vec<ChannelSpec>,
    pub traits: Vec<TraitSpec>,
    pub effects: Vec<Effect>,
    /// How alike creatives with the same tags are: the strength of the creative-level Beta (larger, more alike).
    pub dispersion: f64,
    /// Competitors and how many creatives each (tags only, no performance).
    pub competitors: Vec<(String, usize)>,
}

/// The default taxonomy's traits (language and length aside), with their values.
pub fn default_traits() -> Vec<TraitSpec> {
    let t = |name: &str, values: &[&str]| TraitSpec {
        name: name.to_owned(),
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    };
    vec![
        t("tone", &["emotional", "rational"]),
        t("purpose", &["educational", "call_to_action"]),
        t("structure", &["problem_first", "solution_first"]),
        t("offer", &["discount", "free_trial", "scarcity", "social_proof", "value", "none"]),
    ]
}

impl Spec {
    /// Story S6's shape: three channels; on `facebook` emotional creatives are clicked 30% more often than
    /// rational ones; on `google` tone makes no difference; nothing else has any effect anywhere.
    pub fn s6(seed: u64) -> Spec {
        let channel = |name: &str, ctr: f64, cvr: f64, cpm_dollars: f64| ChannelSpec {
            name: name.to_owned(),
            creatives: 80,
            base_click_through: ctr,
            base_conversion: cvr,
            daily_impressions: 2_000,
            cpm_micros: (cpm_dollars * 1e6) as i64,
        };
        Spec {
            seed,
            campaign: "spring-launch".to_owned(),
            start: jiff::civil::date(2026, 3, 1),
            days: 30,
            channels: vec![
                channel("facebook", 0.012, 0.04, 9.0),
                channel("google", 0.035, 0.06, 15.0),
                channel("tiktok", 0.009, 0.02, 6.0),
            ],
            traits: default_traits(),
            effects: vec![Effect {
                channel: "facebook".to_owned(),
                trait_name: "tone".to_owned(),
                value: "emotional".to_owned(),
                click_through_lift: 0.30,
                conversion_lift: 0.0,
            }],
            dispersion: 1_000.0,
            competitors: vec![("rival-co".to_owned(), 40)],
        }
    }
}

/// What [`generate`] made, with the truth behind it.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub creatives: Vec<Creative>,
    pub performance: Vec<Performance>,
    /// Creative id -> (true click-through, true conversion).
    pub truth: BTreeMap<String, (f64, f64)>,
}

pub fn generate(spec: &Spec) -> Campaign {
    let mut rng = Rng::new(spec.seed);
    let mut creatives = Vec::new();
    let mut performance = Vec::new();
    let mut truth = BTreeMap::new();
    let languages = ["vi", "zh", "en"];
    for channel in &spec.channels {
        for n in 0..channel.creatives {
            let id = format!("{}-{}-{n:05}", spec.campaign, channel.name);
            let mut tags = BTreeMap::new();
            let (mut ctr, mut cvr) = (channel.base_click_through, channel.base_conversion);
            for t in &spec.traits {
                let value = &t.values[rng.below(t.values.len() as u64) as usize];
                for e in &spec.effects {
                    if e.channel == channel.name && e.trait_name == t.name && &e.value == value {
                        ctr *= 1.0 + e.click_through_lift;
                        cvr *= 1.0 + e.conversion_lift;
                    }
                }
                tags.insert(t.name.clone(), Tag::manual(value.clone()));
            }
            let ctr = draw_rate(&mut rng, ctr, spec.dispersion);
            let cvr = draw_rate(&mut rng, cvr, spec.dispersion);
            truth.insert(id.clone(), (ctr, cvr));
            let language = languages[rng.below(3) as usize];
            creatives.push(creative(&id, &spec.campaign, &channel.name, language, Owner::Ours, spec.start, tags));
            for day in 0..spec.days {
                // Gamma(4)/4 around the mean: some days a creative is shown much more than others.
                let impressions = (channel.daily_impressions as f64 * rng.gamma(4.0) / 4.0).round() as u64;
                let clicks = rng.binomial(impressions, ctr);
                let conversions = rng.binomial(clicks, cvr);
                performance.push(Performance {
                    creative: id.clone(),
                    date: spec.start.saturating_add((day as i64).days()),
                    numbers: Daily {
                        impressions,
                        clicks,
                        conversions,
                        spend_micros: impressions as i64 * channel.cpm_micros / 1_000,
                        revenue_micros: None,
                    },
                });
            }
        }
    }
    for (name, count) in &spec.competitors {
        for n in 0..*count {
            let channel = &spec.channels[n % spec.channels.len()].name;
            let tags = spec
                .traits
                .iter()
                .map(|t| (t.name.clone(), Tag::manual(t.values[rng.below(t.values.len() as u64) as usize].clone())))
                .collect();
            let language = languages[rng.below(3) as usize];
            let owner = Owner::Competitor(name.clone());
            creatives.push(creative(&format!("{name}-{n:05}"), "", channel, language, owner, spec.start, tags));
        }
    }
    Campaign { creatives, performance, truth }
}

fn draw_rate(rng: &mut Rng, mean: f64, strength: f64) -> f64 {
    let prior = BetaPrior { mean: mean.clamp(1e-6, 1.0 - 1e-6), strength };
    rng.beta(prior.alpha(), prior.beta())
}

fn creative(
    id: &str,
    campaign: &str,
    channel: &str,
    language: &str,
    owner: Owner,
    launched: Date,
    tags: BTreeMap<String, Tag>,
) -> Creative {
    Creative {
        id: id.to_owned(),
        campaign: campaign.to_owned(),
        channel: channel.to_owned(),
        language: language.to_owned(),
        headline: String::new(),
        body: String::new(),
        call_to_action: String::new(),
        landing_url: String::new(),
        owner,
        launched: Some(launched),
        tags,
    }
}
