//! Policies at the last moment, end to end: a promo that waits for a retry after a vendor outage does not go
//! to someone who complained, unsubscribed or opted out of email meanwhile; it is recorded as skipped with the
//! reason. A property test drives random interleavings of events, outages, retries, clock jumps and dead-letter
//! replays, and checks every delivery the vendor's stand-in saw against the profile's standing when it was
//! attempted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};
use tutti_connectors::testing::{self, Vendors};
use tutti_core::time::parse_timestamp;
use tutti_engine::config::Config;
use tutti_engine::{Clock, DeadLetterFilter, Engine, ManualClock};

const DAY: i64 = 86_400_000;

fn start(vendors: &Vendors, data: &Path, flows: &Path, clock: Arc<ManualClock>) -> Engine {
    std::fs::write(
        flows.join("promo.yaml"),
        format!(
            "flow: promo\ncategory: promotional\nchannel: email\ntrigger: {{ event: Cart Abandoned }}\nentry: {{ every_time: true }}\nsteps:\n\
             \x20 - id: offer\n    action: webhook.post\n    with: {{ url: '{}', to: '{{{{ profile.traits.email }}}}' }}\n",
            vendors.hook_url("promo")
        ),
    )
    .unwrap();
    std::fs::write(
        flows.join("complaints.yaml"),
        "policy: complaints\nsuppress:\n  event: Complaint Filed\n  categories: [promotional]\n  for: 14d\n",
    )
    .unwrap();
    std::fs::write(
        flows.join("cap.yaml"),
        "policy: promo-cap\nfrequency_cap: { channel: email, category: promotional, max: 2, per: 1d }\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.storage.data_dir = data.to_owned();
    config.flows.dir = Some(flows.to_owned());
    let mut webhook = vendors.connectors()["webhook"].clone();
    // Failures do not open the breaker here: the retries themselves are what is tested.
    webhook["breaker_failures"] = json!(1_000_000);
    webhook["max_attempts"] = json!(4);
    config.connectors.insert("webhook".into(), toml::Value::try_from(webhook).unwrap());
    Engine::start_with_env(config, clock, &testing::env).unwrap()
}

/// Waits (bounded) until nothing due is left unattempted and every attempt is recorded.
fn quiet(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = engine.clock.now_ms();
        let pending = engine.outbox("pending", 10_000).unwrap();
        if pending.iter().all(|(row, _)| row.due_at > now) && engine.sync(Duration::from_secs(5)) {
            return;
        }
        assert!(Instant::now() < deadline, "delivery did not settle: {} due", pending.len());
        std::thread::yield_now();
    }
}

fn delivered_to(vendors: &Vendors) -> Vec<String> {
    vendors
        .received("hook")
        .into_iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| r.body["to"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn after_an_outage_the_promo_goes_only_to_those_still_willing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(parse_timestamp("2026-11-22T03:00:00Z").unwrap()));
    let engine = start(&vendors, data.path(), flows.path(), clock.clone());
    let people = ["complains", "unsubscribes", "opts-out", "stays"];
    let mut events: Vec<Value> = people
        .iter()
        .map(|p| json!({"type": "identify", "userId": p, "traits": {"email": format!("{p}@example.vn")}}))
        .collect();
    vendors.set_down("hook", true);
    events.extend(people.iter().map(|p| json!({"type": "track", "userId": p, "event": "Cart Abandoned"})));
    common::ingest(&engine, &events);
    quiet(&engine);
    assert!(vendors.received("hook").len() >= people.len(), "each first attempt met the outage");
    // While the promos wait for their retry, three people change their minds (all acknowledged, all processed).
    common::ingest(
        &engine,
        &[
            json!({"type": "track", "userId": "complains", "event": "Complaint Filed"}),
            json!({"type": "identify", "userId": "unsubscribes", "traits": {"unsubscribed": true}}),
            json!({"type": "identify", "userId": "opts-out", "traits": {"email_subscribe": "unsubscribed"}}),
        ],
    );
    vendors.set_down("hook", false);
    clock.advance(3_600_000);
    quiet(&engine);
    assert_eq!(delivered_to(&vendors), ["stays@example.vn"]);
    let skipped = engine.outbox("skipped", 10).unwrap();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    let reasons: Vec<String> = skipped.iter().map(|(_, why)| why.clone().unwrap_or_default()).collect();
    assert!(reasons.iter().any(|r| r.contains("complaints")), "{reasons:?}");
    assert!(reasons.iter().filter(|r| r.contains("unsubscribed")).count() >= 2, "{reasons:?}");
    assert_eq!(engine.metrics.actions_skipped.load(std::sync::atomic::Ordering::Relaxed), 3);
    // Revoked at once, not left for a later attempt: nothing is pending.
    assert!(engine.outbox("pending", 10).unwrap().is_empty());
    engine.shutdown();
}

