//! An OpenAI-compatible model endpoint: chat completions and embeddings (`/openai/v1/...`).

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{OPENAI_KEY, Reply, State, header};

/// OpenAI's chat completions (API reference, "Create chat completion"): what it requires of a request, and its
/// answers, whole or as `chat.completion.chunk` events.
pub(super) fn openai(
    s: &mut State,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &Value,
) -> (u16, Response, Option<String>) {
    let refuse = |status: u16, why: String| {
        let answer = json!({"error": {"message": why, "type": "invalid_request_error", "param": null, "code": null}});
        (status, (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response(), Some(why))
    };
    if method != Method::POST || !["/chat/completions", "/embeddings"].contains(&rest) {
        return refuse(404, format!("unknown url {method} {rest}"));
    }
    if header(headers, "authorization") != format!("Bearer {OPENAI_KEY}") {
        return refuse(401, "Incorrect API key provided".into());
    }
    if !header(headers, "content-type").starts_with("application/json") {
        return refuse(400, "the body must be application/json".into());
    }
    if rest == "/embeddings" {
        return match embeddings(s, body) {
            Ok(answer) => (200, (StatusCode::OK, axum::Json(answer)).into_response(), None),
            Err(why) => refuse(400, why),
        };
    }
    if let Err(why) = openai_request(body) {
        return refuse(400, why);
    }
    let stream = body["stream"] == true;
    let usage = body["stream_options"]["include_usage"] == true;
    let reply = s.replies.pop_front().unwrap_or(Reply::Text("ok".into()));
    s.next_id += 1;
    let id = format!("chatcmpl-{}", s.next_id);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let (content, calls) = match &reply {
        Reply::Raw(raw) => {
            return (200, (StatusCode::OK, [("content-type", "application/json")], raw.clone()).into_response(), None);
        }
        Reply::CutStream(pieces) => {
            let mut text = String::new();
            for p in pieces {
                let chunk = json!({"id": id, "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
                text.push_str(&format!("data: {chunk}\n\n"));
            }
            return (200, (StatusCode::OK, [("content-type", "text/event-stream")], text).into_response(), None);
        }
        Reply::Text(t) => (Some(t.clone()), Vec::new()),
        Reply::Call { name, arguments } => (
            None,
            vec![
                json!({"id": format!("call_{}", s.next_id), "type": "function", "function": {"name": name, "arguments": arguments}}),
            ],
        ),
    };
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    let prompt_tokens: usize = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["content"].as_str().map_or(0, |c| c.len() / 4 + 1))
        .sum();
    let completion_tokens = content.as_deref().map_or(8, |c| c.len() / 4 + 1);
    let usage_object = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    if !stream {
        let answer = json!({
            "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "tool_calls": if calls.is_empty() { Value::Null } else { Value::Array(calls) }}, "finish_reason": finish}],
            "usage": usage_object,
        });
        return (200, (StatusCode::OK, axum::Json(answer)).into_response(), None);
    }
    let chunk = |delta: Value, finish: Value| json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    if let Some(text) = &content {
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(3) {
            events.push(chunk(json!({"content": piece.iter().collect::<String>()}), Value::Null));
        }
    }
    for (i, call) in calls.iter().enumerate() {
        // The name and id come once, then the arguments in pieces, as OpenAI streams them.
        events.push(chunk(json!({"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]}), Value::Null));
        let args: Vec<char> = call["function"]["arguments"].as_str().unwrap_or_default().chars().collect();
        for piece in args.chunks(5) {
            events.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece.iter().collect::<String>()}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if usage {
        text.push_str(&format!(
            "data: {}\n\n",
            json!({"id": id, "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage_object})
        ));
    }
    text.push_str("data: [DONE]\n\n");
    (200, (StatusCode::OK, [("content-type", "text/event-stream")], text).into_response(), None)
}

/// "Create embeddings": the request's rules, and the `list` of `embedding` objects it answers.
pub(super) fn embeddings(s: &State, body: &Value) -> Result<Value, String> {
    let o = body.as_object().ok_or("the body must be a JSON object")?;
    if let Some(k) =
        o.keys().find(|k| !["model", "input", "encoding_format", "dimensions", "user"].contains(&k.as_str()))
    {
        return Err(format!("Unrecognized request argument supplied: {k}"));
    }
    let model = body["model"].as_str().filter(|m| !m.is_empty()).ok_or("you must provide a model parameter")?;
    let inputs: Vec<&str> = match &body["input"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or("`input` must be a string or an array of strings"))
            .collect::<Result<_, _>>()?,
        _ => return Err("`input` must be a string or an array of strings".into()),
    };
    if inputs.is_empty() || inputs.len() > 2048 {
        return Err(format!("`input` must hold 1 to 2048 texts, not {}", inputs.len()));
    }
    if inputs.iter().any(|t| t.is_empty()) {
        return Err("`input` cannot contain an empty string".into());
    }
    match body.get("encoding_format").map(|f| f.as_str()) {
        None | Some(Some("float")) => {}
        Some(Some("base64")) => return Err("this stand-in answers floats only; Tutti asks for `float`".into()),
        Some(_) => return Err("`encoding_format` must be `float` or `base64`".into()),
    }
    let hashed = |t: &str| -> Vec<f32> {
        let h = tutti_core::hash::fnv1a(t.as_bytes());
        (0..8).map(|i| ((h >> (i * 8)) & 0xff) as f32 - 127.5).collect()
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = s.embedder.as_ref().map_or_else(|| hashed(t), |e| e(t));
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.len() / 4 + 1).sum();
    Ok(
        json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// The request rules of OpenAI's API reference that a client can get wrong.
pub(super) fn openai_request(body: &Value) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Err("you must provide a model parameter".into());
    }
    let messages =
        body["messages"].as_array().filter(|m| !m.is_empty()).ok_or("`messages` must be a non-empty array")?;
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
            return Err(format!("messages[{i}].role `{role}` is not one of system, developer, user, assistant, tool"));
        }
        let has_calls = m["tool_calls"].as_array().is_some_and(|c| !c.is_empty());
        if !(m["content"].is_string() || (role == "assistant" && has_calls && m["content"].is_null())) {
            return Err(format!("messages[{i}].content must be a string"));
        }
        if role == "tool" && !m["tool_call_id"].is_string() {
            return Err(format!("messages[{i}]: a tool message needs tool_call_id"));
        }
    }
    let tools = body.get("tools").map(|t| t.as_array().ok_or("`tools` must be an array")).transpose()?;
    let mut names = Vec::new();
    for (i, t) in tools.into_iter().flatten().enumerate() {
        let name = t["function"]["name"].as_str().unwrap_or_default();
        if t["type"] != "function" || !name_ok(name) {
            return Err(format!(
                "tools[{i}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}} with a valid name"
            ));
        }
        if !t["function"]["parameters"].is_object() {
            return Err(format!("tools[{i}].function.parameters must be a JSON Schema object"));
        }
        names.push(name);
    }
    match body.get("tool_choice") {
        None => {}
        Some(_) if names.is_empty() => return Err("`tool_choice` is only allowed when `tools` are specified".into()),
        Some(Value::String(c)) if ["none", "auto", "required"].contains(&c.as_str()) => {}
        Some(c) if c["type"] == "function" && c["function"]["name"].as_str().is_some_and(|n| names.contains(&n)) => {}
        Some(c) => return Err(format!("`tool_choice` {c} names no tool that was given")),
    }
    if body.get("stream_options").is_some() && body["stream"] != true {
        return Err("The 'stream_options' parameter is only allowed when 'stream' is enabled.".into());
    }
    if let Some(f) = body.get("response_format") {
        match f["type"].as_str() {
            Some("text") => {}
            Some("json_object") if f.as_object().is_some_and(|o| o.len() == 1) => {
                let said_json =
                    messages.iter().any(|m| m["content"].as_str().is_some_and(|c| c.to_lowercase().contains("json")));
                if !said_json {
                    return Err("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.".into());
                }
            }
            Some("json_object") => {
                return Err("response_format of type json_object takes no other keys (`schema` is not OpenAI's)".into());
            }
            Some("json_schema") => {
                let js = &f["json_schema"];
                if !js["name"].as_str().is_some_and(name_ok) || !js["schema"].is_object() {
                    return Err("response_format.json_schema needs a valid `name` and a `schema` object".into());
                }
                if js["strict"] == true {
                    strict_schema(&js["schema"], "schema")?;
                }
            }
            _ => return Err(format!("response_format.type {} is not text, json_object or json_schema", f["type"])),
        }
    }
    Ok(())
}

/// Strict mode: every object lists `additionalProperties: false` and requires all its properties.
pub(super) fn strict_schema(schema: &Value, at: &str) -> Result<(), String> {
    match schema {
        Value::Object(o) => {
            if let Some(props) = o.get("properties").and_then(Value::as_object) {
                if o.get("additionalProperties") != Some(&Value::Bool(false)) {
                    return Err(format!(
                        "Invalid schema: In context={at}, 'additionalProperties' is required to be supplied and to be false"
                    ));
                }
                let required: Vec<&str> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if let Some(missing) = props.keys().find(|k| !required.contains(&k.as_str())) {
                    return Err(format!(
                        "Invalid schema: In context={at}, 'required' is required to include every key, missing '{missing}'"
                    ));
                }
            }
            for (k, v) in o {
                strict_schema(v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| strict_schema(v, at)),
        _ => Ok(()),
    }
}
