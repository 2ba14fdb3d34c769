//! A conversation as Tutti keeps it: who spoke, in which role, when, and how the conversation ended.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tutti_core::time::Millis;

/// How a conversation ended, for the win rates of topics and replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Won,
    Lost,
    Open,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::Lost => "lost",
            Outcome::Open => "open",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "won" => Some(Outcome::Won),
            "lost" => Some(Outcome::Lost),
            "open" => Some(Outcome::Open),
            _ => None,
        }
    }
}

/// Which side of the conversation a turn is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Rep,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Rep => "rep",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "customer" => Some(Role::Customer),
            "rep" => Some(Role::Rep),
            _ => None,
        }
    }
}

/// One turn: a speaker's words, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub speaker: String,
    pub role: Role,
    /// When it was said, if the source says.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timestamp")]
    pub at: Option<Millis>,
    pub text: String,
}

/// A call, a chat or a meeting between a customer and a rep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Unique in the store: importing the same id again replaces the conversation.
    pub id: String,
    /// When it started: the source's `started_at`, else its first turn's time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timestamp")]
    pub started_at: Option<Millis>,
    pub channel: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rep: Option<String>,
    /// The customer's identifiers (`email`, `phone`, `user_id`, ...), by which the conversation is linked to a
    /// profile and erased with the person.
    #[serde(default)]
    pub customer: BTreeMap<String, String>,
    pub turns: Vec<Turn>,
    /// Keys of the source Tutti does not read, kept as they came.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Times as the JSON lines carry them: RFC 3339 date-times, so what Tutti writes can be imported again.
mod timestamp {
    use serde::{Deserialize, Deserializer, Serializer};
    use tutti_core::time::{Millis, format_timestamp, parse_timestamp};

    pub fn serialize<S: Serializer>(at: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(ms) => s.serialize_str(&format_timestamp(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse_timestamp(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a date-time with an offset"))),
            None => Ok(None),
        }
    }
}

/// Bounds on what one conversation may hold, so a hostile file is refused with a reason instead of filling the
/// store or the miner's memory. A one-hour call is about a thousand turns and 60 KB of text.
pub mod limits {
    /// Turns in one conversation.
    pub const TURNS: usize = 20_000;
    /// Bytes of one turn's text.
    pub const TURN_BYTES: usize = 64 * 1024;
    /// Bytes of one conversation as imported (a JSON line, a transcript file).
    pub const CONVERSATION_BYTES: usize = 16 * 1024 * 1024;
    /// Characters of an id, a speaker, a channel, a rep, an identifier.
    pub const NAME_CHARS: usize = 200;
    /// Identifiers of one customer.
    pub const IDENTIFIERS: usize = 16;
}
