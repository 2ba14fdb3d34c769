//! Which creative traits win on which channel, and how sure we are.
//!
//! For each channel, every creative's click-through rate gets a Beta-Binomial posterior whose prior is fitted to
//! that channel's creatives ([`BetaPrior::fit`]), so a creative with little traffic is pulled toward the channel's
//! mean instead of topping a chart on ten impressions; conversion rate (conversions per click) likewise. A trait
//! value's rate is then the impression-weighted (click-weighted) mean of its creatives' rates, drawn many times
//! with a Bayesian bootstrap over the creatives *and* a draw from each creative's posterior. Both kinds of
//! uncertainty count: the noise in each creative's clicks, and the fact that a handful of creatives is a small
//! sample of what "emotional creatives" do. Pooling all impressions of a value instead would treat one strong
//! creative as proof about its trait and call differences that are not there.
//!
//! The results are associations: creatives with a trait did better, which is not proof that the trait caused it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use serde::Serialize;

use crate::stats::{BetaPrior, Rng, quantile};
use tutti_core::creative::{Creative, Performance, Totals};

/// What an analysis looks at and how cautious it is.
#[derive(Debug, Clone)]
pub struct Options {
    /// First day counted (inclusive); all when `None`.
    pub from: Option<Date>,
    /// Last day counted (inclusive); all when `None`.
    pub to: Option<Date>,
    /// Only these traits; every tagged trait when empty.
    pub traits: Vec<String>,
    /// Posterior draws. More draws, steadier probabilities; 4,000 puts a probability's Monte Carlo error near 0.3
    /// percentage points.
    pub draws: usize,
    /// The same seed and inputs give the same report.
    pub seed: u64,
    /// A value is called better (worse) when the probability that it beats the other is at least this (at most
    /// one minus this). With more than two values to compare within a trait, each pair's bar is raised so that
    /// the trait as a whole keeps this standard (Bonferroni over its pairs).
    pub threshold: f64,
    /// Fewer distinct creatives than this with a value: not enough data.
    pub min_creatives: usize,
    /// Fewer impressions than this for a value: not enough data for click-through.
    pub min_impressions: u64,
    /// Fewer clicks than this for a value: not enough data for conversion rate.
    pub min_clicks: u64,
}

impl Options {
    /// The defaults over the days from `from` to `to` (each `YYYY-MM-DD` or another form `parse_date` reads).
    /// The error names which bound did not read (`"from"` or `"to"`) and why.
    pub fn for_days(from: Option<&str>, to: Option<&str>) -> Result<Options, (&'static str, String)> {
        let date =
            |d: Option<&str>, which: &'static str| d.map(crate::import::parse_date).transpose().map_err(|e| (which, e));
        Ok(Options { from: date(from, "from")?, to: date(to, "to")?, ..Options::default() })
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            from: None,
            to: None,
            traits: Vec::new(),
            draws: 4_000,
            seed: 0x7477_7469,
            threshold: 0.95,
            min_creatives: 3,
            min_impressions: 1_000,
            min_clicks: 100,
        }
    }
}

/// The rates a comparison is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Clicks per impression.
    ClickThrough,
    /// Conversions per click.
    Conversion,
}

impl Metric {
    pub fn label(self) -> &'static str {
        match self {
            Metric::ClickThrough => "click-through",
            Metric::Conversion => "conversion",
        }
    }
}

/// A posterior summary: mean and central 95% credible interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub(crate) fn of(samples: &mut [f64]) -> Interval {
        samples.sort_by(f64::total_cmp);
        let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
        Interval { mean, low: quantile(samples, 0.025), high: quantile(samples, 0.975) }
    }
}

/// One value of one trait on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ValueReport {
    pub value: String,
    pub creatives: usize,
    #[serde(flatten)]
    pub totals: Totals,
    /// `None` when there is not enough data.
    pub click_through: Option<Interval>,
    pub conversion: Option<Interval>,
}

/// What a comparison concluded, from the first value's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    Inconclusive,
    NotEnoughData,
}

