//! Human approval, property-tested on a manual clock: a message that needs approval is never sent before it
//! is approved, is sent exactly once after, and follows the configured fallback (skip, send the default,
//! escalate once then skip) when nobody decides in time. The machine's sends are compared with a model of
//! the rules computed from the inputs alone, over random interleavings of decisions, duplicate and late
//! decisions, and clock ticks. The `first_sends` policy is checked the same way: over random arrivals of
//! customers and new versions, the first N runs of each version that reach the step are held, and no others.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tutti_core::event::{BatchDefaults, Event};
use tutti_core::time::{Millis, format_timestamp};
use tutti_flows::machine::{StepCounts, World, apply};
use tutti_flows::{ApprovalDecision, ConnectorInfo, DecisionKind, Definitions, Effect, Input, ProfileState, compile};

const MINUTE: Millis = 60_000;
const EXPIRES: Millis = 120 * MINUTE;
const START: Millis = 1_795_000_000_000;

fn definitions(fallback: &str) -> Definitions {
    let connectors =
        vec![ConnectorInfo { name: "webhook".into(), operations: vec!["post".into()], channel: "webhook".into() }];
    let source = format!(
        r#"flow: approved-note
channel: email
trigger: {{ event: Checkout Started }}
steps:
  - id: copy
    generate: {{ prompt: "A note about {{{{ event.properties.item }}}}", channel: email }}
  - id: review
    approve:
      content: copy
      expires: 2h
      fallback: {fallback}
      default: {{ subject: "Your cart", body: "The default note" }}
      escalate_to: marketing-leads
  - id: send
    action: webhook.post
    with: {{ body: "{{{{ run.steps.copy.body }}}}", approved_by: "{{{{ run.steps.copy.approved_by }}}}" }}
"#
    );
    let mut defs = Definitions::default();
    defs.insert(compile(&source, &connectors).unwrap_or_else(|p| panic!("{source}: {p:?}")));
    defs
}

#[derive(Debug, Clone)]
enum Op {
    Tick,
    Approve { by: u8, edit: bool },
    Reject { by: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Tick),
        2 => (0u8..3, any::<bool>()).prop_map(|(by, edit)| Op::Approve { by, edit }),
        1 => (0u8..3).prop_map(|by| Op::Reject { by }),
    ]
}

/// What the rules say happens, from the inputs alone.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Pending { deadline: Millis, escalated: bool },
    Done,
}

/// A send: when, its body and who approved it.
type Send = (Millis, String, String);

fn model_step(model: &mut Model, fallback: &str, now: Millis, op: &Op, sends: &mut Vec<Send>) {
    // The expiry comes first when it is due: a decision after the deadline is late.
    if let Model::Pending { deadline, escalated } = *model
        && now >= deadline
    {
        *model = match fallback {
            "escalate" if !escalated => Model::Pending { deadline: now + EXPIRES, escalated: true },
            "send_default" => {
                sends.push((now, "The default note".into(), String::new()));
                Model::Done
            }
            _ => Model::Done,
        };
    }
    if let Model::Pending { .. } = model {
        match op {
            Op::Approve { by, edit } => {
                let body = if *edit { format!("Edited by approver {by}") } else { "Generated body".to_owned() };
                sends.push((now, body, format!("approver-{by}")));
                *model = Model::Done;
            }
            Op::Reject { .. } => *model = Model::Done,
            Op::Tick => {}
        }
    }
}

fn started(at: Millis) -> Event {
    let v = json!({"type": "track", "event": "Checkout Started", "userId": "u1", "messageId": "m1",
                   "timestamp": format_timestamp(at), "properties": {"item": "Áo dài"}});
    Event::from_json(v, None, &BatchDefaults::default(), at, || unreachable!()).unwrap()
}

/// The machine's sends in these effects (the webhook's dispatches), at `now`.
fn sends_in(effects: &[Effect], now: Millis, out: &mut Vec<Send>) {
    for e in effects {
        if let Effect::Dispatch(d) = e
            && d.connector == "webhook"
        {
            out.push((
                now,
                d.payload["body"].as_str().unwrap().into(),
                d.payload["approved_by"].as_str().unwrap().into(),
            ));
        }
    }
}

