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

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::provider::route::Router;
use crate::provider::{AiError, Completion, Embeddings, Message, Request, Schema, Task};
use crate::review::{Draft, Gate, Recipient, Review, Violation};
use crate::sentiment::{self, Sentiment};
use crate::text::{self, Language};

/// The most variants one step may ask for, and the most revisions.
pub const MAX_VARIANTS: usize = 10;
pub const MAX_REVISIONS: usize = 5;

const DAY_MS: i64 = 86_400_000;

/// Everything the copy is personalised from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub language: Language,
    /// The name the copy uses (the given name; the surname for a Chinese honorific).
    pub name: Option<String>,
    /// `anh`, `chị`, `先生`, `女士`, or none.
    pub honorific: Option<String>,
    /// How the copy addresses the person: `anh Minh`, `王先生`, `Lan`, or a polite default.
    pub address: String,
    /// The events the profile does most, most first.
    pub top_events: Vec<(String, u64)>,
    pub last_viewed: Option<String>,
    /// The triggering event and its item.
    pub intent: String,
    pub item: Option<String>,
    /// `replenish`, `win_back` or none, with the days it is about.
    pub need: Option<String>,
    pub need_days: Option<i64>,
    /// 0 (active) to 1 (gone).
    pub churn_risk: f64,
    pub sentiment: Sentiment,
}

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

fn number(v: &Option<Value>, default: usize, max: usize, key: &str) -> Result<usize, String> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n as usize <= max) => Ok(n.as_u64().unwrap_or(0) as usize),
        Some(Value::String(s)) if s.trim().parse::<usize>().is_ok_and(|n| n <= max) => {
            Ok(s.trim().parse().unwrap_or(default))
        }
        Some(other) => Err(format!("`{key}` must be a number from 0 to {max}, not {other}")),
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn trait_text(traits: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text_of(&traits[*k]))
}

