//! Which events a trigger, an exit, a goal, a `wait_for` or a segment's behaviour clause listens to, and whether
//! one event is among them.

use serde_json::Value;

use crate::condition::Condition;
use crate::event::EventType;

/// Which events a trigger, exit, goal, `wait_for` or behaviour clause listens to.
#[derive(Debug)]
pub struct EventMatch {
    /// The call type; `track` when an event name is given.
    pub kind: Option<EventType>,
    /// The track event's name, or the page or screen name; any when `None`.
    pub name: Option<String>,
    pub when: Option<Condition>,
}

/// Whether an event matches a matcher (its type, name and condition).
pub fn matches(m: &EventMatch, kind: EventType, name: Option<&str>, vars: &[(&str, &Value)]) -> bool {
    if m.kind.is_some_and(|k| k != kind) {
        return false;
    }
    if m.name.is_some() && m.name.as_deref() != name {
        return false;
    }
    m.when.as_ref().is_none_or(|c| c.evaluate(vars).unwrap_or(false))
}
