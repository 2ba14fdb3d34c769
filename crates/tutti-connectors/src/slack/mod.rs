//! `slack`: messages to Slack channels.
//!
//! - `post_message`: the Web API's `chat.postMessage`, as documented at
//!   <https://docs.slack.dev/reference/methods/chat.postMessage/>: `POST {api_base}/chat.postMessage`, the bot
//!   token as `Authorization: Bearer`, a JSON body (`application/json; charset=utf-8`) with `channel` and at
//!   least one of `text`, `blocks` (Block Kit, <https://docs.slack.dev/block-kit/>) or `attachments`. Slack
//!   answers HTTP 200 with `{"ok": false, "error": ...}` for most failures; `ratelimited` and Slack's own
//!   internal errors are worth retrying, the rest are not. Rate limits answer 429 with `Retry-After`
//!   (<https://docs.slack.dev/apis/web-api/rate-limits>). Slack takes no idempotency key, so each message
//!   carries the action's key in its `metadata` (`event_type: tutti_action`), where a duplicate can be found.
//! - `webhook`: an incoming webhook (<https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks>):
//!   a JSON `text`/`blocks` body posted to the webhook's URL, answered `ok` as plain text, or an error word
//!   (`invalid_payload`, `no_text`, `channel_not_found`, ...) with a 4xx.
//!
//! Configuration: `token_env` (a bot token, `xoxb-...`) and/or `webhook_url_env` (the incoming webhook's URL,
//! which is itself a secret), both names of environment variables; `default_channel`; `api_base` (default
//! `https://slack.com/api`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::CheckedConfig;
use crate::http::{Http, classify, parse_url};
use crate::{Action, Context, Delivery, Failure, Kind, Operation, Secret, Sender, Settings};

mod config;

pub static KIND: Kind = Kind {
    name: "slack",
    channel: "slack",
    operations: &[Operation::taking("post_message", &MESSAGE_ARGS), Operation::taking("webhook", &WEBHOOK_ARGS)],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

/// The `chat.postMessage` arguments a step may give (the token goes in the header, never in the body).
const MESSAGE_ARGS: [&str; 14] = [
    "channel",
    "text",
    "blocks",
    "attachments",
    "thread_ts",
    "reply_broadcast",
    "unfurl_links",
    "unfurl_media",
    "mrkdwn",
    "icon_emoji",
    "icon_url",
    "username",
    "metadata",
    "link_names",
];

/// What an incoming webhook takes (its channel is fixed when the webhook is made).
const WEBHOOK_ARGS: [&str; 6] = ["text", "blocks", "attachments", "thread_ts", "mrkdwn", "unfurl_links"];

/// `ok: false` errors that say "later", not "never".
const TRANSIENT: [&str; 5] = ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Slack {
            http: Http::new(&settings.allow_private, settings.concurrency),
            token: self.token,
            webhook: self.webhook,
            default_channel: self.default_channel,
            api_base: self.api_base,
        })
    }
}

struct Slack {
    http: Http,
    token: Option<Secret>,
    webhook: Option<Secret>,
    default_channel: Option<String>,
    api_base: String,
}

/// `blocks` or `attachments` as a list: given as one, or as text a template rendered into one.
fn list(payload: &Value, key: &str) -> Result<Option<Value>, Failure> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(Value::Array(items.clone()))),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(list @ Value::Array(_)) => Ok(Some(list)),
            _ => Err(Failure::permanent(format!("`{key}` must be a list of Block Kit objects (JSON)"))),
        },
        Some(other) => Err(Failure::permanent(format!("`{key}` must be a list, not {}", crate::kind_of(other)))),
    }
}

/// The message body both operations share: text and structured parts, checked the way Slack checks them.
fn message(action: &Action<'_>) -> Result<Map<String, Value>, Failure> {
    let payload = action.payload;
    let Some(object) = payload.as_object() else {
        return Err(Failure::permanent("the step's `with` must be a map"));
    };
    KIND.check(action)?;
    let mut body = Map::new();
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        let value = match key.as_str() {
            "blocks" | "attachments" => match list(payload, key)? {
                Some(list) => list,
                None => continue,
            },
            _ => value.clone(),
        };
        body.insert(key.clone(), value);
    }
    let has = |key: &str| match body.get(key) {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    if !has("text") && !has("blocks") && !has("attachments") {
        return Err(Failure::permanent("a Slack message needs `text`, `blocks` or `attachments`"));
    }
    Ok(body)
}

