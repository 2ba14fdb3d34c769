//! Checking a model's structured answer against the JSON Schema it was given.
//!
//! Models that promise structure still break it (a grammar-constrained local model runs out of tokens mid-
//! object; a remote one drops a required key), so every structured answer is checked before anything uses it.
//! The keywords are the subset structured-output endpoints accept (OpenAI's strict mode, llama.cpp's grammar
//! conversion): `type` (one or a list), `properties`, `required`, `additionalProperties: false`, `items`,
//! `minItems`, `maxItems`, `enum`, `const`, `minLength`, `maxLength`, `minimum`, `maximum`, `anyOf`. Unknown
//! keywords are ignored, as those endpoints do.

use serde_json::Value;

/// Checks `value` against `schema`; the error names the path (`/variants/0/body`) and what was wrong.
pub fn check(value: &Value, schema: &Value) -> Result<(), String> {
    let mut path = String::new();
    walk(value, schema, &mut path, 0)
}

fn walk(value: &Value, schema: &Value, path: &mut String, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("{}: nested too deep", at(path)));
    }
    let Value::Object(s) = schema else { return Ok(()) };
    if let Some(options) = s.get("anyOf").and_then(Value::as_array) {
        let mut reasons = Vec::new();
        for option in options {
            match walk(value, option, path, depth + 1) {
                Ok(()) => return Ok(()),
                Err(e) => reasons.push(e),
            }
        }
        if !options.is_empty() {
            return Err(format!("{}: matches none of anyOf ({})", at(path), reasons.join("; ")));
        }
    }
    if let Some(t) = s.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| is_type(value, t)) {
            return Err(format!("{}: expected {}, found {}", at(path), allowed.join(" or "), type_of(value)));
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!("{}: {} is not one of {}", at(path), value, Value::Array(options.clone())));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        return Err(format!("{}: must be {c}", at(path)));
    }
    match value {
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                return Err(format!("{}: {n} characters, fewer than {min}", at(path)));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                return Err(format!("{}: {n} characters, more than {max}", at(path)));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                return Err(format!("{}: {n} is below {min}", at(path)));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                return Err(format!("{}: {n} is above {max}", at(path)));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                return Err(format!("{}: {n} items, fewer than {min}", at(path)));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                return Err(format!("{}: {n} items, more than {max}", at(path)));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    walk(item, item_schema, path, depth + 1)?;
                    path.truncate(len);
                }
            }
        }
        Value::Object(members) => {
            if let Some(required) = s.get("required").and_then(Value::as_array) {
                for key in required.iter().filter_map(Value::as_str) {
                    if !members.contains_key(key) {
                        return Err(format!("{}: `{key}` is required", at(path)));
                    }
                }
            }
            let properties = s.get("properties").and_then(Value::as_object);
            let closed = s.get("additionalProperties") == Some(&Value::Bool(false));
            for (key, member) in members {
                match properties.and_then(|p| p.get(key)) {
                    Some(member_schema) => {
                        let len = path.len();
                        path.push('/');
                        path.push_str(key);
                        walk(member, member_schema, path, depth + 1)?;
                        path.truncate(len);
                    }
                    None if closed => return Err(format!("{}: `{key}` is not allowed", at(path))),
                    None => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn at(path: &str) -> &str {
    if path.is_empty() { "the answer" } else { path }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "string" => value.is_string(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variants() -> Value {
        json!({
            "type": "object",
            "properties": {
                "variants": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
                    "type": "object",
                    "properties": {"subject": {"type": "string", "maxLength": 10}, "body": {"type": "string", "minLength": 1}},
                    "required": ["body"],
                    "additionalProperties": false
                }},
                "tone": {"enum": ["warm", "plain"]}
            },
            "required": ["variants"]
        })
    }

    #[test]
    fn a_good_answer_passes() {
        let v = json!({"variants": [{"subject": "Chào anh", "body": "Ưu đãi 10%"}], "tone": "warm"});
        assert_eq!(check(&v, &variants()), Ok(()));
    }

    #[test]
    fn each_break_is_named_by_its_path() {
        let cases = [
            (json!({}), "the answer: `variants` is required"),
            (json!({"variants": []}), "/variants: 0 items, fewer than 1"),
            (json!({"variants": [{"subject": "x"}]}), "/variants/0: `body` is required"),
            (json!({"variants": [{"body": 5}]}), "/variants/0/body: expected string, found integer"),
            (json!({"variants": [{"body": "b", "note": 1}]}), "/variants/0: `note` is not allowed"),
            (json!({"variants": [{"body": "b", "subject": "优惠优惠优惠优惠优惠优惠"}]}), "more than 10"),
            (json!({"variants": [{"body": "b"}], "tone": "loud"}), "/tone: \"loud\" is not one of"),
            (json!([1]), "expected object, found array"),
        ];
        for (value, want) in cases {
            let got = check(&value, &variants()).unwrap_err();
            assert!(got.contains(want), "{value}: {got}");
        }
    }
}
