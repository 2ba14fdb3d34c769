//! The OpenAI-compatible model provider: one client for OpenAI, Ollama, vLLM, llama.cpp's server, DeepSeek and
//! Qwen, configured as `[ai.providers.<name>]`.
//!
//! Followed: OpenAI's API reference, `POST /v1/chat/completions` (request and answer objects, streaming as
//! server-sent events ending in `data: [DONE]`, `Authorization: Bearer`), and its error codes page (429 and
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
use tutti_ai::provider::{AiError, Completion, Pending, Prices, Provider, Request, Usage};

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
    model: String,
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
        if config.model.trim().is_empty() {
            return Err("`model` is empty".into());
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
            model: config.model,
            key,
            dialect: config.structured,
            stream_usage: config.stream_usage,
            timeout: config.timeout,
            retries: config.retries.min(10),
            prices: prices.clone(),
        })
    }

    async fn call(&self, request: &Request) -> Result<Completion, AiError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let body = openai::body(&self.model, request, self.dialect, self.stream_usage);
        let bytes = Bytes::from(serde_json::to_vec(&body).expect("JSON serialises"));
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let outcome = tokio::time::timeout_at(deadline, self.attempt(bytes.clone(), request.stream)).await;
            match outcome {
                Err(_) => return Err(AiError::Timeout(self.timeout.as_millis() as u64)),
                Ok(Ok(answer)) => break answer,
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

    async fn attempt(&self, body: Bytes, stream: bool) -> Result<openai::Answer, Attempt> {
        let mut request = hyper::Request::post(self.uri.clone())
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
            return events.finish().map_err(Attempt::Stop);
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
            200..=299 => openai::parse(&bytes).map_err(Attempt::Stop),
            408 | 425 | 429 | 500..=599 => Err(Attempt::Again { error: describe(status, &bytes), after }),
            _ => Err(Attempt::Stop(AiError::Refused(describe(status, &bytes)))),
        }
    }
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
