//! The analysis against synthetic campaigns whose truth is known: a planted effect is
//! found with at least 95% probability, a null effect is called inconclusive, and over many campaigns the
//! probabilities and intervals are as honest as they claim.

use tutti_insights::analysis::{Comparison, Metric, Report, Verdict};
use tutti_insights::synth::{self, Spec};
use tutti_insights::{Options, analyze};

fn tone(report: &Report, channel: &str, metric: Metric) -> Comparison {
    let channel = report.channels.iter().find(|c| c.channel == channel).expect("channel analysed");
    let tone = channel.traits.iter().find(|t| t.name == "tone").expect("tone analysed");
    let c = tone.comparisons.iter().find(|c| c.metric == metric).expect("a tone comparison").clone();
    // Always read as emotional against rational.
    if c.a == "emotional" {
        c
    } else {
        let flip = |v| match v {
            Verdict::Better => Verdict::Worse,
            Verdict::Worse => Verdict::Better,
            v => v,
        };
        Comparison {
            metric: c.metric,
            a: c.b,
            b: c.a,
            probability: c.probability.map(|p| 1.0 - p),
            lift: None,
            bar: c.bar,
            verdict: flip(c.verdict),
        }
    }
}

#[test]
fn one_campaign_the_planted_effect_with_its_lift_reproducibly() {
    let campaign = synth::generate(&Spec::s6(1));
    let report = analyze(&campaign.creatives, &campaign.performance, &Options::default());
    let facebook = tone(&report, "facebook", Metric::ClickThrough);
    assert!(facebook.probability.unwrap() >= 0.95, "planted effect: {facebook:?}");
    assert_eq!(facebook.verdict, Verdict::Better);
    // The expected lift's interval holds the planted 30%.
    let channel = report.channels.iter().find(|c| c.channel == "facebook").unwrap();
    let raw = channel.traits.iter().find(|t| t.name == "tone").unwrap();
    let c = raw.comparisons.iter().find(|c| c.metric == Metric::ClickThrough).unwrap();
    let lift = c.lift.unwrap();
    let (low, high) = if c.a == "emotional" {
        (lift.low, lift.high)
    } else {
        (1.0 / (1.0 + lift.high) - 1.0, 1.0 / (1.0 + lift.low) - 1.0)
    };
    assert!(low < 0.30 && 0.30 < high, "lift interval {low:.3}..{high:.3} misses the planted 0.30");
    // The report is reproducible: same inputs and seed, same figures.
    assert_eq!(report, analyze(&campaign.creatives, &campaign.performance, &Options::default()));
}

#[test]
fn over_many_campaigns_the_planted_effect_is_found_the_null_is_inconclusive_and_the_probabilities_are_honest() {
    let options = Options { draws: 2_000, ..Options::default() };
    let seeds = 100;
    let (mut found, mut null_called, mut null_total, mut covered, mut google_inconclusive) = (0, 0, 0, 0, 0);
    for seed in 100..100 + seeds {
        let campaign = synth::generate(&Spec::s6(seed));
        let report = analyze(&campaign.creatives, &campaign.performance, &options);
        let facebook = tone(&report, "facebook", Metric::ClickThrough);
        if facebook.verdict == Verdict::Better {
            found += 1;
        }
        // The planted null: tone on google.
        if tone(&report, "google", Metric::ClickThrough).verdict == Verdict::Inconclusive {
            google_inconclusive += 1;
        }
        // Every comparison with nothing planted behind it: all but facebook's tone on click-through.
        for channel in &report.channels {
            for t in &channel.traits {
                for c in &t.comparisons {
                    if channel.channel == "facebook" && t.name == "tone" && c.metric == Metric::ClickThrough {
                        let lift = c.lift.unwrap();
                        let (low, high) = if c.a == "emotional" {
                            (lift.low, lift.high)
                        } else {
                            (1.0 / (1.0 + lift.high) - 1.0, 1.0 / (1.0 + lift.low) - 1.0)
                        };
                        covered += usize::from(low < 0.30 && 0.30 < high);
                        continue;
                    }
                    if c.verdict == Verdict::NotEnoughData {
                        continue;
                    }
                    null_total += 1;
                    null_called += usize::from(c.verdict != Verdict::Inconclusive);
                }
            }
        }
    }
    eprintln!(
        "found {found}/{seeds}, google's tone inconclusive {google_inconclusive}/{seeds}, \
         null called {null_called}/{null_total}, covered {covered}/{seeds}"
    );
    // The planted effect found in at least 95% of campaigns.
    assert!(found * 100 >= seeds as usize * 95, "planted effect found in {found} of {seeds} campaigns");
    // The planted null called inconclusive about as often as a 0.95 bar on either side allows (90%, give or take
    // the three points a hundred campaigns vary by).
    assert!(
        google_inconclusive * 100 >= seeds as usize * 80,
        "google's tone inconclusive in {google_inconclusive} of {seeds}"
    );
    // With a 0.95 bar on either side, raised by Bonferroni for traits of many values, a calibrated analysis calls
    // a few percent of null comparisons; ignoring how creatives differ calls far more (about 40%). Allow sampling
    // noise, not overconfidence.
    let rate = null_called as f64 / null_total as f64;
    assert!(null_total > 1_000, "{null_total} null comparisons");
    assert!(rate <= 0.05, "null comparisons called {null_called} of {null_total} times ({:.1}%)", rate * 100.0);
    // The 95% interval for the planted lift holds it in most campaigns.
    assert!(covered * 100 >= seeds as usize * 85, "planted lift inside its interval in {covered} of {seeds}");
}

#[test]
fn too_little_data_is_said_so() {
    let mut spec = Spec::s6(7);
    for c in &mut spec.channels {
        c.creatives = 4;
        c.daily_impressions = 5;
    }
    spec.days = 3;
    let campaign = synth::generate(&spec);
    let report = analyze(&campaign.creatives, &campaign.performance, &Options::default());
    for channel in &report.channels {
        for t in &channel.traits {
            for c in &t.comparisons {
                assert_eq!(c.verdict, Verdict::NotEnoughData, "{} {} {:?}", channel.channel, t.name, c);
                assert!(c.probability.is_none() && c.lift.is_none());
            }
            for v in &t.values {
                assert!(v.click_through.is_none(), "{} {} {}: {:?}", channel.channel, t.name, v.value, v);
            }
        }
    }
}

#[test]
fn competitors_and_unknown_rows_are_left_out_of_the_analysis() {
    let mut campaign = synth::generate(&Spec::s6(3));
    let ours = campaign.creatives.iter().filter(|c| c.owner.is_ours()).count();
    let mut stray = campaign.performance[0].clone();
    stray.creative = "no-such-creative".to_owned();
    campaign.performance.push(stray);
    let report = analyze(&campaign.creatives, &campaign.performance, &Options::default());
    assert_eq!(report.unknown_creatives, 1);
    assert_eq!(report.channels.iter().map(|c| c.creatives).sum::<usize>(), ours);
    let impressions: u64 =
        campaign.performance[..campaign.performance.len() - 1].iter().map(|p| p.numbers.impressions).sum();
    assert_eq!(report.channels.iter().map(|c| c.totals.impressions).sum::<u64>(), impressions);
}
