//! A conversation a hook mapped (a CRM note or a logged call, `tutti-signals`' `conversations:`): the JSON of a
//! JSON line, or the same with the words under `transcript` as `Speaker: text` lines. Checked exactly as an
//! imported line or transcript is.

use serde_json::{Value, json};

use super::{Format, jsonl, transcript};
use crate::model::Conversation;

/// Reads a hook's conversation. The reason says what is wrong.
pub fn conversation(mapped: &Value) -> Result<Conversation, String> {
    let Some(words) = mapped.get("transcript") else { return jsonl::conversation(&mapped.to_string()) };
    let Some(words) = words.as_str() else { return Err("`transcript` must be text".into()) };
    // Everything but the words is read as a JSON line's members are (one placeholder turn stands for the words),
    // so a hook's conversation meets the same checks, then the words are read as a transcript.
    let mut meta = mapped.clone();
    if let Some(object) = meta.as_object_mut() {
        object.remove("transcript");
        object.insert("turns".into(), json!([{"speaker": "-", "role": "customer", "text": "-"}]));
    }
    let meta = jsonl::conversation(&meta.to_string())?;
    let options = transcript::Options {
        id: meta.id,
        channel: meta.channel,
        outcome: meta.outcome,
        started_at: meta.started_at,
        rep: meta.rep,
        customer: meta.customer,
        value: meta.value,
        currency: meta.currency,
    };
    let mut read = transcript::read(Format::Text, words.as_bytes(), &options)?;
    read.extra = meta.extra;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, Role};

    #[test]
    fn notes_and_transcripts_from_hooks_are_checked_as_imports_are() {
        let note = json!({"id": "hook:crm:note-1", "channel": "crm_note", "outcome": "won",
                          "customer": {"email": "lan@example.vn"}, "source": "hooks/crm",
                          "turns": [{"speaker": "note", "role": "customer", "text": "Khách lo ngại bảo mật dữ liệu."}]});
        let c = conversation(&note).unwrap();
        assert_eq!((c.id.as_str(), c.outcome, c.turns.len()), ("hook:crm:note-1", Outcome::Won, 1));
        assert_eq!(c.extra["source"], "hooks/crm");

        let call = json!({"id": "hook:crm:call-7", "channel": "call", "outcome": "open", "rep": "Minh",
                          "started_at": "2026-11-02T09:30:00+07:00", "customer": {"phone": "+84901234567"},
                          "transcript": "Minh: Chào chị, em gọi từ Tutti.\nLan: Giá bên em cao quá.\nMinh: Gói năm rẻ hơn 20%."});
        let c = conversation(&call).unwrap();
        let roles: Vec<Role> = c.turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, [Role::Rep, Role::Customer, Role::Rep]);
        assert_eq!(c.turns[1].text, "Giá bên em cao quá.");
        assert_eq!(c.customer["phone"], "+84901234567");
        assert!(c.started_at.is_some());

        let broken = json!({"id": "hook:crm:x", "started_at": "yesterday", "transcript": "A: hi"});
        assert!(conversation(&broken).unwrap_err().contains("started_at"));
        let binary = json!({"id": "hook:crm:y", "transcript": "\u{0}\u{1}"});
        assert!(conversation(&binary).is_err());
        assert!(conversation(&json!({"id": "hook:crm:z", "transcript": 5})).is_err());
    }
}
