//! The Segment event model (track, identify, page, screen, group, alias) and its validation.
//!
//! Validation follows Segment's HTTP Tracking API: every call carries a `userId` or an `anonymousId` (alias
//! carries `userId` and `previousId`), `track` carries `event`, `group` carries `groupId`. Fields of the wrong
//! type are refused with the field's name. The accepted event is normalised once, here: server time is stamped,
//! the client timestamp is corrected for clock skew, batch-level `context` and `integrations` are merged in, and
//! the `writeKey` is removed so that the secret is never stored.

mod fields;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use crate::batch::BatchDefaults;
use crate::json::{self, Kind};
use crate::time::{Millis, format_timestamp};
use fields::{bounded, merge, number, read_common, string, time_field};
pub(crate) use fields::{check_hazard, check_write_key, time_value};

/// The six Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    /// Every type, in a stable order.
    pub const ALL: [EventType; 6] =
        [EventType::Track, EventType::Identify, EventType::Page, EventType::Screen, EventType::Group, EventType::Alias];

    /// The lowercase name used in the `type` field and in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Track => "track",
            EventType::Identify => "identify",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    /// Parses the `type` field; `None` for anything else.
    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one event was refused: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The JSON field name, such as `userId` or `properties`; `""` for the event as a whole.
    pub field: String,
    /// A human-readable reason.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &str, reason: impl Into<String>) -> FieldError {
        FieldError { field: field.to_owned(), reason: reason.into() }
    }
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON at all, or JSON that Tutti refuses to store (nested too deeply).
    #[error("{0}")]
    Syntax(String),
    /// JSON, but not a valid event.
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// The longest `messageId`, identifier or event name accepted, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// The deepest nesting of arrays and objects accepted, counting the event itself as 1.
pub const MAX_DEPTH: usize = 64;

/// An accepted, normalised event: the fields the engine decides on, and the JSON as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventType,
    pub message_id: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `previousId` of an alias call.
    pub previous_id: Option<String>,
    /// `groupId` of a group call.
    pub group_id: Option<String>,
    /// `event` of a track call; `name` of a page or screen call.
    pub name: Option<String>,
    /// The corrected event time.
    pub timestamp: Millis,
    /// When the server received it.
    pub received_at: Millis,
    /// `traits` of identify and group calls (empty for the others).
    pub traits: Map<String, Value>,
    /// `context.traits`, which clients use to carry identifying traits on any call.
    pub context_traits: Map<String, Value>,
    /// `context.timezone`, when a string.
    pub timezone: Option<String>,
    /// `context.locale`, when a string.
    pub locale: Option<String>,
    /// The whole normalised event as it is stored and served back (JSON). Parse it for anything not above.
    pub body: Vec<u8>,
}

/// The top-level members the engine reads or rewrites, picked out of an event in one pass.
const MEMBERS: [&str; 17] = [
    "type",
    "userId",
    "anonymousId",
    "previousId",
    "groupId",
    "event",
    "name",
    "messageId",
    "timestamp",
    "sentAt",
    "originalTimestamp",
    "receivedAt",
    "properties",
    "traits",
    "context",
    "integrations",
    "writeKey",
];

/// An event's top level.
type Top<'a> = json::Members<'a, 17>;

fn member<'a>(top: &Top<'a>, name: &str) -> Option<&'a RawValue> {
    let i = MEMBERS.iter().position(|m| *m == name).expect("a member named in MEMBERS");
    top.known[i]
}

/// The fields every event carries, read the same way at intake and on replay.
struct Common {
    kind: EventType,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    previous_id: Option<String>,
    group_id: Option<String>,
    name: Option<String>,
    traits: Map<String, Value>,
    context_traits: Map<String, Value>,
    timezone: Option<String>,
    locale: Option<String>,
}

/// The event that brings a connector's answer to an awaited action back to its run, through the log: a track
/// on the profile (`tutti:profile:<n>`) with `properties.action_key` and `properties.result`. Only the
/// dispatcher writes it (the prefix below is refused at intake).
pub const ACTION_RESULT_EVENT: &str = "Action Result";

