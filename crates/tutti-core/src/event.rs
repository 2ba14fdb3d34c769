//! The Segment event model (track, identify, page, screen, group, alias) and its validation.
//!
//! Validation follows Segment's HTTP Tracking API: every call carries a `userId` or an `anonymousId` (alias
//! carries `userId` and `previousId`), `track` carries `event`, `group` carries `groupId`. Fields of the wrong
//! type are refused with the field's name. The accepted event is normalised once, here: server time is stamped,
//! the client timestamp is corrected for clock skew, batch-level `context` and `integrations` are merged in, and
//! the `writeKey` is removed so that the secret is never stored.

use serde_json::{Map, Value};

use crate::time::{Millis, format_timestamp, parse_timestamp};

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
    fn new(field: &str, reason: impl Into<String>) -> FieldError {
        FieldError { field: field.to_owned(), reason: reason.into() }
    }
}

/// Values a `/v1/batch` envelope passes down to each of its items.
#[derive(Debug, Clone, Default)]
pub struct BatchDefaults {
    /// Top-level `context`; its keys are added to each item's context where the item has none of its own.
    pub context: Option<Map<String, Value>>,
    /// Top-level `integrations`, merged the same way.
    pub integrations: Option<Map<String, Value>>,
    /// Top-level `sentAt`, used by items without their own.
    pub sent_at: Option<Millis>,
}

