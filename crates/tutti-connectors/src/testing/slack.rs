//! Slack: the Web API (`/slack/api/...`) and incoming webhooks (`/slack-hook/...`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{Outcome, SLACK_TOKEN, State, header, is_json, refuse};

/// <https://docs.slack.dev/reference/methods/chat.postMessage/>: errors are HTTP 200 with `ok: false`.
pub(super) fn slack(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |error: &str| refuse(200, json!({"ok": false, "error": error}), format!("slack: {error}"));
    if method != Method::POST {
        return fail("method_not_supported_for_channel_type");
    }
    match header(headers, "authorization").strip_prefix("Bearer ") {
        None => return fail("not_authed"),
        Some(token) if token != SLACK_TOKEN => return fail("invalid_auth"),
        Some(_) => {}
    }
    match rest {
        "/auth.test" => Ok((StatusCode::OK, json!({"ok": true, "team": "Tutti", "user": "tutti-bot"}))),
        "/chat.postMessage" => {
            if !is_json(headers) {
                return fail("invalid_form_data");
            }
            let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else { return fail("invalid_json") };
            if args.contains_key("token") {
                return fail("invalid_arg_name");
            }
            let Some(channel) = args.get("channel").and_then(Value::as_str).filter(|c| !c.is_empty()) else {
                return fail("channel_not_found");
            };
            let text = args.get("text").and_then(Value::as_str).unwrap_or("");
            let blocks = args.get("blocks");
            if let Some(blocks) = blocks {
                let ok = blocks.as_array().is_some_and(|b| {
                    !b.is_empty() && b.len() <= 50 && b.iter().all(|x| x.get("type").and_then(Value::as_str).is_some())
                });
                if !ok {
                    return fail("invalid_blocks");
                }
            }
            if text.is_empty() && blocks.is_none() && args.get("attachments").is_none() {
                return fail("no_text");
            }
            if text.chars().count() > 40_000 {
                return fail("msg_too_long");
            }
            if let Some(metadata) = args.get("metadata")
                && (metadata.get("event_type").and_then(Value::as_str).is_none()
                    || !metadata.get("event_payload").is_some_and(Value::is_object))
            {
                return fail("invalid_metadata_format");
            }
            s.next_id += 1;
            let ts = format!("1700000000.{:06}", s.next_id);
            Ok((StatusCode::OK, json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": text}})))
        }
        _ => fail("unknown_method"),
    }
}

/// <https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks>: `ok` as text, or an error word.
pub(super) fn slack_hook(method: &Method, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if method != Method::POST {
        return refuse(405, json!("invalid_method"), "slack webhook: method");
    }
    if !is_json(headers) {
        return refuse(400, json!("invalid_payload"), "slack webhook: content type");
    }
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else {
        return refuse(400, json!("invalid_payload"), "slack webhook: not a JSON object");
    };
    let has_text = args.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    if !has_text && !args.contains_key("blocks") && !args.contains_key("attachments") {
        return refuse(400, json!("no_text"), "slack webhook: no_text");
    }
    Ok((StatusCode::OK, json!("ok")))
}