/// `a` against `b` on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Comparison {
    pub metric: Metric,
    pub a: String,
    pub b: String,
    /// The probability that `a`'s rate is higher than `b`'s; `None` when there is not enough data.
    pub probability: Option<f64>,
    /// `a`'s rate relative to `b`'s, minus one (0.3 is 30% higher).
    pub lift: Option<Interval>,
    /// The probability `a` (or `b`) had to reach to be called better: the threshold, raised when the trait has
    /// more than two values to compare.
    pub bar: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TraitReport {
    pub name: String,
    /// Best first (by click-through when known).
    pub values: Vec<ValueReport>,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChannelReport {
    pub channel: String,
    /// Our creatives with impressions in the window.
    pub creatives: usize,
    #[serde(flatten)]
    pub totals: Totals,
    /// The priors every creative's rates were shrunk toward.
    pub click_through_prior: BetaPrior,
    pub conversion_prior: BetaPrior,
    pub traits: Vec<TraitReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Report {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub draws: usize,
    pub threshold: f64,
    pub channels: Vec<ChannelReport>,
    /// Performance rows naming a creative that is not known; they are left out.
    pub unknown_creatives: usize,
}

impl Report {
    /// A report with nothing in it (what alerts compare against the first time).
    pub fn empty(options: &Options) -> Report {
        Report {
            from: options.from,
            to: options.to,
            draws: options.draws,
            threshold: options.threshold,
            channels: Vec::new(),
            unknown_creatives: 0,
        }
    }
}

/// Sums each creative's performance inside the window. Rows for unknown creatives are counted, not used.
pub fn totals_by_creative<'a>(
    creatives: &[Creative],
    performance: impl IntoIterator<Item = &'a Performance>,
    from: Option<Date>,
    to: Option<Date>,
) -> (Vec<Totals>, usize) {
    let index: HashMap<&str, usize> = creatives.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    let mut totals = vec![Totals::default(); creatives.len()];
    let mut unknown = 0;
    for row in performance {
        if from.is_some_and(|f| row.date < f) || to.is_some_and(|t| row.date > t) {
            continue;
        }
        match index.get(row.creative.as_str()) {
            Some(&i) => totals[i].add(&row.numbers),
            None => unknown += 1,
        }
    }
    (totals, unknown)
}

/// Analyses our creatives' performance by trait and channel. Competitors' creatives are left out (they have no
/// performance).
pub fn analyze<'a>(
    creatives: &[Creative],
    performance: impl IntoIterator<Item = &'a Performance>,
    options: &Options,
) -> Report {
    let (totals, unknown_creatives) = totals_by_creative(creatives, performance, options.from, options.to);
    Report { unknown_creatives, ..analyze_totals(creatives, &totals, options) }
}

/// [`analyze`] from each creative's sums over the window (`totals[i]` belongs to `creatives[i]`), as a store
/// computes them without handing over every row. `options.from` and `options.to` are only reported.
pub fn analyze_totals(creatives: &[Creative], totals: &[Totals], options: &Options) -> Report {
    assert_eq!(creatives.len(), totals.len(), "one total per creative");
    let mut channels: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in creatives.iter().enumerate() {
        if c.owner.is_ours() && totals[i].impressions > 0 {
            channels.entry(c.channel.as_str()).or_default().push(i);
        }
    }
    let root = Rng::new(options.seed);
    let channels = channels
        .into_iter()
        .map(|(channel, members)| {
            // Seeded by name, so adding a channel does not change another channel's figures.
            let rng = root.fork(tutti_core::hash::fnv1a(channel.as_bytes()));
            channel_report(channel, &members, creatives, totals, options, &rng)
        })
        .collect();
    Report {
        from: options.from,
        to: options.to,
        draws: options.draws,
        threshold: options.threshold,
        channels,
        unknown_creatives: 0,
    }
}

/// The groups of one channel: (trait, value) -> its creatives (indices into the channel's members).
struct Groups {
    keys: Vec<(String, String)>,
    /// For each member, the groups it belongs to.
    of_member: Vec<Vec<usize>>,
}

