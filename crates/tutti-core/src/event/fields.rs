//! Reading an event's fields: the members every type shares, identifiers, times and the hazards refused in any
//! string.

use std::collections::BTreeMap;

use serde_json::Map;
use serde_json::value::RawValue;

use super::{Common, EventError, EventType, FieldError, MAX_DEPTH, MAX_ID_LEN, Top, member};
use crate::json::{self, Hazard, Kind, RawObject};
use crate::time::{Millis, parse_timestamp};

/// Reads type, identifiers, name, traits and the context fields profiles use. `context` overrides the
/// event's own `context` member (when batch defaults were merged into it).
pub(super) fn read_common(
    object: &Top<'_>,
    kind: Option<EventType>,
    context: Option<&str>,
) -> Result<Common, FieldError> {
    let kind = match (kind, member(object, "type")) {
        (Some(k), None) => k,
        (Some(k), Some(raw)) => match json::kind(raw) {
            Kind::Null => k,
            Kind::String if string(raw) == k.as_str() => k,
            _ => return Err(FieldError::new("type", format!("does not match the {k} endpoint"))),
        },
        (None, Some(raw)) if json::kind(raw) == Kind::String => {
            let t = string(raw);
            EventType::parse(&t).ok_or_else(|| FieldError::new("type", format!("unknown type {t:?}")))?
        }
        (None, Some(raw)) if json::kind(raw) != Kind::Null => return Err(FieldError::new("type", "must be a string")),
        (None, _) => return Err(FieldError::new("type", "is required in a batch item")),
    };

    check_write_key(member(object, "writeKey"))?;
    let user_id = id_field(object, "userId")?;
    let anonymous_id = id_field(object, "anonymousId")?;
    let previous_id = id_field(object, "previousId")?;
    let group_id = id_field(object, "groupId")?;
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
        EventType::Track => match member(object, "event").map(|raw| (json::kind(raw), raw)) {
            Some((Kind::String, raw)) => {
                let s = string(raw);
                if s.trim().is_empty() {
                    return Err(FieldError::new("event", "must not be empty"));
                }
                Some(bounded(s, "event")?)
            }
            None | Some((Kind::Null, _)) => return Err(FieldError::new("event", "is required for track")),
            Some(_) => return Err(FieldError::new("event", "must be a string")),
        },
        EventType::Page | EventType::Screen => match member(object, "name").map(|raw| (json::kind(raw), raw)) {
            Some((Kind::String, raw)) => Some(bounded(string(raw), "name")?),
            None | Some((Kind::Null, _)) => None,
            Some(_) => return Err(FieldError::new("name", "must be a string")),
        },
        _ => None,
    };

    for field in ["properties", "traits", "context", "integrations"] {
        if let Some(raw) = member(object, field)
            && !matches!(json::kind(raw), Kind::Object | Kind::Null)
        {
            return Err(FieldError::new(field, "must be an object"));
        }
    }
    let traits = match (kind, member(object, "traits")) {
        (EventType::Identify | EventType::Group, Some(raw)) if json::kind(raw) == Kind::Object => {
            serde_json::from_str(raw.get()).map_err(|e| FieldError::new("traits", e.to_string()))?
        }
        _ => Map::new(),
    };

    let context_text = context.or_else(|| member(object, "context").map(RawValue::get));
    let (mut context_traits, mut timezone, mut locale) = (Map::new(), None, None);
    if let Some(text) = context_text.filter(|t| t.starts_with('{')) {
        let [traits, tz, loc] = json::parse_members(text, &["traits", "timezone", "locale"], false)
            .map_err(|e| FieldError::new("context", e.to_string()))?
            .known;
        if let Some(raw) = traits.filter(|r| json::kind(r) == Kind::Object) {
            context_traits = serde_json::from_str(raw.get()).map_err(|e| FieldError::new("context", e.to_string()))?;
        }
        let text_member = |raw: Option<&RawValue>| raw.filter(|r| json::kind(r) == Kind::String).map(string);
        timezone = text_member(tz);
        locale = text_member(loc);
    }

    Ok(Common { kind, user_id, anonymous_id, previous_id, group_id, name, traits, context_traits, timezone, locale })
}

