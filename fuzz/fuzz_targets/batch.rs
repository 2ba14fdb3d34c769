//! `/v1/batch` bodies from arbitrary bytes: the envelope as the server reads it, then every item with the
//! envelope's defaults. Each step either reads or says why; a stored item always reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_core::{Event, read_envelope};

fuzz_target!(|data: &[u8]| {
    let (_write_key, envelope) = read_envelope(data);
    let Ok(envelope) = envelope else { return };
    let Ok(defaults) = envelope.defaults() else { return };
    for raw in envelope.items.iter().flatten() {
        if let Ok(event) = Event::parse(raw.get(), None, &defaults, 1_795_000_000_000, || "m".into()) {
            Event::from_stored(event.body.clone()).expect("a stored event reads back");
        }
    }
});
