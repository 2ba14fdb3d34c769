//! A `/v1/batch` body: the envelope around the items, and what the envelope passes down to each of them.
//!
//! The envelope is read in one pass with its items left raw; each item is then read by [`Event::parse`]
//! (crate::event::Event::parse) with the [`BatchDefaults`]. Only a malformed body pays for a second pass,
//! which finds the write key (so an unauthorised client hears 401, not a syntax error) and says what is wrong.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{EventError, FieldError, check_hazard, check_write_key, time_value};
use crate::json::{self, Kind};
use crate::time::Millis;

/// The members of a batch body. `B` is the items: raw values, or anything at all when the body is read
/// again to say why it failed. Both readings share every other member, so the same bodies (repeated members,
/// say) fail both.
#[derive(Deserialize)]
#[serde(bound(deserialize = "B: Deserialize<'de>"))]
struct BatchBody<'a, B> {
    #[serde(default)]
    batch: Option<B>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
    #[serde(borrow, default)]
    integrations: Option<&'a RawValue>,
    #[serde(rename = "sentAt", borrow, default)]
    sent_at: Option<&'a RawValue>,
    #[serde(rename = "writeKey", borrow, default)]
    write_key: Option<&'a RawValue>,
}

/// A batch body read: its items raw, and the envelope's own members.
#[derive(Debug)]
pub struct BatchEnvelope<'a> {
    /// The items, each as the client sent it; `None` when the body has no `batch`.
    pub items: Option<Vec<&'a RawValue>>,
    pub context: Option<&'a RawValue>,
    pub integrations: Option<&'a RawValue>,
    pub sent_at: Option<&'a RawValue>,
}

/// Why a batch body could not be read.
#[derive(Debug)]
pub enum EnvelopeError {
    /// Not JSON, or not an object: the parser's own words.
    Json(serde_json::Error),
    /// An object with a member of the wrong kind: `batch` not an array, `writeKey` not a string.
    Field(FieldError),
}

/// A batch body read, with its `writeKey` (raw) whether or not the rest of it could be read.
pub fn read_envelope(bytes: &[u8]) -> (Option<&RawValue>, Result<BatchEnvelope<'_>, EnvelopeError>) {
    match serde_json::from_slice::<BatchBody<'_, Vec<&RawValue>>>(bytes) {
        Ok(body) => match check_write_key(body.write_key) {
            Err(e) => (None, Err(EnvelopeError::Field(e))),
            Ok(()) => (
                body.write_key,
                Ok(BatchEnvelope {
                    items: body.batch,
                    context: body.context,
                    integrations: body.integrations,
                    sent_at: body.sent_at,
                }),
            ),
        },
        Err(e) => match serde_json::from_slice::<BatchBody<'_, serde::de::IgnoredAny>>(bytes) {
            Ok(loose) => (loose.write_key, Err(EnvelopeError::Field(FieldError::new("batch", "must be an array")))),
            Err(_) => (None, Err(EnvelopeError::Json(e))),
        },
    }
}

impl BatchEnvelope<'_> {
    /// What the envelope passes down to its items.
    pub fn defaults(&self) -> Result<BatchDefaults, EventError> {
        BatchDefaults::from_envelope(self.context, self.integrations, self.sent_at)
    }
}

/// Values a `/v1/batch` envelope passes down to each of its items.
#[derive(Debug, Clone, Default)]
pub struct BatchDefaults {
    /// Members of the top-level `context`, added to each item's context where the item has none of its own.
    pub(crate) context: Vec<(String, Box<RawValue>)>,
    /// Members of the top-level `integrations`, merged the same way.
    pub(crate) integrations: Vec<(String, Box<RawValue>)>,
    /// Top-level `sentAt`, used by items without their own.
    pub sent_at: Option<Millis>,
}

impl BatchDefaults {
    /// Reads the envelope's `context`, `integrations` and `sentAt`, each raw as the client sent it.
    pub fn from_envelope(
        context: Option<&RawValue>,
        integrations: Option<&RawValue>,
        sent_at: Option<&RawValue>,
    ) -> Result<BatchDefaults, EventError> {
        let members = |raw: Option<&RawValue>, field: &str| -> Result<Vec<(String, Box<RawValue>)>, EventError> {
            let Some(raw) = raw.filter(|r| json::kind(r) != Kind::Null) else {
                return Ok(Vec::new());
            };
            if json::kind(raw) != Kind::Object {
                return Err(FieldError::new(field, "must be an object").into());
            }
            check_hazard(field, raw.get())?;
            let object = json::parse_object(raw.get()).map_err(|e| EventError::Syntax(e.to_string()))?;
            Ok(object.into_iter().map(|(k, v)| (k.0.into_owned(), v.to_owned())).collect())
        };
        let sent_at = match sent_at.filter(|r| json::kind(r) != Kind::Null) {
            None => None,
            Some(raw) => Some(time_value(raw, "sentAt")?),
        };
        Ok(BatchDefaults {
            context: members(context, "context")?,
            integrations: members(integrations, "integrations")?,
            sent_at,
        })
    }
}
