//! Personalised copy: the `generate` step's work.
//!
//! 1. **The personalisation context**, at five levels, from what the flow sends (the profile's public JSON,
//!    the triggering event, the run's earlier results): *attributes* (name, language, the honorific where the
//!    language has one: Vietnamese anh/chị, Chinese 先生/女士); *behaviour* (the events the profile does most,
//!    what it last viewed); *current intent* (the triggering event and its item); *predicted next need*
//!    (replenishment from the last order and the usual interval, churn risk from the days since last seen);
//!    *recent sentiment* (support and chat text in the event or the run, read by [`crate::sentiment`]).
//! 2. **Variants**: N of them, as structured output from the routed provider (a large model when configured),
//!    else from the local generator, which composes copy from phrase templates per language and channel and
//!    says so (`local: true`).
//! 3. **Review** of every variant by the gate; a failing variant is revised with the gate's feedback up to
//!    `revisions` times (by the model when one wrote it, then by the gate's own repairs).
//! 4. The first variant that passes is the message; [`Stats`] counts first-pass and final pass rates per flow.
//!
//! The context is built in `context.rs`, the local generator is `local.rs`, the audit notes `audit.rs` and the
//! disclosure policy `policy.rs`; this file asks, reviews and revises.

mod audit;
mod context;
mod judge;
pub mod kind;
mod local;
mod phrases;
mod policy;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::provider::route::Router;
use crate::provider::{Completion, Message, Request, Schema, Task};
use crate::review::{Draft, Gate, Recipient, Review, Violation};
use crate::text::Language;

pub use audit::{CallNote, prompt_hash};
pub use context::{COMPLAINT_DAYS, Context, Level, RecentComplaint, context, context_within};
pub use local::{local_skill, local_variants, variants_schema};
pub use policy::{Disclose, GenerationPolicy};

/// The most variants one step may ask for, and the most revisions.
pub const MAX_VARIANTS: usize = 10;

pub const MAX_REVISIONS: usize = 5;

pub(super) const DAY_MS: i64 = 86_400_000;

/// What the step asked for (`generate:` in the flow, rendered).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub variants: Option<Value>,
    #[serde(default)]
    pub revisions: Option<Value>,
    #[serde(default)]
    pub packs: Vec<String>,
    #[serde(default)]
    pub brief: BTreeMap<String, Value>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub tone: Option<String>,
    #[serde(default)]
    pub max_chars: Option<Value>,
}

pub(super) fn number(v: &Option<Value>, default: usize, max: usize, key: &str) -> Result<usize, String> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n as usize <= max) => Ok(n.as_u64().unwrap_or(0) as usize),
        Some(Value::String(s)) if s.trim().parse::<usize>().is_ok_and(|n| n <= max) => {
            Ok(s.trim().parse().unwrap_or(default))
        }
        Some(other) => Err(format!("`{key}` must be a number from 0 to {max}, not {other}")),
    }
}

/// Generation and review counts per flow: first-pass and final pass rates.
#[derive(Debug, Default)]
pub struct Stats(Mutex<BTreeMap<String, Counts>>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub messages: u64,
    /// The chosen variant passed review without revision.
    pub first_pass: u64,
    /// It passed, revised or not.
    pub final_pass: u64,
    pub revisions: u64,
    pub fallbacks: u64,
}

impl Stats {
    pub fn snapshot(&self) -> BTreeMap<String, Counts> {
        self.0.lock().expect("never poisoned").clone()
    }

    fn count(&self, flow: &str, g: &Generated) {
        let mut map = self.0.lock().expect("never poisoned");
        let c = map.entry(flow.to_owned()).or_default();
        c.messages += 1;
        c.first_pass += u64::from(g.first_pass);
        c.final_pass += u64::from(g.passed);
        c.revisions += g.revisions as u64;
        c.fallbacks += u64::from(g.fallback_reason.is_some());
    }
}

