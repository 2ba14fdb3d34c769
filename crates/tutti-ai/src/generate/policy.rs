//! The installation's generation policy: AI-use disclosures per channel, and the optional model-as-judge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::text::Language;

/// When a channel's messages carry an AI-use disclosure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclose {
    /// Never (the default).
    #[default]
    Never,
    /// When a model wrote the copy (not the local template generator).
    Model,
    /// Always, whoever wrote it.
    Always,
}

/// The installation's generation policy: disclosures per channel and the optional model-as-judge.
#[derive(Debug, Clone)]
pub struct GenerationPolicy {
    /// Channel -> when its messages carry the disclosure.
    pub disclosure: BTreeMap<String, Disclose>,
    /// Disclosure text per language code, replacing the built-in one.
    pub disclosure_text: BTreeMap<String, String>,
    /// Ask the provider routed for `judge` to review the chosen copy too (when one is configured).
    pub judge: bool,
    /// How many days back a complaint or unhappy support exchange makes any message an apology.
    pub complaint_days: i64,
    /// The brand's voice (a style guide in words), given to a model that writes copy.
    pub voice: Option<String>,
}

impl Default for GenerationPolicy {
    fn default() -> Self {
        GenerationPolicy {
            disclosure: BTreeMap::new(),
            disclosure_text: BTreeMap::new(),
            judge: false,
            complaint_days: super::COMPLAINT_DAYS,
            voice: None,
        }
    }
}

impl GenerationPolicy {
    /// The disclosure a message on `channel` in `language` carries, if any.
    pub fn disclosure(&self, channel: &str, language: Language, by_model: bool) -> Option<String> {
        let when = self.disclosure.get(channel).or_else(|| self.disclosure.get("*")).copied().unwrap_or_default();
        let wanted = match when {
            Disclose::Never => false,
            Disclose::Model => by_model,
            Disclose::Always => true,
        };
        if !wanted {
            return None;
        }
        let custom = self.disclosure_text.get(language.code()).cloned();
        Some(custom.unwrap_or_else(|| {
            match language {
                Language::Vi => "Nội dung này được soạn với sự hỗ trợ của AI.",
                Language::Zh => "本消息由人工智能辅助生成。",
                _ => "This message was written with the help of AI.",
            }
            .to_owned()
        }))
    }
}
