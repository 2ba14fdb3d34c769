//! Helpers shared by the engine's integration tests.
// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use tutti_core::{BatchDefaults, Event};
use tutti_engine::{Engine, NewEvent};

/// Ingests events one by one (received at the engine clock's now), then waits (bounded) until the processor has
/// folded them.
pub fn ingest(engine: &Engine, events: &[Value]) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (i, v) in events.iter().enumerate() {
        let received = engine.clock.now_ms();
        let mid = format!("m-{received}-{i}");
        let event = Event::from_json(v.clone(), None, &BatchDefaults::default(), received, || mid).unwrap();
        runtime.block_on(engine.ingest(vec![NewEvent::of(event, false)])).unwrap();
    }
    assert!(engine.sync(Duration::from_secs(20)), "the processor caught up");
}

/// Waits (bounded, 20 s) until the engine's state meets `done`.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::yield_now();
    }
}
