//! The local provider: no network, no weights, the same answer every time.
//!
//! Each [`Task`] it can do is a *skill*: a deterministic function of the request's typed `input` (template
//! variants for generation, the lexicon and statistical classifiers for classification and tagging). Its
//! completions say `local: true` and `model: "tutti-local"`, so nobody mistakes them for a model's writing. A
//! task without a skill is [`AiError::Unsupported`], never an invented answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::{AiError, Completion, Embeddings, Pending, PendingEmbeddings, Provider, Request, Task, Usage, schema};

/// The model name local completions carry.
pub const MODEL: &str = "tutti-local";
/// The model name local embeddings carry.
pub const EMBED_MODEL: &str = "tutti-hashed-features";

/// A deterministic implementation of one task.
pub type Skill = Arc<dyn Fn(&Request) -> Result<Value, AiError> + Send + Sync>;

#[derive(Clone, Default)]
pub struct Local {
    skills: BTreeMap<Task, Skill>,
}

impl Local {
    pub fn new() -> Local {
        Local::default()
    }

    /// Adds (or replaces) the skill for `task`.
    pub fn with(mut self, task: Task, skill: Skill) -> Local {
        self.skills.insert(task, skill);
        self
    }

    pub fn can(&self, task: Task) -> bool {
        self.skills.contains_key(&task)
    }

    /// Answers at once (the future is ready): what the router and benchmarks call on the hot path.
    pub fn answer(&self, request: &Request) -> Result<Completion, AiError> {
        let started = Instant::now();
        let skill = self.skills.get(&request.task).ok_or_else(|| {
            AiError::Unsupported(format!("the local provider has no implementation of `{}`", request.task))
        })?;
        let value = skill(request)?;
        if let Some(s) = &request.schema {
            schema::check(&value, &s.schema)
                .map_err(|e| AiError::Malformed(format!("local `{}`: {e}", request.task)))?;
        }
        let text = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(Completion {
            provider: "local".into(),
            model: MODEL.into(),
            local: true,
            structured: request.schema.as_ref().map(|_| value),
            text,
            tool_calls: Vec::new(),
            finish_reason: Some("stop".into()),
            usage: Usage::default(),
            cost_micros: 0,
            latency_ms: started.elapsed().as_millis() as u64,
            cached: false,
            chunks: 0,
            attempts: 0,
            fallback_reason: None,
        })
    }

    /// Local embeddings ([`crate::embed`]: hashed features, [`crate::embed::DIM`] dimensions), at once.
    pub fn embeddings(&self, texts: &[String]) -> Embeddings {
        let started = Instant::now();
        Embeddings {
            provider: "local".into(),
            model: EMBED_MODEL.into(),
            local: true,
            vectors: texts.iter().map(|t| crate::embed::embed(t).0).collect(),
            usage: Usage::default(),
            cost_micros: 0,
            latency_ms: started.elapsed().as_millis() as u64,
            attempts: 0,
            fallback_reason: None,
        }
    }
}

impl Provider for Local {
    fn name(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        MODEL
    }

    fn local(&self) -> bool {
        true
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Pending<'a> {
        let answer = self.answer(request);
        Box::pin(std::future::ready(answer))
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> PendingEmbeddings<'a> {
        Box::pin(std::future::ready(Ok(self.embeddings(texts))))
    }
}
