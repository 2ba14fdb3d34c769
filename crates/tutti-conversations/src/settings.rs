//! `[conversations]`: when a topic is told to flows, and how a provider's embeddings group sentences.
//!
//! ```toml
//! [conversations]
//! task_threshold = 20          # conversations raising a topic before flows hear of it
//! rise_factor = 2.0            # the last week at least this many times the four before...
//! rise_minimum = 5             # ...and at least this many conversations: the topic rose
//! embedding_threshold = 0.8    # with a provider routed for `embed`: the cosine that joins a group
//! embedding_texts = 4000       # with a provider routed for `embed`: sentences embedded per mining at most
//! mine_after = "60s"           # conversations from hooks are mined together this long after the first
//! ```

use serde::{Deserialize, Serialize};

use crate::mine;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Conversations raising a topic before it is counted to flows.
    pub task_threshold: u64,
    /// The last week's conversations at least this many times the mean of the four weeks before...
    pub rise_factor: f64,
    /// ...and at least this many.
    pub rise_minimum: u64,
    /// With a provider's embeddings: the cosine to a group's centre that joins it. Spaces differ by model.
    pub embedding_threshold: f32,
    /// With a provider's embeddings: the most sentences embedded per mining (the most said first).
    pub embedding_texts: usize,
    /// Conversations that come through hooks (CRM notes, one at a time) are mined this long after the first of
    /// them, together, so flows hear of their topics without a mining per note.
    #[serde(deserialize_with = "tutti_core::time::deserialize_duration", serialize_with = "show_duration")]
    pub mine_after: std::time::Duration,
}

fn show_duration<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&tutti_core::time::format_duration(d.as_millis() as i64))
}

impl Default for Settings {
    fn default() -> Settings {
        let mining = mine::Options::default();
        Settings {
            task_threshold: 20,
            rise_factor: 2.0,
            rise_minimum: 5,
            embedding_threshold: mining.embedding_threshold,
            embedding_texts: mining.embedding_texts,
            mine_after: std::time::Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Whether every value can be used: a threshold is a cosine, a budget fits one `embed` call.
    pub fn check(&self) -> Result<(), String> {
        if !(self.embedding_threshold > 0.0 && self.embedding_threshold <= 1.0) {
            return Err("`conversations.embedding_threshold` is a cosine above 0 and at most 1".into());
        }
        if self.embedding_texts > MAX_EMBEDDING_TEXTS {
            return Err(format!("`conversations.embedding_texts` is at most {MAX_EMBEDDING_TEXTS}"));
        }
        if !(self.rise_factor.is_finite() && self.rise_factor >= 1.0) {
            return Err("`conversations.rise_factor` is a number of at least 1".into());
        }
        Ok(())
    }

    /// The miner's options with these settings.
    pub fn mining(&self) -> mine::Options {
        mine::Options {
            embedding_threshold: self.embedding_threshold,
            embedding_texts: self.embedding_texts,
            ..mine::Options::default()
        }
    }
}

/// The most sentences one mining embeds (one `embed` call of the `ai` connector).
pub const MAX_EMBEDDING_TEXTS: usize = 8_192;
