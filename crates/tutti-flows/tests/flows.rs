//! Flows, segments and policies through the pure machine on a simulated clock.

use serde_json::{Value, json};
use tutti_core::event::{BatchDefaults, Event};
use tutti_core::time::parse_timestamp;
use tutti_flows::machine::{Decision, DecisionKind};
use tutti_flows::simulate::Simulation;
use tutti_flows::{ConnectorInfo, Definitions, compile};

fn connectors() -> Vec<ConnectorInfo> {
    vec![
        ConnectorInfo { name: "log".into(), operations: vec!["write".into()], channel: "log".into() },
        ConnectorInfo { name: "webhook".into(), operations: vec!["post".into()], channel: "webhook".into() },
    ]
}

fn defs(sources: &[&str]) -> Definitions {
    let mut defs = Definitions::default();
    for source in sources {
        match compile(source, &connectors()) {
            Ok(d) => defs.insert(d),
            Err(problems) => panic!("{source}\n{problems:#?}"),
        }
    }
    assert!(defs.check().is_empty(), "{:?}", defs.check());
    defs
}

fn event(v: Value) -> Event {
    let mid = v["messageId"].as_str().map(str::to_owned);
    let received = v["timestamp"].as_str().and_then(parse_timestamp).unwrap_or(0);
    Event::from_json(v, None, &BatchDefaults::default(), received, || mid.unwrap_or_else(|| "m".into())).unwrap()
}

fn track(user: &str, name: &str, at: &str, props: Value) -> Event {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    event(json!({"type": "track", "userId": user, "event": name, "timestamp": at, "properties": props,
                 "messageId": format!("m{n}")}))
}

fn identify(user: &str, at: &str, traits: Value) -> Event {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    event(json!({"type": "identify", "userId": user, "timestamp": at, "traits": traits, "messageId": format!("i{n}")}))
}

fn actions(decisions: &[Decision]) -> Vec<(String, String, Value)> {
    decisions
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Action { payload, .. } => {
                Some((d.flow.clone().unwrap(), d.step.clone().unwrap(), payload.clone()))
            }
            _ => None,
        })
        .collect()
}

const COMPLAINT_POLICY: &str = "policy: complaint-suppression
suppress:
  event: Complaint Filed
  categories: [promotional]
  for: 14d
  exit_runs: true
";

const PROMO: &str = "flow: winback-promo
category: promotional
channel: email
trigger: { event: Checkout Started }
steps:
  - id: pause
    wait: 5m
  - id: promo
    action: webhook.post
    with:
      url: https://mail.example/send
      to: '{{ profile.traits.email }}'
      subject: 'Giảm 10% cho bạn, {{ profile.traits.name | default: \"bạn\" }}'
";

const RECEIPT: &str = "flow: receipt
category: transactional
channel: email
trigger: { event: Order Completed }
entry: { every_time: true, dedupe: '{{ event.properties.order_id }}' }
steps:
  - id: pause
    wait: 2m
  - id: send-receipt
    action: webhook.post
    with: { to: '{{ profile.traits.email }}', order: '{{ event.properties.order_id }}' }
";

#[test]
fn s2_complaint_between_schedule_and_send_stops_the_promo_but_not_the_receipt() {
    let defs = defs(&[COMPLAINT_POLICY, PROMO, RECEIPT]);
    let mut sim = Simulation::new(&defs);
    sim.event(&identify("lan", "2026-11-22T09:00:00Z", json!({"email": "lan@example.vn", "name": "Lan"})));
    sim.event(&track("lan", "Checkout Started", "2026-11-22T10:00:00Z", json!({})));
    // The promo would go at 10:05. The complaint at 10:02 comes first; the order at 10:03 wants a receipt.
    sim.event(&track("lan", "Complaint Filed", "2026-11-22T10:02:00Z", json!({"text": "giao hàng chậm"})));
    sim.event(&track("lan", "Order Completed", "2026-11-22T10:03:00Z", json!({"order_id": "A-1"})));
    sim.run_until(parse_timestamp("2026-11-23T00:00:00Z").unwrap());

    let sent = actions(&sim.decisions);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].0, "receipt");
    assert_eq!(sent[0].2, json!({"to": "lan@example.vn", "order": "A-1"}));
    let exited = sim
        .decisions
        .iter()
        .find(|d| d.flow.as_deref() == Some("winback-promo") && matches!(d.kind, DecisionKind::Exited { .. }));
    let exited = exited.expect("the promo run was exited");
    assert_eq!(exited.at, parse_timestamp("2026-11-22T10:02:00Z").unwrap());
    let DecisionKind::Exited { reason } = &exited.kind else { unreachable!() };
    assert!(reason.contains("complaint-suppression"), "{reason}");
}

