//! The OpenAI-compatible model provider: one client for OpenAI, Ollama, vLLM, llama.cpp's server, DeepSeek and
//! Qwen, configured as `[ai.providers.<name>]`.
//!
//! Followed: OpenAI's API reference, `POST /v1/chat/completions` (request and answer objects, streaming as
//! server-sent events ending in `data: [DONE]`, `Authorization: Bearer`), `POST /v1/embeddings` (`input` as
//! an array, `encoding_format: "float"`, the `list` of `embedding` objects by `index`, `usage.prompt_tokens`),
//! and its error codes page (429 and
//! 5xx are worth retrying, with `Retry-After` when given; other 4xx are not). The wire format itself is
//! `tutti_ai::provider::openai`; this module is the HTTP side: the same guarded client as every connector (no
//! private addresses unless `allow_private` names them), one deadline per call covering every retry, and
//! answers read up to 4 MB.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::Value;
use tutti_ai::provider::openai::{self, Dialect, MAX_ANSWER_BYTES};
use tutti_ai::provider::{
    AiError, Completion, Embeddings, Pending, PendingEmbeddings, Prices, Provider, Request, Usage,
};

use crate::http::{Http, parse_url, retry_after, truncate};
use crate::{Env, Failure, Secret};

/// `[ai.providers.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API's base, up to and including the version (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1`); `/chat/completions` is added.
    pub base_url: String,
    pub model: String,
    /// The model `/embeddings` is asked for (`text-embedding-3-small`, `nomic-embed-text`); `model` when unset.
    #[serde(default)]
    pub embedding_model: Option<String>,
    /// The most texts one `/embeddings` request carries (OpenAI takes 2,048; llama-cpp-python 0.3.36 mixes up
    /// the vectors of a batch when the model has no pooling, so give it 1).
    #[serde(default = "max_batch")]
    pub embedding_batch: usize,
    /// The environment variable holding the API key (local servers need none).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// How the endpoint takes a JSON schema: `json_schema` (OpenAI's form), `json_object` (llama.cpp's Python
    /// server: `{"type": "json_object", "schema": ...}`) or `tool` (a forced tool call).
    #[serde(default)]
    pub structured: Dialect,
    /// Ask for token counts at the end of a stream (`stream_options.include_usage`).
    #[serde(default = "yes")]
    pub stream_usage: bool,
    /// The most one call may take, retries included.
    #[serde(default = "sixty_seconds", deserialize_with = "crate::duration")]
    pub timeout: Duration,
    /// Further attempts after a network error, a 429 or a 5xx.
    #[serde(default = "two")]
    pub retries: u32,
    /// Private hosts or addresses this endpoint may be at (a model server on this machine: `["127.0.0.1"]`).
    #[serde(default)]
    pub allow_private: Vec<String>,
}

fn max_batch() -> usize {
    tutti_ai::provider::MAX_EMBED_INPUTS
}

fn yes() -> bool {
    true
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

fn two() -> u32 {
    2
}

/// A configured OpenAI-compatible endpoint.
pub struct OpenAi {
    name: String,
    http: Http,
    url: String,
    uri: hyper::Uri,
    embed_uri: hyper::Uri,
    model: String,
    embedding_model: String,
    embedding_batch: usize,
    key: Option<Secret>,
    dialect: Dialect,
    stream_usage: bool,
    timeout: Duration,
    retries: u32,
    prices: Prices,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi").field("name", &self.name).field("url", &self.url).field("model", &self.model).finish()
    }
}

impl OpenAi {
    /// Checks the table (unknown keys, the URL, the key's variable) without I/O.
    pub fn build(name: &str, table: &Value, prices: &Prices, env: Env<'_>) -> Result<OpenAi, String> {
        let config: Config = crate::config(table)?;
        let base = config.base_url.trim_end_matches('/');
        let url = format!("{base}/chat/completions");
        let uri = parse_url(&url).map_err(|e| format!("`base_url`: {e}"))?;
        let embed_uri = parse_url(&format!("{base}/embeddings")).map_err(|e| format!("`base_url`: {e}"))?;
        if config.model.trim().is_empty() {
            return Err("`model` is empty".into());
        }
        if config.embedding_model.as_ref().is_some_and(|m| m.trim().is_empty()) {
            return Err("`embedding_model` is empty".into());
        }
        if !(1..=tutti_ai::provider::MAX_EMBED_INPUTS).contains(&config.embedding_batch) {
            return Err(format!("`embedding_batch` is from 1 to {}", tutti_ai::provider::MAX_EMBED_INPUTS));
        }
        let key = match &config.api_key_env {
            Some(var) => Some(Secret::from_env(env, "api_key_env", var)?),
            None => None,
        };
        if config.timeout.is_zero() {
            return Err("`timeout` must be more than zero".into());
        }
        Ok(OpenAi {
            name: name.to_owned(),
            http: Http::new(&config.allow_private, 4),
            url,
            uri,
            embed_uri,
            embedding_model: config.embedding_model.unwrap_or_else(|| config.model.clone()),
            embedding_batch: config.embedding_batch,
            model: config.model,
            key,
            dialect: config.structured,
            stream_usage: config.stream_usage,
            timeout: config.timeout,
            retries: config.retries.min(10),
            prices: prices.clone(),
        })
    }

