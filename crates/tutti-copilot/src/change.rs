//! Changing a plan: by saying what to change ("only customers who bought twice", "add SMS", "without Zalo",
//! "budget 30 million", "three weeks", "no holdout", in any of the three languages) or by editing fields. Each
//! change makes the next version, with the change said among its assumptions; the caller keeps both and shows
//! the difference.

use serde_json::Value;
use tutti_ai::text::Language;
use tutti_core::money::Money;

use crate::plan::{Condition, Plan};
use crate::planner::{Context, Refusal};
use crate::read::{self, Text, words};

/// Words that take a channel away when they come just before it.
const WITHOUT: &[&str] = &[
    "without",
    "no ",
    "remove",
    "drop",
    "not ",
    "bỏ",
    "không dùng",
    "không gửi",
    "trừ",
    "不要",
    "去掉",
    "不用",
    "取消",
];
/// Words that say only the channels named stay.
const ONLY: &[&str] = &["only", "just", "chỉ", "只用", "仅"];

fn say(language: Language, en: String, vi: String, zh: String) -> String {
    match language {
        Language::Vi => vi,
        Language::Zh => zh,
        _ => en,
    }
}

/// The next version of `plan` with the change asked in `words`, or why nothing could be read from them.
pub fn ask(plan: &Plan, request: &str, cx: &Context) -> Result<Plan, Refusal> {
    let r = read::read(request);
    let t = Text::new(request);
    let lang = Language::from_code(&plan.language).unwrap_or(Language::En);
    let mut next = plan.clone();
    let mut said = Vec::new();
    if let Some(times) = r.repeat {
        next.audience.conditions.retain(|c| !matches!(c, Condition::Performed { days: None, .. }));
        next.audience.conditions.push(Condition::Performed { event: cx.order_event.clone(), times, days: None });
        said.push(format!("{} ≥ {times}", cx.order_event));
    }
    if let Some(city) = &r.city {
        next.audience
            .conditions
            .retain(|c| !matches!(c, Condition::TraitIn { trait_name, .. } if trait_name == "city"));
        let values = words::city_values(city);
        next.audience.conditions.push(Condition::TraitIn { name: city.clone(), trait_name: "city".into(), values });
        said.push(city.clone());
    }
    if r.vip && !plan.audience.conditions.iter().any(|c| matches!(c, Condition::TraitAtLeast { .. })) {
        let currency = plan.budget.as_ref().map_or(read::language_currency(lang), |b| b.currency.as_str());
        let trait_name = words::VALUE_TRAITS
            .iter()
            .find(|t| cx.traits.iter().any(|k| k == *t))
            .copied()
            .unwrap_or(words::VALUE_TRAITS[0]);
        let at_least = words::vip_threshold(currency);
        next.audience.conditions.push(Condition::TraitAtLeast {
            name: "VIP".into(),
            trait_name: trait_name.into(),
            at_least,
        });
        said.push("VIP".into());
    }
    if !r.channels.is_empty() {
        let lower = t.lower();
        let only = ONLY.iter().any(|w| lower.contains(w));
        let mut channels = if only { Vec::new() } else { next.channels.clone() };
        for channel in &r.channels {
            let spelled = words::CHANNELS.iter().find(|c| c.name == channel).map_or(&[][..], |c| c.words);
            let removed = spelled.iter().any(|w| {
                lower.find(&w.to_lowercase()).is_some_and(|at| {
                    let before: String =
                        lower[..at].chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
                    WITHOUT.iter().any(|n| before.contains(n))
                })
            });
            if removed {
                channels.retain(|c| c != channel);
            } else if !channels.contains(channel) {
                channels.push(channel.clone());
            }
        }
        if channels.is_empty() {
            return Err(Refusal(say(
                lang,
                "A plan needs at least one channel.".into(),
                "Kế hoạch cần ít nhất một kênh.".into(),
                "计划至少需要一个渠道。".into(),
            )));
        }
        if channels != next.channels {
            said.push(channels.join(", "));
            set_channels(&mut next, channels);
        }
    }
    if let Some((money, _)) = &r.budget {
        said.push(money.to_string());
        next.budget = Some(money.clone());
    }
    if let Some(days) = r.days.filter(|d| *d != next.schedule.days) {
        said.push(format!("{days} d"));
        set_days(&mut next, days);
    }
    if r.no_holdout || r.holdout.is_some() {
        next.holdout = if r.no_holdout { 0.0 } else { r.holdout.unwrap_or(0.0) };
        said.push(format!("holdout {}%", (next.holdout * 100.0).round()));
    }
    if said.is_empty() {
        return Err(Refusal(say(
            lang,
            format!(
                "No change could be read in “{request}”: say who (VIPs, a city, bought twice), the channels, the budget, the timeframe or the holdout."
            ),
            format!(
                "Không đọc được thay đổi trong “{request}”: hãy nói đối tượng (VIP, thành phố, mua hai lần), kênh, ngân sách, thời gian hoặc nhóm đối chứng."
            ),
            format!("无法从“{request}”中读出修改：请说明受众（VIP、城市、购买两次）、渠道、预算、时间或对照组。"),
        )));
    }
    next.assumptions.push(say(
        lang,
        format!("changed in version {}: “{request}” ({})", plan.version + 1, said.join("; ")),
        format!("thay đổi ở phiên bản {}: “{request}” ({})", plan.version + 1, said.join("; ")),
        format!("第 {} 版修改：“{request}”（{}）", plan.version + 1, said.join("；")),
    ));
    next.version = plan.version + 1;
    next.status = "proposed".into();
    next.budget_split.clear();
    Ok(next)
}

