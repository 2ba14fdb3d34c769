//! What the audit trail records of each provider call.

use serde::Serialize;
use serde_json::{Value, json};

use crate::provider::{Completion, Embeddings, Request, Task};

/// One provider call (for a message, or for a topic's embeddings): what the audit trail records of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallNote {
    pub task: &'static str,
    /// `variants`, `revision` or `judge`; for embeddings, `examples` or `text`.
    pub purpose: &'static str,
    pub provider: String,
    pub model: String,
    pub local: bool,
    pub cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// SHA-256 of the messages, schema and parameters sent (hex).
    pub prompt_hash: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub tokens_estimated: bool,
    pub cost_micros: u64,
    pub latency_ms: u64,
    pub attempts: u32,
    /// What came back: the structured answer, else the text.
    pub output: Value,
}

impl CallNote {
    pub(super) fn of(purpose: &'static str, request: &Request, c: &Completion) -> CallNote {
        CallNote {
            task: request.task.name(),
            purpose,
            provider: c.provider.clone(),
            model: c.model.clone(),
            local: c.local,
            cached: c.cached,
            fallback_reason: c.fallback_reason.clone(),
            prompt_hash: prompt_hash(request),
            prompt_tokens: c.usage.prompt_tokens,
            completion_tokens: c.usage.completion_tokens,
            tokens_estimated: c.usage.estimated,
            cost_micros: c.cost_micros,
            latency_ms: c.latency_ms,
            attempts: c.attempts,
            output: c.structured.clone().unwrap_or_else(|| Value::String(c.text.clone())),
        }
    }

    /// An embeddings call: its prompt hash covers the model and the texts; its output is how many vectors
    /// came back (the vectors themselves are not kept).
    pub fn of_embeddings(purpose: &'static str, texts: &[String], e: &Embeddings) -> CallNote {
        CallNote {
            task: Task::Embed.name(),
            purpose,
            provider: e.provider.clone(),
            model: e.model.clone(),
            local: e.local,
            cached: false,
            fallback_reason: e.fallback_reason.clone(),
            prompt_hash: sha256_hex(&serde_json::to_vec(&json!({"model": e.model, "input": texts})).expect("JSON")),
            prompt_tokens: e.usage.prompt_tokens,
            completion_tokens: 0,
            tokens_estimated: e.usage.estimated,
            cost_micros: e.cost_micros,
            latency_ms: e.latency_ms,
            attempts: e.attempts,
            output: json!({"vectors": e.vectors.len()}),
        }
    }
}

/// The hash of what a request asks (messages, schema, tools, parameters; not `stream`, not the local input).
pub fn prompt_hash(request: &Request) -> String {
    let mut r = request.clone();
    r.stream = false;
    r.input = Value::Null;
    sha256_hex(&serde_json::to_vec(&r).expect("requests serialise"))
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
