//! Reading a flow's steps from YAML, and resolving the steps they name.

use serde_json::Value;

use super::graph::{check_graph, check_results_awaited};
use super::read::{STEP_VARIABLES, list, read_event_match, read_zone};
use super::{
    Action, Approve, BranchArm, EventMatch, Fallback, GENERATE_KEYS, MAX_FIRST_SENDS, MAX_STEPS, Payload, SplitArm,
    Step, StepKind, WaitSpec,
};
use crate::ConnectorInfo;
use tutti_core::condition::Condition;
use tutti_core::decode::{Cx, Obj, closest};
use tutti_core::time::{Millis, TimeOfDay};
use tutti_core::yaml::push_token;

/// A step named by a `next` (or `on_event`, or an arm), with the pointer where it was named.
type Target = Option<(String, String)>;

/// A step as read, before `next` names are resolved to indices.
struct Draft {
    pointer: String,
    next: Target,
    kind: DraftKind,
}

enum DraftKind {
    Action(Action),
    Wait(WaitSpec),
    WaitFor {
        event: EventMatch,
        timeout: Millis,
        on_event: Option<(String, String)>,
        on_timeout: Option<(String, String)>,
    },
    Branch(Vec<(Option<Condition>, Target)>),
    Split(Vec<(String, u32, Target, bool)>),
    UpdateProfile(Payload),
    Exit(String),
    Generate(Payload),
    Approve {
        approve: Approve,
        on_reject: Target,
        on_skip: Target,
    },
}

const STEP_KINDS: [&str; 9] =
    ["action", "wait", "wait_for", "branch", "split", "update_profile", "exit", "generate", "approve"];

pub(super) fn read_steps(
    cx: &mut Cx<'_>,
    value: &Value,
    pointer: &str,
    connectors: &[ConnectorInfo],
    category: &str,
    channel: Option<&str>,
) -> Option<Vec<Step>> {
    let items = list(cx, value, pointer);
    if items.is_empty() {
        cx.problem(pointer, "a flow needs at least one step", "");
        return None;
    }
    if items.len() > MAX_STEPS {
        cx.problem(pointer, format!("{} steps; the limit is {MAX_STEPS}", items.len()), "split it into flows");
        return None;
    }
    let mut ids: Vec<String> = Vec::new();
    let mut drafts = Vec::new();
    for (i, item) in items {
        let p = push_token(pointer, &i.to_string());
        let Some(mut o) = cx.object(item, &p, "a step") else { continue };
        let id =
            o.require(cx, "id", "each step has an id, such as `id: send-reminder`").and_then(|(v, p)| cx.name(v, &p));
        if let Some(id) = &id
            && ids.contains(id)
        {
            cx.problem(&push_token(&p, "id"), format!("a second step with id `{id}`"), "step ids are unique");
        }
        ids.push(id.clone().unwrap_or_default());
        let kinds: Vec<&str> = STEP_KINDS.iter().copied().filter(|k| o.has(k)).collect();
        let draft = match kinds.as_slice() {
            [one] => read_step(cx, &mut o, one, connectors, category, channel),
            [] => {
                cx.problem(&p, "a step does one thing: add one of these", STEP_KINDS.join(", "));
                None
            }
            many => {
                cx.problem(
                    &p,
                    format!("a step does one thing, but this one has {}", many.join(" and ")),
                    "split it in two",
                );
                None
            }
        };
        let next = o.get("next").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
        for k in STEP_KINDS {
            o.get(k);
        }
        o.finish(cx);
        // A step that did not compile stands in as a plain step, so the checks of the graph still run.
        let kind = draft.unwrap_or(DraftKind::UpdateProfile(Payload::Literal(Value::Object(Default::default()))));
        drafts.push(Draft { pointer: p, next, kind });
    }
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let count = drafts.len();
    let resolve = |cx: &mut Cx<'_>, target: &Option<(String, String)>, default: Option<usize>| -> Option<usize> {
        match target {
            None => default,
            Some((name, p)) => match id_refs.iter().position(|id| id == name) {
                Some(i) => Some(i),
                None => {
                    let hint = match closest(name, &id_refs) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("steps: {}", id_refs.join(", ")),
                    };
                    cx.problem(p, format!("unknown step `{name}`"), hint);
                    // Going on as if it were not there keeps the graph checks from piling on.
                    default
                }
            },
        }
    };
    let mut steps = Vec::with_capacity(count);
    for (i, draft) in drafts.into_iter().enumerate() {
        let following = (i + 1 < count).then_some(i + 1);
        let next = resolve(cx, &draft.next, following);
        let kind = match draft.kind {
            DraftKind::Action(a) => StepKind::Action(a),
            DraftKind::Wait(w) => StepKind::Wait(w),
            DraftKind::WaitFor { event, timeout, on_event, on_timeout } => StepKind::WaitFor {
                event,
                timeout,
                on_event: resolve(cx, &on_event, next),
                on_timeout: resolve(cx, &on_timeout, next),
            },
            DraftKind::Branch(arms) => StepKind::Branch(
                arms.into_iter().map(|(when, target)| BranchArm { when, next: resolve(cx, &target, next) }).collect(),
            ),
            DraftKind::Split(arms) => StepKind::Split(
                arms.into_iter()
                    .map(|(name, percent, target, holdout)| SplitArm {
                        name,
                        percent,
                        next: resolve(cx, &target, next),
                        holdout,
                    })
                    .collect(),
            ),
            DraftKind::UpdateProfile(p) => StepKind::UpdateProfile(p),
            DraftKind::Exit(reason) => StepKind::Exit(reason),
            DraftKind::Generate(p) => StepKind::Generate(p),
            DraftKind::Approve { approve, on_reject, on_skip } => StepKind::Approve(Approve {
                on_reject: resolve(cx, &on_reject, None),
                on_skip: resolve(cx, &on_skip, None),
                ..approve
            }),
        };
        if matches!(kind, StepKind::Exit(_) | StepKind::Branch(_) | StepKind::Split(_)) && draft.next.is_some() {
            cx.problem(&draft.pointer, "this kind of step chooses its own next step; remove `next`", "");
        }
        steps.push(Step { id: ids[i].clone(), kind, next });
    }
    check_results_awaited(cx, &steps, pointer);
    check_graph(cx, &steps);
    Some(steps)
}

