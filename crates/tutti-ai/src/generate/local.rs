//! The local generator: copy composed from phrase templates per language and channel, for when no model is
//! configured (its variants say `local: true`), and the schema a model's variants answer in.

use serde_json::{Value, json};

use super::Ask;
use super::context::{Context, text_of};
use super::kind::Kind;
use super::phrases::{EN, VI, ZH};
use crate::provider::{AiError, Request, Schema};
use crate::text::Language;

/// The structured answer every provider gives: the variants.
pub fn variants_schema(n: usize, sms: bool) -> Schema {
    let variant = if sms {
        json!({"type": "object", "properties": {"body": {"type": "string", "minLength": 1}, "explanation": {"type": "string"}}, "required": ["body"], "additionalProperties": false})
    } else {
        json!({"type": "object", "properties": {"subject": {"type": "string", "minLength": 1}, "body": {"type": "string", "minLength": 1}, "explanation": {"type": "string"}}, "required": ["subject", "body"], "additionalProperties": false})
    };
    Schema {
        name: "variants".into(),
        schema: json!({"type": "object", "properties": {"variants": {"type": "array", "items": variant, "minItems": 1, "maxItems": n}}, "required": ["variants"], "additionalProperties": false}),
    }
}

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

/// An offer as the language says it: a bare percentage becomes "10% off", "giảm 10%", "9折".
fn offer_words(offer: &str, language: Language) -> String {
    let percent =
        offer.trim().strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok()).filter(|p| *p > 0.0 && *p < 100.0);
    match (percent, language) {
        (Some(p), Language::Zh) => {
            let tenths = (100.0 - p) / 10.0;
            let tenths = if tenths.fract() == 0.0 { format!("{tenths:.0}") } else { format!("{tenths:.1}") };
            format!("{tenths}折优惠")
        }
        (Some(_), Language::Vi) => format!("giảm {}", offer.trim()),
        (Some(_), _) => format!("{} off", offer.trim()),
        (None, _) => offer.trim().to_owned(),
    }
}

/// Whether an English item is plural ("coffee beans are", not "is").
fn plural(item: &str) -> bool {
    item.split_whitespace().last().is_some_and(|w| {
        let w = w.to_lowercase();
        w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is")
    })
}

