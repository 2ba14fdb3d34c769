//! A plan as ordinary definitions: a segment (its audience: CEL over the profile, behaviour clauses for what
//! people did) and a flow (triggered by entering the segment: the holdout split, then per channel, on its day,
//! copy written by `generate`, checked by the review gate, sent by the channel's connector; exit on the goal
//! event; the plan's budget). What is written here is what a marketer could have written by hand, and it is
//! validated like anything they write.

use crate::plan::{Condition, Plan};

/// The connector operation that sends on each channel, and the `with` it is given (templates over the run).
fn send(channel: &str, copy: &str) -> Option<(&'static str, String)> {
    let subject = format!("{{{{ run.steps.{copy}.subject }}}}");
    let body = format!("{{{{ run.steps.{copy}.body }}}}");
    Some(match channel {
        "email" => (
            "smtp.send",
            format!("{{ to: \"{{{{ profile.traits.email }}}}\", subject: {}, text: {} }}", q(&subject), q(&body)),
        ),
        "zalo" => (
            "zalo.message",
            format!(
                "{{ user_id: \"{{{{ profile.traits.zalo_id }}}}\", kind: promotion, elements: [{{ type: header, content: {} }}, {{ type: text, content: {} }}] }}",
                q(&subject),
                q(&body)
            ),
        ),
        "sms" => ("sms.send", format!("{{ to: \"{{{{ profile.traits.phone }}}}\", body: {} }}", q(&body))),
        _ => return None,
    })
}

/// A YAML double-quoted scalar (JSON's escaping is YAML's).
fn q(text: &str) -> String {
    serde_json::to_string(text).expect("text serialises")
}

