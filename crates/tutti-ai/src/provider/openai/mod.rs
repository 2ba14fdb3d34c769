//! The OpenAI chat-completions wire format, as OpenAI-compatible servers speak it. Pure: bodies in, bodies out;
//! the HTTP client is `tutti-connectors`' (`llm.rs`).
//!
//! Followed: OpenAI's API reference for `POST /v1/chat/completions` (messages, `tools` and `tool_choice`,
//! `response_format`, `stream` with `stream_options.include_usage`, the `chat.completion` and
//! `chat.completion.chunk` objects) and its structured-outputs guide (`json_schema` with `strict`).
//!
//! Structured output comes in three dialects, chosen per endpoint ([`Dialect`]):
//! - `json_schema`: OpenAI's `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` (OpenAI,
//!   vLLM, Ollama, DeepSeek and Qwen's compatible modes);
//! - `json_object`: `{"type": "json_object", "schema": {...}}`, how llama.cpp's Python server
//!   (llama-cpp-python) takes a schema and turns it into a grammar;
//! - `tool`: a forced call of one tool whose parameters are the schema, for endpoints that have tool calling
//!   but no structured output.
//!
//! Whatever the dialect, the answer is parsed and checked against the schema ([`super::schema`]) before it is
//! trusted: a malformed answer is an error ([`AiError::Malformed`]) the router can fall back from, never a
//! panic and never half a value.
//!
//! Streams are read in `stream.rs`, embeddings in `embeddings.rs`.

mod embeddings;
mod stream;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AiError, Request, Role, ToolCall, ToolChoice, Usage, schema};

pub use embeddings::{EmbeddingsAnswer, embeddings_body, parse_embeddings};
pub use stream::Stream;

/// How an endpoint takes a JSON schema for the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    #[default]
    JsonSchema,
    JsonObject,
    Tool,
}

/// The request body for `model`. `stream_usage`: ask for token counts at the end of a stream
/// (`stream_options.include_usage`), for endpoints that accept it.
pub fn body(model: &str, request: &Request, dialect: Dialect, stream_usage: bool) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("role".into(), m.role.name().into());
            o.insert("content".into(), m.content.clone().into());
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                o.insert("tool_calls".into(), calls.into());
            }
            if let (Role::Tool, Some(id)) = (m.role, &m.tool_call_id) {
                o.insert("tool_call_id".into(), id.clone().into());
            }
            Value::Object(o)
        })
        .collect();
    let mut b = Map::new();
    b.insert("model".into(), model.into());
    b.insert("messages".into(), messages.into());
    if let Some(n) = request.max_tokens {
        b.insert("max_tokens".into(), n.into());
    }
    if let Some(t) = request.temperature {
        b.insert("temperature".into(), json!(t));
    }
    if let Some(s) = request.seed {
        b.insert("seed".into(), s.into());
    }
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
        .collect();
    let mut choice = match &request.tool_choice {
        ToolChoice::Auto => None,
        ToolChoice::None => Some(json!("none")),
        ToolChoice::Required => Some(json!("required")),
        ToolChoice::Named(name) => Some(json!({"type": "function", "function": {"name": name}})),
    };
    if let Some(s) = &request.schema {
        match dialect {
            Dialect::JsonSchema => {
                let strict = strict_compatible(&s.schema);
                b.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": s.name, "schema": s.schema, "strict": strict}}),
                );
            }
            Dialect::JsonObject => {
                b.insert("response_format".into(), json!({"type": "json_object", "schema": s.schema}));
            }
            Dialect::Tool => {
                tools.push(json!({"type": "function", "function": {
                    "name": s.name, "description": "Give the answer as this function's arguments.", "parameters": s.schema
                }}));
                choice = Some(json!({"type": "function", "function": {"name": s.name}}));
            }
        }
    }
    if !tools.is_empty() {
        b.insert("tools".into(), tools.into());
        if let Some(c) = choice {
            b.insert("tool_choice".into(), c);
        }
    }
    if request.stream {
        b.insert("stream".into(), true.into());
        if stream_usage {
            b.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Value::Object(b)
}

/// OpenAI's strict mode needs every object closed (`additionalProperties: false`) with every property
/// required; a schema that is not so is sent with `strict: false` (still followed, not guaranteed).
fn strict_compatible(schema: &Value) -> bool {
    match schema {
        Value::Object(s) => {
            let closed_object = match s.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    let required: Vec<&str> = s
                        .get("required")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    s.get("additionalProperties") == Some(&Value::Bool(false))
                        && props.keys().all(|k| required.contains(&k.as_str()))
                }
                None => true,
            };
            closed_object && s.values().all(strict_compatible)
        }
        Value::Array(items) => items.iter().all(strict_compatible),
        _ => true,
    }
}