/// Merges batch defaults under an item's own object member; returns the merged object as JSON text.
pub(super) fn merge(
    own: Option<&RawValue>,
    defaults: &[(String, Box<RawValue>)],
    field: &str,
) -> Result<String, FieldError> {
    let own = match own {
        Some(raw) if json::kind(raw) == Kind::Object => {
            json::parse_object(raw.get()).map_err(|e| FieldError::new(field, e.to_string()))?
        }
        Some(raw) if json::kind(raw) != Kind::Null => return Err(FieldError::new(field, "must be an object")),
        _ => RawObject::new(),
    };
    let mut members: BTreeMap<&str, &str> = defaults.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
    members.extend(own.iter().map(|(k, v)| (k.0.as_ref(), v.get())));
    let mut out = Vec::new();
    json::write_object(&mut out, members);
    Ok(String::from_utf8(out).expect("JSON written from str is UTF-8"))
}

/// A `writeKey` member, in an event or a batch envelope, is a string (or null) whether or not it is read.
pub(crate) fn check_write_key(raw: Option<&RawValue>) -> Result<(), FieldError> {
    match raw.map(json::kind) {
        None | Some(Kind::String | Kind::Null) => Ok(()),
        Some(_) => Err(FieldError::new("writeKey", "must be a string")),
    }
}

pub(crate) fn check_hazard(field: &str, raw: &str) -> Result<(), EventError> {
    match json::hazard(raw, 1, MAX_DEPTH) {
        None => Ok(()),
        Some(Hazard::Nul) => Err(FieldError::new(field, "contains a NUL character").into()),
        Some(Hazard::LoneSurrogate) => {
            Err(EventError::Syntax(format!("{field}: a \\u escape holds half a surrogate pair, which is no character")))
        }
        Some(Hazard::NumberOutOfRange) => {
            Err(EventError::Syntax(format!("{field}: a number is out of range for a double-precision float")))
        }
        Some(Hazard::TooDeep) => {
            Err(EventError::Syntax(format!("{field}: nested deeper than {MAX_DEPTH} levels of arrays and objects")))
        }
    }
}

/// The string a raw JSON string holds. Strings were scanned for bad escapes before, so this only fails on
/// stored data that was damaged.
pub(super) fn string(raw: &RawValue) -> String {
    serde_json::from_str(raw.get()).unwrap_or_else(|_| String::from_utf8_lossy(raw.get().as_bytes()).into_owned())
}

/// A raw JSON number as text, normalised the way `serde_json` prints numbers.
pub(super) fn number(raw: &RawValue) -> String {
    serde_json::from_str::<serde_json::Number>(raw.get()).map(|n| n.to_string()).unwrap_or_else(|_| raw.get().into())
}

pub(super) fn bounded(s: String, field: &str) -> Result<String, FieldError> {
    if s.len() > MAX_ID_LEN {
        return Err(FieldError::new(field, format!("is longer than {MAX_ID_LEN} bytes")));
    }
    Ok(s)
}

/// Reads an identifier field: a string, or a number (which clients send for numeric ids) made a string.
/// Empty strings count as absent.
pub(super) fn id_field(object: &Top<'_>, field: &str) -> Result<Option<String>, FieldError> {
    let Some(raw) = member(object, field) else {
        return Ok(None);
    };
    match json::kind(raw) {
        Kind::Null => Ok(None),
        Kind::String => {
            let s = string(raw);
            if s.trim().is_empty() { Ok(None) } else { bounded(s, field).map(Some) }
        }
        Kind::Number => Ok(Some(number(raw))),
        _ => Err(FieldError::new(field, "must be a string or a number")),
    }
}

pub(crate) fn time_value(raw: &RawValue, field: &str) -> Result<Millis, FieldError> {
    if json::kind(raw) != Kind::String {
        return Err(FieldError::new(field, "must be an ISO-8601 date-time string"));
    }
    parse_timestamp(&string(raw)).ok_or_else(|| FieldError::new(field, "must be an ISO-8601 date-time with an offset"))
}

pub(super) fn time_field(object: &Top<'_>, field: &str) -> Result<Option<Millis>, FieldError> {
    match member(object, field) {
        None => Ok(None),
        Some(raw) if json::kind(raw) == Kind::Null => Ok(None),
        Some(raw) => time_value(raw, field).map(Some),
    }
}