fn check(fallback: &str, steps: &[(u32, Op)]) -> Result<(), TestCaseError> {
    let defs = definitions(fallback);
    let profile = json!({"traits": {"name": "Lan"}});
    let counts = StepCounts::new();
    let world = World { defs: &defs, profile_id: "p1", profile: &profile, counts: &counts };
    let mut state = ProfileState::default();
    let mut now = START;
    let effects = apply(&world, &mut state, Input::Event(&started(now)), now);
    let generate = effects
        .iter()
        .find_map(|e| match e {
            Effect::Dispatch(d) if d.connector == "ai" => Some(d.clone()),
            _ => None,
        })
        .expect("the generate step asks the ai connector");
    prop_assert!(generate.await_result && generate.payload["profile"]["traits"]["name"] == "Lan");
    let run_id = generate.run.clone();
    // The copy arrives a minute later; the approval is asked for then.
    now += MINUTE;
    let copy = json!({"subject": "A note", "body": "Generated body"});
    let mut machine_sends = Vec::new();
    let effects = apply(&world, &mut state, Input::ActionResult { key: &generate.key, result: &copy }, now);
    sends_in(&effects, now, &mut machine_sends);
    prop_assert!(machine_sends.is_empty(), "nothing is sent while approval is pending");
    let mut model = Model::Pending { deadline: now + EXPIRES, escalated: false };
    let mut model_sends = Vec::new();
    for (gap, op) in steps {
        now += Millis::from(*gap) * MINUTE;
        let effects = match op {
            // The shell ticks a profile only once its wake time has come.
            Op::Tick => match state.next_wake() {
                Some(wake) if wake <= now => apply(&world, &mut state, Input::Tick, now),
                _ => Vec::new(),
            },
            Op::Approve { by, edit } => {
                let edits = edit
                    .then(|| Map::from_iter([("body".to_owned(), Value::from(format!("Edited by approver {by}")))]));
                let verdict = ApprovalDecision::Approve { by: format!("approver-{by}"), edits };
                apply(&world, &mut state, Input::Approval { run: &run_id, step: "review", verdict: &verdict }, now)
            }
            Op::Reject { by } => {
                let verdict = ApprovalDecision::Reject { by: format!("approver-{by}"), reason: "off brand".into() };
                apply(&world, &mut state, Input::Approval { run: &run_id, step: "review", verdict: &verdict }, now)
            }
        };
        sends_in(&effects, now, &mut machine_sends);
        model_step(&mut model, fallback, now, op, &mut model_sends);
        prop_assert_eq!(&machine_sends, &model_sends, "after {:?} at +{} min", op, (now - START) / MINUTE);
    }
    prop_assert!(machine_sends.len() <= 1, "sent at most once: {:?}", machine_sends);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn approval_gates_every_send(
        fallback in prop_oneof![Just("skip"), Just("send_default"), Just("escalate")],
        steps in prop::collection::vec((prop_oneof![0u32..30, 0u32..200], op()), 0..12),
    ) {
        check(fallback, &steps)?;
    }
}

#[test]
fn approved_once_then_duplicates_change_nothing() {
    let steps = [(10, Op::Approve { by: 1, edit: true }), (1, Op::Approve { by: 2, edit: false }), (500, Op::Tick)];
    check("skip", &steps).unwrap();
}

#[test]
fn expiry_follows_each_fallback() {
    for fallback in ["skip", "send_default", "escalate"] {
        // Nobody decides; ticks past the first and the second deadline.
        check(fallback, &[(121, Op::Tick), (121, Op::Tick), (5, Op::Approve { by: 0, edit: false })]).unwrap();
        // An approval during the escalation window is taken.
        check(fallback, &[(121, Op::Tick), (30, Op::Approve { by: 0, edit: false })]).unwrap();
    }
}