impl Slack {
    async fn post_message(&self, action: Action<'_>) -> Result<Value, Failure> {
        let Some(token) = &self.token else {
            return Err(Failure::permanent("`post_message` needs a bot token: set `token_env` in [connectors.slack]"));
        };
        let mut body = message(&action)?;
        if body.get("channel").and_then(Value::as_str).is_none_or(|c| c.trim().is_empty()) {
            match &self.default_channel {
                Some(channel) => {
                    body.insert("channel".into(), json!(channel));
                }
                None => return Err(Failure::permanent("`post_message` needs a `channel` (or `default_channel`)")),
            }
        }
        body.entry("metadata").or_insert_with(
            || json!({"event_type": "tutti_action", "event_payload": {"key": action.key, "flow": action.flow}}),
        );
        let auth = format!("Bearer {}", token.expose());
        let url = format!("{}/chat.postMessage", self.api_base);
        let answer =
            self.http.json(hyper::Method::POST, &url, &[("authorization", &auth)], Some(&Value::Object(body))).await?;
        let result = classify(&answer, action.now)?;
        web_api_result(result)
    }

    async fn webhook(&self, action: Action<'_>) -> Result<Value, Failure> {
        let Some(url) = &self.webhook else {
            return Err(Failure::permanent(
                "`webhook` needs an incoming webhook: set `webhook_url_env` in [connectors.slack]",
            ));
        };
        let body = message(&action)?;
        let answer = self.http.json(hyper::Method::POST, url.expose(), &[], Some(&Value::Object(body))).await?;
        classify(&answer, action.now).map_err(|failure| match failure {
            // The answer names the problem (`no_text`, `channel_not_found`); the URL, a secret, is never shown.
            Failure::Permanent(_) => Failure::permanent(format!(
                "the incoming webhook refused the message: HTTP {} {}",
                answer.status,
                crate::http::truncate(&String::from_utf8_lossy(&answer.body), 100)
            )),
            transient => transient,
        })
    }
}

/// The Web API's own verdict inside a 200: `ok: true`, or an error word.
fn web_api_result(result: Value) -> Result<Value, Failure> {
    let body = &result["body"];
    if body.get("ok") == Some(&Value::Bool(true)) {
        return Ok(result);
    }
    let error = body.get("error").and_then(Value::as_str).unwrap_or("an answer without `ok`");
    if TRANSIENT.contains(&error) {
        Err(Failure::transient(format!("Slack: {error}")))
    } else {
        Err(Failure::permanent(format!("Slack: {error}")))
    }
}

impl Sender for Slack {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "post_message" => self.post_message(action).await,
                "webhook" => self.webhook(action).await,
                other => Err(crate::unknown_operation("slack", other)),
            }
        })
    }

    /// `auth.test` with the bot token; for an incoming webhook alone, an empty message, which Slack refuses
    /// with `no_text` (or `invalid_payload`) when the webhook exists and with 403, 404 or 410 when it does not.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            if let Some(token) = &self.token {
                let auth = format!("Bearer {}", token.expose());
                let url = format!("{}/auth.test", self.api_base);
                let answer = self.http.json(hyper::Method::POST, &url, &[("authorization", &auth)], None).await?;
                return web_api_result(classify(&answer, 0)?);
            }
            let url = self.webhook.as_ref().expect("built with a token or a webhook");
            let answer = self.http.json(hyper::Method::POST, url.expose(), &[], Some(&json!({}))).await?;
            let said = String::from_utf8_lossy(&answer.body).trim().to_owned();
            match answer.status {
                400 if said == "no_text" || said == "invalid_payload" => Ok(json!({"ok": true, "webhook": "exists"})),
                status => Err(Failure::permanent(format!("the incoming webhook answered HTTP {status} {said}"))),
            }
        })
    }
}
