//! Model providers behind one trait.
//!
//! A [`Provider`] answers a [`Request`] (chat messages, optionally a JSON schema the answer must follow, tools
//! the model may call, streaming) with a [`Completion`] (text, the structured value, tool calls, token counts,
//! cost, latency). Two kinds exist:
//!
//! - **OpenAI-compatible endpoints** (OpenAI, Ollama, vLLM, llama.cpp's server, DeepSeek, Qwen): the wire format
//!   is [`openai`] (pure: request bodies in three structured-output dialects, answers, server-sent events); the
//!   HTTP side lives with the other outbound clients in `tutti-connectors` (`llm.rs`).
//! - **The local provider** ([`local::Local`]): no network, no weights. Every task has a deterministic
//!   implementation (template variants, lexicon and statistical classifiers) that reads the request's typed
//!   `input`; its completions say `local: true`, and so does the audit trail.
//!
//! [`route::Router`] picks a provider per [`Task`], falls back to the local one when the large model fails, is
//! too slow or is over budget, and caches answers by prompt, model and parameters.

pub mod local;
pub mod openai;
pub mod route;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a model is asked to do. Routing is per task: the cheap, certain ones stay local by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Marketing copy for one person (the `generate` step).
    Generate,
    /// A goal turned into a plan of actions (the copilot).
    Plan,
    /// Sentiment, complaint, topic and objection classification.
    Classify,
    /// Creative tagging.
    Tag,
    /// Scores and predictions.
    Score,
    /// Grouping similar texts.
    Cluster,
    /// A model reviewing copy (the optional model-as-judge of the review gate).
    Judge,
    /// Texts as vectors, for similarity: topics across languages, clustering.
    Embed,
    /// A question about Tutti's data read into a structured query (never SQL) of the metrics layer.
    Question,
    /// Groups of texts named, in their language and in English (the topics mined from conversations).
    Label,
}

impl Task {
    pub const ALL: [Task; 10] = [
        Task::Generate,
        Task::Plan,
        Task::Classify,
        Task::Tag,
        Task::Score,
        Task::Cluster,
        Task::Judge,
        Task::Embed,
        Task::Question,
        Task::Label,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::Generate => "generate",
            Task::Plan => "plan",
            Task::Classify => "classify",
            Task::Tag => "tag",
            Task::Score => "score",
            Task::Cluster => "cluster",
            Task::Judge => "judge",
            Task::Embed => "embed",
            Task::Question => "question",
            Task::Label => "label",
        }
    }

    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the task stays on the local provider unless routed elsewhere: classification, tagging, scoring
    /// and clustering are cheap and certain locally, and so are embeddings (hashed features); generation,
    /// planning, judging, reading questions and naming topics want a large model.
    pub fn local_by_default(self) -> bool {
        matches!(self, Task::Classify | Task::Tag | Task::Score | Task::Cluster | Task::Embed)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The calls an assistant message made (when replaying a conversation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// A JSON Schema of the arguments (an object).
    pub parameters: Value,
}

/// Which tool, if any, the model must call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    /// This tool, by name.
    Named(String),
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, not yet trusted).
    pub arguments: String,
}

/// The shape a structured answer must have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// `[A-Za-z0-9_-]{1,64}`, as OpenAI requires of a schema's or a tool's name.
    pub name: String,
    pub schema: Value,
}

/// One request to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub task: Task,
    pub messages: Vec<Message>,
    /// When set, the answer must be one JSON value of this shape ([`Completion::structured`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default)]
    pub tool_choice: ToolChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Ask for the answer as server-sent events (read as they come; the completion is the same).
    #[serde(default)]
    pub stream: bool,
    /// The task's typed input, which the local provider works from (a model reads the messages instead).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input: Value,
}

impl Request {
    pub fn new(task: Task, messages: Vec<Message>) -> Request {
        Request {
            task,
            messages,
            schema: None,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            max_tokens: None,
            temperature: None,
            seed: None,
            stream: false,
            input: Value::Null,
        }
    }
}

/// Tokens a call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// The endpoint did not say (some do not count streamed answers): the counts are estimated from the text,
    /// four characters to a token.
    #[serde(default)]
    pub estimated: bool,
}