/// Builds the context from the `ai` connector's payload (`request`, `profile`, `event`, `run`).
pub fn context(input: &Value, now_ms: i64) -> Context {
    let profile = &input["profile"];
    let traits = &profile["traits"];
    let event = &input["event"];
    let props = &event["properties"];
    let asked = input["request"]["language"].as_str().and_then(Language::from_code);
    let full_name = trait_text(traits, &["name", "full_name", "fullName", "họ_tên", "姓名"]);
    let language = asked
        .or_else(|| trait_text(traits, &["language", "lang"]).and_then(|l| Language::from_code(&l)))
        .or_else(|| profile["locale"].as_str().and_then(|l| Language::from_code(l.split(['-', '_']).next()?)))
        .or_else(|| event["context"]["locale"].as_str().and_then(|l| Language::from_code(l.split(['-', '_']).next()?)))
        .or_else(|| full_name.as_deref().map(text::detect).filter(|l| matches!(l, Language::Vi | Language::Zh)))
        .unwrap_or(Language::En);
    let gender = trait_text(traits, &["gender", "sex", "giới_tính"]).map(|g| g.to_lowercase());
    let male = gender.as_deref().is_some_and(|g| ["male", "m", "nam", "男", "man"].contains(&g));
    let female = gender.as_deref().is_some_and(|g| ["female", "f", "nữ", "nu", "女", "woman"].contains(&g));
    let first = trait_text(traits, &["first_name", "firstName", "given_name", "tên"]);
    let (name, honorific, address) = match language {
        Language::Vi => {
            // Vietnamese names run family, middle, given: people are called by the last word.
            let given =
                first.or_else(|| full_name.as_deref().and_then(|n| n.split_whitespace().last().map(str::to_owned)));
            let h = if male {
                Some("anh")
            } else if female {
                Some("chị")
            } else {
                None
            };
            let address = match (h, &given) {
                (Some(h), Some(n)) => format!("{h} {n}"),
                (None, Some(n)) => format!("bạn {n}"),
                (Some(h), None) => h.to_owned(),
                (None, None) => "quý khách".to_owned(),
            };
            (given, h.map(str::to_owned), address)
        }
        Language::Zh => {
            // Chinese names run family name first; the honorific follows the family name.
            let family = trait_text(traits, &["last_name", "lastName", "family_name", "姓"])
                .or_else(|| full_name.as_deref().and_then(|n| n.chars().next().map(String::from)));
            let h = if male {
                Some("先生")
            } else if female {
                Some("女士")
            } else {
                None
            };
            let address = match (h, &family) {
                (Some(h), Some(f)) => format!("{f}{h}"),
                _ => full_name.clone().unwrap_or_else(|| "尊敬的客户".to_owned()),
            };
            (family, h.map(str::to_owned), address)
        }
        _ => {
            let given =
                first.or_else(|| full_name.as_deref().and_then(|n| n.split_whitespace().next().map(str::to_owned)));
            let address = given.clone().unwrap_or_else(|| "there".to_owned());
            (given, None, address)
        }
    };
    let mut top_events: Vec<(String, u64)> = profile["event_counts"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))).collect())
        .unwrap_or_default();
    top_events.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_events.truncate(5);
    let item = ["item", "product", "product_name", "name", "title", "sản_phẩm", "商品"]
        .iter()
        .find_map(|k| text_of(&props[*k]))
        .or_else(|| props["products"][0]["name"].as_str().map(str::to_owned));
    let intent = event["event"].as_str().or(event["type"].as_str()).unwrap_or("visit").to_owned();
    let last_viewed = trait_text(traits, &["last_viewed_product", "last_viewed"]).or_else(|| item.clone());
    let days_since =
        |v: &Value| v.as_str().and_then(tutti_core::time::parse_timestamp).map(|t| (now_ms - t).div_euclid(DAY_MS));
    let last_seen = days_since(&profile["last_seen"]).unwrap_or(0).max(0);
    let churn_risk = (last_seen as f64 / 60.0).clamp(0.0, 1.0);
    let last_order = days_since(&traits["last_order_at"]);
    let interval =
        traits["reorder_days"].as_i64().or_else(|| traits["reorder_days"].as_str()?.parse().ok()).unwrap_or(30);
    let (need, need_days) = match last_order {
        Some(days) if days >= interval - 3 => (Some("replenish".to_owned()), Some(days)),
        _ if last_seen >= 30 => (Some("win_back".to_owned()), Some(last_seen)),
        _ => (None, None),
    };
    // Recent support and chat text: the event's own text, and the event that last resumed the run.
    let mut said = String::new();
    for source in [props, &input["run"]["last_event"]["properties"]] {
        for k in ["text", "message", "comment", "body", "description", "subject", "nội_dung", "内容"] {
            if let Some(t) = source[k].as_str() {
                said.push_str(t);
                said.push('\n');
            }
        }
    }
    Context {
        language,
        name,
        honorific,
        address,
        top_events,
        last_viewed,
        intent,
        item,
        need,
        need_days,
        churn_risk,
        sentiment: sentiment::analyse(&said),
    }
}

/// The structured answer every provider gives: the variants.
pub fn variants_schema(n: usize, sms: bool) -> Schema {
    let variant = if sms {
        json!({"type": "object", "properties": {"body": {"type": "string", "minLength": 1}}, "required": ["body"], "additionalProperties": false})
    } else {
        json!({"type": "object", "properties": {"subject": {"type": "string", "minLength": 1}, "body": {"type": "string", "minLength": 1}}, "required": ["subject", "body"], "additionalProperties": false})
    };
    Schema {
        name: "variants".into(),
        schema: json!({"type": "object", "properties": {"variants": {"type": "array", "items": variant, "minItems": 1, "maxItems": n}}, "required": ["variants"], "additionalProperties": false}),
    }
}