/// The longest `messageId`, identifier or event name accepted, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// An accepted, normalised event.
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
    /// The whole normalised event as it is stored and served back.
    pub body: Map<String, Value>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl Event {
    /// Validates and normalises one event.
    ///
    /// `kind` is the type implied by the endpoint, or `None` for a batch item, whose `type` field then decides.
    /// `new_message_id` is called only when the event has no `messageId`.
    pub fn from_json(
        value: Value,
        kind: Option<EventType>,
        defaults: &BatchDefaults,
        received_at: Millis,
        new_message_id: impl FnOnce() -> String,
    ) -> Result<Event, FieldError> {
        let Value::Object(mut body) = value else {
            return Err(FieldError::new("", "an event must be a JSON object"));
        };
        check_no_nul(&body)?;
        body.remove("writeKey");

        let kind = match (kind, body.get("type")) {
            (Some(k), None | Some(Value::Null)) => k,
            (Some(k), Some(Value::String(t))) if t == k.as_str() => k,
            (Some(k), Some(_)) => {
                return Err(FieldError::new("type", format!("does not match the {k} endpoint")));
            }
            (None, Some(Value::String(t))) => {
                EventType::parse(t).ok_or_else(|| FieldError::new("type", format!("unknown type {t:?}")))?
            }
            (None, Some(_)) => return Err(FieldError::new("type", "must be a string")),
            (None, None) => return Err(FieldError::new("type", "is required in a batch item")),
        };
        body.insert("type".into(), Value::String(kind.as_str().into()));

        let user_id = id_field(&mut body, "userId")?;
        let anonymous_id = id_field(&mut body, "anonymousId")?;
        let previous_id = id_field(&mut body, "previousId")?;
        let group_id = id_field(&mut body, "groupId")?;
        match kind {
            EventType::Alias => {
                if user_id.is_none() {
                    return Err(FieldError::new("userId", "is required for alias"));
                }
                if previous_id.is_none() {
                    return Err(FieldError::new("previousId", "is required for alias"));
                }
            }
            _ if user_id.is_none() && anonymous_id.is_none() => {
                return Err(FieldError::new("userId", "either userId or anonymousId is required"));
            }
            EventType::Group if group_id.is_none() => {
                return Err(FieldError::new("groupId", "is required for group"));
            }
            _ => {}
        }

        let name = match kind {
            EventType::Track => match body.get("event") {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(bounded(s, "event")?),
                Some(Value::String(_)) => {
                    return Err(FieldError::new("event", "must not be empty"));
                }
                None | Some(Value::Null) => {
                    return Err(FieldError::new("event", "is required for track"));
                }
                Some(_) => return Err(FieldError::new("event", "must be a string")),
            },
            EventType::Page | EventType::Screen => match body.get("name") {
                Some(Value::String(s)) => Some(bounded(s, "name")?),
                None | Some(Value::Null) => None,
                Some(_) => return Err(FieldError::new("name", "must be a string")),
            },
            _ => None,
        };

        for field in ["properties", "traits", "context", "integrations"] {
            match body.get(field) {
                None | Some(Value::Object(_)) => {}
                Some(Value::Null) => {
                    body.remove(field);
                }
                Some(_) => return Err(FieldError::new(field, "must be an object")),
            }
        }
        for (field, default) in [("context", &defaults.context), ("integrations", &defaults.integrations)] {
            if let Some(default) = default {
                let Value::Object(own) = body.entry(field).or_insert_with(|| Value::Object(Map::new())) else {
                    unreachable!("checked above to be an object");
                };
                for (k, v) in default {
                    own.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }

        let message_id = match body.get("messageId") {
            None | Some(Value::Null) => new_message_id(),
            Some(Value::String(s)) if !s.is_empty() => bounded(s, "messageId")?,
            Some(Value::String(_)) => {
                return Err(FieldError::new("messageId", "must not be empty"));
            }
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(FieldError::new("messageId", "must be a string")),
        };
        body.insert("messageId".into(), Value::String(message_id.clone()));

        let original = time_field(&body, "timestamp")?;
        let sent_at = time_field(&body, "sentAt")?.or(defaults.sent_at);
        time_field(&body, "originalTimestamp")?;
        // Segment's rule: the client's clock may be wrong, but the interval between the event and the upload
        // (sentAt - timestamp) was measured on that same clock, so subtract it from the server's receive time.
        let timestamp = match (original, sent_at) {
            (Some(ts), Some(sent)) => received_at.saturating_sub(sent.saturating_sub(ts)),
            (Some(ts), None) => ts,
            (None, _) => received_at,
        };
        if let Some(ts) = original {
            body.insert("originalTimestamp".into(), Value::String(format_timestamp(ts)));
        }
        if let Some(sent) = sent_at {
            body.insert("sentAt".into(), Value::String(format_timestamp(sent)));
        }
        body.insert("timestamp".into(), Value::String(format_timestamp(timestamp)));
        body.insert("receivedAt".into(), Value::String(format_timestamp(received_at)));

        Ok(Event { kind, message_id, user_id, anonymous_id, previous_id, group_id, name, timestamp, received_at, body })
    }

    /// Rebuilds an event from its stored body, as written by [`Event::from_json`]. Used on replay.
    pub fn from_stored(mut body: Map<String, Value>) -> Result<Event, FieldError> {
        let received_at = body
            .get("receivedAt")
            .and_then(Value::as_str)
            .and_then(parse_timestamp)
            .ok_or_else(|| FieldError::new("receivedAt", "missing in stored event"))?;
        // The stored timestamp is already corrected: take the skew fields out so it is not corrected twice,
        // and put them back as they were.
        let sent_at = body.remove("sentAt");
        let original = body.remove("originalTimestamp");
        let kind = body.get("type").and_then(Value::as_str).and_then(EventType::parse);
        let mut event = Event::from_json(Value::Object(body), kind, &BatchDefaults::default(), received_at, || {
            String::from("missing")
        })?;
        event.body.remove("originalTimestamp");
        for (key, value) in [("sentAt", sent_at), ("originalTimestamp", original)] {
            if let Some(value) = value {
                event.body.insert(key.into(), value);
            }
        }
        Ok(event)
    }

    /// `traits` of identify and group calls (empty for the others or when absent).
    pub fn traits(&self) -> &Map<String, Value> {
        self.object("traits")
    }

    /// `properties` of track, page and screen calls.
    pub fn properties(&self) -> &Map<String, Value> {
        self.object("properties")
    }

    /// `context`, including anything merged from the batch envelope.
    pub fn context(&self) -> &Map<String, Value> {
        self.object("context")
    }

    /// `context.traits`, which clients use to carry identifying traits on non-identify calls.
    pub fn context_traits(&self) -> &Map<String, Value> {
        match self.context().get("traits") {
            Some(Value::Object(m)) => m,
            _ => &EMPTY,
        }
    }

    /// The traits an identify call sets: `context.traits` (where RudderStack's SDKs put them) overlaid with
    /// `traits` (where Segment's do). Empty for other calls.
    pub fn identify_traits(&self) -> Map<String, Value> {
        if self.kind != EventType::Identify {
            return Map::new();
        }
        let mut traits = self.context_traits().clone();
        traits.extend(self.traits().iter().map(|(k, v)| (k.clone(), v.clone())));
        traits
    }

    fn object(&self, key: &str) -> &Map<String, Value> {
        match self.body.get(key) {
            Some(Value::Object(m)) => m,
            _ => &EMPTY,
        }
    }

    /// The name used for per-event counts: the track event name, or `"<type>"` such as `"page"` otherwise.
    pub fn count_key(&self) -> &str {
        match (self.kind, &self.name) {
            (EventType::Track, Some(name)) => name,
            _ => self.kind.as_str(),
        }
    }

    /// The normalised JSON, as stored.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).expect("a JSON map always serialises")
    }
}

fn bounded(s: &str, field: &str) -> Result<String, FieldError> {
    if s.len() > MAX_ID_LEN {
        return Err(FieldError::new(field, format!("is longer than {MAX_ID_LEN} bytes")));
    }
    Ok(s.to_owned())
}

/// Reads an identifier field: a string, or a number (which clients send for numeric ids) made a string.
/// Empty strings count as absent. The normalised string replaces the field in the body.
fn id_field(body: &mut Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    let value = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => bounded(s, field)?,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(FieldError::new(field, "must be a string or a number")),
    };
    body.insert(field.to_owned(), Value::String(value.clone()));
    Ok(Some(value))
}