/// A flow whose approve step holds the first `n` sends of each version, and, with `vip_rule`, every VIP's.
fn first_sends_flow(n: u64, vip_rule: bool, note: &str) -> String {
    let when = if vip_rule { "\n      when: profile.traits.vip == true" } else { "" };
    format!(
        r#"flow: first-sends
channel: email
trigger: {{ event: Checkout Started }}
steps:
  - id: review
    approve:
      first_sends: {n}{when}
      expires: 2h
  - id: send
    action: webhook.post
    with: {{ body: "{note}" }}
"#
    )
}

/// One customer reaching the step: whether they are a VIP, and whether a new version was published first.
#[derive(Debug, Clone)]
struct Arrival {
    vip: bool,
    new_version: bool,
}

/// The first `n` runs of each flow version to reach the step are held, whichever profiles they belong to;
/// after that only the `when` rule holds a run. The count lives outside every profile (the shell keeps it from
/// the machine's `Counted` effects, as the engine does) and starts again at a new version.
fn check_first_sends(n: u64, vip_rule: bool, arrivals: &[Arrival]) -> Result<(), TestCaseError> {
    let connectors =
        vec![ConnectorInfo { name: "webhook".into(), operations: vec!["post".into()], channel: "webhook".into() }];
    let mut defs = Definitions::default();
    defs.insert(compile(&first_sends_flow(n, vip_rule, "v1"), &connectors).unwrap());
    let mut version = 1u32;
    let mut counts = StepCounts::new();
    let mut reached_in_version = 0u64;
    for (i, arrival) in arrivals.iter().enumerate() {
        if arrival.new_version {
            version += 1;
            defs.insert(compile(&first_sends_flow(n, vip_rule, &format!("v{version}")), &connectors).unwrap());
            reached_in_version = 0;
        }
        let now = START + i as Millis * MINUTE;
        let profile = json!({"traits": {"vip": arrival.vip}});
        let id = format!("p{i}");
        let world = World { defs: &defs, profile_id: &id, profile: &profile, counts: &counts };
        let mut state = ProfileState::default();
        let effects = apply(&world, &mut state, Input::Event(&started(now)), now);
        let held_reason = effects.iter().find_map(|e| match e {
            Effect::Record(d) => match &d.kind {
                DecisionKind::ApprovalRequested { reason, .. } => Some(reason.clone()),
                _ => None,
            },
            _ => None,
        });
        let sent = effects.iter().any(|e| matches!(e, Effect::Dispatch(d) if d.connector == "webhook"));
        for e in &effects {
            if let Effect::Counted(key) = e {
                prop_assert_eq!(
                    (key.flow.as_str(), key.version, key.step.as_str()),
                    ("first-sends", version, "review")
                );
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
        let by_count = reached_in_version < n;
        let expect_held = by_count || (vip_rule && arrival.vip);
        prop_assert_eq!(held_reason.is_some(), expect_held, "arrival {} ({:?}): {:?}", i, arrival, effects);
        prop_assert_eq!(sent, !expect_held, "arrival {}: held xor sent", i);
        if by_count {
            let expected = format!("send {} of the first {n} of version {version}", reached_in_version + 1);
            let reason = held_reason.unwrap_or_default();
            prop_assert!(reason.starts_with(&expected), "{} / {}", reason, expected);
            reached_in_version += 1;
        }
        let key = tutti_flows::StepKey { flow: "first-sends".into(), version, step: "review".into() };
        prop_assert_eq!(counts.get(&key).copied().unwrap_or(0), reached_in_version, "counting stops at {}", n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_first_sends_of_each_version_wait_for_a_person(
        n in 1u64..5,
        vip_rule in any::<bool>(),
        arrivals in prop::collection::vec(
            (any::<bool>(), prop::bool::weighted(0.15)).prop_map(|(vip, new_version)| Arrival { vip, new_version }),
            0..24,
        ),
    ) {
        check_first_sends(n, vip_rule, &arrivals)?;
    }
}