/// What an endpoint answered, before the request's expectations are checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub model: Option<String>,
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// Events read, when streamed.
    pub chunks: u32,
}

/// Reads a `chat.completion` object.
pub fn parse(body: &[u8]) -> Result<Answer, AiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AiError::Malformed(format!("not JSON: {e}")))?;
    if let Some(message) = error_message(&v) {
        return Err(AiError::Malformed(format!("an error object instead of a completion: {message}")));
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| AiError::Malformed("no `choices`".into()))?;
    let message = choice.get("message").ok_or_else(|| AiError::Malformed("the choice has no `message`".into()))?;
    let text = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(AiError::Malformed("`message.content` is not text".into())),
    };
    let mut tool_calls = Vec::new();
    for (i, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let f = call.get("function").ok_or_else(|| AiError::Malformed(format!("tool call {i} has no `function`")))?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let arguments = match f.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            // Some servers send the arguments as an object rather than JSON text.
            Some(other @ Value::Object(_)) => other.to_string(),
            _ => String::new(),
        };
        let id = call.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{i}"), str::to_owned);
        tool_calls.push(ToolCall { id, name: name.to_owned(), arguments });
    }
    Ok(Answer {
        model: v.get("model").and_then(Value::as_str).map(str::to_owned),
        text,
        tool_calls,
        finish_reason: choice.get("finish_reason").and_then(Value::as_str).map(str::to_owned),
        usage: usage(&v),
        chunks: 0,
    })
}

/// The message of an `{"error": ...}` body.
pub fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    Some(e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_owned))
}

pub(super) fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).map(|x| x.min(u64::from(u32::MAX)) as u32);
    Some(Usage { prompt_tokens: n("prompt_tokens")?, completion_tokens: n("completion_tokens")?, estimated: false })
}

/// The most an answer may hold, streamed or not: beyond it the endpoint is misbehaving.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// What the request asked for, taken out of an answer: the structured value (parsed and checked against the
/// schema) and the tool calls (each naming a tool the request offered, with JSON-object arguments).
pub fn expect(request: &Request, dialect: Dialect, answer: &Answer) -> Result<Option<Value>, AiError> {
    let offered = |name: &str| {
        request.tools.iter().any(|t| t.name == name)
            || (dialect == Dialect::Tool && request.schema.as_ref().is_some_and(|s| s.name == name))
    };
    for call in &answer.tool_calls {
        if !offered(&call.name) {
            return Err(AiError::Malformed(format!("a call of `{}`, which was not offered", call.name)));
        }
        let args = lenient_json(&call.arguments);
        match &args {
            Ok(Value::Object(_)) => {}
            Ok(_) => {
                return Err(AiError::Malformed(format!(
                    "`{}` was called with arguments that are not an object",
                    call.name
                )));
            }
            Err(e) => {
                return Err(AiError::Malformed(format!(
                    "`{}` was called with arguments that are not JSON: {e}",
                    call.name
                )));
            }
        }
        if let (Some(tool), Ok(args)) = (request.tools.iter().find(|t| t.name == call.name), &args) {
            schema::check(args, &tool.parameters)
                .map_err(|e| AiError::Malformed(format!("`{}` arguments: {e}", call.name)))?;
        }
    }
    if let ToolChoice::Named(name) = &request.tool_choice
        && !answer.tool_calls.iter().any(|c| &c.name == name)
    {
        return Err(AiError::Malformed(format!("`{name}` was required but not called")));
    }
    let Some(s) = &request.schema else { return Ok(None) };
    let source = match dialect {
        Dialect::Tool => match answer.tool_calls.iter().find(|c| c.name == s.name) {
            Some(call) => call.arguments.as_str(),
            None => return Err(AiError::Malformed(format!("the structure tool `{}` was not called", s.name))),
        },
        Dialect::JsonSchema | Dialect::JsonObject => answer.text.as_str(),
    };
    let value: Value = lenient_json(unfence(source)).map_err(|e| {
        let cut = if answer.finish_reason.as_deref() == Some("length") { " (cut off at max_tokens)" } else { "" };
        AiError::Malformed(format!("the structured answer is not JSON{cut}: {e}"))
    })?;
    schema::check(&value, &s.schema).map_err(AiError::Malformed)?;
    Ok(Some(value))
}

/// JSON as models write it: strict first, then with raw control characters in strings escaped.
pub fn lenient_json(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text).or_else(|e| serde_json::from_str(&escape_raw_controls(text)).map_err(|_| e))
}