    /// Posts `body` to `uri` until it is answered, retrying what is worth retrying within the one deadline.
    /// Returns the reply and the attempts made.
    async fn send(&self, uri: &hyper::Uri, body: &Value, stream: bool) -> Result<(Reply, u32), AiError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON serialises"));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = tokio::time::timeout_at(deadline, self.attempt(uri, bytes.clone(), stream)).await;
            match outcome {
                Err(_) => return Err(AiError::Timeout(self.timeout.as_millis() as u64)),
                Ok(Ok(reply)) => return Ok((reply, attempts)),
                Ok(Err(Attempt::Again { error, after })) if attempts <= self.retries => {
                    // Exponential backoff from 250 ms, or the endpoint's Retry-After; never past the deadline.
                    let backoff = Duration::from_millis(250 << (attempts - 1).min(6));
                    let wait = after.unwrap_or(backoff);
                    if tokio::time::Instant::now() + wait >= deadline {
                        return Err(AiError::Unavailable(format!("{error}; no time left to retry")));
                    }
                    tokio::time::sleep(wait).await;
                }
                Ok(Err(Attempt::Again { error, .. })) => {
                    return Err(AiError::Unavailable(format!("{error} (after {attempts} attempts)")));
                }
                Ok(Err(Attempt::Stop(e))) => return Err(e),
            }
        }
    }

    async fn call(&self, request: &Request) -> Result<Completion, AiError> {
        let started = Instant::now();
        let body = openai::body(&self.model, request, self.dialect, self.stream_usage);
        let (reply, attempts) = self.send(&self.uri, &body, request.stream).await?;
        let answer = match reply {
            Reply::Streamed(answer) => answer,
            Reply::Body(bytes) => openai::parse(&bytes)?,
        };
        let structured = openai::expect(request, self.dialect, &answer)?;
        let usage = answer.usage.unwrap_or_else(|| {
            let prompt: String = request.messages.iter().map(|m| m.content.as_str()).collect();
            let mut said = answer.text.clone();
            for c in &answer.tool_calls {
                said.push_str(&c.arguments);
            }
            Usage::estimate(&prompt, &said)
        });
        Ok(Completion {
            provider: self.name.clone(),
            model: self.model.clone(),
            local: false,
            text: answer.text,
            structured,
            tool_calls: answer.tool_calls,
            finish_reason: answer.finish_reason,
            usage,
            cost_micros: self.prices.cost_micros(&self.model, usage),
            latency_ms: started.elapsed().as_millis() as u64,
            cached: false,
            chunks: answer.chunks,
            attempts,
            fallback_reason: None,
        })
    }

    /// Embeds `texts` in requests of at most `embedding_batch`.
    async fn embeddings(&self, texts: &[String]) -> Result<Embeddings, AiError> {
        let started = Instant::now();
        let (mut vectors, mut counted, mut estimated, mut attempts) = (Vec::with_capacity(texts.len()), 0u32, false, 0);
        for batch in texts.chunks(self.embedding_batch) {
            let body = openai::embeddings_body(&self.embedding_model, batch);
            let (reply, tries) = self.send(&self.embed_uri, &body, false).await?;
            attempts += tries;
            let Reply::Body(bytes) = reply else {
                return Err(AiError::Malformed("embeddings were answered as an event stream".into()));
            };
            let answer = openai::parse_embeddings(&bytes, batch.len())?;
            if vectors.first().is_some_and(|v: &Vec<f32>| answer.vectors.first().is_some_and(|a| a.len() != v.len())) {
                return Err(AiError::Malformed("the vectors' length changed between requests".into()));
            }
            vectors.extend(answer.vectors);
            let tokens = answer.prompt_tokens.unwrap_or_else(|| {
                estimated = true;
                Usage::estimate(&batch.concat(), "").prompt_tokens
            });
            counted = counted.saturating_add(tokens);
        }
        let usage = Usage { prompt_tokens: counted, completion_tokens: 0, estimated };
        Ok(Embeddings {
            provider: self.name.clone(),
            model: self.embedding_model.clone(),
            local: false,
            vectors,
            usage,
            cost_micros: self.prices.cost_micros(&self.embedding_model, usage),
            latency_ms: started.elapsed().as_millis() as u64,
            attempts,
            fallback_reason: None,
        })
    }

    async fn attempt(&self, uri: &hyper::Uri, body: Bytes, stream: bool) -> Result<Reply, Attempt> {
        let mut request = hyper::Request::post(uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, if stream { "text/event-stream" } else { "application/json" });
        if let Some(key) = &self.key {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {}", key.expose()));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Attempt::Stop(AiError::Refused(format!("the request cannot be built: {e}"))))?;
        let response = self.http.open(request).await.map_err(|f| match f {
            Failure::Permanent(e) => Attempt::Stop(AiError::Refused(e)),
            Failure::Transient { error, .. } => Attempt::Again { error, after: None },
        })?;
        let status = response.status().as_u16();
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let after = retry_after(response.headers(), now_ms);
        let event_stream = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = response.into_body();
        if (200..300).contains(&status) && event_stream {
            let mut events = openai::Stream::new();
            while let Some(frame) = body.frame().await {
                let frame =
                    frame.map_err(|e| Attempt::Again { error: format!("the stream broke: {e}"), after: None })?;
                if let Some(data) = frame.data_ref() {
                    events.feed(data).map_err(Attempt::Stop)?;
                    if events.done() {
                        break;
                    }
                }
            }
            return events.finish().map(Reply::Streamed).map_err(Attempt::Stop);
        }
        let limited = http_body_util::Limited::new(body, MAX_ANSWER_BYTES);
        let bytes = match limited.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                return Err(Attempt::Again {
                    error: format!("HTTP {status}: the answer could not be read: {e}"),
                    after,
                });
            }
        };
        match status {
            200..=299 => Ok(Reply::Body(bytes)),
            408 | 425 | 429 | 500..=599 => Err(Attempt::Again { error: describe(status, &bytes), after }),
            _ => Err(Attempt::Stop(AiError::Refused(describe(status, &bytes)))),
        }
    }
}

