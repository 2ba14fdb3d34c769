//! Any webhook receiver (`/hook/...`), signed with the shared secret.

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{Outcome, WEBHOOK_SECRET, header, is_json, refuse};

/// Any webhook receiver: JSON bodies; a signature, when present, must verify. Under `/hook/echo` it answers
/// with the body it received, as request-catching receivers do (so a test can see where a vendor's answer about
/// a person is kept).
pub(super) fn hook(method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if ![Method::POST, Method::PUT, Method::PATCH].contains(method) {
        return refuse(405, json!({"error": "method"}), "hook: method");
    }
    if !is_json(headers) || serde_json::from_slice::<Value>(body).is_err() {
        return refuse(400, json!({"error": "json"}), "hook: not JSON");
    }
    if header(headers, "idempotency-key").is_empty() {
        return refuse(400, json!({"error": "idempotency key"}), "hook: no Idempotency-Key");
    }
    let signature = header(headers, "tutti-signature");
    if !signature.is_empty() {
        let t: i64 =
            signature.strip_prefix("t=").and_then(|r| r.split(',').next()).and_then(|t| t.parse().ok()).unwrap_or(-1);
        if crate::webhook::signature(WEBHOOK_SECRET, t, body) != signature {
            return refuse(401, json!({"error": "signature"}), "hook: bad signature");
        }
    }
    if rest.starts_with("echo") {
        let echo: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        return Ok((StatusCode::OK, json!({"received": true, "echo": echo})));
    }
    Ok((StatusCode::OK, json!({"received": true})))
}