#[test]
fn s2_without_exit_the_promo_is_skipped_at_dispatch_time_with_the_reason() {
    // With exit_runs off the run keeps waiting; the suppression still stops it at the moment of dispatch.
    let policy = COMPLAINT_POLICY.replace("exit_runs: true", "exit_runs: false");
    let defs = defs(&[&policy, PROMO]);
    let mut sim = Simulation::new(&defs);
    sim.event(&identify("lan", "2026-11-22T09:00:00Z", json!({"email": "lan@example.vn"})));
    sim.event(&track("lan", "Checkout Started", "2026-11-22T10:00:00Z", json!({})));
    sim.event(&track("lan", "Complaint Filed", "2026-11-22T10:02:00Z", json!({})));
    sim.run_until(parse_timestamp("2026-11-23T00:00:00Z").unwrap());
    assert!(actions(&sim.decisions).is_empty());
    let skipped: Vec<&String> = sim
        .decisions
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Skipped { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].starts_with("suppressed: policy complaint-suppression"), "{}", skipped[0]);

    // Fifteen days later the suppression has lapsed: a new run sends.
    sim.event(&track("lan", "Checkout Started", "2026-12-08T10:00:00Z", json!({})));
    sim.run_until(parse_timestamp("2026-12-09T00:00:00Z").unwrap());
    // Entry is once by default: the second checkout does not start a second run.
    assert!(actions(&sim.decisions).is_empty());
    assert!(
        sim.decisions.iter().any(|d| matches!(&d.kind, DecisionKind::NotEntered { reason } if reason.contains("once")))
    );
}

#[test]
fn wait_for_takes_the_branch_that_came_first() {
    let flow = "flow: abandoned-cart
trigger: { event: Cart Abandoned }
entry: { every_time: true, dedupe: '{{ event.properties.cart_id }}' }
steps:
  - id: wait-for-order
    wait_for:
      event: Order Completed
      when: event.properties.cart_id == run.steps.x.y || event.properties.cart_id == '{{ }}'
      timeout: 4h
    on_event: bought
    on_timeout: remind
  - id: remind
    action: log.write
    with: { text: 'Bạn quên giỏ hàng {{ event.properties.cart_id }}' }
  - id: bought
    exit: converted
";
    // `run.steps.x` names no step, so this compiles; the condition is a CEL comparison of strings.
    let flow = flow.replace("run.steps.x.y || event.properties.cart_id == '{{ }}'", "'c1'");
    let defs = defs(&[&flow]);
    let mut sim = Simulation::new(&defs);
    sim.event(&track("a", "Cart Abandoned", "2026-11-22T10:00:00Z", json!({"cart_id": "c1"})));
    sim.event(&track("b", "Cart Abandoned", "2026-11-22T10:00:00Z", json!({"cart_id": "c1"})));
    sim.event(&track("a", "Order Completed", "2026-11-22T11:00:00Z", json!({"cart_id": "c1"})));
    // A second abandonment of the same cart does not enter again.
    sim.event(&track("b", "Cart Abandoned", "2026-11-22T12:00:00Z", json!({"cart_id": "c1"})));
    sim.run_until(parse_timestamp("2026-11-23T00:00:00Z").unwrap());
    let sent = actions(&sim.decisions);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].2, json!({"text": "Bạn quên giỏ hàng c1"}));
    let reminded = sim.decisions.iter().find(|d| d.step.as_deref() == Some("remind")).unwrap();
    assert_eq!(reminded.at, parse_timestamp("2026-11-22T14:00:00Z").unwrap());
    assert!(sim.decisions.iter().any(|d| matches!(&d.kind, DecisionKind::Exited { reason } if reason == "converted")));
    assert!(
        sim.decisions
            .iter()
            .any(|d| matches!(&d.kind, DecisionKind::NotEntered { reason } if reason.contains("dedupe key `c1`")))
    );
}