/// What an endpoint answered with a 2xx: a stream already read, or a body to parse.
enum Reply {
    Streamed(openai::Answer),
    Body(Bytes),
}

/// Why an attempt did not answer.
enum Attempt {
    Again { error: String, after: Option<Duration> },
    Stop(AiError),
}

/// A status and the endpoint's own message, short.
fn describe(status: u16, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| openai::error_message(&v))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    format!("HTTP {status}: {}", truncate(message.trim(), 300))
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Pending<'a> {
        Box::pin(self.call(request))
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> PendingEmbeddings<'a> {
        Box::pin(self.embeddings(texts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_is_checked_without_io() {
        let none = |_: &str| None;
        let prices = Prices::default();
        let ok =
            OpenAi::build("big", &json!({"base_url": "http://127.0.0.1:8080/v1/", "model": "smol"}), &prices, &none)
                .unwrap();
        assert_eq!(ok.url, "http://127.0.0.1:8080/v1/chat/completions");
        let cases = [
            (json!({"base_url": "ftp://x/v1", "model": "m"}), "only http and https"),
            (json!({"base_url": "http://x/v1", "model": " "}), "`model` is empty"),
            (json!({"base_url": "http://x/v1", "model": "m", "api_key_env": "NOPE"}), "NOPE"),
            (json!({"base_url": "http://x/v1", "model": "m", "modle": "m"}), "modle"),
            (json!({"base_url": "http://x/v1", "model": "m", "structured": "xml"}), "xml"),
            (json!({"base_url": "http://x/v1", "model": "m", "embedding_batch": 0}), "`embedding_batch`"),
            (json!({"base_url": "http://x/v1", "model": "m", "embedding_model": ""}), "`embedding_model`"),
        ];
        for (table, want) in cases {
            let e = OpenAi::build("big", &table, &prices, &none).unwrap_err();
            assert!(e.contains(want), "{table}: {e}");
        }
        let env = |_: &str| Some("sk-secret-value".to_owned());
        let keyed = OpenAi::build(
            "big",
            &json!({"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini", "api_key_env": "K"}),
            &prices,
            &env,
        )
        .unwrap();
        assert!(!format!("{keyed:?}").contains("sk-secret"));
    }
}