/// Marks an action's own members as read, when the action itself cannot be (an unknown connector or operation).
fn skip_action_members(o: &mut Obj<'_>) {
    for key in ["with", "category", "channel", "await"] {
        o.get(key);
    }
}

/// Refuses a member of an action's `with` that its operation does not take, where it is written: otherwise it
/// would fail only at send time, as a dead letter. A `with` given whole by a template is checked when sent.
fn check_with_members(cx: &mut Cx<'_>, with: &Value, pointer: &str, target: &str, fields: &[String]) {
    let Some(members) = with.as_object() else { return };
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    for key in members.keys().filter(|k| !names.contains(&k.as_str())) {
        let hint = match closest(key, &names) {
            Some(near) => format!("did you mean `{near}`? `{target}` takes {}", names.join(", ")),
            None => format!("`{target}` takes {}", names.join(", ")),
        };
        cx.problem(&push_token(pointer, key), format!("`{target}` does not take `{key}`"), hint);
    }
}

fn read_step(
    cx: &mut Cx<'_>,
    o: &mut Obj<'_>,
    kind: &'static str,
    connectors: &[ConnectorInfo],
    flow_category: &str,
    flow_channel: Option<&str>,
) -> Option<DraftKind> {
    let (value, p) = o.get(kind)?;
    match kind {
        "action" => {
            let target = cx.name(value, &p)?;
            let (connector_name, operation) = match target.split_once('.') {
                Some((c, op)) => (c.to_owned(), Some(op.to_owned())),
                None => (target.clone(), None),
            };
            let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
            let Some(connector) = connectors.iter().find(|c| c.name == connector_name) else {
                let hint = match closest(&connector_name, &names) {
                    Some(near) => format!("did you mean `{near}`? connectors: {}", names.join(", ")),
                    None => format!("connectors: {}", names.join(", ")),
                };
                cx.problem(&p, format!("unknown connector `{connector_name}`"), hint);
                // Its `with` and the rest belong to the action: the problem is the name, not them.
                skip_action_members(o);
                return None;
            };
            let operation = match operation {
                Some(op) if connector.operations.iter().any(|o| o.name == op) => op,
                None if connector.operations.len() == 1 => connector.operations[0].name.clone(),
                other => {
                    let ops: Vec<String> =
                        connector.operations.iter().map(|op| format!("{connector_name}.{}", op.name)).collect();
                    let message = match other {
                        Some(op) => format!("`{connector_name}` has no operation `{op}`"),
                        None => format!("say which operation of `{connector_name}`"),
                    };
                    cx.problem(&p, message, format!("operations: {}", ops.join(", ")));
                    skip_action_members(o);
                    return None;
                }
            };
            let with = match o.get("with") {
                Some((v, wp)) => {
                    let declared = connector.operations.iter().find(|o| o.name == operation);
                    if let Some(fields) = declared.and_then(|o| o.fields.as_deref()) {
                        check_with_members(cx, v, &wp, &format!("{connector_name}.{operation}"), fields);
                    }
                    payload(cx, v, &wp)?
                }
                None => Payload::Literal(Value::Object(Default::default())),
            };
            let category =
                o.get("category").and_then(|(v, cp)| cx.name(v, &cp)).unwrap_or_else(|| flow_category.to_owned());
            let channel = o
                .get("channel")
                .and_then(|(v, cp)| cx.name(v, &cp))
                .or_else(|| flow_channel.map(str::to_owned))
                .unwrap_or_else(|| connector.channel.clone());
            let await_result = o.get("await").and_then(|(v, ap)| cx.boolean(v, &ap)).unwrap_or(false);
            Some(DraftKind::Action(Action {
                connector: connector_name,
                operation,
                with,
                category,
                channel,
                await_result,
            }))
        }
        "wait" => read_wait(cx, value, &p).map(DraftKind::Wait),
        "generate" => {
            let mut g = cx.object(value, &p, "`generate`")?;
            for key in GENERATE_KEYS {
                g.get(key);
            }
            g.finish(cx);
            for (key, max) in [("variants", 10), ("revisions", 5)] {
                if let Some(v) = value.get(key) {
                    cx.positive(v, &push_token(&p, key), max);
                }
            }
            if value.get("prompt").is_none() && value.get("brief").is_none() {
                cx.problem(
                    &p,
                    "`generate` needs a `prompt` or a `brief`",
                    "such as `prompt: \"A win-back email about {{ event.properties.product }}\"`",
                );
            }
            payload(cx, value, &p).map(DraftKind::Generate)
        }
        "approve" => {
            let on_reject = o.get("on_reject").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
            let on_skip = o.get("on_skip").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
            let mut a = cx.object(value, &p, "`approve`")?;
            let content = a.get("content").and_then(|(v, cp)| cx.name(v, &cp));
            let when = a.get("when").and_then(|(v, wp)| cx.condition(v, &wp, &STEP_VARIABLES));
            let first_sends = a.get("first_sends").and_then(|(v, fp)| cx.positive(v, &fp, MAX_FIRST_SENDS));
            let reason = a.get("reason").and_then(|(v, rp)| cx.string(v, &rp).map(str::to_owned).map(|s| (s, rp)));
            let reason = reason.and_then(|(s, rp)| cx.template(&s, &rp));
            let expires = a.require(cx, "expires", "such as `expires: 24h`").and_then(|(v, ep)| cx.duration(v, &ep));
            let fallback = match a.get("fallback") {
                None => Some(Fallback::Skip),
                Some((v, fp)) => match cx.string(v, &fp) {
                    Some("skip") => Some(Fallback::Skip),
                    Some("send_default") => Some(Fallback::SendDefault),
                    Some("escalate") => Some(Fallback::Escalate),
                    Some(other) => {
                        cx.problem(&fp, format!("unknown fallback `{other}`"), "skip, send_default or escalate");
                        None
                    }
                    None => None,
                },
            };
            let default = match a.get("default") {
                Some((v, dp)) => Some(payload(cx, v, &dp)?),
                None => None,
            };
            let escalate_to = a.get("escalate_to").and_then(|(v, ep)| cx.string(v, &ep).map(str::to_owned));
            a.finish(cx);
            let fallback = fallback?;
            if fallback == Fallback::SendDefault && default.is_none() {
                cx.problem(
                    &p,
                    "`fallback: send_default` needs the `default` to send",
                    "such as `default: { subject: ..., body: ... }`",
                );
            }
            if fallback == Fallback::Escalate && escalate_to.is_none() {
                cx.problem(&p, "`fallback: escalate` needs `escalate_to`", "such as `escalate_to: marketing-leads`");
            }
            let approve = Approve {
                content,
                when,
                first_sends,
                reason,
                expires: expires?,
                fallback,
                on_reject: None,
                on_skip: None,
                default,
                escalate_to,
            };
            Some(DraftKind::Approve { approve, on_reject, on_skip })
        }
        "wait_for" => {
            let on_event = o.get("on_event").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
            let on_timeout = o.get("on_timeout").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
            let mut w = cx.object(value, &p, "`wait_for`")?;
            let timeout = w.require(cx, "timeout", "such as `timeout: 4h`").and_then(|(v, tp)| cx.duration(v, &tp));
            let event = read_event_match(cx, &mut w, &STEP_VARIABLES);
            w.finish(cx);
            Some(DraftKind::WaitFor { event: event?, timeout: timeout?, on_event, on_timeout })
        }
        "branch" => {
            let items = list(cx, value, &p);
            let mut arms = Vec::new();
            let total = items.len();
            for (i, item) in items {
                let ap = push_token(&p, &i.to_string());
                let Some(mut a) = cx.object(item, &ap, "a branch arm") else { continue };
                let when = a.get("when").map(|(v, wp)| (cx.condition(v, &wp, &STEP_VARIABLES), wp));
                let next = a.get("next").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
                a.finish(cx);
                match when {
                    Some((Some(c), _)) => arms.push((Some(c), next)),
                    // Kept (never taken) so that the steps it names still count as reachable.
                    Some((None, _)) => arms.push((Condition::compile("false").ok(), next)),
                    None if i + 1 == total => arms.push((None, next)),
                    None => cx.problem(&ap, "only the last arm may go without `when`", "it is the default arm"),
                }
            }
            if total == 0 {
                cx.problem(&p, "a branch needs arms", "such as `- { when: 'profile.traits.vip', next: vip }`");
                return None;
            }
            Some(DraftKind::Branch(arms))
        }
        "split" => {
            let items = list(cx, value, &p);
            let mut arms = Vec::new();
            let mut total = 0u64;
            for (i, item) in items {
                let ap = push_token(&p, &i.to_string());
                let Some(mut a) = cx.object(item, &ap, "a split arm") else { continue };
                let name =
                    a.require(cx, "arm", "each arm has a name, such as `arm: A`").and_then(|(v, np)| cx.name(v, &np));
                let percent = a.require(cx, "percent", "").and_then(|(v, np)| cx.positive(v, &np, 100));
                let next = a.get("next").and_then(|(v, np)| cx.name(v, &np).map(|n| (n, np)));
                let holdout = a.get("holdout").and_then(|(v, hp)| cx.boolean(v, &hp)).unwrap_or(false);
                a.finish(cx);
                if let (Some(name), Some(percent)) = (name, percent) {
                    total += percent;
                    arms.push((name, percent as u32, next, holdout));
                }
            }
            if total != 100 {
                cx.problem(&p, format!("the arms' percentages add up to {total}, not 100"), "");
                return None;
            }
            Some(DraftKind::Split(arms))
        }
        "update_profile" => {
            let mut u = cx.object(value, &p, "`update_profile`")?;
            let traits = u.require(cx, "traits", "such as `traits: { last_reminded: \"{{ run.started_at }}\" }`");
            u.finish(cx);
            let (v, tp) = traits?;
            if !v.is_object() {
                cx.problem(&tp, "`traits` is a mapping of trait names to values", "");
                return None;
            }
            payload(cx, v, &tp).map(DraftKind::UpdateProfile)
        }
        _ => {
            let reason = match value {
                Value::Bool(true) => "exit".to_owned(),
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => {
                    cx.problem(&p, "`exit` takes a reason, such as `exit: converted`", "");
                    return None;
                }
            };
            Some(DraftKind::Exit(reason))
        }
    }
}

