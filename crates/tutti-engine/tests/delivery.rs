//! Delivery under faults, end to end: events through the engine, actions through the outbox, the dispatcher and
//! the real connectors to local stand-ins of the vendors (`tutti_connectors::testing`), which answer 500s, 429
//! with `Retry-After`, hang, or stay down, on cue. Retries and the breaker run on a manual clock.
//!
//! What must hold: every action is in the end delivered once per idempotency key, or dead-lettered with its
//! reason; none is lost; a replayed dead letter is delivered; a connector that hangs holds up no other.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use serde_json::{Value, json};
use tutti_connectors::testing::{self, Fault, Vendors};
use tutti_core::time::parse_timestamp;
use tutti_engine::config::Config;
use tutti_engine::{DeadLetterFilter, Engine, ManualClock};

fn start(vendors: &Vendors, data: &Path, flows: &Path, clock: Arc<ManualClock>, settings: Value) -> Engine {
    let flow = format!(
        "flow: fanout\ncategory: transactional\ntrigger: {{ event: Ping }}\nentry: {{ every_time: true }}\nsteps:\n\
         \x20 - id: hook\n    action: webhook.post\n    with: {{ url: '{}', who: '{{{{ event.properties.who }}}}' }}\n\
         \x20 - id: chat\n    action: slack.post_message\n    with: {{ channel: '#ops', text: 'Ping từ {{{{ event.properties.who }}}} 你好' }}\n\
         \x20 - id: card\n    action: trello.create_card\n    with: {{ name: 'Thẻ {{{{ event.properties.who }}}}' }}\n",
        vendors.hook_url("ping")
    );
    std::fs::write(flows.join("fanout.yaml"), flow).unwrap();
    let mut config = Config::default();
    config.storage.data_dir = data.to_owned();
    config.flows.dir = Some(flows.to_owned());
    for (name, mut table) in vendors.connectors() {
        for (key, value) in settings.as_object().unwrap() {
            table[key] = value.clone();
        }
        config.connectors.insert(name, toml::Value::try_from(table).unwrap());
    }
    Engine::start_with_env(config, clock, &testing::env).unwrap()
}

fn ping(engine: &Engine, who: &[&str]) {
    let events: Vec<Value> = who
        .iter()
        .map(|name| json!({"type": "track", "userId": name, "event": "Ping", "properties": {"who": name}}))
        .collect();
    common::ingest(engine, &events);
}

/// Waits (bounded) until every pending action waits for a later time: nothing due is left unattempted.
fn quiet(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = engine.clock.now_ms();
        let pending = engine.outbox("pending", 10_000).unwrap();
        if pending.iter().all(|(row, _)| row.due_at > now) {
            return;
        }
        assert!(Instant::now() < deadline, "delivery did not settle: {} due", pending.len());
        std::thread::yield_now();
    }
}

/// Accepted requests' idempotency keys for one vendor.
fn accepted_keys(vendors: &Vendors, vendor: &str) -> Vec<String> {
    let mut keys: Vec<String> = vendors
        .received(vendor)
        .into_iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| match vendor {
            "hook" => r.headers["idempotency-key"].to_str().unwrap().to_owned(),
            "slack" => r.body["metadata"]["event_payload"]["key"].as_str().unwrap().to_owned(),
            _ => r.body["name"].as_str().unwrap().to_owned(),
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn faults_end_in_one_delivery_per_key_or_a_dead_letter_and_replay_delivers_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(parse_timestamp("2026-11-22T10:00:00Z").unwrap()));
    let settings = json!({"max_attempts": 8, "breaker_failures": 3, "breaker_cooldown": "20s", "timeout": "5s"});
    let engine = start(&vendors, data.path(), flows.path(), clock.clone(), settings);

    vendors.inject("hook", [Fault::Status(500), Fault::RateLimited(7), Fault::Status(503), Fault::Status(502)]);
    vendors.set_down("slack", true);
    vendors.inject("trello", [Fault::Status(400)]);
    let people = ["an", "bình", "chi", "dũng", "em"];
    ping(&engine, &people);

    // A minute with Slack down, then two more with it back, in five-second steps of the manual clock.
    for step in 0..36 {
        quiet(&engine);
        if step == 12 {
            vendors.set_down("slack", false);
        }
        clock.advance(5_000);
    }
    quiet(&engine);

    assert!(engine.outbox("pending", 100).unwrap().is_empty(), "nothing is left pending");
    let dead = engine.dead_letters(&DeadLetterFilter::default(), 0, 100).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0.connector, "trello");
    assert!(dead[0].1.contains("HTTP 400"), "the reason is kept: {}", dead[0].1);
    let done = engine.outbox("done", 100).unwrap();
    assert_eq!(done.len() + dead.len(), 3 * people.len(), "every action is delivered or dead: none lost");

    let hook = accepted_keys(&vendors, "hook");
    let slack = accepted_keys(&vendors, "slack");
    assert_eq!(hook.len(), people.len(), "{hook:?}");
    assert_eq!(slack.len(), people.len(), "{slack:?}");
    for keys in [&hook, &slack] {
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(&unique, keys, "one delivery per idempotency key");
    }
    // Slack was down for a minute: the breaker deferred most attempts without counting them.
    let slack_attempts: u32 = done.iter().filter(|(r, _)| r.connector == "slack").map(|(r, _)| r.attempts).sum();
    let refused = vendors.received("slack").iter().filter(|r| r.status == 503).count();
    assert!(refused < 20, "the breaker held back attempts while Slack was down ({refused} reached it)");
    assert!(slack_attempts as usize >= people.len() && (slack_attempts as usize) <= people.len() + refused);
    assert!(vendors.refusals().is_empty(), "nothing Tutti sent was refused for its content: {:?}", vendors.refusals());

    // Outcomes are on the profiles, for flows to react to: the dead letter's profile has one `Action Failed`
    // naming the connector and the reason, and `Action Delivered` for its other two actions.
    assert!(engine.sync(Duration::from_secs(20)));
    let failed_profile = engine.profile(dead[0].0.profile).unwrap().unwrap();
    assert_eq!(failed_profile.event_counts.get("Action Failed"), Some(&1), "{:?}", failed_profile.event_counts);
    assert_eq!(failed_profile.event_counts.get("Action Delivered"), Some(&2), "{:?}", failed_profile.event_counts);
    let events = engine.profile_events(dead[0].0.profile, None, 50).unwrap();
    let failed = events
        .iter()
        .map(|e| serde_json::from_slice::<Value>(&e.body).unwrap())
        .find(|e| e["event"] == "Action Failed")
        .expect("an Action Failed event");
    assert_eq!(failed["properties"]["connector"], "trello");
    assert!(failed["properties"]["error"].as_str().unwrap().contains("HTTP 400"), "{failed}");
    assert_eq!(failed["properties"]["flow"], "fanout");

    // The dead letter, replayed, is delivered with the same key.
    let replayed =
        engine.replay(&DeadLetterFilter { connector: Some("trello".into()), ..Default::default() }, 10).unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].key, dead[0].0.key);
    quiet(&engine);
    clock.advance(1_000);
    quiet(&engine);
    assert!(engine.dead_letters(&DeadLetterFilter::default(), 0, 100).unwrap().is_empty());
    assert_eq!(accepted_keys(&vendors, "trello").len(), people.len());
    let metrics = engine.metrics.render();
    assert!(metrics.contains("tutti_connector_attempts_total{connector=\"slack\",outcome=\"deferred\"}"), "{metrics}");
    engine.shutdown();
}

