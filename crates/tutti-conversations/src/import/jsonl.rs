//! One conversation per JSON line:
//! `{"id", "started_at", "channel", "outcome", "value", "currency", "rep", "customer": {...}, "turns": [...]}`.
//! `id` and `turns` are required; every other key is optional, and keys Tutti does not read are kept.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tutti_core::time::parse_timestamp;

use super::{check_name, check_text, roles::role_of_speaker};
use crate::model::{Conversation, Outcome, Role, Turn, limits};

const READ: [&str; 9] = ["id", "started_at", "channel", "outcome", "value", "currency", "rep", "customer", "turns"];

/// Reads one line. The reason says which member is wrong and why.
pub fn conversation(line: &str) -> Result<Conversation, String> {
    if line.len() > limits::CONVERSATION_BYTES {
        return Err(format!(
            "the line is {} bytes, over the {} a conversation may be",
            line.len(),
            limits::CONVERSATION_BYTES
        ));
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut object) = value else { return Err("not a JSON object".into()) };
    let id = match object.get("id") {
        Some(Value::String(s)) => check_name("id", s)?,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("`id` must be a string".into()),
        None => return Err("`id` is missing".into()),
    };
    let text = |key: &str, object: &Map<String, Value>| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => check_name(key, s).map(Some),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let started_at = match object.get("started_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_timestamp(s).ok_or_else(|| {
            format!("`started_at` {s:?} is not a date-time with an offset, such as 2026-11-02T09:30:00+07:00")
        })?),
        Some(_) => return Err("`started_at` must be a date-time string".into()),
    };
    let outcome = match object.get("outcome") {
        None | Some(Value::Null) => Outcome::Open,
        Some(Value::String(s)) => {
            Outcome::parse(s).ok_or_else(|| format!("`outcome` {s:?} is not one of won, lost, open"))?
        }
        Some(_) => return Err("`outcome` must be won, lost or open".into()),
    };
    let value = match object.get("value") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => return Err("`value` must be a number at least 0".into()),
        },
        Some(_) => return Err("`value` must be a number".into()),
    };
    let channel = text("channel", &object)?.unwrap_or_else(|| "call".to_owned());
    let currency = text("currency", &object)?.map(|c| c.to_uppercase());
    if let Some(c) = &currency
        && (c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(format!("`currency` {c:?} is not a three-letter ISO 4217 code"));
    }
    let rep = text("rep", &object)?;
    let customer = match object.get("customer") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(ids)) => identifiers(ids)?,
        Some(_) => return Err("`customer` must be an object of identifiers, such as {\"email\": \"...\"}".into()),
    };
    let turns = match object.get("turns") {
        Some(Value::Array(turns)) => turns,
        Some(_) => return Err("`turns` must be a list".into()),
        None => return Err("`turns` is missing".into()),
    };
    if turns.is_empty() {
        return Err("`turns` is empty".into());
    }
    if turns.len() > limits::TURNS {
        return Err(format!("{} turns, over the {} a conversation may have", turns.len(), limits::TURNS));
    }
    let turns = turns
        .iter()
        .enumerate()
        .map(|(n, turn)| self::turn(turn, rep.as_deref()).map_err(|e| format!("turn {}: {e}", n + 1)))
        .collect::<Result<Vec<Turn>, String>>()?;
    let started_at = started_at.or_else(|| turns.iter().find_map(|t| t.at));
    for key in READ {
        object.remove(key);
    }
    Ok(Conversation { id, started_at, channel, outcome, value, currency, rep, customer, turns, extra: object })
}

fn identifiers(ids: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    if ids.len() > limits::IDENTIFIERS {
        return Err(format!("`customer` has {} identifiers, over {}", ids.len(), limits::IDENTIFIERS));
    }
    let mut out = BTreeMap::new();
    for (key, value) in ids {
        let key = check_name("an identifier's name", key)?;
        let value = match value {
            Value::String(s) => check_name(&format!("customer.{key}"), s)?,
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            _ => return Err(format!("`customer.{key}` must be a string")),
        };
        if !value.is_empty() {
            out.insert(key, value);
        }
    }
    Ok(out)
}

