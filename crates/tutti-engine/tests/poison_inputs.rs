//! One bad input cannot stop the conductor: a template that runs into a limit fails its own run, and an input
//! whose handling panics (injected here) fails only its profile's active runs; every other profile's flows go
//! on, `/healthz`'s check stays healthy, and after a restart the same input is not handled again.

use std::path::Path;
use std::sync::Arc;

mod common;

use common::ingest;
use serde_json::{Value, json};
use tutti_core::time::parse_timestamp;
use tutti_engine::config::Config;
use tutti_engine::{Engine, ManualClock};

const FLOWS: &str = r#"
flow: stars
category: transactional
trigger:
  event: Order Completed
steps:
  - id: pause
    wait: 1h
  - id: note
    action: log.write
    with:
      text: "{% for i in (1..event.properties.qty) %}*{% endfor %}"
"#;

fn start(data: &Path, flows: &Path, clock: Arc<ManualClock>) -> Engine {
    let mut config = Config::default();
    config.storage.data_dir = data.to_owned();
    config.flows.dir = Some(flows.to_owned());
    Engine::start(config, clock).unwrap()
}

fn runs(engine: &Engine) -> Vec<Value> {
    engine.runs(None, Some("stars"), 100).unwrap().iter().map(|r| serde_json::from_slice(r).unwrap()).collect()
}

/// A fresh engine with the `stars` flow on a manual clock, and its directories.
struct Setup {
    data: tempfile::TempDir,
    flows: tempfile::TempDir,
    clock: Arc<ManualClock>,
    engine: Engine,
}

impl Setup {
    fn new() -> Setup {
        let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(flows.path().join("stars.yaml"), FLOWS).unwrap();
        let clock = Arc::new(ManualClock::new(parse_timestamp("2026-11-22T10:00:00Z").unwrap()));
        let engine = start(data.path(), flows.path(), clock.clone());
        Setup { data, flows, clock, engine }
    }
}

fn run_of<'a>(runs: &'a [Value], profile: &str) -> &'a Value {
    runs.iter().find(|r| r["profile"] == profile).unwrap_or_else(|| panic!("no run of {profile} in {runs:?}"))
}

#[test]
fn a_template_past_its_limit_fails_its_run_and_no_other() {
    let Setup { data: _data, flows: _flows, clock, engine } = Setup::new();
    ingest(
        &engine,
        &[
            json!({"type": "track", "userId": "hostile", "event": "Order Completed", "properties": {"qty": 4611686018427387904i64}}),
            json!({"type": "track", "userId": "lan", "event": "Order Completed", "properties": {"qty": 3}}),
        ],
    );
    clock.advance(2 * 3_600_000);
    ingest(&engine, &[json!({"type": "track", "userId": "later", "event": "Page Viewed"})]);
    let all = runs(&engine);
    let hostile = run_of(&all, &profile_of(&engine, "hostile"));
    assert_eq!(hostile["status"]["state"], "failed", "{hostile}");
    let reason = hostile["status"]["reason"].as_str().unwrap();
    // The step limit, or on a slow debug build under load the time limit behind it.
    let limit = reason.contains("step limit of 100000") || reason.contains("time limit of 250 ms");
    assert!(reason.contains("step note failed") && limit, "{reason}");
    let fine = run_of(&all, &profile_of(&engine, "lan"));
    assert_eq!(fine["status"]["state"], "completed", "{fine}");
    assert_eq!(engine.metrics.runs_failed.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(engine.health(), Ok(()));
    engine.shutdown();
}

#[test]
fn an_input_that_panics_fails_its_profiles_runs_once_and_the_rest_go_on() {
    let Setup { data, flows, clock, engine } = Setup::new();
    ingest(
        &engine,
        &[
            json!({"type": "track", "userId": "victim", "event": "Order Completed", "properties": {"qty": 2}}),
            json!({"type": "track", "userId": "other", "event": "Order Completed", "properties": {"qty": 2}}),
        ],
    );
    tutti_engine::faults::panic_on_event(Some("Poison Pill"));
    ingest(
        &engine,
        &[
            json!({"type": "track", "userId": "victim", "event": "Poison Pill"}),
            json!({"type": "track", "userId": "third", "event": "Order Completed", "properties": {"qty": 1}}),
        ],
    );
    assert_eq!(engine.metrics.inputs_failed.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(engine.health(), Ok(()), "the processor goes on");
    let all = runs(&engine);
    let victim = run_of(&all, &profile_of(&engine, "victim"));
    assert_eq!(victim["status"]["state"], "failed", "{victim}");
    assert!(victim["status"]["reason"].as_str().unwrap().contains("injected failure"), "{victim}");
    // The event after the poison in the same batch was handled.
    let third = run_of(&all, &profile_of(&engine, "third"));
    assert_eq!(third["status"]["state"], "waiting", "{third}");
    clock.advance(2 * 3_600_000);
    ingest(&engine, &[json!({"type": "track", "userId": "nobody", "event": "Page Viewed"})]);
    let all = runs(&engine);
    assert_eq!(run_of(&all, &profile_of(&engine, "other"))["status"]["state"], "completed");
    assert_eq!(run_of(&all, &profile_of(&engine, "third"))["status"]["state"], "completed");
    engine.shutdown();
    drop(engine);

    // The fault is still armed, but the event is behind the checkpoint: it is not handled again.
    let engine = start(data.path(), flows.path(), clock.clone());
    ingest(&engine, &[json!({"type": "track", "userId": "after", "event": "Page Viewed"})]);
    assert_eq!(engine.metrics.inputs_failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    tutti_engine::faults::panic_on_event(None);
    assert_eq!(engine.health(), Ok(()));
    engine.shutdown();
}

/// The profile id (as runs name it) of a user id.
fn profile_of(engine: &Engine, user: &str) -> String {
    let key = engine.parse_key(&format!("user_id:{user}")).unwrap();
    engine.resolve_key(&key).unwrap().unwrap_or_else(|| panic!("no profile {user}")).to_string()
}