impl Usage {
    /// Counts from text, for endpoints that give none.
    pub fn estimate(prompt: &str, completion: &str) -> Usage {
        let tokens = |s: &str| s.chars().count().div_ceil(4) as u32;
        Usage { prompt_tokens: tokens(prompt), completion_tokens: tokens(completion), estimated: true }
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The provider's configured name (`local` for the local one).
    pub provider: String,
    pub model: String,
    /// Made by the local provider: deterministic, no model involved.
    pub local: bool,
    pub text: String,
    /// The structured answer, parsed and checked against the request's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    pub usage: Usage,
    /// What the call cost, in millionths of the price table's currency.
    pub cost_micros: u64,
    pub latency_ms: u64,
    /// Answered from the cache (no call made, no cost).
    #[serde(default)]
    pub cached: bool,
    /// Server-sent events read (0 when not streamed).
    #[serde(default)]
    pub chunks: u32,
    /// HTTP attempts made (retries included); 0 for the local provider.
    #[serde(default)]
    pub attempts: u32,
    /// Why the routed provider was not used, when this came from the fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// Why a call gave no completion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AiError {
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The endpoint could not be reached or was overloaded (network, 429, 5xx), after the retries.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The endpoint refused the request (another 4xx): retrying cannot help.
    #[error("refused: {0}")]
    Refused(String),
    /// The answer was not what the protocol or the schema promised.
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("over budget: {0}")]
    Budget(String),
    /// The provider cannot do this (a task the local provider has no implementation of).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// A completion on its way.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<Completion, AiError>> + Send + 'a>>;

/// Texts as vectors, one per text in the order asked, all of one length. Vectors of different providers or
/// models live in different spaces: compare only vectors with the same `provider` and `model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    pub provider: String,
    pub model: String,
    pub local: bool,
    /// Unit length (the provider's vectors are scaled to 1), so a dot product is a cosine.
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
    pub cost_micros: u64,
    pub latency_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    /// Why the routed provider was not used, when these came from the fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// Embeddings on their way.
pub type PendingEmbeddings<'a> = Pin<Box<dyn Future<Output = Result<Embeddings, AiError>> + Send + 'a>>;

/// The most texts one embeddings request carries (OpenAI's limit per request is 2,048).
pub const MAX_EMBED_INPUTS: usize = 2048;

/// A model provider. Contract: `complete` never panics on anything the endpoint sends; a structured answer is
/// returned only after it parsed and matched the schema; secrets never appear in errors.
pub trait Provider: Send + Sync {
    /// The configured name (`[ai.providers.<name>]`), `local` for the local provider.
    fn name(&self) -> &str;
    fn model(&self) -> &str;
    /// Deterministic and offline.
    fn local(&self) -> bool {
        false
    }
    fn complete<'a>(&'a self, request: &'a Request) -> Pending<'a>;
    /// Embeds `texts`, in as many requests as the endpoint needs (one answer, one model). Providers that cannot
    /// say so.
    fn embed<'a>(&'a self, texts: &'a [String]) -> PendingEmbeddings<'a> {
        let _ = texts;
        let error = AiError::Unsupported(format!("`{}` has no embeddings", self.name()));
        Box::pin(std::future::ready(Err(error)))
    }
}

/// A model's price, per million tokens, in the table's currency (US dollars unless the operator says).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// The price table: model name to price. A model not in it costs nothing (a local server, say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(pub BTreeMap<String, Price>);

impl Prices {
    /// The cost of `usage` on `model` in millionths of the currency, rounded up.
    pub fn cost_micros(&self, model: &str, usage: Usage) -> u64 {
        let Some(price) = self.0.get(model) else { return 0 };
        // Per million tokens in currency units is exactly micro-units per token.
        let micros = f64::from(usage.prompt_tokens) * price.input + f64::from(usage.completion_tokens) * price.output;
        if micros.is_finite() && micros > 0.0 { micros.ceil() as u64 } else { 0 }
    }

    /// Every price is a finite, non-negative number.
    pub fn check(&self) -> Result<(), String> {
        for (model, p) in &self.0 {
            if !(p.input.is_finite() && p.output.is_finite() && p.input >= 0.0 && p.output >= 0.0) {
                return Err(format!("the price of `{model}` must be two non-negative numbers"));
            }
        }
        Ok(())
    }
}

/// Whether `name` may name a schema or a tool (OpenAI: letters, digits, `_` and `-`, at most 64).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_follows_the_price_table() {
        let prices: Prices =
            serde_json::from_value(serde_json::json!({"gpt-4o-mini": {"input": 0.15, "output": 0.60}})).unwrap();
        let usage = Usage { prompt_tokens: 1000, completion_tokens: 500, estimated: false };
        // 1000 * 0.15 + 500 * 0.60 = 450 micro-dollars.
        assert_eq!(prices.cost_micros("gpt-4o-mini", usage), 450);
        assert_eq!(prices.cost_micros("smollm2", usage), 0, "unpriced models cost nothing");
        assert!(Prices(BTreeMap::from([("x".into(), Price { input: -1.0, output: 0.0 })])).check().is_err());
    }

    #[test]
    fn estimated_usage_counts_characters_not_bytes() {
        let u = Usage::estimate("Chào anh Minh", "优惠");
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.estimated), (4, 1, true));
    }

    #[test]
    fn names_follow_openai() {
        assert!(valid_name("copy_variants-2"));
        assert!(!valid_name("copy variants") && !valid_name("") && !valid_name(&"x".repeat(65)));
    }
}
