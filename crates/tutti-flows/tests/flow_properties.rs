//! Properties of the flow machine under random interleavings of events and timer firings, checked against an
//! oracle computed from the inputs alone: no action to an unsubscribed or suppressed profile, never more
//! than a cap, never two actions for the same run, step and visit (nor for the same run and step in flows
//! without loops).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use tutti_core::event::{BatchDefaults, Event};
use tutti_core::time::{Millis, format_timestamp};
use tutti_flows::machine::DecisionKind;
use tutti_flows::simulate::Simulation;
use tutti_flows::{ConnectorInfo, Definitions, compile};

const MINUTE: Millis = 60_000;
const DAY: Millis = 86_400_000;
const START: Millis = 1_795_000_000_000;

fn definitions(exit_runs: bool) -> Definitions {
    let connectors =
        vec![ConnectorInfo { name: "webhook".into(), operations: vec!["post".into()], channel: "webhook".into() }];
    let sources = [
        format!(
            "policy: complaints\nsuppress: {{ event: Complaint Filed, categories: [promotional], for: 14d, exit_runs: {exit_runs} }}\n"
        ),
        "policy: cap\nfrequency_cap: { channel: email, category: promotional, max: 2, per: 7d }\n".into(),
        // A promo five minutes after a checkout, every time.
        "flow: promo\nchannel: email\ntrigger: { event: Checkout Started }\nentry: { every_time: true, max_concurrent: 3 }\nsteps:\n  - id: pause\n    wait: 5m\n  - id: send\n    action: webhook.post\n    with: { user: '{{ event.userId }}' }\n".into(),
        // A daily nudge loop: a promo a day, waiting in between, for ever; only the policies hold it back.
        "flow: nudges\nchannel: email\ntrigger: { event: Browsed }\nentry: { once_per: 2d }\nsteps:\n  - id: send\n    action: webhook.post\n    with: { user: '{{ event.userId }}' }\n  - id: pause\n    wait: 1d\n    next: send\n".into(),
        // A transactional receipt two minutes after an order.
        "flow: receipt\ncategory: transactional\nchannel: email\ntrigger: { event: Order Completed }\nentry: { every_time: true, max_concurrent: 5 }\nsteps:\n  - id: pause\n    wait: 2m\n  - id: send\n    action: webhook.post\n    with: { user: '{{ event.userId }}' }\n".into(),
    ];
    let mut defs = Definitions::default();
    for source in &sources {
        defs.insert(compile(source, &connectors).unwrap_or_else(|p| panic!("{source}: {p:?}")));
    }
    defs
}

#[derive(Debug, Clone)]
enum Op {
    Checkout,
    Browse,
    Complain,
    Unsubscribe,
    Resubscribe,
    Order,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Checkout),
        2 => Just(Op::Browse),
        1 => Just(Op::Complain),
        1 => Just(Op::Unsubscribe),
        1 => Just(Op::Resubscribe),
        2 => Just(Op::Order),
    ]
}

/// A step of a scenario: after `gap` minutes, user `user` does `op`.
fn scenario() -> impl Strategy<Value = Vec<(u8, u32, Op)>> {
    prop::collection::vec((0u8..3, prop_oneof![0u32..10, 0u32..3000, 0u32..20_000], op()), 1..40)
}