/// Identifiers that begin with this are Tutti's own (the dispatcher's outcome events name a profile by id as
/// `tutti:profile:<n>`); events from outside may not use them.
pub const RESERVED_ID_PREFIX: &str = "tutti:";

impl Event {
    /// The first identifier field that uses Tutti's reserved prefix, for the intake paths to refuse.
    pub fn reserved_identifier(&self) -> Option<&'static str> {
        let reserved =
            |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim_start().starts_with(RESERVED_ID_PREFIX));
        if reserved(&self.user_id) {
            Some("userId")
        } else if reserved(&self.anonymous_id) {
            Some("anonymousId")
        } else if reserved(&self.previous_id) {
            Some("previousId")
        } else {
            None
        }
    }

    /// The profile an internal event names (`anonymousId: "tutti:profile:<n>"`).
    pub fn internal_profile(&self) -> Option<crate::ProfileId> {
        let id = self.anonymous_id.as_deref()?.strip_prefix("tutti:profile:")?;
        id.parse().ok().map(crate::ProfileId)
    }
    /// Validates and normalises one event from its JSON text.
    ///
    /// `kind` is the type implied by the endpoint, or `None` for a batch item, whose `type` field then decides.
    /// `new_message_id` is called only when the event has no `messageId`. Only the members that change are
    /// rewritten; every other member is copied into [`Event::body`] exactly as the client sent it.
    pub fn parse(
        text: &str,
        kind: Option<EventType>,
        defaults: &BatchDefaults,
        received_at: Millis,
        new_message_id: impl FnOnce() -> String,
    ) -> Result<Event, EventError> {
        let top = json::parse_members(text, &MEMBERS, true).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                EventError::from(FieldError::new("", "an event must be a JSON object"))
            }
            _ => EventError::Syntax(e.to_string()),
        })?;
        for (name, raw) in MEMBERS.iter().zip(top.known).filter_map(|(n, r)| Some((*n, r?))) {
            check_hazard(name, raw.get())?;
        }
        for (key, raw) in &top.other {
            if key.0.contains('\0') {
                return Err(FieldError::new("", "contains a NUL character").into());
            }
            check_hazard(&key.0, raw.get())?;
        }

        let merged_context = match defaults.context.is_empty() {
            true => None,
            false => Some(merge(member(&top, "context"), &defaults.context, "context")?),
        };
        let merged_integrations = match defaults.integrations.is_empty() {
            true => None,
            false => Some(merge(member(&top, "integrations"), &defaults.integrations, "integrations")?),
        };
        let common = read_common(&top, kind, merged_context.as_deref())?;

        let message_id = match member(&top, "messageId") {
            None => new_message_id(),
            Some(raw) => match json::kind(raw) {
                Kind::Null => new_message_id(),
                Kind::String => {
                    let s = string(raw);
                    if s.is_empty() {
                        return Err(FieldError::new("messageId", "must not be empty").into());
                    }
                    bounded(s, "messageId")?
                }
                Kind::Number => number(raw),
                _ => return Err(FieldError::new("messageId", "must be a string").into()),
            },
        };

        let original = time_field(&top, "timestamp")?;
        let sent_at = time_field(&top, "sentAt")?.or(defaults.sent_at);
        time_field(&top, "originalTimestamp")?;
        // Segment's rule: the client's clock may be wrong, but the interval between the event and the upload
        // (sentAt - timestamp) was measured on that same clock, so subtract it from the server's receive time.
        let timestamp = match (original, sent_at) {
            (Some(ts), Some(sent)) => received_at.saturating_sub(sent.saturating_sub(ts)),
            (Some(ts), None) => ts,
            (None, _) => received_at,
        };

        // The stored form: the members the engine decides on, rewritten, then every other member as sent.
        // `writeKey` is dropped so that the secret is never stored; null objects are dropped.
        let mut body = Vec::with_capacity(text.len() + 160);
        body.push(b'{');
        let put = |body: &mut Vec<u8>, key: &str, text: Option<&str>, string: Option<&str>| {
            if body.len() > 1 {
                body.push(b',');
            }
            json::push_str(body, key);
            body.push(b':');
            match (text, string) {
                (Some(text), _) => body.extend_from_slice(text.as_bytes()),
                (None, Some(s)) => json::push_str(body, s),
                (None, None) => body.extend_from_slice(b"null"),
            }
        };
        put(&mut body, "type", None, Some(common.kind.as_str()));
        put(&mut body, "messageId", None, Some(&message_id));
        for (field, value) in [
            ("userId", &common.user_id),
            ("anonymousId", &common.anonymous_id),
            ("previousId", &common.previous_id),
            ("groupId", &common.group_id),
        ] {
            if let Some(value) = value {
                put(&mut body, field, None, Some(value));
            }
        }
        for field in ["event", "name"] {
            if let Some(raw) = member(&top, field) {
                put(&mut body, field, Some(raw.get()), None);
            }
        }
        for (field, merged) in [
            ("properties", None),
            ("traits", None),
            ("context", merged_context.as_deref()),
            ("integrations", merged_integrations.as_deref()),
        ] {
            match (merged, member(&top, field)) {
                (Some(merged), _) => put(&mut body, field, Some(merged), None),
                (None, Some(raw)) if json::kind(raw) != Kind::Null => put(&mut body, field, Some(raw.get()), None),
                _ => {}
            }
        }
        let mut stamp = |field: &str, at: Millis| put(&mut body, field, None, Some(&format_timestamp(at)));
        stamp("timestamp", timestamp);
        if let Some(ts) = original {
            stamp("originalTimestamp", ts);
        }
        if let Some(sent) = sent_at {
            stamp("sentAt", sent);
        }
        stamp("receivedAt", received_at);
        for (key, raw) in &top.other {
            put(&mut body, &key.0, Some(raw.get()), None);
        }
        body.push(b'}');

        Ok(Event::assemble(common, message_id, timestamp, received_at, body))
    }

    /// Validates and normalises an event given as a JSON value. A convenience over [`Event::parse`].
    pub fn from_json(
        value: Value,
        kind: Option<EventType>,
        defaults: &BatchDefaults,
        received_at: Millis,
        new_message_id: impl FnOnce() -> String,
    ) -> Result<Event, FieldError> {
        Event::parse(&value.to_string(), kind, defaults, received_at, new_message_id).map_err(|e| match e {
            EventError::Field(f) => f,
            EventError::Syntax(reason) => FieldError::new("", reason),
        })
    }

    /// Reads an event back from its stored body, as written by [`Event::parse`]. Used on replay: nothing is
    /// corrected again, and the body is kept as it is.
    pub fn from_stored(body: Vec<u8>) -> Result<Event, FieldError> {
        let text = std::str::from_utf8(&body).map_err(|_| FieldError::new("", "stored event is not UTF-8"))?;
        let top = json::parse_members(text, &MEMBERS, false)
            .map_err(|e| FieldError::new("", format!("stored event is not an object: {e}")))?;
        let kind = match member(&top, "type") {
            Some(raw) if json::kind(raw) == Kind::String => EventType::parse(&string(raw)),
            _ => None,
        };
        let common = read_common(&top, kind, None)?;
        let message_id = match member(&top, "messageId") {
            Some(raw) if json::kind(raw) == Kind::String => string(raw),
            _ => return Err(FieldError::new("messageId", "missing in stored event")),
        };
        let received_at =
            time_field(&top, "receivedAt")?.ok_or_else(|| FieldError::new("receivedAt", "missing in stored event"))?;
        let timestamp = time_field(&top, "timestamp")?.unwrap_or(received_at);
        drop(top);
        Ok(Event::assemble(common, message_id, timestamp, received_at, body))
    }

    fn assemble(common: Common, message_id: String, timestamp: Millis, received_at: Millis, body: Vec<u8>) -> Event {
        let Common {
            kind,
            user_id,
            anonymous_id,
            previous_id,
            group_id,
            name,
            traits,
            context_traits,
            timezone,
            locale,
        } = common;
        Event {
            kind,
            message_id,
            user_id,
            anonymous_id,
            previous_id,
            group_id,
            name,
            timestamp,
            received_at,
            traits,
            context_traits,
            timezone,
            locale,
            body,
        }
    }

    /// `traits` of identify and group calls (empty for the others or when absent).
    pub fn traits(&self) -> &Map<String, Value> {
        &self.traits
    }

    /// `context.traits`, which clients use to carry identifying traits on non-identify calls.
    pub fn context_traits(&self) -> &Map<String, Value> {
        &self.context_traits
    }

    /// The traits an identify call sets: `context.traits` (where RudderStack's SDKs put them) overlaid with
    /// `traits` (where Segment's do). Empty for other calls.
    pub fn identify_traits(&self) -> Map<String, Value> {
        if self.kind != EventType::Identify {
            return Map::new();
        }
        let mut traits = self.context_traits.clone();
        traits.extend(self.traits.iter().map(|(k, v)| (k.clone(), v.clone())));
        traits
    }

    /// The name used for per-event counts: the track event name, or `"<type>"` such as `"page"` otherwise.
    pub fn count_key(&self) -> &str {
        match (self.kind, &self.name) {
            (EventType::Track, Some(name)) => name,
            _ => self.kind.as_str(),
        }
    }

    /// The stored JSON parsed into a value, for callers that need members beyond the decided fields.
    pub fn body_value(&self) -> Value {
        serde_json::from_slice(&self.body).expect("an event body is always valid JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;
    use serde_json::json;
    use serde_json::value::RawValue;

    fn parse(v: Value, kind: Option<EventType>) -> Result<Event, FieldError> {
        Event::from_json(v, kind, &BatchDefaults::default(), 1_000_000, || "generated".into())
    }

    #[test]
    fn track_requires_event_and_an_identifier() {
        assert_eq!(parse(json!({"userId": "1"}), Some(EventType::Track)).unwrap_err().field, "event");
        assert_eq!(parse(json!({"event": "X"}), Some(EventType::Track)).unwrap_err().field, "userId");
        let ok = parse(json!({"userId": 42, "event": "X"}), Some(EventType::Track)).unwrap();
        assert_eq!(ok.user_id.as_deref(), Some("42"));
        assert_eq!(ok.message_id, "generated");
        assert_eq!(ok.body_value()["type"], "track");
        assert_eq!(ok.body_value()["userId"], "42", "numeric ids are stored as strings");
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (body, field) in [
            (json!({"userId": {}, "event": "X"}), "userId"),
            (json!({"userId": "1", "event": 5}), "event"),
            (json!({"userId": "1", "event": "X", "properties": []}), "properties"),
            (json!({"userId": "1", "event": "X", "timestamp": "soon"}), "timestamp"),
            (json!({"userId": "1", "event": "X", "messageId": true}), "messageId"),
            (json!({"userId": "1", "event": "X", "context": "web"}), "context"),
        ] {
            assert_eq!(parse(body, Some(EventType::Track)).unwrap_err().field, field);
        }
    }

    #[test]
    fn batch_items_need_a_known_type() {
        assert_eq!(parse(json!({"userId": "1"}), None).unwrap_err().field, "type");
        assert_eq!(parse(json!({"userId": "1", "type": "bogus"}), None).unwrap_err().field, "type");
        assert!(parse(json!({"type": "alias", "userId": "1", "previousId": "a"}), None).is_ok());
        assert_eq!(parse(json!({"type": "alias", "userId": "1"}), None).unwrap_err().field, "previousId");
        assert_eq!(parse(json!({"type": "group", "userId": "1"}), None).unwrap_err().field, "groupId");
    }

    #[test]
    fn timestamp_is_corrected_for_client_clock_skew() {
        // The client clock is one hour fast: it says the event happened 2 s before it was sent.
        let v = json!({"userId": "1", "event": "X",
            "timestamp": "2026-01-01T01:00:00.000Z", "sentAt": "2026-01-01T01:00:02.000Z"});
        let received = parse_timestamp("2026-01-01T00:00:05.000Z").unwrap();
        let e = Event::from_json(v, Some(EventType::Track), &BatchDefaults::default(), received, String::new).unwrap();
        assert_eq!(format_timestamp(e.timestamp), "2026-01-01T00:00:03.000Z");
        assert_eq!(e.body_value()["originalTimestamp"], "2026-01-01T01:00:00.000Z");
    }

    #[test]
    fn batch_defaults_merge_without_overriding_the_item() {
        let raw = |v: Value| RawValue::from_string(v.to_string()).unwrap();
        let (context, integrations) = (raw(json!({"locale": "vi-VN", "ip": "1.2.3.4"})), raw(json!({"All": true})));
        let defaults = BatchDefaults::from_envelope(Some(&context), Some(&integrations), None).unwrap();
        let v = json!({"type": "page", "anonymousId": "a", "context": {"locale": "zh-CN"}, "writeKey": "secret"});
        let e = Event::from_json(v, None, &defaults, 0, String::new).unwrap();
        assert_eq!(e.locale.as_deref(), Some("zh-CN"));
        let body = e.body_value();
        assert_eq!(body["context"]["locale"], "zh-CN");
        assert_eq!(body["context"]["ip"], "1.2.3.4");
        assert_eq!(body["integrations"]["All"], true);
        assert!(body.get("writeKey").is_none(), "the write key must never be stored");
        assert_eq!(
            BatchDefaults::from_envelope(Some(&raw(json!([1]))), None, None).unwrap_err(),
            EventError::Field(FieldError::new("context", "must be an object"))
        );
    }

    #[test]
    fn nul_characters_are_refused_with_the_field() {
        let err = parse(json!({"userId": "1", "event": "X", "properties": {"a": "b\u{0}c"}}), Some(EventType::Track));
        assert_eq!(err.unwrap_err().field, "properties");
    }

    #[test]
    fn stored_events_round_trip_without_recorrecting() {
        let v = json!({"userId": "1", "event": "Đã mua 购买", "timestamp": "2026-01-01T01:00:00.000Z",
            "sentAt": "2026-01-01T01:00:02.000Z", "properties": {"tên": "Phở"}});
        let e =
            Event::from_json(v, Some(EventType::Track), &BatchDefaults::default(), 5_000_000, || "m1".into()).unwrap();
        let again = Event::from_stored(e.body.clone()).unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn members_not_rewritten_are_stored_byte_for_byte() {
        let text = r#"{"userId":"1","event":"X","properties":{"z": 1.50, "a": ["Phở", "\u8d2d"]}}"#;
        let e = Event::parse(text, Some(EventType::Track), &BatchDefaults::default(), 0, || "m".into()).unwrap();
        let stored = String::from_utf8(e.body.clone()).unwrap();
        assert!(stored.contains(r#""properties":{"z": 1.50, "a": ["Phở", "\u8d2d"]}"#), "{stored}");
        assert_eq!(e.body_value()["messageId"], "m");
    }

    #[test]
    fn duplicate_members_resolve_to_the_last_before_validation() {
        // A parser differential would let an invalid userId slip past validation: the last one must be the one
        // both validated and stored.
        let text = r#"{"userId":"ok","event":"X","userId":{"evil":1}}"#;
        let err = Event::parse(text, Some(EventType::Track), &BatchDefaults::default(), 0, || "m".into());
        assert_eq!(err.unwrap_err(), EventError::Field(FieldError::new("userId", "must be a string or a number")));
    }

    #[test]
    fn nesting_beyond_the_limit_is_a_syntax_error() {
        let deep =
            format!(r#"{{"userId":"1","event":"X","properties":{{"a":{}1{}}}}}"#, "[".repeat(70), "]".repeat(70));
        let err = Event::parse(&deep, Some(EventType::Track), &BatchDefaults::default(), 0, || "m".into());
        assert!(matches!(err, Err(EventError::Syntax(m)) if m.starts_with("properties")));
    }
}