/// The local generator: copy composed from phrase templates per language, kind of message, channel and
/// variant, from the context and the brief. Deterministic: the same input, the same copy. The kind decides
/// subject and body together; an apology sells nothing. An SMS is one part where it can be: the greeting,
/// the point, the offer and the link, with the country's rules for advertising (`category` promotional or
/// unknown): Vietnam's `[QC]` and refusal line, China's 【signature】 (the brief's `brand`) and 回T退订; a
/// Vietnamese SMS that does not fit one part with its marks is written without them, as most are.
pub fn local_variants(ctx: &Context, ask: &Ask, category: Option<&str>, n: usize) -> Vec<(Option<String>, String)> {
    let sms = ask.channel.as_deref() == Some("sms");
    let brief = |k: &str| ask.brief.get(k).and_then(text_of);
    let offer = brief("offer").filter(|_| ctx.kind.may_offer()).map(|o| offer_words(&o, ctx.language));
    let link = brief("link");
    let brand = brief("brand").or_else(|| brief("sender"));
    let phrases = match ctx.language {
        Language::Vi => &VI,
        Language::Zh => &ZH,
        _ => &EN,
    };
    let lines = phrases.lines(ctx.kind);
    // The item: the brief's, else the event's, else what they last viewed when this kind of message uses
    // behaviour. An apology names none: the complaint may be about something else.
    let item = match ctx.kind {
        Kind::Apology => None,
        _ => brief("item").or_else(|| ctx.item.clone()).or_else(|| {
            ctx.levels.contains(&super::context::Level::Behaviour).then(|| ctx.last_viewed.clone()).flatten()
        }),
    };
    // English phrases bring their own article ("the linen shirt", "your coffee beans").
    let item = match ctx.language {
        Language::En => item.map(|i| {
            let lower = i.to_lowercase();
            ["the ", "a ", "an ", "your "]
                .iter()
                .find(|a| lower.starts_with(**a))
                .map_or(i.clone(), |a| i[a.len()..].to_owned())
        }),
        _ => item,
    };
    let days = ctx.need_days.filter(|_| ctx.kind == Kind::Replenishment).map(|d| d.to_string());
    // How the copy says "you" after the greeting: Vietnamese repeats the honorific (anh, chị), else `bạn`, or
    // `quý khách` for someone unnamed.
    let you = match (&ctx.honorific, &ctx.name) {
        (Some(h), _) => h.as_str(),
        (None, Some(_)) => "bạn",
        (None, None) => "quý khách",
    };
    let code = brief("opt_out_code");
    let values = [
        ('a', ctx.address.as_str()),
        ('p', you),
        ('i', item.as_deref().unwrap_or_default()),
        ('d', days.as_deref().unwrap_or_default()),
        ('o', offer.as_deref().unwrap_or_default()),
        ('l', link.as_deref().unwrap_or_default()),
        ('c', code.as_deref().unwrap_or_default()),
    ];
    let known = |phrase: &str| {
        !phrase.is_empty()
            && [('i', &item), ('d', &days), ('o', &offer), ('l', &link), ('c', &code)]
                .iter()
                .all(|(k, v)| v.is_some() || !phrase.contains(&format!("{{{k}}}")))
    };
    // English with no name: "there" only after a greeting; elsewhere the name is left out, not replaced.
    let nameless = ctx.language == Language::En && ctx.name.is_none();
    let plural = ctx.language == Language::En && item.as_deref().is_some_and(plural);
    let say = |phrase: &str| {
        let mut phrase = phrase.to_owned();
        if nameless && !phrase.starts_with("Hi {a}") && !phrase.starts_with("Hello {a}") {
            phrase = phrase.replace("{a}, ", "").replace(", {a}", "");
        }
        if plural {
            phrase = phrase.replace("{i} is ", "{i} are ").replace("{i} has ", "{i} have ");
        }
        capitalised(&fill(&phrase, &values))
    };
    let main = if item.is_some() && known(lines.main_item) { lines.main_item } else { lines.main };
    let more = Some(lines.more).filter(|m| known(m));
    let offer_line = offer.as_ref().map(|o| {
        let phrase = if ctx.kind == Kind::Onboarding { phrases.offer_first } else { phrases.offer };
        // "10% off your next order", not "10% off on".
        let phrase = if ctx.language == Language::En && o.ends_with(" off") {
            phrase.replace(" on your", " your")
        } else {
            phrase.to_owned()
        };
        say(&phrase)
    });
    let link_line = link.as_ref().map(|_| say(phrases.link));
    // Advertising as the flow's category says: an apology sent by a promotional flow still carries the
    // country's markers, since the category, not the copy, is what the rules and the carriers go by.
    let advertising = matches!(category, None | Some("promotional"));
    let joiner = phrases.joiner;
    (0..n.max(1))
        .map(|v| {
            if sms {
                // An SMS carries the bare link: the label costs characters a link explains by itself.
                let opt_out =
                    advertising.then(|| say(if code.is_some() { phrases.opt_out_code } else { phrases.opt_out_reply }));
                let parts = SmsParts {
                    hello: say(phrases.hello_sms),
                    main: say(main),
                    // A second sentence that speaks of email ("reply to this email") has no place in a text.
                    more: more.filter(|m| !m.contains("email") && !m.contains("邮件")).map(&say),
                    offer: offer_line.clone(),
                    link: link.clone(),
                    opt_out,
                    brand: brand.clone(),
                    advertising,
                };
                return (None, sms_text(ctx.language, phrases.joiner, &parts));
            }
            let hello = if ctx.name.is_none() { phrases.hello[0] } else { phrases.hello[v % 2] };
            let mut point = vec![say(main)];
            point.extend(more.map(&say));
            point.extend(offer_line.clone());
            let mut paragraphs = vec![say(hello), point.join(joiner)];
            paragraphs.extend(link_line.clone());
            let sign_off = if ctx.kind == Kind::Apology { phrases.sign_off_apology } else { phrases.sign_off };
            let sign = brief("sign_off").unwrap_or_else(|| match &brand {
                Some(b) => format!("{sign_off}\n{b}"),
                None => sign_off.trim_end_matches(',').to_owned() + if ctx.language == Language::Zh { "" } else { "." },
            });
            paragraphs.push(sign);
            let subject = match (v % 2, item.is_some() && known(lines.subject_item)) {
                (0, true) => lines.subject_item,
                (k, _) => lines.subjects[k],
            };
            (Some(say(subject)), paragraphs.join("\n\n"))
        })
        .collect()
}

