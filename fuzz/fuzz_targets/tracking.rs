//! Tracking API bodies: one event (as `/v1/track` reads it) and a batch item, from arbitrary bytes. Either an
//! event or an error with a field; a stored event always reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_core::event::{BatchDefaults, Event, EventType};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for kind in [Some(EventType::Track), None] {
        if let Ok(event) = Event::parse(text, kind, &BatchDefaults::default(), 1_795_000_000_000, || "m".into()) {
            Event::from_stored(event.body.clone()).expect("a stored event reads back");
        }
    }
});
