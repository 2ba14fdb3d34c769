//! Failure injection for tests (feature `fault-injection`): makes the processor panic on a chosen input, so
//! tests can check that one failing input fails only its profile's runs and never the processor. Not part of
//! a release build.

use std::sync::Mutex;

use tutti_flows::Input;

static PANIC_ON_EVENT: Mutex<Option<String>> = Mutex::new(None);

/// From now on, handling a `track` event of this name panics (or nothing does, with `None`). Process-wide.
pub fn panic_on_event(name: Option<&str>) {
    *PANIC_ON_EVENT.lock().unwrap_or_else(|e| e.into_inner()) = name.map(str::to_owned);
}

/// Panics when `input` is the chosen event; otherwise hands it back.
pub(crate) fn maybe_panic(input: Input<'_>) -> Input<'_> {
    if let Input::Event(event) = &input {
        let chosen = PANIC_ON_EVENT.lock().unwrap_or_else(|e| e.into_inner());
        if chosen.is_some() && event.name.as_deref() == chosen.as_deref() {
            panic!("injected failure on event {:?}", event.name);
        }
    }
    input
}
