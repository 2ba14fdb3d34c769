//! Conversations from hooks: a CRM note, or a call or chat the CRM logged, mapped to a conversation the miner
//! reads, beside (or instead of) the events of the same delivery.
//!
//! ```yaml
//! conversations:
//!   - when: 'item.type == "objection" || item.type == "note"'   # CEL over `item` and `payload`
//!     id: 'note-{{ item.note_id }}'          # required; kept as `hook:<source>:<id>`, so a retry changes nothing
//!     text: '{{ item.body }}'                # required: what was said or written
//!     format: note                           # note (default) or transcript
//!     speaker: '{{ item.owner.name }}'       # a note's speaker (default `note`)
//!     started_at: '{{ item.created_at }}'    # RFC 3339, or seconds or milliseconds since the epoch
//!     channel: crm_note                      # default `note`, or `call` for a transcript
//!     outcome: '{{ item.deal_stage }}'       # won, lost or open (anything else is open)
//!     value: '{{ item.amount }}'
//!     currency: VND
//!     rep: '{{ item.owner.email }}'
//!     customer: { email: '{{ item.contact.email }}' }   # identifiers that link it to a profile
//! ```
//!
//! A **note** is one customer turn: what the customer raised, as the rep wrote it down. A **transcript** is read
//! as `Speaker: text` lines, the speakers' roles told from their labels and `rep` (as `tutti conversations
//! import` reads a text transcript). What comes out is JSON for the conversations importer, which checks it as
//! it checks any imported conversation.

use serde_json::{Map, Value, json};
use tutti_core::condition::Condition;
use tutti_core::template::Template;
use tutti_core::yaml::push_token;

use super::{Cx, Hook, MapError, only, render_text, time_text};

/// The most conversations one delivery may produce.
pub const MAX_CONVERSATIONS: usize = 500;

const KEYS: [&str; 12] = [
    "when",
    "id",
    "text",
    "format",
    "speaker",
    "started_at",
    "channel",
    "outcome",
    "value",
    "currency",
    "rep",
    "customer",
];

#[derive(Debug)]
pub(crate) struct ConversationMap {
    when: Option<Condition>,
    id: Option<Template>,
    text: Option<Template>,
    transcript: bool,
    speaker: Option<Template>,
    started_at: Option<Template>,
    channel: Option<Template>,
    outcome: Option<Template>,
    value: Option<Template>,
    currency: Option<Template>,
    rep: Option<Template>,
    customer: Vec<(String, Template)>,
}

