//! The local generator: copy composed from phrase templates per language and channel, for when no model is
//! configured (its variants say `local: true`), and the schema a model's variants answer in.

use serde_json::{Value, json};

use super::Ask;
use super::context::{Context, text_of};
use crate::provider::{AiError, Request, Schema};
use crate::text::Language;

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
pub(super) struct Phrases {
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

pub(super) const VI: Phrases = Phrases {
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

pub(super) const ZH: Phrases = Phrases {
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

pub(super) const EN: Phrases = Phrases {
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

/// The text with its first letter in capitals, as a sentence or a subject starts ("quý khách, ..." → "Quý
/// khách, ..."); scripts without capitals are left as they are.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => text.to_owned(),
    }
}

/// A phrase with its placeholders filled, in one pass (a value that itself holds `{i}` stays as written).
pub(super) fn fill(phrase: &str, values: &[(char, &str)]) -> String {
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
    // English with no name: "there" only after a greeting; elsewhere the name is left out, not replaced.
    let nameless = ctx.language == Language::En && ctx.name.is_none();
    // A plural item is waiting, not is waiting ("your coffee beans are waiting").
    let plural = ctx.language == Language::En
        && item.as_deref().and_then(|i| i.split_whitespace().last()).is_some_and(|w| {
            let w = w.to_lowercase();
            w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is")
        });
    let say = |phrase: &str| {
        let phrase = if nameless && !phrase.starts_with("Hi {a}") && !phrase.starts_with("Hello {a}") {
            phrase.replace("{a}, ", "").replace(", {a}", "")
        } else {
            phrase.to_owned()
        };
        let phrase = if plural {
            phrase.replace("{i} is ", "{i} are ").replace("{i} is waiting", "{i} are waiting")
        } else {
            phrase
        };
        capitalised(&fill(&phrase, &values))
    };
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