#[test]
fn a_hanging_connector_holds_up_no_other() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(parse_timestamp("2026-11-22T10:00:00Z").unwrap()));
    let engine = start(&vendors, data.path(), flows.path(), clock.clone(), json!({"timeout": "4s", "concurrency": 2}));
    vendors.inject("hook", std::iter::repeat_n(Fault::Hang, 3));
    let people = ["an", "bình", "chi"];
    ping(&engine, &people);
    // Slack and Trello deliver while every webhook lane waits on a vendor that does not answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = engine.outbox("done", 100).unwrap();
        if done.len() == 2 * people.len() {
            assert!(done.iter().all(|(r, _)| r.connector != "webhook"));
            break;
        }
        assert!(Instant::now() < deadline, "slack and trello were held up");
        std::thread::yield_now();
    }
    let hooks = engine.outbox("pending", 100).unwrap();
    assert_eq!(hooks.len(), people.len());
    assert!(hooks.iter().all(|(r, _)| r.attempts == 0), "the webhook attempts are still hanging: {hooks:?}");
    // The hanging attempts time out and are retried; the stand-in answers the retries.
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.outbox("done", 100).unwrap().len() < 3 * people.len() {
        assert!(Instant::now() < deadline, "the webhook actions were not retried");
        quiet(&engine);
        clock.advance(2_000);
    }
    let hook = accepted_keys(&vendors, "hook");
    assert_eq!(hook.len(), people.len());
    engine.shutdown();
}

#[test]
fn refused_connections_are_retried_then_dead_lettered_with_the_reason() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        flows.path().join("refused.yaml"),
        format!(
            "flow: refused\ncategory: transactional\ntrigger: {{ event: Ping }}\nentry: {{ every_time: true }}\nsteps:\n\
             \x20 - id: hook\n    action: webhook.post\n    with: {{ url: 'http://{closed}/x' }}\n"
        ),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(parse_timestamp("2026-11-22T10:00:00Z").unwrap()));
    let mut config = Config::default();
    config.storage.data_dir = data.path().to_owned();
    config.flows.dir = Some(flows.path().to_owned());
    let mut table = vendors.connectors().remove("webhook").unwrap();
    table["max_attempts"] = json!(3);
    config.connectors.insert("webhook".into(), toml::Value::try_from(table).unwrap());
    let engine = Engine::start_with_env(config, clock.clone(), &testing::env).unwrap();
    ping(&engine, &["an"]);
    for _ in 0..10 {
        quiet(&engine);
        clock.advance(10_000);
    }
    quiet(&engine);
    let dead = engine.dead_letters(&DeadLetterFilter::default(), 0, 10).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0.attempts, 3, "retried, then given up");
    assert!(dead[0].1.to_lowercase().contains("refused") && dead[0].1.contains("after 3 attempts"), "{}", dead[0].1);
    engine.shutdown();
}