/// Reads one `conversations:` entry, its problems pushed to `cx`.
pub(crate) fn conversation_map(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Option<ConversationMap> {
    let Value::Object(o) = value else {
        cx.problem(pointer, "a conversation mapping is a map");
        return None;
    };
    only(cx, o, pointer, &KEYS);
    let at = |key: &str| push_token(pointer, key);
    let when = cx.condition(o.get("when"), &at("when"));
    for key in ["id", "text"] {
        if !o.contains_key(key) {
            cx.problem(pointer, format!("a conversation mapping needs `{key}`"));
        }
    }
    let transcript = match o.get("format").and_then(Value::as_str) {
        None | Some("note") => false,
        Some("transcript") => true,
        Some(other) => {
            cx.problem(&at("format"), format!("`format` is note or transcript, not `{other}`"));
            false
        }
    };
    let mut customer = Vec::new();
    match o.get("customer") {
        None => {}
        Some(Value::Object(ids)) => {
            for (kind, v) in ids {
                if let Some(t) = cx.template(Some(v), &push_token(&at("customer"), kind)) {
                    customer.push((kind.clone(), t));
                }
            }
        }
        Some(_) => cx.problem(&at("customer"), "`customer` is a map of identifiers, such as `{email: ...}`"),
    }
    Some(ConversationMap {
        when,
        id: cx.template(o.get("id"), &at("id")),
        text: cx.template(o.get("text"), &at("text")),
        transcript,
        speaker: cx.template(o.get("speaker"), &at("speaker")),
        started_at: cx.template(o.get("started_at"), &at("started_at")),
        channel: cx.template(o.get("channel"), &at("channel")),
        outcome: cx.template(o.get("outcome"), &at("outcome")),
        value: cx.template(o.get("value"), &at("value")),
        currency: cx.template(o.get("currency"), &at("currency")),
        rep: cx.template(o.get("rep"), &at("rep")),
        customer,
    })
}

impl Hook {
    /// The conversations (JSON for the conversations importer) a payload maps to. Items no mapping matches
    /// produce nothing; one that matches but renders no id or no text is an error naming the item. A
    /// transcript's lines are under `transcript`, for the importer's transcript reader.
    pub fn conversations(&self, payload: &Value) -> Result<Vec<Value>, MapError> {
        if self.conversations.is_empty() {
            return Ok(Vec::new());
        }
        let items = self.items_of(payload)?;
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let vars: [(&str, &Value); 2] = [("item", item), ("payload", payload)];
            for map in &self.conversations {
                if let Some(when) = &map.when
                    && !when.evaluate(&vars).unwrap_or(false)
                {
                    continue;
                }
                out.push(self.conversation(map, index, &vars)?);
                if out.len() > MAX_CONVERSATIONS {
                    return Err(MapError(format!(
                        "one delivery may produce at most {MAX_CONVERSATIONS} conversations"
                    )));
                }
            }
        }
        Ok(out)
    }

    fn conversation(&self, map: &ConversationMap, index: usize, vars: &[(&str, &Value)]) -> Result<Value, MapError> {
        let render = |t: Option<&Template>| render_text(t, vars, index);
        let id = render(map.id.as_ref())?
            .ok_or_else(|| MapError(format!("item {index}: the conversation's id rendered empty")))?;
        let text = render(map.text.as_ref())?
            .ok_or_else(|| MapError(format!("item {index}: the conversation's text rendered empty")))?;
        let mut c = Map::new();
        c.insert("id".into(), json!(format!("hook:{}:{id}", self.source)));
        let default_channel = if map.transcript { "call" } else { "note" };
        c.insert("channel".into(), json!(render(map.channel.as_ref())?.unwrap_or_else(|| default_channel.to_owned())));
        // A deal stage other than won or lost is still open.
        let outcome = match render(map.outcome.as_ref())?.map(|o| o.to_lowercase()) {
            Some(o) if o == "won" || o == "lost" => o,
            _ => "open".to_owned(),
        };
        c.insert("outcome".into(), json!(outcome));
        if let Some(at) = render(map.started_at.as_ref())? {
            c.insert("started_at".into(), json!(time_text(at)));
        }
        if let Some(v) = render(map.value.as_ref())? {
            let number: f64 = v.parse().map_err(|_| MapError(format!("item {index}: `value` is not a number: {v}")))?;
            c.insert("value".into(), json!(number));
        }
        if let Some(currency) = render(map.currency.as_ref())? {
            c.insert("currency".into(), json!(currency));
        }
        if let Some(rep) = render(map.rep.as_ref())? {
            c.insert("rep".into(), json!(rep));
        }
        let mut customer = Map::new();
        for (kind, t) in &map.customer {
            if let Some(v) = render(Some(t))? {
                customer.insert(kind.clone(), json!(v));
            }
        }
        c.insert("customer".into(), Value::Object(customer));
        c.insert("source".into(), json!(format!("hooks/{}", self.source)));
        if map.transcript {
            c.insert("transcript".into(), json!(text));
        } else {
            let speaker = render(map.speaker.as_ref())?.unwrap_or_else(|| "note".to_owned());
            c.insert("turns".into(), json!([{"speaker": speaker, "role": "customer", "text": text}]));
        }
        Ok(Value::Object(c))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::compile;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_hook_may_map_only_conversations_and_its_mistakes_are_located() {
        let hook = compile(
            "calls.yaml",
            "source: calls\nverify: none\nitems: calls\nconversations:\n  - id: '{{ item.id }}'\n    text: '{{ item.words }}'\n    format: transcript\n    started_at: '{{ item.at }}'\n    outcome: '{{ item.stage }}'\n    value: '{{ item.amount }}'\n    customer: { phone: '{{ item.phone }}' }\n",
            &none,
        )
        .unwrap();
        let payload = json!({"calls": [
            {"id": 1, "words": "Rep: Hello\nCustomer: Too expensive", "at": 1_793_000_000, "stage": "WON", "amount": "1500000", "phone": "+8490"},
            {"id": 2, "words": "Rep: Hi", "stage": "negotiation"}
        ]});
        assert!(hook.apply(&payload).unwrap().is_empty(), "no events mapped");
        let got = hook.conversations(&payload).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["id"], "hook:calls:1");
        assert_eq!((&got[0]["outcome"], &got[1]["outcome"]), (&json!("won"), &json!("open")));
        assert_eq!(got[0]["started_at"], "2026-10-26T07:33:20.000Z");
        assert_eq!((&got[0]["value"], &got[0]["channel"]), (&json!(1_500_000.0), &json!("call")));
        assert_eq!(got[0]["transcript"], "Rep: Hello\nCustomer: Too expensive");
        assert_eq!(got[0]["customer"], json!({"phone": "+8490"}));
        assert_eq!(got[1]["customer"], json!({}), "an empty identifier is left out");

        let empty = json!({"calls": [{"id": 3, "words": "  "}]});
        assert!(hook.conversations(&empty).unwrap_err().0.contains("text rendered empty"));
        let bad_value = json!({"calls": [{"id": 4, "words": "A: b", "amount": "lots"}]});
        assert!(hook.conversations(&bad_value).unwrap_err().0.contains("`value` is not a number"));

        let problems = compile(
            "bad.yaml",
            "source: bad\nverify: none\nconversations:\n  - text: '{{ item.x }}'\n    format: audio\n    customer: 5\n",
            &none,
        )
        .unwrap_err();
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(messages.iter().any(|m| m.contains("needs `id`")), "{messages:?}");
        assert!(
            messages.iter().any(|m| m.starts_with("bad.yaml:5:13") && m.contains("note or transcript")),
            "{messages:?}"
        );
        assert!(messages.iter().any(|m| m.contains("`customer` is a map")), "{messages:?}");
    }
}