/// A YAML single-quoted scalar, for CEL (whose own strings are double-quoted).
fn sq(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A trait's path in CEL.
fn path(trait_name: &str) -> String {
    format!("profile.traits.{trait_name}")
}

/// The segment's `when`: the conditions on the profile, joined.
fn when(plan: &Plan) -> Option<String> {
    let parts: Vec<String> = plan
        .audience
        .conditions
        .iter()
        .filter_map(|c| match c {
            Condition::TraitAtLeast { trait_name, at_least, .. } => {
                let p = path(trait_name);
                Some(format!("has({p}) && double({p}) >= {at_least:.1}"))
            }
            Condition::TraitIn { trait_name, values, .. } => {
                let p = path(trait_name);
                let list: Vec<String> = values.iter().map(|v| q(v)).collect();
                Some(format!("has({p}) && {p} in [{}]", list.join(", ")))
            }
            Condition::Reachable { traits } => {
                let any: Vec<String> = traits.iter().map(|t| format!("has({})", path(t))).collect();
                Some(if any.len() == 1 { any[0].clone() } else { format!("({})", any.join(" || ")) })
            }
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" && "))
}

/// The segment's behaviour clauses.
fn behaviour(plan: &Plan) -> Vec<String> {
    plan.audience
        .conditions
        .iter()
        .filter_map(|c| match c {
            Condition::LastPerformed { event, days } => {
                Some(format!("{{ last_performed: {}, more_than: {days}d }}", q(event)))
            }
            Condition::Performed { event, times, days } => Some(match days {
                Some(d) => format!("{{ performed: {}, at_least: {times}, within: {d}d }}", q(event)),
                None => format!("{{ performed: {}, at_least: {times} }}", q(event)),
            }),
            Condition::NotPerformed { event, days } => Some(match days {
                Some(d) => format!("{{ not_performed: {}, within: {d}d }}", q(event)),
                None => format!("{{ not_performed: {} }}", q(event)),
            }),
            _ => None,
        })
        .collect()
}

/// The plan's name, for the segment's and flow's `name` (the goal, shortened).
fn name(plan: &Plan) -> String {
    let goal: String = plan.goal.chars().take(80).collect();
    format!("Plan {} v{}: {goal}", plan.id, plan.version)
}

/// The segment the plan creates.
pub fn segment_yaml(plan: &Plan) -> String {
    let mut out = format!(
        "# Made by the copilot from plan {} version {}; the audience of flow {}.\nsegment: {}\nname: {}\n",
        plan.id,
        plan.version,
        plan.flow,
        plan.audience.segment,
        q(&name(plan))
    );
    if let Some(w) = when(plan) {
        out.push_str(&format!("when: {}\n", sq(&w)));
    }
    let clauses = behaviour(plan);
    if !clauses.is_empty() {
        out.push_str("behaviour:\n");
        for c in clauses {
            out.push_str(&format!("  - {c}\n"));
        }
    }
    out
}

/// The flow the plan creates.
pub fn flow_yaml(plan: &Plan) -> String {
    let mut out = format!(
        "# Made by the copilot from plan {} version {}. Goal: {}\nflow: {}\nname: {}\ncategory: promotional\n",
        plan.id,
        plan.version,
        plan.goal.replace('\n', " "),
        plan.flow,
        q(&name(plan))
    );
    if let Some(b) = &plan.budget {
        out.push_str(&format!("budget: {{ amount: {}, currency: {} }}\n", b.amount(), b.currency));
    }
    out.push_str(&format!("quiet_hours: {}\n", plan.schedule.quiet_hours));
    out.push_str(&format!("trigger: {{ segment: {} }}\n", plan.audience.segment));
    out.push_str("entry: { once: true }\n");
    out.push_str(&format!("exit_when: [ {{ event: {} }} ]\n", q(&plan.goal_event)));
    out.push_str(&format!("goal: {{ event: {}, within: {}d }}\n", q(&plan.goal_event), plan.schedule.days));
    out.push_str("steps:\n");
    // Members who enter once the plan's timeframe is over get nothing (the times are written when approved).
    let treated_share = ((1.0 - plan.holdout) * 100.0).round() as u32;
    let first = match plan.briefs.first() {
        _ if treated_share < 100 => "holdout".to_owned(),
        Some(b) if b.day > 0 => format!("{}_wait", b.channel),
        Some(b) => format!("{}_reachable", b.channel),
        None => "done".to_owned(),
    };
    if let Some(end) = &plan.schedule.ends_at {
        out.push_str(&format!(
            "  - id: within_timeframe\n    branch:\n      - {{ when: {}, next: ended }}\n      - {{ next: {first} }}\n",
            sq(&format!("run.started_at >= {}", q(end)))
        ));
    } else {
        out.push_str("  # (when approved: runs that start after the plan's timeframe end at once)\n");
    }
    let treated = ((1.0 - plan.holdout) * 100.0).round() as u32;
    if treated < 100 {
        out.push_str(&format!(
            "  - id: holdout\n    split:\n      - {{ arm: plan, percent: {treated} }}\n      - {{ arm: control, percent: {}, holdout: true }}\n",
            100 - treated
        ));
    }
    let mut day = 0;
    for (i, brief) in plan.briefs.iter().enumerate() {
        let c = &brief.channel;
        let Some((action, with)) = send(c, &format!("{c}_copy")) else { continue };
        // The next channel's first step: its wait when it goes on a later day, else its reachability check.
        let next = match plan.briefs.get(i + 1) {
            Some(b) if b.day > brief.day => format!("{}_wait", b.channel),
            Some(b) => format!("{}_reachable", b.channel),
            None => "done".to_owned(),
        };
        let reach = crate::read::words::CHANNELS.iter().find(|w| w.name == c).map_or("email", |w| w.trait_name);
        if brief.day > day {
            out.push_str(&format!("  - {{ id: {c}_wait, wait: {}d }}\n", brief.day - day));
            day = brief.day;
        }
        out.push_str(&format!(
            "  - id: {c}_reachable\n    branch:\n      - {{ when: {}, next: {c}_copy }}\n      - {{ next: {next} }}\n",
            sq(&format!("has(profile.traits.{reach})"))
        ));
        out.push_str(&format!(
            "  - id: {c}_copy\n    generate: {{ prompt: {}, channel: {c}, packs: [general] }}\n",
            q(&brief.prompt)
        ));
        out.push_str(&format!(
            "  - id: {c}_checked\n    branch:\n      - {{ when: {}, next: {c}_send }}\n      - {{ next: {next} }}\n",
            sq(&format!("run.steps.{c}_copy.passed"))
        ));
        out.push_str(&format!("  - id: {c}_send\n    action: {action}\n    with: {with}\n    next: {next}\n"));
    }
    out.push_str("  - id: done\n    exit: plan finished\n");
    if plan.schedule.ends_at.is_some() {
        out.push_str("  - id: ended\n    exit: the plan's timeframe is over\n");
    }
    out
}

/// A line-by-line difference between two texts: lines kept start with two spaces, removed with `- `, added
/// with `+ ` (the longest common subsequence decides what stayed).
pub fn diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}