/// What an SMS is made of, each sentence already in the person's words.
struct SmsParts {
    hello: String,
    main: String,
    more: Option<String>,
    offer: Option<String>,
    link: Option<String>,
    /// The country's refusal line, for advertising.
    opt_out: Option<String>,
    /// The sender's name, for China's 【signature】.
    brand: Option<String>,
    advertising: bool,
}

/// One SMS: the longest form that fits one part, trying with and without the greeting, the second sentence
/// and (Vietnamese) the marks, in that order of sacrifice.
fn sms_text(language: Language, joiner: &str, p: &SmsParts) -> String {
    let compose = |greet: bool, second: bool| {
        let mut parts: Vec<String> = Vec::new();
        if greet {
            parts.push(p.hello.clone());
        }
        parts.push(if greet && language != Language::Zh { lower_first(&p.main) } else { p.main.clone() });
        if second {
            parts.extend(p.more.clone());
        }
        parts.extend(p.offer.clone());
        // A link is followed by a space, so that what comes next (回T退订) is not read as part of it.
        parts.extend(p.link.as_ref().map(|l| if joiner.is_empty() { format!("{l} ") } else { l.clone() }));
        parts.extend(p.opt_out.clone());
        let mut text = parts.join(joiner).trim_end().to_owned();
        match (language, &p.brand) {
            (Language::Vi, _) if p.advertising => text = format!("[QC] {text}"),
            (Language::Zh, Some(b)) => text = format!("【{b}】{text}"),
            _ => {}
        }
        text
    };
    let shapes = [compose(true, true), compose(true, false), compose(false, false)];
    // Vietnamese: with its marks a text fits 70 characters, without them 160; the greeting is worth more than
    // the marks, so each shape is tried with its marks, then without, before the next gives something up.
    let tries: Vec<String> = match language {
        Language::Vi => shapes.iter().flat_map(|t| [t.clone(), crate::text::fold(t)]).collect(),
        _ => shapes.to_vec(),
    };
    tries
        .iter()
        .find(|t| crate::sms::segments(t).parts <= 1)
        .cloned()
        .unwrap_or_else(|| tries.last().cloned().unwrap_or_default())
}

/// The first letter in lower case, for a sentence that follows a greeting in an SMS ("Hi Sam, your cart ..."),
/// unless it is a name or an item (a word with a capital after its first letter, or "I").
fn lower_first(text: &str) -> String {
    let first_word = text.split_whitespace().next().unwrap_or("");
    if first_word == "I" || first_word.starts_with("I'") || first_word.chars().skip(1).any(char::is_uppercase) {
        return text.to_owned();
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() => c.to_lowercase().chain(chars).collect(),
        _ => text.to_owned(),
    }
}

/// Why the local generator wrote what it did: the kind of message, what decided it, the levels it used.
fn explain(ctx: &Context) -> String {
    let kind = serde_json::to_value(ctx.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let levels: Vec<String> = ctx
        .levels
        .iter()
        .filter_map(|l| serde_json::to_value(l).ok().and_then(|v| v.as_str().map(str::to_owned)))
        .collect();
    let why = match &ctx.recent_complaint {
        Some(c) => {
            format!("an apology: `{}` {} day(s) ago reads as a complaint, so nothing is sold", c.event, c.days_ago)
        }
        None if ctx.sentiment.complaint => {
            "an apology: the event's text reads as a complaint, so nothing is sold".to_owned()
        }
        None => format!("a {} message (the brief, else the event `{}`)", kind.replace('_', " "), ctx.intent),
    };
    format!(
        "{why}; personalised from: {}",
        if levels.is_empty() { "nothing known".to_owned() } else { levels.join(", ") }
    )
}

/// The local provider's `generate` skill: variants from [`local_variants`].
pub fn local_skill(request: &Request) -> Result<Value, AiError> {
    let ctx: Context = serde_json::from_value(request.input["context"].clone())
        .map_err(|e| AiError::Unsupported(format!("the local generator needs the context: {e}")))?;
    let ask: Ask = serde_json::from_value(request.input["ask"].clone()).unwrap_or_default();
    let n = request.input["n"].as_u64().unwrap_or(1) as usize;
    let category = request.input["category"].as_str();
    let explanation = explain(&ctx);
    let variants: Vec<Value> = local_variants(&ctx, &ask, category, n)
        .into_iter()
        .map(|(subject, body)| match subject {
            Some(s) => json!({"subject": s, "body": body, "explanation": explanation}),
            None => json!({"body": body, "explanation": explanation}),
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