/// The next version with fields edited: `channels` (a list), `budget` (`{amount, currency}` or null), `days`,
/// `holdout` (0 to 0.5). Unknown fields and bad values are refused with what is wrong.
pub fn edit(plan: &Plan, fields: &Value) -> Result<Plan, String> {
    let Value::Object(o) = fields else { return Err("the edit is an object of fields".into()) };
    let mut next = plan.clone();
    for (key, value) in o {
        match key.as_str() {
            "channels" => {
                let list: Vec<String> = value
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                if list.is_empty() || list.iter().any(|c| !words::CHANNELS.iter().any(|w| w.name == c)) {
                    return Err("`channels` is a list of email, zalo and sms".into());
                }
                set_channels(&mut next, list);
            }
            "budget" if value.is_null() => next.budget = None,
            "budget" => next.budget = Some(Money::from_value(value).map_err(|e| format!("`budget`: {e}"))?),
            "days" => match value.as_u64() {
                Some(d) if (1..=365).contains(&d) => set_days(&mut next, d as u32),
                _ => return Err("`days` is a whole number from 1 to 365".into()),
            },
            "holdout" => match value.as_f64() {
                Some(h) if (0.0..=0.5).contains(&h) => next.holdout = h,
                _ => return Err("`holdout` is a share from 0 to 0.5".into()),
            },
            other => return Err(format!("`{other}` cannot be edited; the fields are channels, budget, days, holdout")),
        }
    }
    next.version = plan.version + 1;
    next.status = "proposed".into();
    next.budget_split.clear();
    next.assumptions.push(format!("edited in version {}: {}", next.version, fields));
    Ok(next)
}

/// New channels: the briefs follow (the first channel's prompt for each), and who can be reached.
fn set_channels(plan: &mut Plan, channels: Vec<String>) {
    let prompt = plan.briefs.first().map(|b| b.prompt.clone()).unwrap_or_default();
    let gap = if channels.len() > 1 { (plan.schedule.days / 2 / (channels.len() as u32 - 1)).max(1) } else { 0 };
    plan.briefs = channels
        .iter()
        .enumerate()
        .map(|(i, c)| crate::plan::Brief { channel: c.clone(), prompt: prompt.clone(), day: gap * i as u32 })
        .collect();
    let reach: Vec<String> = channels
        .iter()
        .filter_map(|c| words::CHANNELS.iter().find(|w| w.name == c))
        .map(|w| w.trait_name.to_owned())
        .collect();
    for c in plan.audience.conditions.iter_mut() {
        if let Condition::Reachable { traits } = c {
            *traits = reach.clone();
        }
    }
    plan.channels = channels;
}

/// A new timeframe: the schedule, and the briefs' days spread over its first half.
fn set_days(plan: &mut Plan, days: u32) {
    plan.schedule.days = days;
    let n = plan.briefs.len() as u32;
    let gap = if n > 1 { (days / 2 / (n - 1)).max(1) } else { 0 };
    for (i, b) in plan.briefs.iter_mut().enumerate() {
        b.day = gap * i as u32;
    }
}
