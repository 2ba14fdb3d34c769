//! `webhook`: any HTTP endpoint.
//!
//! The step's `with` names the `url` (http or https) and, optionally, the `method` (`POST`, the default, `PUT`
//! or `PATCH`), extra `headers`, and the `body`. The body is `body` when given (a JSON value, or text that a
//! Liquid template rendered into JSON), otherwise everything else in `with`. Every request carries
//! `Idempotency-Key` (the action's key, the same on every attempt and replay), `Tutti-Flow` and `Tutti-Step`;
//! with `signing_secret_env` set, also `Tutti-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`,
//! the scheme Stripe and Svix made familiar, so a receiver can check both origin and freshness.
//!
//! Destinations are held to the private-address guard of [`crate::http`]: `127.0.0.1`, `10.0.0.0/8`,
//! `169.254.169.254`, `localhost` and names that resolve to such addresses are refused unless `allow_private`
//! names them.

use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use serde_json::Value;
use sha2::Sha256;

use crate::http::{Http, classify, header_value, parse_url};
use crate::{Action, CheckedConfig, Delivery, Failure, Kind, Operation, Secret, Sender, Settings};

mod config;

pub static KIND: Kind = Kind {
    name: "webhook",
    channel: "webhook",
    operations: &[Operation::open("post")],
    default_on: true,
    units: crate::per_action,
    validate: config::validate,
};

/// Headers a flow may not set (the client owns them).
const RESERVED: [&str; 6] = ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te"];

impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Webhook { http: Http::new(&settings.allow_private, settings.concurrency), secret: self.secret })
    }
}

struct Webhook {
    http: Http,
    secret: Option<Secret>,
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 over "t." and the body>`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{unix_seconds}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

impl Webhook {
    async fn post(&self, action: Action<'_>) -> Result<Value, Failure> {
        let payload = action.payload;
        let url = crate::text(payload, "url", "webhook.post")?;
        let uri = parse_url(url)?;
        let method = match crate::optional_text(payload, "method")?.map(str::to_ascii_uppercase).as_deref() {
            None | Some("POST") => hyper::Method::POST,
            Some("PUT") => hyper::Method::PUT,
            Some("PATCH") => hyper::Method::PATCH,
            Some(other) => return Err(Failure::permanent(format!("`method` {other} is not POST, PUT or PATCH"))),
        };
        let body = match payload.get("body") {
            Some(Value::String(text)) => serde_json::from_str::<Value>(text).map_err(|e| {
                Failure::permanent(format!("`body` rendered to text that is not JSON ({e}); check the template"))
            })?,
            Some(value) => value.clone(),
            None => {
                let mut rest = payload.clone();
                if let Some(object) = rest.as_object_mut() {
                    for key in ["url", "method", "headers"] {
                        object.remove(key);
                    }
                }
                rest
            }
        };
        let bytes = serde_json::to_vec(&body).expect("JSON serialises");
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", header_value("Idempotency-Key", action.key)?)
            .header("Tutti-Flow", header_value("Tutti-Flow", action.flow)?)
            .header("Tutti-Step", header_value("Tutti-Step", action.step)?);
        match payload.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(headers)) => {
                for (name, value) in headers {
                    let Value::String(value) = value else {
                        return Err(Failure::permanent(format!("header `{name}` must be text")));
                    };
                    let lower = name.to_ascii_lowercase();
                    if RESERVED.contains(&lower.as_str()) || lower.starts_with("tutti-") || lower == "idempotency-key" {
                        return Err(Failure::permanent(format!("header `{name}` is set by Tutti, not by a flow")));
                    }
                    let value = header_value(name, value)?;
                    let name = hyper::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| Failure::permanent(format!("`{name}` is not a header name")))?;
                    request = request.header(name, value);
                }
            }
            Some(_) => return Err(Failure::permanent("`headers` must be a map of header names to text")),
        }
        if let Some(secret) = &self.secret {
            request = request.header("Tutti-Signature", signature(secret.expose(), action.now / 1000, &bytes));
        }
        let request = request
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| Failure::permanent(format!("the request cannot be built: {e}")))?;
        let answer = self.http.send(request).await?;
        classify(&answer, action.now)
    }
}

impl Sender for Webhook {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "post" => self.post(action).await,
                other => Err(crate::unknown_operation("webhook", other)),
            }
        })
    }

    /// Webhooks have no one endpoint to check: the client is built and its guard in place.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async { Ok(serde_json::json!({"ok": true, "signed": self.secret.is_some()})) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_over_the_timestamp_and_the_body() {
        // Checked against an independent computation: `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret`.
        assert_eq!(
            signature("s3cret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn what_this_connector_signs_a_tutti_hook_accepts() {
        let secret = |_: &str| Some("s3cret".to_owned());
        let verify = tutti_signals::verify::Verify::from_value(
            &serde_json::json!({"scheme": "tutti", "secret_env": "HOOK_SECRET"}),
            &secret,
        )
        .unwrap();
        let body = r#"{"a":"Xin chào 你好"}"#.as_bytes();
        let now_ms = 1_790_000_000_000;
        let check = |signed_with: &str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert("tutti-signature", signature(signed_with, now_ms / 1000, body).parse().unwrap());
            let request = tutti_signals::verify::Request {
                method: "POST",
                path_and_query: "/hooks/peer",
                headers: &headers,
                body,
                now_ms,
            };
            verify.check(&request)
        };
        assert_eq!(check("s3cret"), Ok(()));
        assert!(check("another secret").is_err());
    }
}
