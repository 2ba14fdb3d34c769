//! Models as reviewers: the judge that reads the whole copy (`judge = true`), and the second opinion on the
//! sentences the meaning classifier was unsure of. Both go to the provider routed for `judge`; with none, the
//! rules' verdict stands.

use serde_json::json;

use super::audit::CallNote;
use super::fields_json;
use crate::provider::route::Router;
use crate::provider::{Message, Request, Schema, Task};
use crate::review::{Draft, Severity, Violation};
use crate::text;

/// The most uncertain sentences one message asks a model about.
const MAX_UNCERTAIN: usize = 5;

/// The model-as-judge: the provider routed for `judge` reviews the copy. Returns who judged and what they
/// objected to (as violations of `judge.<rule>`), or `None` when no model judged (none configured, or it
/// failed: the rules' verdict stands).
pub(super) async fn whole_copy(
    router: &Router,
    draft: &Draft,
    channel: &str,
    now_ms: i64,
    calls: &mut Vec<CallNote>,
) -> Option<(String, Vec<Violation>)> {
    if !router.has_remote_for(Task::Judge) {
        return None;
    }
    let system = "You are a compliance reviewer of marketing copy. Object only to real problems: false or \
                  guaranteed claims, missing risk disclosure, health claims, pressure, personal data that does not \
                  belong, anything offensive. Quote the offending words exactly. Answer in JSON with the given schema.";
    let user = format!("{channel} copy:\n{}", fields_json(draft));
    let mut request = Request::new(Task::Judge, vec![Message::system(system), Message::user(user)]);
    request.schema = Some(Schema {
        name: "verdict".into(),
        schema: json!({"type": "object", "properties": {
            "passed": {"type": "boolean"},
            "objections": {"type": "array", "items": {"type": "object", "properties": {
                "rule": {"type": "string"}, "quote": {"type": "string"}, "says": {"type": "string"}},
                "required": ["rule", "quote", "says"], "additionalProperties": false}}},
            "required": ["passed", "objections"], "additionalProperties": false}),
    });
    request.temperature = Some(0.0);
    let c = router.complete(&request, now_ms).await.ok()?;
    calls.push(CallNote::of("judge", &request, &c));
    if c.local {
        return None;
    }
    let v = c.structured.as_ref()?;
    let body_len = draft.field("body").unwrap_or_default().chars().count();
    let objection =
        |rule: String, says: String, (field, start, end): (String, usize, usize), excerpt: String| Violation {
            rule,
            says,
            why: format!("{} judged it", c.model),
            severity: Severity::Block,
            field,
            start,
            end,
            excerpt,
            detail: String::new(),
        };
    let mut objections = Vec::new();
    for o in v["objections"].as_array().into_iter().flatten() {
        let quote = text::nfc(o["quote"].as_str().unwrap_or_default());
        let quote = quote.as_str();
        // Where the quote is, in characters of the field that holds it (the whole body when it is nowhere).
        let span = draft
            .fields
            .iter()
            .find_map(|(k, text)| {
                let at = text.find(quote).filter(|_| !quote.is_empty())?;
                let start = text[..at].chars().count();
                Some((k.clone(), start, start + quote.chars().count()))
            })
            .unwrap_or_else(|| ("body".to_owned(), 0, body_len));
        let rule: String = o["rule"].as_str().unwrap_or("objection").chars().take(60).collect();
        let says = o["says"].as_str().unwrap_or_default().chars().take(300).collect();
        objections.push(objection(format!("judge.{rule}"), says, span, quote.chars().take(200).collect()));
    }
    if v["passed"] == json!(false) && objections.is_empty() {
        let says = "the judge rejected the copy without naming why".to_owned();
        objections.push(objection("judge.rejected".into(), says, ("body".into(), 0, body_len), String::new()));
    }
    Some((c.provider.clone(), objections))
}

/// Asks the model routed for `judge` whether each sentence the classifier was unsure of breaks the rule it
/// leaned towards. Returns who answered and the sentences it says break their rule (as violations of that
/// rule, the answer in `detail`), or `None` when there was nothing to ask or no model answered.
pub(super) async fn uncertain(
    router: &Router,
    draft: &Draft,
    uncertain: &[Violation],
    now_ms: i64,
    calls: &mut Vec<CallNote>,
) -> Option<(String, Vec<Violation>)> {
    if uncertain.is_empty() || !router.has_remote_for(Task::Judge) {
        return None;
    }
    let asked: Vec<&Violation> = uncertain.iter().take(MAX_UNCERTAIN).collect();
    let questions: Vec<String> = asked
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{i}. \"{}\" — does it break the rule \"{}\" ({})?", v.excerpt, v.says, v.rule))
        .collect();
    let system = "You are a compliance reviewer of marketing copy. For each numbered sentence, say whether it breaks \
                  the rule named, reading its meaning, not its words alone. Answer in JSON with the given schema.";
    let user = format!("{} copy:\n{}\n\nSentences:\n{}", draft.channel, fields_json(draft), questions.join("\n"));
    let mut request = Request::new(Task::Judge, vec![Message::system(system), Message::user(user)]);
    request.schema = Some(Schema {
        name: "second_opinion".into(),
        schema: json!({"type": "object", "properties": {
            "answers": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "breaks": {"type": "boolean"}, "why": {"type": "string"}},
                "required": ["index", "breaks", "why"], "additionalProperties": false}}},
            "required": ["answers"], "additionalProperties": false}),
    });
    request.temperature = Some(0.0);
    let c = router.complete(&request, now_ms).await.ok()?;
    calls.push(CallNote::of("second_opinion", &request, &c));
    if c.local {
        return None;
    }
    let mut broken = Vec::new();
    for a in c.structured.as_ref()?["answers"].as_array().into_iter().flatten() {
        let Some(v) = a["index"].as_u64().and_then(|i| asked.get(i as usize)) else { continue };
        if a["breaks"] == json!(true) {
            let why: String = text::nfc(a["why"].as_str().unwrap_or_default()).chars().take(300).collect();
            let mut v = (*v).clone();
            v.detail = format!("{}; {} agreed: {why}", v.detail, c.model);
            broken.push(v);
        }
    }
    Some((c.provider.clone(), broken))
}