#[test]
fn frequency_cap_and_quiet_hours_across_flows() {
    let cap = "policy: promo-cap\nfrequency_cap: { channel: email, category: promotional, max: 2, per: 7d }\n";
    let quiet =
        "policy: quiet\nquiet_hours: { from: '21:00', to: '08:00', timezone: profile, default_timezone: UTC }\n";
    let flow = |id: &str, trigger: &str| {
        format!(
            "flow: {id}\nchannel: email\ntrigger: {{ event: {trigger} }}\nentry: {{ every_time: true }}\nsteps:\n  - id: send\n    action: webhook.post\n    with: {{ n: 1 }}\n"
        )
    };
    let (a, b) = (flow("promo-a", "A"), flow("promo-b", "B"));
    let defs = defs(&[cap, quiet, &a, &b]);
    let mut sim = Simulation::new(&defs);
    // Hanoi is UTC+7: 03:00Z is 10:00 local.
    let tz = json!({"type": "identify", "userId": "u", "timestamp": "2026-11-22T00:00:00Z", "traits": {},
                    "context": {"timezone": "Asia/Ho_Chi_Minh"}, "messageId": "tz"});
    sim.event(&event(tz));
    sim.event(&track("u", "A", "2026-11-22T03:00:00Z", json!({})));
    sim.event(&track("u", "B", "2026-11-22T04:00:00Z", json!({})));
    sim.event(&track("u", "A", "2026-11-22T05:00:00Z", json!({})));
    // 15:00Z is 22:00 in Hanoi: quiet. After the cap window it is deferred to 08:00 local (01:00Z).
    sim.event(&track("u", "B", "2026-11-29T15:00:00Z", json!({})));
    sim.run_until(parse_timestamp("2026-12-01T00:00:00Z").unwrap());
    let sends: Vec<&Decision> =
        sim.decisions.iter().filter(|d| matches!(d.kind, DecisionKind::Action { .. })).collect();
    assert_eq!(sends.len(), 3);
    assert_eq!(sends[2].at, parse_timestamp("2026-11-30T01:00:00Z").unwrap());
    assert!(sim.decisions.iter().any(|d| matches!(&d.kind, DecisionKind::Skipped { reason } if reason.starts_with("capped: policy promo-cap allows 2 per 1w"))));
    // The capped run ends with the cap, not as completed: nothing went out in it.
    let ends: Vec<&DecisionKind> = sim
        .decisions
        .iter()
        .filter(|d| matches!(d.kind, DecisionKind::Completed | DecisionKind::Exited { .. }))
        .map(|d| &d.kind)
        .collect();
    assert_eq!(ends.iter().filter(|k| matches!(k, DecisionKind::Completed)).count(), 3, "{ends:?}");
    assert!(
        ends.iter()
            .any(|k| matches!(k, DecisionKind::Exited { reason } if reason.starts_with("capped: policy promo-cap"))),
        "{ends:?}"
    );
    assert!(
        sim.decisions
            .iter()
            .any(|d| matches!(&d.kind, DecisionKind::Deferred { reason, .. } if reason.contains("Asia/Ho_Chi_Minh")))
    );
}

#[test]
fn unsubscribed_profiles_get_no_promotions_but_do_get_transactional() {
    let defs = defs(&[PROMO, RECEIPT]);
    let mut sim = Simulation::new(&defs);
    sim.event(&identify(
        "u",
        "2026-11-22T09:00:00Z",
        json!({"email": "u@example.cn", "email_subscribe": "unsubscribed"}),
    ));
    sim.event(&track("u", "Checkout Started", "2026-11-22T10:00:00Z", json!({})));
    sim.event(&track("u", "Order Completed", "2026-11-22T10:00:00Z", json!({"order_id": "订单-7"})));
    sim.run_until(parse_timestamp("2026-11-23T00:00:00Z").unwrap());
    let sent = actions(&sim.decisions);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2["order"], "订单-7");
    assert!(
        sim.decisions
            .iter()
            .any(|d| matches!(&d.kind, DecisionKind::Skipped { reason } if reason.contains("email_subscribe")))
    );
    // The promo's run ends with why nothing was sent, not with its normal end.
    let promo_end = sim
        .decisions
        .iter()
        .rev()
        .find(|d| {
            d.flow.as_deref() == Some("winback-promo")
                && matches!(d.kind, DecisionKind::Exited { .. } | DecisionKind::Completed)
        })
        .expect("the promo run ended");
    assert!(
        matches!(&promo_end.kind, DecisionKind::Exited { reason } if reason.contains("unsubscribed")),
        "{promo_end:?}"
    );
}