fn groups(members: &[usize], creatives: &[Creative], wanted: &[String]) -> Groups {
    // In key order, so the output order does not depend on which creative came first. The empty key is the
    // whole channel, which every creative belongs to.
    let mut keys: BTreeSet<(&str, &str)> = BTreeSet::new();
    keys.insert(("", ""));
    for &i in members {
        for (name, tag) in &creatives[i].tags {
            if wanted.is_empty() || wanted.contains(name) {
                keys.insert((name.as_str(), tag.value.as_str()));
            }
        }
    }
    let position: HashMap<(&str, &str), usize> = keys.iter().enumerate().map(|(g, k)| (*k, g)).collect();
    let of_member = members
        .iter()
        .map(|&i| {
            std::iter::once(position[&("", "")])
                .chain(
                    creatives[i]
                        .tags
                        .iter()
                        .filter_map(|(name, tag)| position.get(&(name.as_str(), tag.value.as_str())).copied()),
                )
                .collect()
        })
        .collect();
    let keys = keys.into_iter().map(|(t, v)| (t.to_owned(), v.to_owned())).collect();
    Groups { keys, of_member }
}

/// Posterior parameters of one creative.
#[derive(Clone, Copy)]
struct Posterior {
    impressions: f64,
    clicks: f64,
    ctr: (f64, f64),
    cvr: (f64, f64),
}

/// A beta distribution ready to draw from: the normal with its moments when both parameters are large (see
/// [`Rng::beta`]), computed once instead of at every draw.
enum BetaSampler {
    Normal { mean: f64, sd: f64 },
    Exact { a: f64, b: f64 },
}

impl BetaSampler {
    fn new((a, b): (f64, f64)) -> BetaSampler {
        if a >= crate::stats::BETA_NORMAL_ABOVE && b >= crate::stats::BETA_NORMAL_ABOVE {
            let mean = a / (a + b);
            BetaSampler::Normal { mean, sd: (mean * (1.0 - mean) / (a + b + 1.0)).sqrt() }
        } else {
            BetaSampler::Exact { a, b }
        }
    }

    fn draw(&self, rng: &mut Rng) -> f64 {
        match *self {
            BetaSampler::Normal { mean, sd } => (mean + sd * rng.normal()).clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON),
            BetaSampler::Exact { a, b } => rng.beta_exact(a, b),
        }
    }
}

/// Draws per chunk: draws are made in fixed chunks, each with its own generator, so the result does not depend on
/// how many threads share the work.
const CHUNK: usize = 500;

/// One channel's fitted model: priors, each creative's posterior, the trait-value groups and the joint draws of
/// every group's rates (the channel as a whole is the group with an empty name).
pub(crate) struct ChannelModel {
    pub totals: Totals,
    pub ctr_prior: BetaPrior,
    pub cvr_prior: BetaPrior,
    keys: Vec<(String, String)>,
    /// `[metric][group][draw]`
    samples: [Vec<Vec<f64>>; 2],
    counts: Vec<usize>,
    group_totals: Vec<Totals>,
}

impl ChannelModel {
    pub fn fit(
        members: &[usize],
        creatives: &[Creative],
        totals: &[Totals],
        options: &Options,
        rng: &Rng,
    ) -> ChannelModel {
        let mut channel_totals = Totals::default();
        for &i in members {
            channel_totals.merge(&totals[i]);
        }
        let ctr_prior = BetaPrior::fit(members.iter().map(|&i| {
            let (n, k, _) = bounded(&totals[i]);
            (n, k)
        }));
        let cvr_prior = BetaPrior::fit(members.iter().map(|&i| {
            let (_, n, k) = bounded(&totals[i]);
            (n, k)
        }));
        let posteriors: Vec<Posterior> = members
            .iter()
            .map(|&i| {
                let (n, k, conv) = bounded(&totals[i]);
                Posterior {
                    impressions: n as f64,
                    clicks: k as f64,
                    ctr: (ctr_prior.alpha() + k as f64, ctr_prior.beta() + (n - k) as f64),
                    cvr: (cvr_prior.alpha() + conv as f64, cvr_prior.beta() + (k - conv) as f64),
                }
            })
            .collect();
        let groups = groups(members, creatives, &options.traits);
        let draws = options.draws.max(CHUNK).div_ceil(CHUNK) * CHUNK;
        let samples = draw(&posteriors, &groups, draws, rng);
        let mut counts = vec![0usize; groups.keys.len()];
        let mut group_totals = vec![Totals::default(); groups.keys.len()];
        for (m, of) in groups.of_member.iter().enumerate() {
            for &g in of {
                counts[g] += 1;
                group_totals[g].merge(&totals[members[m]]);
            }
        }
        ChannelModel { totals: channel_totals, ctr_prior, cvr_prior, keys: groups.keys, samples, counts, group_totals }
    }

