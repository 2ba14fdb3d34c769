//! Reading a flow from YAML: its top level (trigger, entry, exits, goal, limits); the steps are in `steps.rs`.

use serde_json::Value;

use super::steps::read_steps;
use super::{Entry, EntryRule, EventMatch, Exit, Flow, Goal, QuietMode, Trigger, ZoneChoice};
use crate::{ConnectorInfo, Problem};
use tutti_core::budget::Limits;
use tutti_core::cron::Cron;
use tutti_core::decode::{Cx, Obj, kind};
use tutti_core::event::EventType;
use tutti_core::time::zone;
use tutti_core::yaml::{Pos, Positions, push_token};

/// Variables conditions and templates inside steps can read.
pub(super) const STEP_VARIABLES: [&str; 3] = ["event", "profile", "run"];
/// Variables a trigger's condition can read.
const TRIGGER_VARIABLES: [&str; 2] = ["event", "profile"];

/// Compiles a flow from its loaded YAML.
pub fn compile(value: &Value, positions: &Positions, connectors: &[ConnectorInfo]) -> Result<Flow, Vec<Problem>> {
    let mut cx = Cx::new(positions);
    let flow = read_flow(&mut cx, value, connectors);
    match flow {
        Some(flow) if cx.problems.is_empty() => Ok(flow),
        _ => {
            let mut problems = cx.problems;
            problems.sort_by_key(|p| p.pos);
            Err(problems)
        }
    }
}

fn read_flow(cx: &mut Cx<'_>, value: &Value, connectors: &[ConnectorInfo]) -> Option<Flow> {
    let mut top = cx.object(value, "", "a flow")?;
    let mut refs = Vec::new();
    let id = top.require(cx, "flow", "").and_then(|(v, p)| cx.name(v, &p));
    let name = top.get("name").and_then(|(v, p)| cx.string(v, &p).map(str::to_owned));
    // Free text for people; only its kind is checked.
    if let Some((v, p)) = top.get("description") {
        cx.string(v, &p);
    }
    let category = top.get("category").and_then(|(v, p)| cx.name(v, &p)).unwrap_or_else(|| "promotional".to_owned());
    let channel = top.get("channel").and_then(|(v, p)| cx.name(v, &p));
    let retired = top.get("retired").and_then(|(v, p)| cx.boolean(v, &p)).unwrap_or(false);
    let trigger = top
        .require(cx, "trigger", "such as `trigger: { event: Order Completed }`")
        .and_then(|(v, p)| read_trigger(cx, v, &p, &mut refs));
    let entry = match top.get("entry") {
        Some((v, p)) => read_entry(cx, v, &p),
        None => Some(Entry { rule: EntryRule::Once, max_concurrent: 1 }),
    };
    let mut exit_when = Vec::new();
    if let Some((v, p)) = top.get("exit_when") {
        for (i, item) in list(cx, v, &p) {
            let pointer = push_token(&p, &i.to_string());
            if let Some(exit) = read_exit(cx, item, &pointer, &mut refs) {
                exit_when.push(exit);
            }
        }
    }
    let goal = top.get("goal").and_then(|(v, p)| {
        let mut o = cx.object(v, &p, "a goal")?;
        let within = o.require(cx, "within", "such as `within: 7d`").and_then(|(v, p)| cx.duration(v, &p));
        let event = read_event_match(cx, &mut o, TRIGGER_VARIABLES.as_slice());
        o.finish(cx);
        Some(Goal { event: event?, within: within? })
    });
    let quiet_hours = match top.get("quiet_hours") {
        None => QuietMode::Defer,
        Some((Value::String(s), _)) if s == "defer" => QuietMode::Defer,
        Some((Value::String(s), _)) if s == "drop" => QuietMode::Drop,
        Some((_, p)) => {
            cx.problem(&p, "`quiet_hours` is `defer` or `drop`", "defer waits for the quiet hours to end");
            QuietMode::Defer
        }
    };
    let tracking = top.get("tracking").and_then(|(v, p)| cx.boolean(v, &p)).unwrap_or(true);
    let budget = top.get("budget").and_then(|(v, p)| match tutti_core::money::Money::from_value(v) {
        Ok(money) => Some(money),
        Err(e) => {
            cx.problem(&p, &e, "such as `budget: { amount: 50000000, currency: VND }`");
            None
        }
    });
    let limits = match top.get("limits") {
        None => Limits::default(),
        Some((v, p)) => read_limits(cx, v, &p),
    };
    let steps = top
        .require(cx, "steps", "a flow has a list of steps")
        .and_then(|(v, p)| read_steps(cx, v, &p, connectors, &category, channel.as_deref()));
    top.finish(cx);
    let flow = Flow {
        id: id?,
        version: 0,
        name,
        category,
        channel,
        trigger: trigger?,
        entry: entry?,
        exit_when,
        goal,
        quiet_hours,
        tracking,
        budget,
        limits,
        steps: steps?,
        retired,
        paused: false,
        source: String::new(),
        segment_refs: refs,
    };
    Some(flow)
}