fn event(n: usize, user: u8, at: Millis, op: &Op) -> Event {
    let user = format!("u{user}");
    let (kind, name, extra) = match op {
        Op::Checkout => ("track", "Checkout Started", json!({})),
        Op::Browse => ("track", "Browsed", json!({})),
        Op::Complain => ("track", "Complaint Filed", json!({})),
        Op::Order => ("track", "Order Completed", json!({})),
        Op::Unsubscribe => ("identify", "", json!({"email_subscribe": "unsubscribed"})),
        Op::Resubscribe => ("identify", "", json!({"email_subscribe": "subscribed"})),
    };
    let mut v = json!({"type": kind, "userId": user, "timestamp": format_timestamp(at), "messageId": format!("m{n}")});
    if kind == "track" {
        v["event"] = Value::from(name);
    } else {
        v["traits"] = extra;
    }
    Event::from_json(v, None, &BatchDefaults::default(), at, || unreachable!()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn policies_hold_under_any_interleaving(steps in scenario(), exit_runs in any::<bool>(), tail_days in 0i64..30) {
        let defs = definitions(exit_runs);
        let mut sim = Simulation::new(&defs);
        let mut now = START;
        // What the oracle knows, per user: complaint times and subscription changes.
        let mut complaints: BTreeMap<String, Vec<Millis>> = BTreeMap::new();
        // Each change with its time and message id: profiles keep the trait of the latest time, and at equal
        // times the greater message id (so that the result does not depend on arrival order).
        let mut subscription: BTreeMap<String, Vec<(Millis, String, bool)>> = BTreeMap::new();
        for (n, (user, gap, op)) in steps.iter().enumerate() {
            now += Millis::from(*gap) * MINUTE;
            let name = format!("u{user}");
            match op {
                Op::Complain => complaints.entry(name).or_default().push(now),
                Op::Unsubscribe => subscription.entry(name).or_default().push((now, format!("m{n}"), false)),
                Op::Resubscribe => subscription.entry(name).or_default().push((now, format!("m{n}"), true)),
                _ => {}
            }
            sim.event(&event(n, *user, now, op));
        }
        sim.run_until(now + tail_days * DAY);

        let mut keys = BTreeSet::new();
        let mut run_steps = BTreeSet::new();
        let mut promos: BTreeMap<String, Vec<Millis>> = BTreeMap::new();
        for d in &sim.decisions {
            let DecisionKind::Action { key, category, payload, .. } = &d.kind else { continue };
            prop_assert!(keys.insert(key.clone()), "two actions with key {key}");
            let flow = d.flow.clone().unwrap();
            if flow != "nudges" {
                prop_assert!(run_steps.insert((d.run.clone(), d.step.clone())), "two actions for one run and step: {key}");
            }
            if category != "promotional" {
                continue;
            }
            let user = payload["user"].as_str().unwrap().to_owned();
            let t = d.at;
            // Suppressed: a complaint in the 14 days before now. (At the very same millisecond, a timer due then
            // fires before the event is processed, so only earlier complaints are certain to count.)
            let suppressed = complaints.get(&user).is_some_and(|c| c.iter().any(|c| *c < t && t < c + 14 * DAY));
            prop_assert!(!suppressed, "promo to {user} at {} while suppressed", format_timestamp(t));
            // Unsubscribed: the winning subscription change before now says so. A change at the very same
            // millisecond may come before or after the send (an event's send follows it, a timer due then fires
            // before it), so at that instant either answer is right and nothing is asserted.
            let changes = subscription.get(&user);
            let same_instant = changes.is_some_and(|s| s.iter().any(|(at, _, _)| *at == t));
            let subscribed = changes
                .and_then(|s| s.iter().filter(|(at, _, _)| *at < t).max_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1))))
                .is_none_or(|(_, _, on)| *on);
            prop_assert!(subscribed || same_instant, "promo to {user} at {} while unsubscribed", format_timestamp(t));
            promos.entry(user).or_default().push(t);
        }
        // Caps: never more than two promotional emails in any 7-day window.
        for (user, times) in &promos {
            for (i, t) in times.iter().enumerate() {
                let in_window = times[..=i].iter().filter(|s| **s > t - 7 * DAY).count();
                prop_assert!(in_window <= 2, "{in_window} promos to {user} within 7 days of {}", format_timestamp(*t));
            }
        }
    }

    #[test]
    fn replaying_the_same_inputs_reaches_the_same_decisions(steps in scenario()) {
        let defs = definitions(true);
        let play = || {
            let mut sim = Simulation::new(&defs);
            let mut now = START;
            for (n, (user, gap, op)) in steps.iter().enumerate() {
                now += Millis::from(*gap) * MINUTE;
                sim.event(&event(n, *user, now, op));
            }
            sim.run_until(now + 30 * DAY);
            sim.decisions
        };
        prop_assert_eq!(play(), play());
    }
}