    /// The group of a trait value (`("", "")`: the whole channel).
    pub fn group(&self, name: &str, value: &str) -> Option<usize> {
        self.keys.iter().position(|(t, v)| t == name && v == value)
    }

    /// Draws of a group's rate.
    pub fn samples(&self, metric: Metric, group: usize) -> &[f64] {
        &self.samples[metric as usize][group]
    }

    pub fn creatives_in(&self, group: usize) -> usize {
        self.counts[group]
    }
}

/// Impressions, clicks and conversions bounded so that each is at most the one before (a rate needs it).
pub(crate) fn bounded(t: &Totals) -> (u64, u64, u64) {
    let clicks = t.clicks.min(t.impressions);
    (t.impressions, clicks, t.conversions.min(clicks))
}

fn channel_report(
    channel: &str,
    members: &[usize],
    creatives: &[Creative],
    totals: &[Totals],
    options: &Options,
    rng: &Rng,
) -> ChannelReport {
    let model = ChannelModel::fit(members, creatives, totals, options, rng);
    let ChannelModel { totals: channel_totals, ctr_prior, cvr_prior, keys, samples, counts, group_totals } = model;
    let enough = |g: usize, metric: Metric| {
        counts[g] >= options.min_creatives
            && match metric {
                Metric::ClickThrough => group_totals[g].impressions >= options.min_impressions,
                Metric::Conversion => group_totals[g].clicks.min(group_totals[g].impressions) >= options.min_clicks,
            }
    };

    let mut traits: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (g, (name, _)) in keys.iter().enumerate() {
        if !name.is_empty() {
            traits.entry(name.as_str()).or_default().push(g);
        }
    }
    let traits = traits
        .into_iter()
        .map(|(name, mut gs)| {
            let summary = |g: usize, metric: Metric| {
                enough(g, metric).then(|| Interval::of(&mut samples[metric as usize][g].clone()))
            };
            // Best first: by posterior click-through, then by name for values without enough data.
            let means: HashMap<usize, f64> = gs
                .iter()
                .map(|&g| (g, summary(g, Metric::ClickThrough).map_or(f64::NEG_INFINITY, |i| i.mean)))
                .collect();
            gs.sort_by(|x, y| means[y].total_cmp(&means[x]).then_with(|| keys[*x].1.cmp(&keys[*y].1)));
            let values = gs
                .iter()
                .map(|&g| ValueReport {
                    value: keys[g].1.clone(),
                    creatives: counts[g],
                    totals: group_totals[g],
                    click_through: summary(g, Metric::ClickThrough),
                    conversion: summary(g, Metric::Conversion),
                })
                .collect();
            let mut comparisons = Vec::new();
            for metric in [Metric::ClickThrough, Metric::Conversion] {
                // Many pairs, many chances for one to cross the bar by luck: the bar rises with the number of
                // pairs that can be compared (Bonferroni), so a six-valued trait is held to the same overall
                // standard as a two-valued one.
                let comparable = gs.iter().filter(|&&g| enough(g, metric)).count();
                let pairs = (comparable * comparable.saturating_sub(1) / 2).max(1);
                let bar = 1.0 - (1.0 - options.threshold) / pairs as f64;
                for (x, &a) in gs.iter().enumerate() {
                    for &b in &gs[x + 1..] {
                        comparisons
                            .push(compare(&keys, &samples[metric as usize], a, b, metric, bar, |g| enough(g, metric)));
                    }
                }
            }
            TraitReport { name: name.to_owned(), values, comparisons }
        })
        .collect();
    ChannelReport {
        channel: channel.to_owned(),
        creatives: members.len(),
        totals: channel_totals,
        click_through_prior: ctr_prior,
        conversion_prior: cvr_prior,
        traits,
    }
}