/// `limits: { steps, output, time }`: lower than the defaults, never higher.
fn read_limits(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Limits {
    let defaults = Limits::default();
    let Some(mut o) = cx.object(value, pointer, "limits") else { return defaults };
    let mut limits = defaults;
    if let Some((v, p)) = o.get("steps") {
        limits.steps = cx.positive(v, &p, defaults.steps).unwrap_or(defaults.steps);
    }
    if let Some((v, p)) = o.get("output") {
        limits.output_bytes =
            cx.positive(v, &p, defaults.output_bytes as u64).map_or(defaults.output_bytes, |n| n as usize);
    }
    if let Some((v, p)) = o.get("time")
        && let Some(ms) = cx.duration(v, &p)
    {
        if ms > defaults.time.as_millis() as i64 {
            cx.problem(
                &p,
                format!("a flow may lower the time limit, not raise it past {} ms", defaults.time.as_millis()),
                "such as `time: 100ms`",
            );
        } else {
            limits.time = std::time::Duration::from_millis(ms as u64);
        }
    }
    o.finish(cx);
    limits
}

/// The items of a list, or a problem.
pub(super) fn list<'v>(cx: &mut Cx<'_>, value: &'v Value, pointer: &str) -> Vec<(usize, &'v Value)> {
    match value {
        Value::Array(items) => items.iter().enumerate().collect(),
        other => {
            cx.problem(pointer, format!("expected a list, found {}", kind(other)), "");
            Vec::new()
        }
    }
}

/// Reads `event`, `type` and `when` of an event matcher from a mapping.
pub(super) fn read_event_match(cx: &mut Cx<'_>, o: &mut Obj<'_>, variables: &[&str]) -> Option<EventMatch> {
    let name = o.get("event").and_then(|(v, p)| cx.name(v, &p));
    let kind = match o.get("type") {
        Some((v, p)) => {
            let text = cx.string(v, &p)?;
            match EventType::parse(text) {
                Some(k) => Some(k),
                None => {
                    cx.problem(
                        &p,
                        format!("`{text}` is not a call type"),
                        "track, identify, page, screen, group or alias",
                    );
                    return None;
                }
            }
        }
        None => name.as_ref().map(|_| EventType::Track),
    };
    let when = o.get("when").map(|(v, p)| cx.condition(v, &p, variables));
    if name.is_none() && kind.is_none() {
        cx.problem(&o.pointer, "say which events: `event: <name>` (a track event) or `type: page`", "");
        return None;
    }
    Some(EventMatch { kind, name, when: when.flatten() })
}

