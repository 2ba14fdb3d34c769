//! The goal suite (`data/goals.jsonl`): goals in three languages with the plan properties each must have
//! (shape, audience conditions, channels, budget, timeframe), or that it must be refused. [`measure`] plans each
//! and says which held. The goals and the planner were written by the same hand (the session that built the
//! planner), so the suite shows what the planner covers as its author saw it, not how it meets goals written
//! by others; `docs/copilot.md` says so.

use serde::Deserialize;
use serde_json::Value;

use crate::plan::{Condition, Plan};
use crate::planner::{Context, Refusal, plan};

/// The suite shipped with Tutti.
pub const GOALS: &str = include_str!("../data/goals.jsonl");

#[derive(Debug, Deserialize)]
pub struct Case {
    pub id: String,
    pub goal: String,
    pub expect: Value,
}

/// How one goal went.
#[derive(Debug)]
pub struct Outcome {
    pub id: String,
    pub passed: bool,
    /// What did not hold.
    pub why: Vec<String>,
}

/// Reads the suite, one case per line; a line that is not a case is an error naming it.
pub fn cases(text: &str) -> Result<Vec<Case>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Whether `result` has what `expect` asks.
pub fn check(result: &Result<Plan, Refusal>, expect: &Value) -> Vec<String> {
    let mut why = Vec::new();
    let refused = expect["refused"] == true;
    let p = match (result, refused) {
        (Err(_), true) => return why,
        (Ok(_), true) => return vec!["planned, but should have been refused".into()],
        (Err(e), false) => return vec![format!("refused: {e}")],
        (Ok(p), false) => p,
    };
    if let Some(shape) = expect["shape"].as_str()
        && p.shape.name() != shape
    {
        why.push(format!("shape {} instead of {shape}", p.shape.name()));
    }
    let has_vip = p.audience.conditions.iter().any(|c| matches!(c, Condition::TraitAtLeast { .. }));
    if has_vip != (expect["vip"] == true) {
        why.push(format!("VIP condition {has_vip}, expected {}", expect["vip"] == true));
    }
    let city = p.audience.conditions.iter().find_map(|c| match c {
        Condition::TraitIn { name, trait_name, .. } if trait_name == "city" => Some(name.as_str()),
        _ => None,
    });
    if city != expect["city"].as_str() {
        why.push(format!("city {city:?}, expected {}", expect["city"]));
    }
    let repeat = p.audience.conditions.iter().find_map(|c| match c {
        Condition::Performed { times, days: None, .. } => Some(*times as u64),
        _ => None,
    });
    if repeat != expect["repeat"].as_u64() {
        why.push(format!("repeat {repeat:?}, expected {}", expect["repeat"]));
    }
    if let Some(channels) = expect["channels"].as_array() {
        let want: Vec<&str> = channels.iter().filter_map(Value::as_str).collect();
        if p.channels != want {
            why.push(format!("channels {:?}, expected {want:?}", p.channels));
        }
    }
    match (expect["budget"].as_array(), &p.budget) {
        (Some(b), Some(m)) => {
            let amount = b[0].as_f64().unwrap_or(-1.0);
            if (m.amount() - amount).abs() > 1e-6 || m.currency != b[1].as_str().unwrap_or("") {
                why.push(format!("budget {m}, expected {} {}", b[0], b[1]));
            }
        }
        (Some(b), None) => why.push(format!("no budget, expected {} {}", b[0], b[1])),
        (None, Some(m)) => why.push(format!("budget {m}, expected none")),
        (None, None) => {}
    }
    if let Some(days) = expect["days"].as_u64()
        && p.schedule.days as u64 != days
    {
        why.push(format!("{} days, expected {days}", p.schedule.days));
    }
    why
}

/// Plans every case with the local planner.
pub fn measure(cases: &[Case], cx: &Context) -> Vec<Outcome> {
    cases
        .iter()
        .map(|c| {
            let result = plan("suite", &c.goal, cx);
            let why = check(&result, &c.expect);
            Outcome { id: c.id.clone(), passed: why.is_empty(), why }
        })
        .collect()
}