#[test]
fn segments_slide_out_on_the_day_they_should_and_trigger_flows() {
    let segment = "segment: pricing-interested
behaviour:
  - performed: Page Viewed
    where: 'event.properties.path.startsWith(\"/pricing\")'
    at_least: 3
    within: 7d
";
    let on_enter = "flow: tell-sales\ntrigger: { segment: pricing-interested }\nentry: { every_time: true }\nsteps:\n  - id: post\n    action: log.write\n    with: { text: 'hot lead {{ profile.id }}' }\n";
    let on_leave = "flow: cooled\ntrigger: { left_segment: pricing-interested }\nentry: { every_time: true }\nsteps:\n  - id: post\n    action: log.write\n    with: { text: cooled }\n";
    let defs = defs(&[segment, on_enter, on_leave]);
    let mut sim = Simulation::new(&defs);
    for (day, path) in [(1, "/pricing"), (2, "/blog"), (3, "/pricing/team"), (4, "/pricing")] {
        sim.event(&track("u", "Page Viewed", &format!("2026-11-0{day}T10:00:00Z"), json!({"path": path})));
    }
    let entered = sim.decisions.iter().find(|d| matches!(&d.kind, DecisionKind::SegmentEntered { .. })).unwrap();
    assert_eq!(entered.at, parse_timestamp("2026-11-04T10:00:00Z").unwrap());
    sim.run_until(parse_timestamp("2026-11-30T00:00:00Z").unwrap());
    // The third-latest visit (day 1) slides out of the 7-day window on day 8 at 10:00.
    let left = sim.decisions.iter().find(|d| matches!(&d.kind, DecisionKind::SegmentLeft { .. })).unwrap();
    assert_eq!(left.at, parse_timestamp("2026-11-08T10:00:00Z").unwrap());
    let flows: Vec<String> = actions(&sim.decisions).into_iter().map(|a| a.0).collect();
    assert_eq!(flows, ["tell-sales", "cooled"]);
}

#[test]
fn split_is_deterministic_and_holdout_is_recorded() {
    let flow = "flow: ab\ntrigger: { event: Signed Up }\nsteps:\n  - id: split\n    split:\n      - { arm: A, percent: 45, next: a }\n      - { arm: B, percent: 45, next: b }\n      - { arm: control, percent: 10, holdout: true }\n  - id: a\n    action: log.write\n    with: { arm: A }\n    next: done\n  - id: b\n    action: log.write\n    with: { arm: B }\n  - id: done\n    exit: done\n";
    let defs = defs(&[flow]);
    // Plays 400 sign-ups; returns the split decisions (arm, holdout) and every decision.
    let play = || {
        let mut sim = Simulation::new(&defs);
        for i in 0..400 {
            sim.event(&track(&format!("user-{i}"), "Signed Up", "2026-11-22T10:00:00Z", json!({})));
        }
        let arms: Vec<(String, bool)> = sim
            .decisions
            .iter()
            .filter_map(|d| match &d.kind {
                DecisionKind::Split { arm, holdout } => Some((arm.clone(), *holdout)),
                _ => None,
            })
            .collect();
        (arms, sim.decisions)
    };
    let (arms, decisions) = play();
    assert_eq!(arms.len(), 400);
    let count = |name: &str| arms.iter().filter(|(a, _)| a == name).count();
    assert!((140..=220).contains(&count("A")), "{}", count("A"));
    assert!((140..=220).contains(&count("B")), "{}", count("B"));
    assert!((15..=70).contains(&count("control")), "{}", count("control"));
    assert_eq!(actions(&decisions).len(), 400 - count("control"));
    // Same profiles, same arms.
    assert_eq!(arms, play().0);
}

#[test]
fn validate_reports_every_problem_with_its_line_and_a_hint() {
    let source = "flow: broken
trigger: { event: Signed Up, whn: 'true' }
steps:
  - id: first
    branch:
      - { when: 'profile.traits.vip ==', next: vip }
      - { next: secnd }
  - id: second
    action: slak.post_message
  - id: orphan
    action: log.write
    with: { text: '{% if %}' }
    next: second
  - id: loop-a
    action: log.write
    next: loop-b
  - id: loop-b
    update_profile: { traits: { seen: true } }
    next: loop-a
  - id: vip
    wait: 5 minutes
    next: loop-a
";
    let problems = compile(source, &connectors()).unwrap_err();
    let lines: Vec<(usize, &str)> = problems.iter().map(|p| (p.pos.line, p.message.as_str())).collect();
    let has = |line: usize, text: &str| {
        problems.iter().any(|p| p.pos.line == line && p.message.contains(text))
            || panic!("no problem at line {line} containing {text:?} in {lines:#?}")
    };
    has(2, "unknown member `whn`");
    assert!(problems.iter().any(|p| p.hint.as_deref().is_some_and(|h| h.contains("did you mean `when`"))));
    has(6, "CEL");
    has(7, "unknown step `secnd`");
    has(9, "unknown connector `slak`");
    has(12, "Liquid");
    has(21, "is not a unit of time");
    assert!(
        !problems.iter().any(|p| p.message.contains("`vip` can never") || p.message.contains("`second` can never")),
        "{lines:#?}"
    );
    // `second` goes on to `orphan` (the step after it), which goes back: a loop with no wait. So do loop-a and
    // loop-b, reached from `vip`.
    has(8, "the steps second -> orphan -> second loop without a wait");
    has(14, "the steps loop-a -> loop-b -> loop-a loop without a wait");
    assert_eq!(problems.len(), 8, "{lines:#?}");
}