fn turn(value: &Value, rep: Option<&str>) -> Result<Turn, String> {
    let Value::Object(object) = value else { return Err("must be an object with `text`".into()) };
    let text = match object.get("text") {
        Some(Value::String(s)) => check_text(s)?,
        Some(_) => return Err("`text` must be a string".into()),
        None => return Err("`text` is missing".into()),
    };
    let speaker = match object.get("speaker") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => check_name("speaker", s)?,
        Some(_) => return Err("`speaker` must be a string".into()),
    };
    let role = match object.get("role") {
        Some(Value::String(s)) => Role::parse(s).ok_or_else(|| format!("`role` {s:?} is not customer or rep"))?,
        None | Some(Value::Null) => role_of_speaker(&speaker, rep).ok_or_else(|| {
            format!("no `role`, and the speaker {speaker:?} is neither the rep nor named like a customer or an agent")
        })?,
        Some(_) => return Err("`role` must be customer or rep".into()),
    };
    let at = match object.get("at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(parse_timestamp(s).ok_or_else(|| format!("`at` {s:?} is not a date-time with an offset"))?)
        }
        Some(_) => return Err("`at` must be a date-time string".into()),
    };
    let speaker = if speaker.is_empty() { role.as_str().to_owned() } else { speaker };
    Ok(Turn { speaker, role, at, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_line_is_read_and_unknown_keys_are_kept() {
        let c = conversation(
            r#"{"id":"c1","started_at":"2026-11-02T09:30:00+07:00","channel":"call","outcome":"won","value":1200000,
               "currency":"vnd","rep":"Lan","customer":{"email":"an@example.vn","phone":"+84901234567"},
               "turns":[{"speaker":"An","role":"customer","text":"Giá hơi cao quá"},{"speaker":"Lan","text":"Dạ, em hiểu ạ"}],
               "crm_stage":"proposal"}"#,
        )
        .unwrap();
        assert_eq!(c.outcome, Outcome::Won);
        assert_eq!(c.currency.as_deref(), Some("VND"));
        assert_eq!(c.turns[1].role, Role::Rep, "the rep's name gives the role");
        assert_eq!(c.customer["phone"], "+84901234567");
        assert_eq!(c.extra["crm_stage"], "proposal");
        assert_eq!(c.started_at, parse_timestamp("2026-11-02T02:30:00Z"));
    }

    #[test]
    fn a_minimal_line_is_enough() {
        let c = conversation(r#"{"id":"c2","turns":[{"role":"customer","text":"太贵了"}]}"#).unwrap();
        assert_eq!((c.outcome, c.channel.as_str(), c.started_at), (Outcome::Open, "call", None));
        assert_eq!(c.turns[0].speaker, "customer");
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, reason) in [
            ("[1]", "not a JSON object"),
            (r#"{"turns":[]}"#, "`id` is missing"),
            (r#"{"id":"x","turns":[]}"#, "`turns` is empty"),
            (r#"{"id":"x","outcome":"maybe","turns":[{"role":"rep","text":"hi"}]}"#, "not one of won"),
            (r#"{"id":"x","started_at":"yesterday","turns":[{"role":"rep","text":"hi"}]}"#, "not a date-time"),
            (r#"{"id":"x","turns":[{"role":"rep","text":"hi"},{"speaker":"Bob","text":"?"}]}"#, "turn 2: no `role`"),
            (r#"{"id":"x","turns":[{"role":"rep","text":"a\u0000b"}]}"#, "control character"),
            (r#"{"id":"x","value":-3,"turns":[{"role":"rep","text":"hi"}]}"#, "at least 0"),
        ] {
            let e = conversation(line).unwrap_err();
            assert!(e.contains(reason), "{line}: {e}");
        }
    }

    #[test]
    fn too_many_turns_are_refused() {
        let turns: Vec<String> = (0..100_000).map(|_| r#"{"role":"customer","text":"a"}"#.to_owned()).collect();
        let line = format!(r#"{{"id":"big","turns":[{}]}}"#, turns.join(","));
        assert!(conversation(&line).unwrap_err().contains("100000 turns, over the 20000"));
    }
}