fn read_wait(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Option<WaitSpec> {
    if let Value::String(_) = value {
        return cx.duration(value, pointer).map(WaitSpec::For);
    }
    let mut o = cx.object(value, pointer, "`wait`")?;
    let spec = if let Some((v, p)) = o.get("until_time") {
        let text = cx.string(v, &p)?;
        let at = match TimeOfDay::parse(text) {
            Ok(t) => t,
            Err(e) => {
                cx.problem(&p, e, "");
                return None;
            }
        };
        WaitSpec::UntilTime { at, zone: read_zone(cx, &mut o)? }
    } else if let Some((v, p)) = o.get("until_trait") {
        let name = cx.name(v, &p)?;
        let before = o.get("before").and_then(|(v, p)| cx.duration(v, &p)).unwrap_or(0);
        let after = o.get("after").and_then(|(v, p)| cx.duration(v, &p)).unwrap_or(0);
        WaitSpec::UntilTrait { name, offset: after - before }
    } else {
        cx.problem(
            pointer,
            "a wait is a duration (`wait: 5m`), `until_time` or `until_trait`",
            "`wait: { until_time: \"09:00\" }` waits for 9 am in the profile's time zone",
        );
        return None;
    };
    o.finish(cx);
    Some(spec)
}

/// A payload: strings with `{{` or `{%` are Liquid templates, everything else literal.
fn payload(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Option<Payload> {
    Some(match value {
        Value::String(s) if s.contains("{{") || s.contains("{%") => Payload::Text(cx.template(s, pointer)?),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match payload(cx, item, &push_token(pointer, &i.to_string())) {
                    Some(p) => out.push(p),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            if out.iter().all(|p| matches!(p, Payload::Literal(_))) {
                Payload::Literal(value.clone())
            } else {
                Payload::Array(out)
            }
        }
        Value::Object(map) => {
            let mut out = Vec::with_capacity(map.len());
            let mut ok = true;
            for (k, v) in map {
                match payload(cx, v, &push_token(pointer, k)) {
                    Some(p) => out.push((k.clone(), p)),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            if out.iter().all(|(_, p)| matches!(p, Payload::Literal(_))) {
                Payload::Literal(value.clone())
            } else {
                Payload::Object(out)
            }
        }
        other => Payload::Literal(other.clone()),
    })
}
