//! Prediction, budget proposals, the competitor view and alerts against synthetic campaigns whose truth is
//! known.

use std::collections::BTreeMap;

use tutti_insights::alerts::alerts;
use tutti_insights::analysis::{Metric, Verdict, totals_by_creative};
use tutti_insights::budget::{BudgetOptions, Objective, propose_budget};
use tutti_insights::competitors::competitor_view;
use tutti_insights::predict::predict;
use tutti_insights::synth::{self, Spec};
use tutti_insights::{Options, analyze};

#[test]
fn predictions_for_unlaunched_creatives_hold_their_true_rates_and_see_the_planted_effect() {
    let campaign = synth::generate(&Spec::s6(5));
    // Every fourth facebook creative is held out: its performance is never shown to the model.
    let held: Vec<&str> = campaign
        .creatives
        .iter()
        .filter(|c| c.channel == "facebook" && c.owner.is_ours())
        .step_by(4)
        .map(|c| c.id.as_str())
        .collect();
    let shown: Vec<_> = campaign.performance.iter().filter(|p| !held.contains(&p.creative.as_str())).cloned().collect();
    let (totals, _) = totals_by_creative(&campaign.creatives, &shown, None, None);
    let options = Options { draws: 2_000, ..Options::default() };
    let (mut inside, mut emotional, mut rational) = (0, Vec::new(), Vec::new());
    for id in &held {
        let c = campaign.creatives.iter().find(|c| c.id == *id).unwrap();
        let tags: BTreeMap<String, String> = c.tags.iter().map(|(k, t)| (k.clone(), t.value.clone())).collect();
        let p = predict(&campaign.creatives, &totals, "facebook", &tags, &options).unwrap();
        let truth = campaign.truth[*id].0;
        inside += usize::from(p.click_through.low <= truth && truth <= p.click_through.high);
        match tags["tone"].as_str() {
            "emotional" => emotional.push(p.click_through.mean),
            _ => rational.push(p.click_through.mean),
        }
    }
    assert!(held.len() >= 20);
    assert!(inside * 100 >= held.len() * 85, "{inside} of {} true rates inside their 95% interval", held.len());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ratio = mean(&emotional) / mean(&rational);
    assert!((1.15..1.5).contains(&ratio), "emotional / rational predicted {ratio:.2}, planted 1.30");
    // A tag the channel has never seen does not move the prediction; it is named.
    let mut odd = BTreeMap::new();
    odd.insert("tone".to_owned(), "sarcastic".to_owned());
    let p = predict(&campaign.creatives, &totals, "facebook", &odd, &options).unwrap();
    assert_eq!(p.unknown, vec!["tone=sarcastic".to_owned()]);
    assert!((p.click_through.mean / p.channel_click_through - 1.0).abs() < 0.01);
    assert!(predict(&campaign.creatives, &totals, "radio", &odd, &options).is_none());
}

#[test]
fn the_budget_goes_mostly_to_the_likely_best_and_never_below_the_floor() {
    let mut spec = Spec::s6(9);
    spec.effects[0].click_through_lift = 0.8;
    let campaign = synth::generate(&spec);
    let (totals, _) = totals_by_creative(&campaign.creatives, &campaign.performance, None, None);
    let options = BudgetOptions {
        channel: "facebook".to_owned(),
        campaign: None,
        budget_micros: 1_000_000_000,
        floor: 0.005,
        objective: Objective::Clicks,
        draws: 2_000,
        seed: 1,
    };
    let proposal = propose_budget(&campaign.creatives, &totals, &options).unwrap();
    assert_eq!(proposal.status, "proposed");
    let total: f64 = proposal.allocations.iter().map(|a| a.share).sum();
    assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
    assert!(proposal.allocations.iter().all(|a| a.share >= 0.005 - 1e-12));
    let spent: i64 = proposal.allocations.iter().map(|a| a.budget_micros).sum();
    assert!((spent - 1_000_000_000).abs() <= proposal.allocations.len() as i64);
    // What goes beyond the floors goes mostly to emotional creatives (clicked 80% more often, same CPM).
    let (mut emotional, mut above) = (0.0, 0.0);
    for a in &proposal.allocations {
        let extra = a.share - proposal.floor;
        above += extra;
        if campaign.creatives.iter().find(|c| c.id == a.creative).unwrap().tag("tone") == Some("emotional") {
            emotional += extra;
        }
    }
    assert!(
        emotional / above >= 0.8,
        "emotional creatives got {:.0}% of the budget above the floors",
        100.0 * emotional / above
    );
    // The best creative by true rate is among the three most funded.
    let best = proposal
        .allocations
        .iter()
        .max_by(|a, b| campaign.truth[&a.creative].0.total_cmp(&campaign.truth[&b.creative].0))
        .unwrap();
    assert!(proposal.allocations[..3].iter().any(|a| a.creative == best.creative));
    assert!(
        propose_budget(&campaign.creatives, &totals, &BudgetOptions { channel: "radio".into(), ..options }).is_err()
    );
}

#[test]
fn competitor_shares_add_up_per_owner_and_period() {
    let campaign = synth::generate(&Spec::s6(2));
    let view = competitor_view(&campaign.creatives);
    let tone = view.iter().find(|t| t.name == "tone").unwrap();
    let owners: Vec<&str> = tone.rows.iter().filter(|r| r.period == "all").map(|r| r.owner.as_str()).collect();
    assert_eq!(owners, ["ours", "rival-co"]);
    for row in &tone.rows {
        let sum: f64 = row.shares.values().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{row:?}");
    }
    let rival = tone.rows.iter().find(|r| r.owner == "rival-co" && r.period == "all").unwrap();
    assert_eq!(rival.creatives, 40);
    assert!(tone.rows.iter().any(|r| r.period == "2026-03"));
}

#[test]
fn an_alert_when_a_call_appears_and_none_when_nothing_changed() {
    // Little traffic a day, so that the first day cannot tell and the month can.
    let mut spec = Spec::s6(4);
    for c in &mut spec.channels {
        c.daily_impressions = 100;
    }
    let campaign = synth::generate(&spec);
    let options = |to: i8| Options {
        to: Some(tutti_core::creative::Date::constant(2026, 3, to)),
        draws: 2_000,
        ..Options::default()
    };
    let day1 = analyze(&campaign.creatives, &campaign.performance, &options(1));
    let day30 = analyze(&campaign.creatives, &campaign.performance, &options(30));
    let early = day1.channels.iter().find(|c| c.channel == "facebook").unwrap();
    let early = early.traits.iter().find(|t| t.name == "tone").unwrap();
    assert!(early.comparisons.iter().all(|c| c.verdict != Verdict::Better && c.verdict != Verdict::Worse));
    let found = alerts(&day1, &day30);
    let tone = found
        .iter()
        .find(|a| a.channel == "facebook" && a.trait_name == "tone" && a.metric == Metric::ClickThrough)
        .expect("the planted effect is news between day 1 and day 30");
    assert_eq!((tone.a.as_str(), tone.verdict), ("emotional", Verdict::Better));
    assert!(tone.message.contains("emotional"), "{}", tone.message);
    assert!(alerts(&day30, &day30).is_empty());
}