fn time_field(body: &Map<String, Value>, field: &str) -> Result<Option<Millis>, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_timestamp(s)
            .map(Some)
            .ok_or_else(|| FieldError::new(field, "must be an ISO-8601 date-time with an offset")),
        Some(_) => Err(FieldError::new(field, "must be an ISO-8601 date-time string")),
    }
}

/// Refuses U+0000 anywhere in keys or strings: it truncates C strings downstream and Postgres cannot store it.
fn check_no_nul(body: &Map<String, Value>) -> Result<(), FieldError> {
    fn walk(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(walk),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    for (key, value) in body {
        if key.contains('\0') || walk(value) {
            let field = if key.contains('\0') { "" } else { key.as_str() };
            return Err(FieldError::new(field, "contains a NUL character"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(ok.body["type"], "track");
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
        assert_eq!(e.body["originalTimestamp"], "2026-01-01T01:00:00.000Z");
    }

    #[test]
    fn batch_defaults_merge_without_overriding_the_item() {
        let defaults = BatchDefaults {
            context: Some(json!({"locale": "vi-VN", "ip": "1.2.3.4"}).as_object().unwrap().clone()),
            integrations: Some(json!({"All": true}).as_object().unwrap().clone()),
            sent_at: None,
        };
        let v = json!({"type": "page", "anonymousId": "a", "context": {"locale": "zh-CN"}, "writeKey": "secret"});
        let e = Event::from_json(v, None, &defaults, 0, String::new).unwrap();
        assert_eq!(e.context()["locale"], "zh-CN");
        assert_eq!(e.context()["ip"], "1.2.3.4");
        assert_eq!(e.body["integrations"]["All"], true);
        assert!(!e.body.contains_key("writeKey"), "the write key must never be stored");
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
}
