//! Policies: the rules that protect customers across every flow, checked when an action is about to be
//! dispatched, not when it was planned.
//!
//! ```yaml
//! policy: complaint-suppression
//! suppress: { event: Complaint Filed, categories: [promotional], for: 14d, exit_runs: true }
//! ---
//! policy: promo-email-cap
//! frequency_cap: { channel: email, category: promotional, max: 2, per: 7d }
//! ---
//! policy: quiet-hours
//! quiet_hours: { from: "21:00", to: "08:00", timezone: profile, default_timezone: Asia/Ho_Chi_Minh }
//! ---
//! policy: consent
//! consent: { channels: { sms: opt_in }, unsubscribed_when: 'has(profile.traits.do_not_contact)' }
//! ```
//!
//! Each policy exempts the categories in `exempt_categories` (by default `transactional`): a password reset
//! or a receipt is sent to a customer who complained, in quiet hours and past any cap.
//!
//! One more kind says who may decide approvals rather than what may be sent:
//! `approvals: { authors_may_approve: false }` keeps the person who saved a flow's version from approving its
//! messages (four eyes), in every flow.
//!
//! Whatever policies are defined, consent recorded on the profile is always honoured (the traits Braze and
//! Customer.io users already send): `unsubscribed: true` stops every category that is not exempt;
//! `<channel>_subscribe: "unsubscribed"` (`email_subscribe`, `sms_subscribe`, ...) stops that channel;
//! `subscriptions: { <category>: false }` stops that category on every channel.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Problem;
use super::def::{EventMatch, ZoneChoice};
use tutti_core::condition::Condition;
use tutti_core::decode::{Cx, kind};
use tutti_core::time::{Millis, TimeOfDay, format_duration, format_timestamp, window_end, zone};
use tutti_core::yaml::{Positions, push_token};

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub id: String,
    pub rule: Rule,
    /// Categories this policy never applies to.
    pub exempt: Vec<String>,
    pub source: String,
}

#[derive(Debug)]
pub enum Rule {
    Consent {
        opt_in: Vec<String>,
        unsubscribed_when: Option<Condition>,
    },
    Suppress {
        on: EventMatch,
        categories: Vec<String>,
        duration: Millis,
        exit_runs: bool,
    },
    FrequencyCap {
        channel: Option<String>,
        category: Option<String>,
        max: u32,
        per: Millis,
    },
    QuietHours {
        from: TimeOfDay,
        to: TimeOfDay,
        zone: ZoneChoice,
        channels: Vec<String>,
    },
    /// Who may decide a flow's approvals: with `authors_may_approve: false`, not the person who saved the
    /// version of the flow the run is on (four eyes). Checked when a person decides, not at delivery.
    Approvals {
        authors_may_approve: bool,
    },
}

/// A suppression in force on a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub policy: String,
    pub categories: Vec<String>,
    pub until: Millis,
}

/// A message dispatched to a profile, as frequency caps count them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub at: Millis,
    pub channel: String,
    pub category: String,
    /// The action's key, so a check right before its delivery can tell it from the others, and count a late
    /// delivery at the time it went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What the policies say about one action now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Not sent; the reason says which rule and why.
    Skip(String),
    /// Not yet: quiet hours until then.
    Defer {
        until: Millis,
        reason: String,
    },
}

/// What a check needs to know about the profile.
pub struct Subject<'a> {
    /// The profile's public JSON (`traits`, `timezone`, ...).
    pub profile: &'a Value,
    pub suppressions: &'a [Suppression],
    pub sent: &'a [Sent],
}