fn compare(
    keys: &[(String, String)],
    samples: &[Vec<f64>],
    a: usize,
    b: usize,
    metric: Metric,
    bar: f64,
    enough: impl Fn(usize) -> bool,
) -> Comparison {
    let (name_a, name_b) = (keys[a].1.clone(), keys[b].1.clone());
    if !enough(a) || !enough(b) {
        return Comparison {
            metric,
            a: name_a,
            b: name_b,
            probability: None,
            lift: None,
            bar,
            verdict: Verdict::NotEnoughData,
        };
    }
    let (sa, sb) = (&samples[a], &samples[b]);
    let wins = sa.iter().zip(sb).filter(|(x, y)| x > y).count();
    let probability = wins as f64 / sa.len() as f64;
    let mut lift: Vec<f64> = sa.iter().zip(sb).filter(|(_, y)| **y > 0.0).map(|(x, y)| x / y - 1.0).collect();
    let verdict = if probability >= bar {
        Verdict::Better
    } else if probability <= 1.0 - bar {
        Verdict::Worse
    } else {
        Verdict::Inconclusive
    };
    Comparison {
        metric,
        a: name_a,
        b: name_b,
        probability: Some(probability),
        lift: (!lift.is_empty()).then(|| Interval::of(&mut lift)),
        bar,
        verdict,
    }
}

/// `draws` joint draws of every group's click-through and conversion rate: `[metric][group][draw]`.
fn draw(posteriors: &[Posterior], groups: &Groups, draws: usize, rng: &Rng) -> [Vec<Vec<f64>>; 2] {
    let chunks = draws / CHUNK;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(chunks).max(1);
    let n_groups = groups.keys.len();
    // Each worker takes every `workers`-th chunk; chunk `c` always uses generator `c`.
    let parts: Vec<Vec<(usize, [Vec<f64>; 2])>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    (w..chunks)
                        .step_by(workers)
                        .map(|c| (c, draw_chunk(posteriors, groups, n_groups, &mut rng.fork(c as u64))))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a draw worker panicked")).collect()
    });
    let mut out = [vec![vec![0.0; draws]; n_groups], vec![vec![0.0; draws]; n_groups]];
    for (c, chunk) in parts.into_iter().flatten() {
        for (metric, per_group) in chunk.into_iter().enumerate() {
            for (g, values) in per_group.chunks(CHUNK).enumerate() {
                out[metric][g][c * CHUNK..(c + 1) * CHUNK].copy_from_slice(values);
            }
        }
    }
    out
}

/// One chunk of draws: `[metric][group * CHUNK + draw]`.
fn draw_chunk(posteriors: &[Posterior], groups: &Groups, n_groups: usize, rng: &mut Rng) -> [Vec<f64>; 2] {
    let mut out = [vec![0.0; n_groups * CHUNK], vec![0.0; n_groups * CHUNK]];
    let mut sums = vec![[0.0f64; 4]; n_groups];
    // The hot loop: each creative's groups in one flat array, its beta draws prepared once.
    let mut flat: Vec<usize> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(posteriors.len());
    for of in &groups.of_member {
        flat.extend_from_slice(of);
        ends.push(flat.len());
    }
    let samplers: Vec<(BetaSampler, Option<BetaSampler>)> = posteriors
        .iter()
        .map(|p| (BetaSampler::new(p.ctr), (p.clicks > 0.0).then(|| BetaSampler::new(p.cvr))))
        .collect();
    for d in 0..CHUNK {
        sums.iter_mut().for_each(|s| *s = [0.0; 4]);
        let mut start = 0;
        for ((p, (ctr_of, cvr_of)), &end) in posteriors.iter().zip(&samplers).zip(&ends) {
            // The Bayesian bootstrap's weight for this creative in this draw, and its rates.
            let w = rng.exp1();
            let ctr = ctr_of.draw(rng);
            let cvr = cvr_of.as_ref().map_or(0.0, |s| s.draw(rng));
            let (wi, wc) = (w * p.impressions, w * p.clicks);
            let of = &flat[start..end];
            start = end;
            for &g in of {
                let s = &mut sums[g];
                s[0] += wi * ctr;
                s[1] += wi;
                s[2] += wc * cvr;
                s[3] += wc;
            }
        }
        for (g, s) in sums.iter().enumerate() {
            out[0][g * CHUNK + d] = if s[1] > 0.0 { s[0] / s[1] } else { 0.0 };
            out[1][g * CHUNK + d] = if s[3] > 0.0 { s[2] / s[3] } else { 0.0 };
        }
    }
    out
}
