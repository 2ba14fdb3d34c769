//! Inbound hook mappings: the input is a hook file, then (after a NUL) a vendor's payload. A hook compiles or
//! is refused with located problems; a compiled hook maps the payload to events or says which item failed,
//! and every event it makes is one the tracking path can read.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tutti_connectors::inbound;
use tutti_core::{BatchDefaults, Event};

fuzz_target!(|data: &[u8]| {
    let (source, rest) = common::source_and_data(data);
    let Ok(source) = std::str::from_utf8(source) else { return };
    let secret = |_: &str| Some("fuzz-secret".to_owned());
    let Ok(hook) = inbound::compile("fuzz.yaml", source, &secret) else { return };
    let Ok(payload) = serde_json::from_slice::<Value>(rest) else { return };
    let Ok(events) = hook.apply(&payload) else { return };
    assert!(events.len() <= inbound::MAX_EVENTS, "a delivery made {} events", events.len());
    for event in events {
        // Refusal is allowed (an empty id, say); only a panic or a crash is a finding.
        let _ = Event::from_json(event, None, &BatchDefaults::default(), 1_795_000_000_000, || "m".into());
    }
});