/// The message a `generate` step produced: what later steps read as `run.steps.<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
    pub language: Language,
    pub channel: String,
    /// Which variant was chosen (from 0), of how many.
    pub variant: usize,
    pub variants: usize,
    pub passed: bool,
    pub first_pass: bool,
    pub revisions: usize,
    /// What still fails, when nothing passed (the flow can branch on `passed`).
    pub violations: Vec<Violation>,
    pub provider: String,
    pub model: String,
    pub local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub tokens: u32,
    pub cost_micros: u64,
    /// The AI-use disclosure appended to the body, when the channel's policy asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<String>,
    /// A model judged the chosen copy as well as the rules (and what it said, when it objected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_by: Option<String>,
    /// What the writer (the model, or the local generator) says it used and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The context it was personalised from (for the audit trail and the approver).
    pub context: Context,
    /// Every provider call made for it, for the audit trail (not part of the message).
    #[serde(skip)]
    pub calls: Vec<CallNote>,
}

/// The instructions a large model gets: the kind of message and how to address the person, the brief, what
/// is known of them (only the levels the data holds), the brand's voice, and what the review packs ask.
fn prompt(ctx: &Context, ask: &Ask, n: usize, channel: &str, voice: Option<&str>, rules: &[String]) -> Vec<Message> {
    let lang = match ctx.language {
        Language::Vi => "Vietnamese",
        Language::Zh => "Simplified Chinese",
        _ => "English",
    };
    let kind = serde_json::to_value(ctx.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let system = format!(
        "You write {channel} marketing copy for one customer, in {lang}: a {} message. Address them as \"{}\". \
         Write {n} distinct variants; the subject and the body say the same thing. Use only the facts given; never \
         promise guaranteed results, never include ids or internal notes. If the customer is unhappy, apologise \
         and do not sell. Put any required line before the sign-off. Follow the brand's voice and the review \
         rules below; in `explanation`, say in one sentence what you used and why. Answer in JSON with the \
         given schema.",
        kind.replace('_', " "),
        ctx.address
    );
    let facts = json!({"context": ctx, "brief": ask.brief, "tone": ask.tone});
    let mut user = format!("{}\n\nWhat we know: {facts}", ask.prompt);
    if let Some(voice) = voice.filter(|v| !v.trim().is_empty()) {
        user.push_str(&format!("\n\nThe brand's voice:\n{voice}"));
    }
    if !rules.is_empty() {
        user.push_str(&format!("\n\nReview rules:\n- {}", rules.join("\n- ")));
    }
    vec![Message::system(system), Message::user(user)]
}

/// Generates, reviews and revises one message with no disclosure and no judge. `input` is the `ai`
/// connector's payload.
pub async fn generate(
    input: &Value,
    router: &Router,
    gate: &Gate,
    stats: &Stats,
    now_ms: i64,
) -> Result<Generated, String> {
    generate_with(input, router, gate, stats, &GenerationPolicy::default(), now_ms).await
}

/// Generates, reviews and revises one message under the installation's [`GenerationPolicy`].
pub async fn generate_with(
    input: &Value,
    router: &Router,
    gate: &Gate,
    stats: &Stats,
    policy: &GenerationPolicy,
    now_ms: i64,
) -> Result<Generated, String> {
    let ask: Ask = serde_json::from_value(input["request"].clone()).map_err(|e| format!("`generate`: {e}"))?;
    let n = number(&ask.variants, 3, MAX_VARIANTS, "variants")?.max(1);
    let rounds = number(&ask.revisions, 2, MAX_REVISIONS, "revisions")?;
    let channel = ask.channel.clone().unwrap_or_else(|| "email".to_owned());
    let selection = if ask.packs.is_empty() {
        gate.select(&["general"]).unwrap_or_else(|_| gate.all())
    } else {
        gate.select(&ask.packs).map_err(|e| e.to_string())?
    };
    let ctx = context_within(input, now_ms, policy.complaint_days);
    let sms = channel == "sms";
    let rules = gate.rules_in_words(selection);
    let mut request = Request::new(Task::Generate, prompt(&ctx, &ask, n, &channel, policy.voice.as_deref(), &rules));
    request.schema = Some(variants_schema(n, sms));
    request.temperature = Some(0.7);
    request.input = json!({"context": ctx, "ask": ask, "n": n, "category": input["category"]});
    let completion = router.complete(&request, now_ms).await.map_err(|e| e.to_string())?;
    let mut calls = vec![CallNote::of("variants", &request, &completion)];
    let (drafts, explanations): (Vec<Draft>, Vec<Option<String>>) =
        drafts_of(&completion, &channel, ctx.language, input["category"].as_str())?.into_iter().unzip();
    let recipient = recipient_of(&input["profile"]);
    // The chosen variant: its index, the draft, whether it passed as written, and the review's uncertain
    // sentences.
    let mut chosen: Option<(usize, Draft, bool, Vec<Violation>)> = None;
    let mut last_failure: Option<(usize, Draft, Review)> = None;
    let mut revisions = 0;
    // A model that wrote the copy revises it with the gate's feedback; the gate's own repairs come after.
    let mut model_revises = !completion.local;
    for (i, draft) in drafts.iter().enumerate() {
        let review = gate.review(draft, &recipient, selection);
        if review.passed {
            chosen = Some((i, draft.clone(), true, review.uncertain));
            break;
        }
        let (mut current, mut verdict) = (draft.clone(), review);
        for _ in 0..rounds {
            let by_model = if model_revises {
                let revised = revise_by_model(router, &ctx, &channel, &current, &verdict, now_ms, &mut calls).await;
                // A provider that cannot revise (it fell back, or answered nonsense) is not asked again.
                model_revises = revised.is_some();
                revised
            } else {
                None
            };
            let Some(next) = by_model.or_else(|| gate.revise(&current, &verdict)) else { break };
            revisions += 1;
            current = next;
            verdict = gate.review(&current, &recipient, selection);
            if verdict.passed {
                chosen = Some((i, current.clone(), false, std::mem::take(&mut verdict.uncertain)));
                break;
            }
        }
        if chosen.is_some() {
            break;
        }
        last_failure.get_or_insert((i, current, verdict));
    }
    let (variant, draft, mut first_pass, mut passed, mut violations, uncertain) = match (chosen, last_failure) {
        (Some((i, d, first, uncertain)), _) => (i, d, first, true, Vec::new(), uncertain),
        (None, Some((i, d, r))) => (i, d, false, false, r.violations, Vec::new()),
        (None, None) => return Err("the provider gave no variants".into()),
    };
    let mut judged_by = None;
    if policy.judge
        && passed
        && let Some((judge, objections)) = judge::whole_copy(router, &draft, &channel, now_ms, &mut calls).await
    {
        judged_by = Some(judge);
        if !objections.is_empty() {
            (passed, first_pass, violations) = (false, false, objections);
        }
    }
    // Sentences the meaning classifier leaned towards a rule without reaching it: a model, when one is routed
    // for `judge`, gives its second opinion on each.
    if passed && let Some((judge, broken)) = judge::uncertain(router, &draft, &uncertain, now_ms, &mut calls).await {
        judged_by.get_or_insert(judge);
        if !broken.is_empty() {
            (passed, first_pass, violations) = (false, false, broken);
        }
    }
    let mut body = draft.field("body").unwrap_or_default().to_owned();
    let disclosure = policy.disclosure(&channel, draft.language(), !completion.local);
    if let Some(d) = &disclosure {
        // Before the sign-off, as every required line goes; at the end when there is none (an SMS).
        match crate::review::sign_off_at(&body).filter(|_| channel != "sms") {
            Some(at) => body.insert_str(at, &format!("{d}\n\n")),
            None => {
                body.push_str(if channel == "sms" { " " } else { "\n\n" });
                body.push_str(d);
            }
        }
    }
    let generated = Generated {
        subject: draft.field("subject").map(str::to_owned),
        body,
        language: draft.language(),
        channel,
        variant,
        variants: drafts.len(),
        passed,
        first_pass,
        revisions,
        violations,
        provider: completion.provider.clone(),
        model: completion.model.clone(),
        local: completion.local,
        fallback_reason: completion.fallback_reason.clone(),
        tokens: calls.iter().map(|c| c.prompt_tokens + c.completion_tokens).sum(),
        cost_micros: calls.iter().map(|c| c.cost_micros).sum(),
        disclosure,
        judged_by,
        explanation: explanations.get(variant).cloned().flatten(),
        context: ctx,
        calls,
    };
    stats.count(input["run"]["flow"].as_str().unwrap_or("-"), &generated);
    Ok(generated)
}

/// Asks the model that wrote a draft to fix what the gate found. `None` when it cannot (no model answered,
/// or the answer is not a draft).
async fn revise_by_model(
    router: &Router,
    ctx: &Context,
    channel: &str,
    draft: &Draft,
    review: &Review,
    now_ms: i64,
    calls: &mut Vec<CallNote>,
) -> Option<Draft> {
    let sms = channel == "sms";
    let feedback: Vec<String> = review
        .violations
        .iter()
        .map(|v| format!("- {} in {} at \"{}\": {}", v.rule, v.field, v.excerpt, v.says))
        .collect();
    let system = format!(
        "You revise {channel} marketing copy so that it passes compliance review. Keep the language, the \
         meaning and the way the customer is addressed (\"{}\"); change only what the review names. Answer in \
         JSON with the given schema.",
        ctx.address
    );
    let user = format!("The copy:\n{}\n\nWhat the review found:\n{}", fields_json(draft), feedback.join("\n"));
    let mut request = Request::new(Task::Generate, vec![Message::system(system), Message::user(user)]);
    let variant = &variants_schema(1, sms).schema["properties"]["variants"]["items"];
    request.schema = Some(Schema { name: "revision".into(), schema: variant.clone() });
    request.temperature = Some(0.2);
    let c = router.complete(&request, now_ms).await.ok()?;
    calls.push(CallNote::of("revision", &request, &c));
    if c.local {
        return None;
    }
    let v = c.structured.as_ref()?;
    let body = v["body"].as_str().filter(|b| !b.trim().is_empty())?;
    let mut out = match (v["subject"].as_str(), sms) {
        (Some(s), false) => Draft::new(channel, &[("subject", s), ("body", body)]),
        _ => Draft::new(channel, &[("body", body)]),
    };
    out.language = draft.language;
    out.category = draft.category.clone();
    Some(out)
}

/// A draft's fields as a JSON object, for a model to read.
fn fields_json(draft: &Draft) -> String {
    let fields: BTreeMap<&str, &str> = draft.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    serde_json::to_string(&fields).unwrap_or_default()
}

/// The variants of an answer as drafts of the flow's category, each with the writer's explanation, if any.
fn drafts_of(
    c: &Completion,
    channel: &str,
    language: Language,
    category: Option<&str>,
) -> Result<Vec<(Draft, Option<String>)>, String> {
    let variants = c
        .structured
        .as_ref()
        .and_then(|v| v["variants"].as_array())
        .ok_or_else(|| format!("{} gave no variants", c.provider))?;
    Ok(variants
        .iter()
        .map(|v| {
            let body = v["body"].as_str().unwrap_or_default();
            let mut d = match v["subject"].as_str() {
                Some(s) => Draft::new(channel, &[("subject", s), ("body", body)]),
                None => Draft::new(channel, &[("body", body)]),
            };
            d.language = Some(language);
            d.category = category.map(str::to_owned);
            (d, v["explanation"].as_str().map(|e| e.chars().take(500).collect()))
        })
        .collect())
}

/// The recipient's own contact details (allowed in their copy) and identifiers (never allowed).
fn recipient_of(profile: &Value) -> Recipient {
    let mut r = Recipient::default();
    for i in profile["identities"].as_array().into_iter().flatten() {
        let value = i["value"].as_str().unwrap_or_default().to_owned();
        match i["type"].as_str() {
            Some("email") => r.emails.push(value),
            Some("phone") => r.phones.push(value),
            _ => r.ids.push(value),
        }
    }
    if let Some(id) = profile["id"].as_str() {
        r.ids.push(id.to_owned());
    }
    r
}