/// Checks one action of `channel` and `category` against every policy, at `now`. Consent first, then
/// suppression, then caps, then quiet hours: a customer who unsubscribed is told so in the record rather than
/// that the cap was reached.
pub fn check<'p>(
    policies: impl Iterator<Item = &'p Policy> + Clone,
    subject: &Subject<'_>,
    channel: &str,
    category: &str,
    now: Millis,
) -> Verdict {
    if let Some(reason) = builtin_consent(subject.profile, channel, category) {
        return Verdict::Skip(reason);
    }
    let applies = |p: &&Policy| !p.exempt.iter().any(|c| c == category);
    for policy in policies.clone().filter(applies) {
        if let Rule::Consent { opt_in, unsubscribed_when } = &policy.rule {
            let traits = &subject.profile["traits"];
            if opt_in.iter().any(|c| c == channel) && traits[format!("{channel}_subscribe")] != "opted_in" {
                return Verdict::Skip(format!(
                    "unsubscribed: {channel} needs opt-in (policy {}) and traits.{channel}_subscribe is not \"opted_in\"",
                    policy.id
                ));
            }
            if let Some(condition) = unsubscribed_when {
                let channel_v = Value::String(channel.to_owned());
                let category_v = Value::String(category.to_owned());
                let vars = [("profile", subject.profile), ("channel", &channel_v), ("category", &category_v)];
                match condition.evaluate(&vars) {
                    Ok(false) => {}
                    Ok(true) => {
                        return Verdict::Skip(format!(
                            "unsubscribed: policy {}: `{}` is true",
                            policy.id,
                            condition.source()
                        ));
                    }
                    // Fail closed: a consent rule that cannot decide does not let a message through.
                    Err(e) => {
                        return Verdict::Skip(format!("unsubscribed: policy {} could not decide ({e})", policy.id));
                    }
                }
            }
        }
    }
    for s in subject.suppressions {
        if s.until > now && s.categories.iter().any(|c| c == category) {
            return Verdict::Skip(format!(
                "suppressed: policy {} suppresses {category} until {}",
                s.policy,
                format_timestamp(s.until)
            ));
        }
    }
    for policy in policies.clone().filter(applies) {
        if let Rule::FrequencyCap { channel: cap_channel, category: cap_category, max, per } = &policy.rule {
            let counts = |s: &&Sent| {
                s.at > now - per
                    && cap_channel.as_ref().is_none_or(|c| *c == s.channel)
                    && cap_category.as_ref().is_none_or(|c| *c == s.category)
            };
            let in_scope = cap_channel.as_ref().is_none_or(|c| c == channel)
                && cap_category.as_ref().is_none_or(|c| c == category);
            if in_scope {
                let count = subject.sent.iter().filter(counts).count();
                if count >= *max as usize {
                    return Verdict::Skip(format!(
                        "capped: policy {} allows {max} per {}; {count} already sent",
                        policy.id,
                        format_duration(*per)
                    ));
                }
            }
        }
    }
    for policy in policies.filter(applies) {
        if let Rule::QuietHours { from, to, zone: choice, channels } = &policy.rule {
            if !channels.is_empty() && !channels.iter().any(|c| c == channel) {
                continue;
            }
            let tz = resolve_zone(choice, subject.profile);
            if let Some(until) = window_end(now, *from, *to, &tz) {
                return Verdict::Defer {
                    until,
                    reason: format!(
                        "quiet hours: policy {} ({from} to {to} in {})",
                        policy.id,
                        tz.iana_name().unwrap_or("UTC")
                    ),
                };
            }
        }
    }
    Verdict::Allow
}

/// The zone a choice means for this profile.
pub fn resolve_zone(choice: &ZoneChoice, profile: &Value) -> jiff::tz::TimeZone {
    match choice {
        ZoneChoice::Fixed(tz) => tz.clone(),
        ZoneChoice::Profile { fallback } => {
            profile["timezone"].as_str().and_then(zone).unwrap_or_else(|| fallback.clone())
        }
    }
}

/// Consent the profile itself records, honoured whatever policies say. `transactional` is exempt.
pub fn builtin_consent(profile: &Value, channel: &str, category: &str) -> Option<String> {
    if category == "transactional" {
        return None;
    }
    let traits = &profile["traits"];
    if traits["unsubscribed"] == true {
        return Some("unsubscribed: traits.unsubscribed is true".into());
    }
    if traits[format!("{channel}_subscribe")] == "unsubscribed" {
        return Some(format!("unsubscribed: traits.{channel}_subscribe is \"unsubscribed\""));
    }
    if traits["subscriptions"][category] == false {
        return Some(format!("unsubscribed: traits.subscriptions.{category} is false"));
    }
    None
}

impl Policy {
    /// How long sends must be remembered for this policy's cap.
    pub fn memory(&self) -> Millis {
        match &self.rule {
            Rule::FrequencyCap { per, .. } => *per,
            _ => 0,
        }
    }
}

const KINDS: [&str; 5] = ["consent", "suppress", "frequency_cap", "quiet_hours", "approvals"];

/// Compiles a policy from its loaded YAML.
pub fn compile(value: &Value, positions: &Positions) -> Result<Policy, Vec<Problem>> {
    let mut cx = Cx::new(positions);
    let policy = read(&mut cx, value);
    match policy {
        Some(p) if cx.problems.is_empty() => Ok(p),
        _ => {
            let mut problems = cx.problems;
            problems.sort_by_key(|p| p.pos);
            Err(problems)
        }
    }
}