pub(crate) fn read_zone(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> Option<ZoneChoice> {
    let fallback_name = o.get("default_timezone");
    let fallback = match fallback_name {
        Some((v, p)) => {
            let name = cx.string(v, &p)?;
            match zone(name) {
                Some(z) => z,
                None => {
                    cx.problem(&p, format!("unknown time zone `{name}`"), "an IANA name such as `Asia/Ho_Chi_Minh`");
                    return None;
                }
            }
        }
        None => jiff::tz::TimeZone::UTC,
    };
    match o.get("timezone") {
        None => Some(ZoneChoice::Profile { fallback }),
        Some((Value::String(s), _)) if s == "profile" => Some(ZoneChoice::Profile { fallback }),
        Some((v, p)) => {
            let name = cx.string(v, &p)?;
            match zone(name) {
                Some(z) => Some(ZoneChoice::Fixed(z)),
                None => {
                    cx.problem(
                        &p,
                        format!("unknown time zone `{name}`"),
                        "`profile` for each profile's own, or an IANA name such as `Asia/Shanghai`",
                    );
                    None
                }
            }
        }
    }
}

fn read_trigger(
    cx: &mut Cx<'_>,
    value: &Value,
    pointer: &str,
    refs: &mut Vec<(String, String, Pos)>,
) -> Option<Trigger> {
    let mut o = cx.object(value, pointer, "a trigger")?;
    let trigger = if (o.has("segment") || o.has("left_segment")) && !o.has("schedule") {
        let leave = o.has("left_segment");
        let (v, p) = if leave { o.get("left_segment")? } else { o.get("segment")? };
        let id = cx.name(v, &p)?;
        refs.push((id.clone(), p.clone(), cx.positions.of(&p)));
        let when = o.get("when").and_then(|(v, p)| cx.condition(v, &p, &["profile", "event"]));
        Trigger::Segment { id, leave, when }
    } else if let Some((v, p)) = o.get("schedule") {
        let text = cx.string(v, &p)?;
        let cron = match Cron::parse(text) {
            Ok(c) => c,
            Err(e) => {
                cx.problem(&p, e, "");
                return None;
            }
        };
        let zone = read_zone(cx, &mut o)?;
        let segment = o.get("segment").and_then(|(v, p)| {
            let id = cx.name(v, &p)?;
            refs.push((id.clone(), p.clone(), cx.positions.of(&p)));
            Some(id)
        });
        let when = o.get("when").and_then(|(v, p)| cx.condition(v, &p, &["profile"]));
        Trigger::Schedule { cron, zone, segment, when }
    } else if let Some((v, p)) = o.get("signal") {
        let name = cx.name(v, &p)?;
        let when = o.get("when").and_then(|(v, p)| cx.condition(v, &p, &TRIGGER_VARIABLES));
        Trigger::Signal { name, when }
    } else {
        if !o.has("event") && !o.has("type") {
            cx.problem(
                pointer,
                "a trigger is an event, a segment, a schedule or a signal",
                "such as `{ event: Order Completed }`, `{ segment: vip }` (entering), `{ left_segment: vip }`, `{ schedule: \"0 9 * * 1\" }`",
            );
            o.finish(cx);
            return None;
        }
        Trigger::Event(read_event_match(cx, &mut o, &TRIGGER_VARIABLES)?)
    };
    o.finish(cx);
    Some(trigger)
}

fn read_entry(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Option<Entry> {
    let mut o = cx.object(value, pointer, "`entry`")?;
    let once = o.get("once").and_then(|(v, p)| cx.boolean(v, &p)).unwrap_or(false);
    let once_per = o.get("once_per").and_then(|(v, p)| cx.duration(v, &p));
    let every_time = o.get("every_time").and_then(|(v, p)| cx.boolean(v, &p)).unwrap_or(false);
    let dedupe = o.get("dedupe").and_then(|(v, p)| {
        let text = cx.string(v, &p)?;
        cx.template(text, &p)
    });
    let max_concurrent = o.get("max_concurrent").and_then(|(v, p)| cx.positive(v, &p, 1000)).unwrap_or(1) as u32;
    let chosen = usize::from(once) + usize::from(once_per.is_some()) + usize::from(every_time);
    if chosen > 1 {
        cx.problem(pointer, "choose one of `once`, `once_per` and `every_time`", "");
    }
    if dedupe.is_some() && !every_time {
        cx.problem(pointer, "`dedupe` goes with `every_time: true`", "it stops one key entering twice");
    }
    let rule = if let Some(period) = once_per {
        EntryRule::OncePer(period)
    } else if every_time {
        EntryRule::EveryTime { dedupe }
    } else {
        EntryRule::Once
    };
    o.finish(cx);
    Some(Entry { rule, max_concurrent })
}

fn read_exit(cx: &mut Cx<'_>, value: &Value, pointer: &str, refs: &mut Vec<(String, String, Pos)>) -> Option<Exit> {
    let mut o = cx.object(value, pointer, "an exit")?;
    let exit = if let Some((v, p)) = o.get("segment") {
        let id = cx.name(v, &p)?;
        refs.push((id.clone(), p.clone(), cx.positions.of(&p)));
        Exit::Segment(id)
    } else {
        Exit::Event(read_event_match(cx, &mut o, &TRIGGER_VARIABLES)?)
    };
    o.finish(cx);
    Some(exit)
}