/// One step of a random interleaving.
#[derive(Debug, Clone)]
enum Step {
    Abandon(usize),
    Complain(usize),
    Unsubscribe(usize),
    Resubscribe(usize),
    Down,
    Up,
    /// Minutes on the clock (retries come due; suppressions and caps run out after days).
    Advance(i64),
    Replay,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize).prop_map(Step::Abandon),
        1 => (0..2usize).prop_map(Step::Complain),
        1 => (0..2usize).prop_map(Step::Unsubscribe),
        1 => (0..2usize).prop_map(Step::Resubscribe),
        2 => Just(Step::Down),
        2 => Just(Step::Up),
        2 => prop_oneof![Just(2i64), Just(90), Just(60 * 24 * 15)].prop_map(Step::Advance),
        1 => Just(Step::Replay),
    ]
}

/// What the model knows of one person when an attempt is made.
#[derive(Debug, Default, Clone)]
struct Person {
    suppressed_until: i64,
    unsubscribed: bool,
    /// Times the vendor accepted a promo for them.
    delivered: Vec<i64>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 0, ..ProptestConfig::default() })]

    #[test]
    fn no_attempt_reaches_someone_the_policies_stop_at_that_moment(steps in prop::collection::vec(step(), 6..30)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let vendors = runtime.block_on(Vendors::start());
        let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = Arc::new(ManualClock::new(parse_timestamp("2026-11-22T03:00:00Z").unwrap()));
        let engine = start(&vendors, data.path(), flows.path(), clock.clone());
        let email = |p: usize| format!("p{p}@example.vn");
        let identify: Vec<Value> =
            (0..2).map(|p| json!({"type": "identify", "userId": format!("p{p}"), "traits": {"email": email(p)}})).collect();
        common::ingest(&engine, &identify);
        let mut people: HashMap<String, Person> = (0..2).map(|p| (email(p), Person::default())).collect();
        let mut seen = 0;
        // Every delivery the stand-in saw since the last look was attempted in the state the model now holds:
        // the events of a step are processed before anything comes due, since the clock moves only between.
        let mut look = |people: &mut HashMap<String, Person>, now: i64| -> Result<(), TestCaseError> {
            for to in delivered_to(&vendors).into_iter().skip(seen) {
                seen += 1;
                let person = people.get_mut(&to).unwrap();
                prop_assert!(!person.unsubscribed, "{to} was unsubscribed when a promo reached them ({steps:?})");
                prop_assert!(now >= person.suppressed_until, "{to} had complained when a promo reached them ({steps:?})");
                person.delivered.push(now);
                let today = person.delivered.iter().filter(|t| now - **t < DAY).count();
                prop_assert!(today <= 2, "{to} got {today} promos within a day ({steps:?})");
            }
            Ok(())
        };
        for step in &steps {
            // A millisecond between steps, so each event has a time of its own (profiles keep the latest value).
            clock.advance(1);
            quiet(&engine);
            look(&mut people, clock.now_ms())?;
            match step {
                Step::Abandon(p) => common::ingest(&engine, &[json!({"type": "track", "userId": format!("p{p}"), "event": "Cart Abandoned"})]),
                Step::Complain(p) => {
                    common::ingest(&engine, &[json!({"type": "track", "userId": format!("p{p}"), "event": "Complaint Filed"})]);
                    people.get_mut(&email(*p)).unwrap().suppressed_until = clock.now_ms() + 14 * DAY;
                }
                Step::Unsubscribe(p) => {
                    common::ingest(&engine, &[json!({"type": "identify", "userId": format!("p{p}"), "traits": {"unsubscribed": true}})]);
                    people.get_mut(&email(*p)).unwrap().unsubscribed = true;
                }
                Step::Resubscribe(p) => {
                    common::ingest(&engine, &[json!({"type": "identify", "userId": format!("p{p}"), "traits": {"unsubscribed": false}})]);
                    people.get_mut(&email(*p)).unwrap().unsubscribed = false;
                }
                Step::Down => vendors.set_down("hook", true),
                Step::Up => vendors.set_down("hook", false),
                Step::Advance(minutes) => clock.advance(minutes * 60_000),
                Step::Replay => {
                    engine.replay(&DeadLetterFilter::default(), 1000).unwrap();
                }
            }
            quiet(&engine);
            look(&mut people, clock.now_ms())?;
        }
        engine.shutdown();
    }
}
