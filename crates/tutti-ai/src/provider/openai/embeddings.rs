//! `POST /v1/embeddings`: the body, and the answer checked (OpenAI's API reference, "Create embeddings").

use serde_json::{Value, json};

use super::error_message;
use crate::provider::AiError;

/// The body of `POST /v1/embeddings` (OpenAI's API reference: `model`, `input` as an array of strings,
/// `encoding_format: "float"`).
pub fn embeddings_body(model: &str, texts: &[String]) -> Value {
    json!({"model": model, "input": texts, "encoding_format": "float"})
}

/// What an embeddings endpoint answered: one unit vector per input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsAnswer {
    pub model: Option<String>,
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens, when the endpoint counted them.
    pub prompt_tokens: Option<u32>,
}

/// Reads an embeddings `list` object for `expected` inputs: `data` holds one `embedding` per input, placed by
/// its `index`, all of one length, every number finite. An endpoint that gives a vector per token (llama.cpp's
/// server when the model has no pooling) has them averaged into one. Every vector is scaled to length 1.
pub fn parse_embeddings(body: &[u8], expected: usize) -> Result<EmbeddingsAnswer, AiError> {
    let bad = |m: String| AiError::Malformed(m);
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if let Some(message) = error_message(&v) {
        return Err(bad(format!("an error object instead of embeddings: {message}")));
    }
    let data = v.get("data").and_then(Value::as_array).ok_or_else(|| bad("no `data` list".into()))?;
    if data.len() != expected {
        return Err(bad(format!("{} embeddings for {expected} inputs", data.len())));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
    let mut dim = None;
    for (n, item) in data.iter().enumerate() {
        let index = item.get("index").and_then(Value::as_u64).map_or(n, |i| i as usize);
        let slot = vectors.get_mut(index).ok_or_else(|| bad(format!("index {index} is out of range")))?;
        if slot.is_some() {
            return Err(bad(format!("index {index} twice")));
        }
        let vector = match item.get("embedding") {
            Some(Value::Array(rows)) if rows.first().is_some_and(Value::is_array) => {
                let rows: Vec<Vec<f32>> = rows.iter().map(|r| numbers(r, index)).collect::<Result<_, _>>()?;
                mean(&rows).ok_or_else(|| bad(format!("embedding {index}: its token vectors differ in length")))?
            }
            Some(one) => numbers(one, index)?,
            None => return Err(bad(format!("item {n} has no `embedding`"))),
        };
        if vector.is_empty() {
            return Err(bad(format!("embedding {index} is empty")));
        }
        match dim {
            None => dim = Some(vector.len()),
            Some(d) if d != vector.len() => {
                return Err(bad(format!("embedding {index} has {} numbers, the first had {d}", vector.len())));
            }
            Some(_) => {}
        }
        *slot = Some(crate::embed::unit(vector));
    }
    let prompt_tokens = v
        .get("usage")
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32);
    Ok(EmbeddingsAnswer {
        model: v.get("model").and_then(Value::as_str).map(str::to_owned),
        vectors: vectors.into_iter().map(|v| v.expect("every index was filled: as many items as inputs")).collect(),
        prompt_tokens,
    })
}

/// A JSON array of finite numbers.
fn numbers(v: &Value, index: usize) -> Result<Vec<f32>, AiError> {
    let list = v.as_array().ok_or_else(|| AiError::Malformed(format!("embedding {index} is not a list")))?;
    list.iter()
        .map(|x| {
            x.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f as f32)
                .ok_or_else(|| AiError::Malformed(format!("embedding {index} holds {x}, not a number")))
        })
        .collect()
}

/// The average of equally long vectors.
fn mean(rows: &[Vec<f32>]) -> Option<Vec<f32>> {
    let d = rows.first()?.len();
    if rows.iter().any(|r| r.len() != d) {
        return None;
    }
    let mut out = vec![0f32; d];
    for r in rows {
        out.iter_mut().zip(r).for_each(|(o, x)| *o += x);
    }
    out.iter_mut().for_each(|o| *o /= rows.len() as f32);
    Some(out)
}
