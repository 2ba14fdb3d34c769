//! Helpers shared by the engine's integration tests.

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
        let new = NewEvent {
            message_id: event.message_id,
            client_message_id: false,
            received_at: received,
            body: event.body,
        };
        runtime.block_on(engine.ingest(vec![new])).unwrap();
    }
    assert!(engine.sync(Duration::from_secs(20)), "the processor caught up");
}