/// Raw control characters inside JSON strings escaped: small models (and some grammars) put real line breaks
/// in string values, which JSON forbids. Outside strings they are whitespace and stay.
fn escape_raw_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string && !escaped && (c as u32) < 0x20 {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                other => out.push_str(&format!("\\u{:04x}", other as u32)),
            }
            continue;
        }
        out.push(c);
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
    }
    out
}

/// The JSON inside a Markdown code fence, which models add even when told not to.
fn unfence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else { return t };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Message, Schema, Task, Tool};

    fn structured() -> Request {
        let mut r = Request::new(Task::Generate, vec![Message::system("Write."), Message::user("Chào anh Minh")]);
        r.schema = Some(Schema {
            name: "copy".into(),
            schema: json!({"type": "object", "properties": {"body": {"type": "string"}}, "required": ["body"], "additionalProperties": false}),
        });
        r
    }

    #[test]
    fn each_dialect_asks_for_structure_its_own_way() {
        let r = structured();
        let b = body("m", &r, Dialect::JsonSchema, true);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "copy");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert!(b.get("tools").is_none() && b.get("stream").is_none());
        let b = body("m", &r, Dialect::JsonObject, true);
        assert_eq!(b["response_format"], json!({"type": "json_object", "schema": r.schema.as_ref().unwrap().schema}));
        let b = body("m", &r, Dialect::Tool, true);
        assert!(b.get("response_format").is_none());
        assert_eq!(b["tools"][0]["function"]["name"], "copy");
        assert_eq!(b["tool_choice"], json!({"type": "function", "function": {"name": "copy"}}));
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "Chào anh Minh"}));
    }

    #[test]
    fn an_open_schema_is_not_sent_as_strict() {
        let mut r = structured();
        r.schema.as_mut().unwrap().schema = json!({"type": "object", "properties": {"body": {"type": "string"}}});
        assert_eq!(body("m", &r, Dialect::JsonSchema, false)["response_format"]["json_schema"]["strict"], false);
    }

    #[test]
    fn streams_are_assembled_across_any_split() {
        let events = concat!(
            ": keep-alive\n\n",
            "data: {\"model\":\"smol\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Ch\u{e0}o \"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"copy\",\"arguments\":\"{\\\"bo\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"anh\",\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"copy\",\"arguments\":\"dy\\\":\\\"x\\\"}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        )
        .as_bytes();
        for split in [1, 2, 3, 7, 64, events.len()] {
            let mut s = Stream::new();
            for piece in events.chunks(split) {
                s.feed(piece).unwrap();
            }
            let a = s.finish().unwrap();
            assert_eq!(a.text, "Chào anh", "split {split}");
            assert_eq!(
                a.tool_calls,
                vec![ToolCall { id: "c1".into(), name: "copy".into(), arguments: "{\"body\":\"x\"}".into() }]
            );
            assert_eq!((a.chunks, a.finish_reason.as_deref(), a.model.as_deref()), (5, Some("stop"), Some("smol")));
            assert_eq!(a.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((7, 3)));
        }
    }

    #[test]
    fn a_cut_or_broken_stream_is_malformed() {
        let mut s = Stream::new();
        s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n").unwrap();
        assert!(matches!(s.finish(), Err(AiError::Malformed(m)) if m.contains("without a finish reason")));
        let mut s = Stream::new();
        assert!(matches!(s.feed(b"data: {not json\n\n"), Err(AiError::Malformed(_))));
        let mut s = Stream::new();
        assert!(
            matches!(s.feed(b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"), Err(AiError::Malformed(m)) if m.contains("overloaded"))
        );
    }

    #[test]
    fn answers_are_checked_before_they_are_trusted() {
        let r = structured();
        let ok = parse(br#"{"model":"m","choices":[{"message":{"content":"```json\n{\"body\":\"Ch\u00e0o\"}\n```"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#).unwrap();
        assert_eq!(expect(&r, Dialect::JsonSchema, &ok).unwrap(), Some(json!({"body": "Chào"})));
        let lines = parse(b"{\"choices\":[{\"message\":{\"content\":\"{\\\"body\\\": \\\"Line one\\nline \\\\\\\"two\\\\\\\"\\\"}\"}}]}").unwrap();
        assert!(lines.text.contains('\n'));
        assert_eq!(expect(&r, Dialect::JsonObject, &lines).unwrap(), Some(json!({"body": "Line one\nline \"two\""})));
        let cut =
            parse(br#"{"choices":[{"message":{"content":"{\"body\": \"Ch"},"finish_reason":"length"}]}"#).unwrap();
        assert!(matches!(expect(&r, Dialect::JsonObject, &cut), Err(AiError::Malformed(m)) if m.contains("cut off")));
        let wrong = parse(br#"{"choices":[{"message":{"content":"{\"text\":\"x\"}"}}]}"#).unwrap();
        assert!(
            matches!(expect(&r, Dialect::JsonObject, &wrong), Err(AiError::Malformed(m)) if m.contains("`body` is required"))
        );
        let no_tool = parse(br#"{"choices":[{"message":{"content":"{\"body\":\"x\"}"}}]}"#).unwrap();
        assert!(matches!(expect(&r, Dialect::Tool, &no_tool), Err(AiError::Malformed(_))));
        for bad in [
            &b"<html>502</html>"[..],
            br#"{"choices":[]}"#,
            br#"{"error":{"message":"bad key"}}"#,
            br#"{"choices":[{"message":{"content":5}}]}"#,
        ] {
            assert!(matches!(parse(bad), Err(AiError::Malformed(_))), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn embeddings_are_placed_by_index_pooled_and_checked() {
        let texts = vec!["lo ngại bảo mật".to_owned(), "担心数据安全".to_owned()];
        assert_eq!(
            embeddings_body("text-embedding-3-small", &texts),
            json!({"model": "text-embedding-3-small", "input": ["lo ngại bảo mật", "担心数据安全"], "encoding_format": "float"})
        );
        let a = parse_embeddings(
            br#"{"object":"list","model":"e","data":[{"object":"embedding","index":1,"embedding":[0,2]},{"object":"embedding","index":0,"embedding":[3,4]}],"usage":{"prompt_tokens":9,"total_tokens":9}}"#,
            2,
        )
        .unwrap();
        assert_eq!(a.vectors, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
        assert_eq!((a.model.as_deref(), a.prompt_tokens), (Some("e"), Some(9)));
        // One vector per token (llama.cpp without pooling): averaged.
        let per_token = parse_embeddings(br#"{"data":[{"index":0,"embedding":[[1,0],[3,0],[4,6]]}]}"#, 1).unwrap();
        let v = &per_token.vectors[0];
        assert!((v[0] - 0.8).abs() < 1e-6 && (v[1] - 0.6).abs() < 1e-6, "the mean (8/3, 2) at unit length: {v:?}");
        for (bad, want) in [
            (&br#"{"data":[{"index":0,"embedding":[1,2]}]}"#[..], "1 embeddings for 2 inputs"),
            (br#"{"data":[{"index":0,"embedding":[1,2]},{"index":0,"embedding":[1,2]}]}"#, "index 0 twice"),
            (br#"{"data":[{"index":0,"embedding":[1,2]},{"index":5,"embedding":[1,2]}]}"#, "out of range"),
            (br#"{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2,3]}]}"#, "the first had 2"),
            (br#"{"data":[{"index":0,"embedding":[1,"x"]},{"index":1,"embedding":[1,2]}]}"#, "not a number"),
            (br#"{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[1,2]}]}"#, "empty"),
            (br#"{"error":{"message":"model not found"}}"#, "model not found"),
            (b"<html>", "not JSON"),
        ] {
            let e = parse_embeddings(bad, 2).unwrap_err();
            assert!(
                matches!(&e, AiError::Malformed(m) if m.contains(want)),
                "{e:?} for {}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn tool_calls_must_name_an_offered_tool_with_object_arguments() {
        let mut r = Request::new(Task::Plan, vec![Message::user("plan")]);
        r.tools = vec![Tool {
            name: "create_task".into(),
            description: "d".into(),
            parameters: json!({"type": "object", "required": ["title"]}),
        }];
        r.tool_choice = ToolChoice::Named("create_task".into());
        let a = |calls: &str| {
            parse(format!(r#"{{"choices":[{{"message":{{"content":null,"tool_calls":{calls}}}}}]}}"#).as_bytes())
                .unwrap()
        };
        assert_eq!(
            expect(
                &r,
                Dialect::JsonSchema,
                &a(r#"[{"id":"1","function":{"name":"create_task","arguments":"{\"title\":\"t\"}"}}]"#)
            ),
            Ok(None)
        );
        for bad in [
            r#"[{"id":"1","function":{"name":"delete_all","arguments":"{}"}}]"#,
            r#"[{"id":"1","function":{"name":"create_task","arguments":"[1]"}}]"#,
            r#"[{"id":"1","function":{"name":"create_task","arguments":"{\"titl"}}]"#,
            r#"[{"id":"1","function":{"name":"create_task","arguments":"{}"}}]"#,
            r#"[]"#,
        ] {
            assert!(matches!(expect(&r, Dialect::JsonSchema, &a(bad)), Err(AiError::Malformed(_))), "{bad}");
        }
    }
}