fn names(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Vec<String> {
    match value {
        Value::Array(items) => {
            items.iter().enumerate().filter_map(|(i, v)| cx.name(v, &push_token(pointer, &i.to_string()))).collect()
        }
        Value::String(_) => cx.name(value, pointer).into_iter().collect(),
        other => {
            cx.problem(pointer, format!("expected a list of names, found {}", kind(other)), "");
            Vec::new()
        }
    }
}

fn read(cx: &mut Cx<'_>, value: &Value) -> Option<Policy> {
    let mut top = cx.object(value, "", "a policy")?;
    let id = top.require(cx, "policy", "").and_then(|(v, p)| cx.name(v, &p));
    // Free text for people; only its kind is checked.
    if let Some((v, p)) = top.get("description") {
        cx.string(v, &p);
    }
    let exempt = match top.get("exempt_categories") {
        Some((v, p)) => names(cx, v, &p),
        None => vec!["transactional".to_owned()],
    };
    let present: Vec<&str> = KINDS.iter().copied().filter(|k| top.has(k)).collect();
    let rule = match present.as_slice() {
        [one] => {
            let (v, p) = top.get(one)?;
            read_rule(cx, one, v, &p)
        }
        [] => {
            cx.problem("", "a policy has one rule", KINDS.join(", "));
            None
        }
        many => {
            cx.problem("", format!("a policy has one rule, but this one has {}", many.join(" and ")), "one file each");
            None
        }
    };
    for k in KINDS {
        top.get(k);
    }
    top.finish(cx);
    Some(Policy { id: id?, rule: rule?, exempt, source: String::new() })
}

fn read_rule(cx: &mut Cx<'_>, rule_kind: &str, value: &Value, pointer: &str) -> Option<Rule> {
    let mut o = cx.object(value, pointer, "a policy rule")?;
    let rule = match rule_kind {
        "consent" => {
            let mut opt_in = Vec::new();
            if let Some((v, p)) = o.get("channels") {
                match v {
                    Value::Object(channels) => {
                        for (channel, mode) in channels {
                            match mode.as_str() {
                                Some("opt_in") => opt_in.push(channel.clone()),
                                Some("opt_out") => {}
                                _ => cx.problem(
                                    &push_token(&p, channel),
                                    "a channel's consent is `opt_in` or `opt_out`",
                                    "opt_in needs traits.<channel>_subscribe: opted_in",
                                ),
                            }
                        }
                    }
                    other => cx.problem(
                        &p,
                        format!("`channels` is a mapping, not {}", kind(other)),
                        "such as `{ sms: opt_in }`",
                    ),
                }
            }
            let unsubscribed_when =
                o.get("unsubscribed_when").and_then(|(v, p)| cx.condition(v, &p, &["profile", "channel", "category"]));
            Some(Rule::Consent { opt_in, unsubscribed_when })
        }
        "suppress" => {
            // `event`, not `on`: YAML 1.1 tools (PyYAML, many editors) read a key `on` as true.
            let name = o.require(cx, "event", "such as `event: Complaint Filed`").and_then(|(v, p)| cx.name(v, &p));
            let when = o.get("when").and_then(|(v, p)| cx.condition(v, &p, &["event", "profile"]));
            let on =
                name.map(|name| EventMatch { kind: Some(tutti_core::event::EventType::Track), name: Some(name), when });
            let categories =
                o.require(cx, "categories", "such as `categories: [promotional]`").map(|(v, p)| names(cx, v, &p));
            let duration = o.require(cx, "for", "such as `for: 14d`").and_then(|(v, p)| cx.duration(v, &p));
            let exit_runs = o.get("exit_runs").and_then(|(v, p)| cx.boolean(v, &p)).unwrap_or(true);
            Some(Rule::Suppress { on: on?, categories: categories?, duration: duration?, exit_runs })
        }
        "frequency_cap" => {
            let channel = o.get("channel").and_then(|(v, p)| cx.name(v, &p));
            let category = o.get("category").and_then(|(v, p)| cx.name(v, &p));
            let max = o.require(cx, "max", "such as `max: 2`").and_then(|(v, p)| cx.positive(v, &p, 10_000));
            let per = o.require(cx, "per", "such as `per: 7d`").and_then(|(v, p)| cx.duration(v, &p));
            Some(Rule::FrequencyCap { channel, category, max: max? as u32, per: per? })
        }
        "approvals" => {
            let authors = o
                .require(cx, "authors_may_approve", "such as `authors_may_approve: false`")
                .and_then(|(v, p)| cx.boolean(v, &p));
            Some(Rule::Approvals { authors_may_approve: authors? })
        }
        _ => {
            let time = |cx: &mut Cx<'_>, found: Option<(&Value, String)>| {
                let (v, p) = found?;
                let text = cx.string(v, &p)?;
                TimeOfDay::parse(text).map_err(|e| cx.problem(&p, e, "")).ok()
            };
            let from = o.require(cx, "from", "such as `from: \"21:00\"`");
            let from = time(cx, from);
            let to = o.require(cx, "to", "such as `to: \"08:00\"`");
            let to = time(cx, to);
            let channels = o.get("channels").map(|(v, p)| names(cx, v, &p)).unwrap_or_default();
            let zone = read_zone(cx, &mut o);
            Some(Rule::QuietHours { from: from?, to: to?, zone: zone?, channels })
        }
    };
    o.finish(cx);
    rule
}

fn read_zone(cx: &mut Cx<'_>, o: &mut tutti_core::decode::Obj<'_>) -> Option<ZoneChoice> {
    super::def::read_zone(cx, o)
}