/// The local generator's phrases in one language. `{a}` is how the person is addressed, `{p}` how the copy
/// says "you" (Vietnamese), `{i}` the item, `{d}` days, `{o}` the offer, `{l}` the link.
struct Phrases {
    /// Greetings, by variant (even, odd).
    hello: [&'static str; 2],
    /// An apology and what happens next, for someone who just complained.
    sorry: [&'static str; 2],
    cart: &'static str,
    ordered: &'static str,
    viewed: &'static str,
    /// When there is no item to speak of.
    thanks: &'static str,
    replenish: &'static str,
    win_back: &'static str,
    offer: &'static str,
    link: &'static str,
    sign_off: &'static str,
    /// Subjects: to someone who complained, about the item, picked for them, news.
    subject_sorry: &'static str,
    subject_item: &'static str,
    subject_picked: &'static str,
    subject_news: &'static str,
    /// What joins the lines of an SMS.
    joiner: &'static str,
}

const VI: Phrases = Phrases {
    hello: ["Chào {a},", "Xin chào {a},"],
    sorry: [
        "Chúng tôi rất tiếc về trải nghiệm vừa qua và đang xử lý ngay cho {p}.",
        "Đội chăm sóc khách hàng sẽ liên hệ trong hôm nay.",
    ],
    cart: "{i} vẫn đang chờ trong giỏ hàng.",
    ordered: "Cảm ơn {p} đã đặt {i}.",
    viewed: "Có thể {p} sẽ thích {i}.",
    thanks: "Cảm ơn {p} đã đồng hành cùng chúng tôi.",
    replenish: "Đã {d} ngày kể từ đơn gần nhất, đến lúc bổ sung rồi.",
    win_back: "Lâu rồi không gặp, chúng tôi nhớ {p}.",
    offer: "Ưu đãi {o} cho đơn tiếp theo.",
    link: "Xem chi tiết: {l}",
    sign_off: "Trân trọng.",
    subject_sorry: "{a}, chúng tôi xin lỗi",
    subject_item: "{a} ơi, {i} đang chờ",
    subject_picked: "Dành riêng cho {a}",
    subject_news: "Tin mới cho {a}",
    joiner: " ",
};

const ZH: Phrases = Phrases {
    hello: ["{a}，您好！", "亲爱的{a}："],
    sorry: ["对于您最近的不愉快体验，我们深表歉意，正在尽快处理。", "客服团队今天会与您联系。"],
    cart: "您的购物车里还有{i}。",
    ordered: "感谢您购买{i}。",
    viewed: "您可能会喜欢{i}。",
    thanks: "感谢您一直以来的支持。",
    replenish: "距离上次下单已有{d}天，该补货了。",
    win_back: "好久不见，我们很想念您。",
    offer: "下次下单可享{o}。",
    link: "详情：{l}",
    sign_off: "祝好。",
    subject_sorry: "{a}，我们向您致歉",
    subject_item: "{a}，您的{i}还在等您",
    subject_picked: "{a}的专属消息",
    subject_news: "{a}，来看看新消息",
    joiner: "",
};

const EN: Phrases = Phrases {
    hello: ["Hi {a},", "Hello {a},"],
    sorry: ["We're sorry about your recent experience, and we're on it.", "Our support team will reach out today."],
    cart: "{i} is still waiting in your cart.",
    ordered: "Thanks for ordering {i}.",
    viewed: "You might like {i}.",
    thanks: "Thanks for being with us.",
    replenish: "It has been {d} days since your last order: time to restock.",
    win_back: "It's been a while, and we've missed you.",
    offer: "Enjoy {o} on your next order.",
    link: "See more: {l}",
    sign_off: "Best regards.",
    subject_sorry: "{a}, we're sorry",
    subject_item: "{a}, your {i} is waiting",
    subject_picked: "Picked for you, {a}",
    subject_news: "News for you, {a}",
    joiner: " ",
};

/// A phrase with its placeholders filled, in one pass (a value that itself holds `{i}` stays as written).
fn fill(phrase: &str, values: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(phrase.len() + 32);
    let mut rest = phrase;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let mut chars = tail.chars();
        let (_, key, close) = (chars.next(), chars.next(), chars.next());
        match (key, close) {
            (Some(k), Some('}')) if values.iter().any(|(c, _)| *c == k) => {
                out.push_str(values.iter().find(|(c, _)| *c == k).map_or("", |(_, v)| v));
                rest = &tail[1 + k.len_utf8() + 1..];
            }
            _ => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The local generator: copy composed from phrase templates per language, channel and variant style, from the
/// context and the brief. Deterministic: the same input, the same copy. Someone who just complained is
/// apologised to and not sold to.
pub fn local_variants(ctx: &Context, ask: &Ask, n: usize) -> Vec<(Option<String>, String)> {
    let sms = ask.channel.as_deref() == Some("sms");
    let offer = ask.brief.get("offer").and_then(text_of);
    let link = ask.brief.get("link").and_then(text_of);
    let sign = ask.brief.get("sign_off").and_then(text_of);
    let complaint = ctx.sentiment.complaint || ctx.sentiment.score <= -0.5;
    let item = ctx.item.clone().or_else(|| ctx.last_viewed.clone());
    let cart = matches!(ctx.intent.as_str(), "Cart Abandoned" | "Checkout Started" | "Cart Viewed");
    let ordered = matches!(ctx.intent.as_str(), "Order Completed" | "Order Delivered");
    let phrases = match ctx.language {
        Language::Vi => &VI,
        Language::Zh => &ZH,
        _ => &EN,
    };
    let days = ctx.need_days.map(|d| d.to_string()).unwrap_or_default();
    // How the copy says "you" after the greeting: Vietnamese repeats the honorific (anh, chị), else `bạn`, or
    // `quý khách` for someone unnamed.
    let you = match (&ctx.honorific, &ctx.name) {
        (Some(h), _) => h.as_str(),
        (None, Some(_)) => "bạn",
        (None, None) => "quý khách",
    };
    let values = [
        ('a', ctx.address.as_str()),
        ('p', you),
        ('i', item.as_deref().unwrap_or_default()),
        ('d', days.as_str()),
        ('o', offer.as_deref().unwrap_or_default()),
        ('l', link.as_deref().unwrap_or_default()),
    ];
    let say = |phrase: &str| fill(phrase, &values);
    (0..n.max(1))
        .map(|v| {
            let mut parts = vec![say(phrases.hello[v % 2])];
            if complaint {
                parts.extend(phrases.sorry.iter().map(|p| say(p)));
            } else {
                parts.push(match (&item, cart, ordered) {
                    (Some(_), true, _) => say(phrases.cart),
                    (Some(_), _, true) => say(phrases.ordered),
                    (Some(_), _, _) => say(phrases.viewed),
                    (None, _, _) => say(phrases.thanks),
                });
                match (ctx.need.as_deref(), ctx.need_days) {
                    (Some("replenish"), Some(_)) => parts.push(say(phrases.replenish)),
                    (Some("win_back"), _) => parts.push(say(phrases.win_back)),
                    _ => {}
                }
                if offer.is_some() {
                    parts.push(say(phrases.offer));
                }
            }
            let link_line = link.as_ref().map(|_| say(phrases.link));
            parts.extend(link_line.clone());
            parts.push(sign.clone().unwrap_or_else(|| phrases.sign_off.to_owned()));
            if sms {
                // One short message: greeting, the point, the link.
                let mut short: Vec<String> = parts.into_iter().take(2).collect();
                short.extend(link_line);
                return (None, short.join(phrases.joiner));
            }
            let subject = match (complaint, &item, v % 3) {
                (true, _, _) => phrases.subject_sorry,
                (false, Some(_), 0) => phrases.subject_item,
                (false, _, 1) => phrases.subject_picked,
                _ => phrases.subject_news,
            };
            (Some(say(subject)), parts.join("\n\n"))
        })
        .collect()
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
    /// The context it was personalised from (for the audit trail and the approver).
    pub context: Context,
    /// Every provider call made for it, for the audit trail (not part of the message).
    #[serde(skip)]
    pub calls: Vec<CallNote>,
}

/// One provider call (for a message, or for a topic's embeddings): what the audit trail records of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallNote {
    pub task: &'static str,
    /// `variants`, `revision` or `judge`; for embeddings, `examples` or `text`.
    pub purpose: &'static str,
    pub provider: String,
    pub model: String,
    pub local: bool,
    pub cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// SHA-256 of the messages, schema and parameters sent (hex).
    pub prompt_hash: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub tokens_estimated: bool,
    pub cost_micros: u64,
    pub latency_ms: u64,
    pub attempts: u32,
    /// What came back: the structured answer, else the text.
    pub output: Value,
}

impl CallNote {
    fn of(purpose: &'static str, request: &Request, c: &Completion) -> CallNote {
        CallNote {
            task: request.task.name(),
            purpose,
            provider: c.provider.clone(),
            model: c.model.clone(),
            local: c.local,
            cached: c.cached,
            fallback_reason: c.fallback_reason.clone(),
            prompt_hash: prompt_hash(request),
            prompt_tokens: c.usage.prompt_tokens,
            completion_tokens: c.usage.completion_tokens,
            tokens_estimated: c.usage.estimated,
            cost_micros: c.cost_micros,
            latency_ms: c.latency_ms,
            attempts: c.attempts,
            output: c.structured.clone().unwrap_or_else(|| Value::String(c.text.clone())),
        }
    }

    /// An embeddings call: its prompt hash covers the model and the texts; its output is how many vectors
    /// came back (the vectors themselves are not kept).
    pub fn of_embeddings(purpose: &'static str, texts: &[String], e: &Embeddings) -> CallNote {
        CallNote {
            task: Task::Embed.name(),
            purpose,
            provider: e.provider.clone(),
            model: e.model.clone(),
            local: e.local,
            cached: false,
            fallback_reason: e.fallback_reason.clone(),
            prompt_hash: sha256_hex(&serde_json::to_vec(&json!({"model": e.model, "input": texts})).expect("JSON")),
            prompt_tokens: e.usage.prompt_tokens,
            completion_tokens: 0,
            tokens_estimated: e.usage.estimated,
            cost_micros: e.cost_micros,
            latency_ms: e.latency_ms,
            attempts: e.attempts,
            output: json!({"vectors": e.vectors.len()}),
        }
    }
}

/// The hash of what a request asks (messages, schema, tools, parameters; not `stream`, not the local input).
pub fn prompt_hash(request: &Request) -> String {
    let mut r = request.clone();
    r.stream = false;
    r.input = Value::Null;
    sha256_hex(&serde_json::to_vec(&r).expect("requests serialise"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// When a channel's messages carry an AI-use disclosure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclose {
    /// Never (the default).
    #[default]
    Never,
    /// When a model wrote the copy (not the local template generator).
    Model,
    /// Always, whoever wrote it.
    Always,
}

/// The installation's generation policy: disclosures per channel and the optional model-as-judge.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Channel -> when its messages carry the disclosure.
    pub disclosure: BTreeMap<String, Disclose>,
    /// Disclosure text per language code, replacing the built-in one.
    pub disclosure_text: BTreeMap<String, String>,
    /// Ask the provider routed for `judge` to review the chosen copy too (when one is configured).
    pub judge: bool,
}

impl Policy {
    /// The disclosure a message on `channel` in `language` carries, if any.
    pub fn disclosure(&self, channel: &str, language: Language, by_model: bool) -> Option<String> {
        let when = self.disclosure.get(channel).or_else(|| self.disclosure.get("*")).copied().unwrap_or_default();
        let wanted = match when {
            Disclose::Never => false,
            Disclose::Model => by_model,
            Disclose::Always => true,
        };
        if !wanted {
            return None;
        }
        let custom = self.disclosure_text.get(language.code()).cloned();
        Some(custom.unwrap_or_else(|| {
            match language {
                Language::Vi => "Nội dung này được soạn với sự hỗ trợ của AI.",
                Language::Zh => "本消息由人工智能辅助生成。",
                _ => "This message was written with the help of AI.",
            }
            .to_owned()
        }))
    }
}

/// The local provider's `generate` skill: variants from [`local_variants`].
pub fn local_skill(request: &Request) -> Result<Value, AiError> {
    let ctx: Context = serde_json::from_value(request.input["context"].clone())
        .map_err(|e| AiError::Unsupported(format!("the local generator needs the context: {e}")))?;
    let ask: Ask = serde_json::from_value(request.input["ask"].clone()).unwrap_or_default();
    let n = request.input["n"].as_u64().unwrap_or(1) as usize;
    let variants: Vec<Value> = local_variants(&ctx, &ask, n)
        .into_iter()
        .map(|(subject, body)| match subject {
            Some(s) => json!({"subject": s, "body": body}),
            None => json!({"body": body}),
        })
        .collect();
    Ok(json!({"variants": variants}))
}

/// The instructions a large model gets.
fn prompt(ctx: &Context, ask: &Ask, n: usize, channel: &str) -> Vec<Message> {
    let lang = match ctx.language {
        Language::Vi => "Vietnamese",
        Language::Zh => "Simplified Chinese",
        _ => "English",
    };
    let system = format!(
        "You write {channel} marketing copy for one customer, in {lang}. Address them as \"{}\". Write {n} \
         distinct variants. Never promise guaranteed results, never invent facts, never include ids or \
         internal notes. If the customer is unhappy, apologise and do not sell. Answer in JSON with the given schema.",
        ctx.address
    );
    let facts = json!({"context": ctx, "brief": ask.brief, "tone": ask.tone});
    vec![Message::system(system), Message::user(format!("{}\n\nWhat we know: {facts}", ask.prompt))]
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
    generate_with(input, router, gate, stats, &Policy::default(), now_ms).await
}

/// Generates, reviews and revises one message under the installation's [`Policy`].
pub async fn generate_with(
    input: &Value,
    router: &Router,
    gate: &Gate,
    stats: &Stats,
    policy: &Policy,
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
    let ctx = context(input, now_ms);
    let sms = channel == "sms";
    let mut request = Request::new(Task::Generate, prompt(&ctx, &ask, n, &channel));
    request.schema = Some(variants_schema(n, sms));
    request.temperature = Some(0.7);
    request.input = json!({"context": ctx, "ask": ask, "n": n});
    let completion = router.complete(&request, now_ms).await.map_err(|e| e.to_string())?;
    let mut calls = vec![CallNote::of("variants", &request, &completion)];
    let drafts = drafts_of(&completion, &channel, ctx.language)?;
    let recipient = recipient_of(&input["profile"]);
    let mut chosen: Option<(usize, Draft, bool, usize)> = None;
    let mut last_failure: Option<(usize, Draft, Review)> = None;
    let mut revisions = 0;
    // A model that wrote the copy revises it with the gate's feedback; the gate's own repairs come after.
    let mut model_revises = !completion.local;
    for (i, draft) in drafts.iter().enumerate() {
        let review = gate.review(draft, &recipient, selection);
        if review.passed {
            chosen = Some((i, draft.clone(), true, 0));
            break;
        }
        let (mut current, mut verdict) = (draft.clone(), review);
        for round in 1..=rounds {
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
                chosen = Some((i, current.clone(), false, round));
                break;
            }
        }
        if chosen.is_some() {
            break;
        }
        last_failure.get_or_insert((i, current, verdict));
    }
    let (variant, draft, mut first_pass, mut passed, mut violations) = match (chosen, last_failure) {
        (Some((i, d, first, _)), _) => (i, d, first, true, Vec::new()),
        (None, Some((i, d, r))) => (i, d, false, false, r.violations),
        (None, None) => return Err("the provider gave no variants".into()),
    };
    let mut judged_by = None;
    if policy.judge
        && passed
        && let Some((judge, objections)) = judge_by_model(router, &draft, &channel, now_ms, &mut calls).await
    {
        judged_by = Some(judge);
        if !objections.is_empty() {
            (passed, first_pass, violations) = (false, false, objections);
        }
    }
    let mut body = draft.field("body").unwrap_or_default().to_owned();
    let disclosure = policy.disclosure(&channel, draft.language(), !completion.local);
    if let Some(d) = &disclosure {
        body.push_str(if channel == "sms" { " " } else { "\n\n" });
        body.push_str(d);
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
    Some(out)
}

/// The model-as-judge: the provider routed for `judge` reviews the copy. Returns who judged and what they
/// objected to (as violations of `judge.<rule>`), or `None` when no model judged (none configured, or it
/// failed: the rules' verdict stands).
async fn judge_by_model(
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
            severity: crate::review::Severity::Block,
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

/// A draft's fields as a JSON object, for a model to read.
fn fields_json(draft: &Draft) -> String {
    let fields: BTreeMap<&str, &str> = draft.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    serde_json::to_string(&fields).unwrap_or_default()
}

fn drafts_of(c: &Completion, channel: &str, language: Language) -> Result<Vec<Draft>, String> {
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
            d
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

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn placeholders_are_filled_once_and_values_stay_as_written() {
        let values = [('a', "chị Lan"), ('i', "Áo {a} dài")];
        assert_eq!(fill("{a} ơi, {i} đang chờ", &values), "chị Lan ơi, Áo {a} dài đang chờ");
        assert_eq!(fill("{x} and { and {", &values), "{x} and { and {");
        assert_eq!(fill("{a}，您好！", &values), "chị Lan，您好！");
    }
}