#[test]
fn unknown_variables_and_unawaited_results_are_caught() {
    let source = "flow: f
trigger: { event: X, when: 'evnt.properties.a == 1' }
steps:
  - id: call
    action: webhook.post
  - id: use
    action: log.write
    with: { text: '{{ run.steps.call.status }}' }
";
    let problems = compile(source, &connectors()).unwrap_err();
    assert!(problems.iter().any(|p| p.pos.line == 2 && p.message.contains("`evnt`")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.hint.as_deref() == Some("add `await: true` to step `call`")), "{problems:#?}");

    let segment_ref = "flow: g\ntrigger: { segment: vips }\nsteps:\n  - id: a\n    action: log.write\n";
    let mut defs = Definitions::default();
    defs.insert(compile(segment_ref, &connectors()).unwrap());
    let problems = defs.check();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].1.pos.line, 2);
    assert!(problems[0].1.message.contains("unknown segment `vips`"));
}

#[test]
fn a_flow_whose_every_step_is_unreadable_is_refused_not_a_panic() {
    for source in [
        "flow: x\ntrigger: { event: A }\nsteps: [[null, null]]\n",
        "flow: x\ntrigger: { event: A }\nsteps: [7, 'text', null]\n",
    ] {
        let problems = compile(source, &connectors()).expect_err(source);
        assert!(problems.iter().any(|p| p.to_string().contains("a step must be a mapping")), "{problems:?}");
    }
}

#[test]
fn a_description_is_text_in_every_kind_of_definition() {
    let sources = [
        "flow: f\ndescription: {}\ntrigger: { event: E }\nsteps:\n  - { id: a, action: log.write, with: { text: x } }\n",
        "segment: s\ndescription: [1]\nwhen: 'true'\n",
        "policy: p\ndescription: { a: 1 }\nquiet_hours: { from: '21:00', to: '08:00' }\n",
    ];
    for source in sources {
        let problems = compile(source, &connectors()).expect_err(source);
        assert!(
            problems.iter().any(|p| p.pointer == "/description" && p.message.contains("expected text")),
            "{source}: {problems:?}"
        );
        let fixed = source.replacen(source.lines().nth(1).unwrap(), "description: Xin chào, 你好", 1);
        assert!(compile(&fixed, &connectors()).is_ok(), "{fixed}");
    }
}

const HELD_OUT: &str = "flow: winback
category: promotional
trigger: { event: Cart Abandoned }
goal: { event: Order Completed, within: 7d }
steps:
  - id: test
    split:
      - { arm: offer, percent: 50, next: send }
      - { arm: control, percent: 50, holdout: true }
  - id: send
    action: log.write
    with: { text: hi }
";

#[test]
fn a_goal_counts_after_the_run_ended_while_its_window_is_open() {
    let defs = defs(&[HELD_OUT]);
    let mut sim = Simulation::new(&defs);
    for user in ["a", "b", "c", "d", "e", "f"] {
        sim.event(&track(user, "Cart Abandoned", "2026-11-22T10:00:00Z", json!({})));
        sim.event(&track(user, "Order Completed", "2026-11-23T10:00:00Z", json!({})));
    }
    sim.event(&track("g", "Cart Abandoned", "2026-11-22T10:00:00Z", json!({})));
    sim.event(&track("g", "Order Completed", "2026-11-30T10:00:00Z", json!({})));
    let goals: Vec<&str> = sim
        .decisions
        .iter()
        .filter(|d| matches!(d.kind, DecisionKind::Goal { .. }))
        .map(|d| d.profile.as_str())
        .collect();
    assert_eq!(
        goals.len(),
        6,
        "every arm's ended runs reach the goal within 7 days, g's order was too late: {goals:?}"
    );
}
