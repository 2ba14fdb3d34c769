//! A flow's definition: trigger, entry rules, exits, goal and steps, compiled from YAML.
//!
//! ```yaml
//! flow: abandoned-cart
//! category: promotional          # what policies see; steps may override
//! channel: email
//! trigger: { event: Cart Abandoned, when: 'event.properties.total > 0' }
//! entry: { every_time: true, dedupe: "{{ event.properties.cart_id }}", max_concurrent: 1 }
//! exit_when: [ { event: Order Completed } ]
//! goal: { event: Order Completed, within: 7d }
//! steps:
//!   - id: wait-for-order
//!     wait_for: { event: Order Completed, timeout: 4h }
//!     on_event: bought
//!     on_timeout: remind
//!   - id: remind
//!     action: webhook.post
//!     with: { url: "https://mail.example/send", to: "{{ profile.traits.email }}" }
//!   - id: bought
//!     exit: converted
//! ```

use serde_json::Value;

use super::decode::{Cx, Obj, closest, kind};
use super::{ConnectorInfo, Problem};
use crate::budget::Limits;
use crate::condition::Condition;
use crate::cron::Cron;
use crate::event::EventType;
use crate::template::{RenderError, Template};
use crate::time::{Millis, TimeOfDay, zone};
use crate::yaml::{Pos, Positions, push_token};

/// The most steps a flow may have.
pub const MAX_STEPS: usize = 200;

/// A compiled flow.
#[derive(Debug)]
pub struct Flow {
    pub id: String,
    /// Assigned when the flow is stored: 1 for the first, one more for each change. Runs keep theirs.
    pub version: u32,
    pub name: Option<String>,
    /// The category policies see for the flow's actions (`promotional`, `transactional`, ...).
    pub category: String,
    /// The channel policies see for actions that name none (else the connector's own).
    pub channel: Option<String>,
    pub trigger: Trigger,
    pub entry: Entry,
    pub exit_when: Vec<Exit>,
    pub goal: Option<Goal>,
    pub quiet_hours: QuietMode,
    /// What each step's templates and conditions may do (`limits:`), the defaults or lower.
    pub limits: Limits,
    pub steps: Vec<Step>,
    /// A retired flow starts no runs; runs already going finish on the version they started on.
    pub retired: bool,
    /// The YAML it was compiled from, as served back by the API.
    pub source: String,
    segment_refs: Vec<(String, String, Pos)>,
}

/// What starts a run.
#[derive(Debug)]
pub enum Trigger {
    Event(EventMatch),
    /// Entering (or leaving) a segment.
    Segment {
        id: String,
        leave: bool,
        when: Option<Condition>,
    },
    /// A cron schedule, per profile in the audience (every profile, or a segment's members).
    Schedule {
        cron: Cron,
        zone: ZoneChoice,
        segment: Option<String>,
        when: Option<Condition>,
    },
    /// An inbound signal by name (a webhook or the API).
    Signal {
        name: String,
        when: Option<Condition>,
    },
}

/// Which events a trigger, exit, goal or `wait_for` listens to.
#[derive(Debug)]
pub struct EventMatch {
    /// The call type; `track` when an event name is given.
    pub kind: Option<EventType>,
    /// The track event's name, or the page or screen name; any when `None`.
    pub name: Option<String>,
    pub when: Option<Condition>,
}

/// The time zone a schedule, wait or quiet hours use.
#[derive(Debug, Clone)]
pub enum ZoneChoice {
    /// The profile's own (`context.timezone` of its latest event), else the fallback.
    Profile {
        fallback: jiff::tz::TimeZone,
    },
    Fixed(jiff::tz::TimeZone),
}

/// Who may enter and how often.
#[derive(Debug)]
pub struct Entry {
    pub rule: EntryRule,
    /// At most this many runs of the flow at once per profile.
    pub max_concurrent: u32,
}

#[derive(Debug)]
pub enum EntryRule {
    /// Once per profile, ever.
    Once,
    /// Again once this long has passed since the last entry.
    OncePer(Millis),
    /// Every trigger, except that a dedupe key (rendered from the trigger) already used is not entered again.
    EveryTime { dedupe: Option<Template> },
}

/// What stops a run at once, waiting or not.
#[derive(Debug)]
pub enum Exit {
    Event(EventMatch),
    /// Entering the segment.
    Segment(String),
}

/// A conversion recorded per run for reporting.
#[derive(Debug)]
pub struct Goal {
    pub event: EventMatch,
    pub within: Millis,
}

/// What an action in quiet hours does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietMode {
    /// Waits until the quiet hours end, then checks every policy again.
    Defer,
    /// Skips the action and goes on.
    Drop,
}

/// One step.
#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    /// The step after this one (by index); `None` ends the run. Branches, splits and `wait_for` name their own.
    pub next: Option<usize>,
}

#[derive(Debug)]
pub enum StepKind {
    Action(Action),
    Wait(WaitSpec),
    WaitFor {
        event: EventMatch,
        timeout: Millis,
        on_event: Option<usize>,
        on_timeout: Option<usize>,
    },
    Branch(Vec<BranchArm>),
    Split(Vec<SplitArm>),
    UpdateProfile(Payload),
    Exit(String),
    /// Copy written for this profile by the AI layer (the `ai` connector's `generate`), reviewed, kept in
    /// `run.steps.<id>`. Not a send: policies and caps do not count it.
    Generate(Payload),
    /// A human approves, edits or rejects before the run goes on.
    Approve(Approve),
}

/// The keys a `generate` step takes (the `ai` connector reads them).
pub const GENERATE_KEYS: [&str; 9] =
    ["prompt", "channel", "variants", "revisions", "packs", "brief", "language", "tone", "max_chars"];

/// An `approve` step: when approval is needed, how long it may take, and what happens if nobody decides.
#[derive(Debug)]
pub struct Approve {
    /// The step whose result is the message approved (its fields are what an editor may change).
    pub content: Option<String>,
    /// The approval policy: approval is needed when this holds (always, when absent and `first_sends` is
    /// unset).
    pub when: Option<Condition>,
    /// Approval is also needed for the first this many runs of a flow version that reach the step, counted
    /// across profiles: a new version's copy is seen by a person before it goes out unattended.
    pub first_sends: Option<u64>,
    /// Why approval is needed, shown in the inbox (Liquid).
    pub reason: Option<Template>,
    pub expires: Millis,
    pub fallback: Fallback,
    /// Where a rejected run goes (it exits when unset).
    pub on_reject: Option<usize>,
    /// Where a skipped run goes when approval expired (it exits when unset).
    pub on_skip: Option<usize>,
    /// What `send_default` puts in place of the content.
    pub default: Option<Payload>,
    /// Who an escalated approval goes to.
    pub escalate_to: Option<String>,
}

/// The most sends `first_sends` may hold for approval.
pub const MAX_FIRST_SENDS: u64 = 1_000_000;

/// What happens when an approval expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Nothing is sent: the run goes to `on_skip`, or exits.
    Skip,
    /// The `default` content replaces the generated one and the run goes on.
    SendDefault,
    /// The approval goes to `escalate_to` for another `expires`; if that expires too, it is skipped.
    Escalate,
}

impl Fallback {
    pub fn name(self) -> &'static str {
        match self {
            Fallback::Skip => "skip",
            Fallback::SendDefault => "send_default",
            Fallback::Escalate => "escalate",
        }
    }
}

/// A connector call.
#[derive(Debug)]
pub struct Action {
    pub connector: String,
    pub operation: String,
    pub with: Payload,
    pub category: String,
    pub channel: String,
    /// The run waits for the connector's result (to use it in later steps) instead of going straight on.
    pub await_result: bool,
}

#[derive(Debug)]
pub enum WaitSpec {
    For(Millis),
    /// Until the next time the local clock reads this.
    UntilTime {
        at: TimeOfDay,
        zone: ZoneChoice,
    },
    /// Until a date held in a trait, moved by an offset (negative is before).
    UntilTrait {
        name: String,
        offset: Millis,
    },
}

#[derive(Debug)]
pub struct BranchArm {
    /// `None` is the default arm, taken when no other matches.
    pub when: Option<Condition>,
    pub next: Option<usize>,
}

#[derive(Debug)]
pub struct SplitArm {
    pub name: String,
    pub percent: u32,
    pub next: Option<usize>,
    /// A holdout arm records the profile and ends the run: the control group for measuring the flow.
    pub holdout: bool,
}

/// A JSON payload whose strings may be Liquid templates.
#[derive(Debug)]
pub enum Payload {
    Literal(Value),
    Text(Template),
    Array(Vec<Payload>),
    Object(Vec<(String, Payload)>),
}

impl Payload {
    /// Renders every template in the payload.
    pub fn render(&self, variables: &[(&str, &Value)]) -> Result<Value, RenderError> {
        Ok(match self {
            Payload::Literal(v) => v.clone(),
            Payload::Text(t) => Value::String(t.render(variables)?),
            Payload::Array(items) => Value::Array(items.iter().map(|p| p.render(variables)).collect::<Result<_, _>>()?),
            Payload::Object(members) => Value::Object(
                members.iter().map(|(k, p)| Ok((k.clone(), p.render(variables)?))).collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Whether any template in it may read the named variable (see [`Template::mentions`]).
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Payload::Literal(_) => false,
            Payload::Text(t) => t.mentions(name),
            Payload::Array(items) => items.iter().any(|p| p.mentions(name)),
            Payload::Object(members) => members.iter().any(|(_, p)| p.mentions(name)),
        }
    }

    fn sources<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Payload::Literal(_) => {}
            Payload::Text(t) => out.push(t.source()),
            Payload::Array(items) => items.iter().for_each(|p| p.sources(out)),
            Payload::Object(members) => members.iter().for_each(|(_, p)| p.sources(out)),
        }
    }
}

impl Flow {
    /// Segments this flow names, with where: for the cross-definition check.
    pub fn segments_named(&self) -> impl Iterator<Item = (&str, &str, Pos)> {
        self.segment_refs.iter().map(|(id, pointer, pos)| (id.as_str(), pointer.as_str(), *pos))
    }

    /// The step by id.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The steps a step can go to next.
    pub fn successors(&self, index: usize) -> Vec<usize> {
        successors(&self.steps, index)
    }
}

fn successors(steps: &[Step], index: usize) -> Vec<usize> {
    {
        let step = &steps[index];
        match &step.kind {
            StepKind::Branch(arms) => arms.iter().filter_map(|a| a.next).collect(),
            StepKind::Split(arms) => arms.iter().filter(|a| !a.holdout).filter_map(|a| a.next).collect(),
            StepKind::WaitFor { on_event, on_timeout, .. } => [*on_event, *on_timeout].into_iter().flatten().collect(),
            StepKind::Approve(a) => [step.next, a.on_reject, a.on_skip].into_iter().flatten().collect(),
            StepKind::Exit(_) => Vec::new(),
            _ => step.next.into_iter().collect(),
        }
    }
}

/// Variables conditions and templates inside steps can read.
const STEP_VARIABLES: [&str; 3] = ["event", "profile", "run"];
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
        limits,
        steps: steps?,
        retired,
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
fn list<'v>(cx: &mut Cx<'_>, value: &'v Value, pointer: &str) -> Vec<(usize, &'v Value)> {
    match value {
        Value::Array(items) => items.iter().enumerate().collect(),
        other => {
            cx.problem(pointer, format!("expected a list, found {}", kind(other)), "");
            Vec::new()
        }
    }
}

/// Reads `event`, `type` and `when` of an event matcher from a mapping.
fn read_event_match(cx: &mut Cx<'_>, o: &mut Obj<'_>, variables: &[&str]) -> Option<EventMatch> {
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

pub(super) fn read_zone(cx: &mut Cx<'_>, o: &mut Obj<'_>) -> Option<ZoneChoice> {
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

fn read_steps(
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
                return None;
            };
            let operation = match operation {
                Some(op) if connector.operations.contains(&op) => op,
                None if connector.operations.len() == 1 => connector.operations[0].clone(),
                other => {
                    let ops: Vec<String> =
                        connector.operations.iter().map(|op| format!("{connector_name}.{op}")).collect();
                    let message = match other {
                        Some(op) => format!("`{connector_name}` has no operation `{op}`"),
                        None => format!("say which operation of `{connector_name}`"),
                    };
                    cx.problem(&p, message, format!("operations: {}", ops.join(", ")));
                    return None;
                }
            };
            let with = match o.get("with") {
                Some((v, wp)) => payload(cx, v, &wp)?,
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

/// A later step reading `run.steps.<id>` of an action must be able to: that action has to `await` its result.
fn check_results_awaited(cx: &mut Cx<'_>, steps: &[Step], pointer: &str) {
    for (i, step) in steps.iter().enumerate() {
        let mut sources = Vec::new();
        match &step.kind {
            StepKind::Action(a) => a.with.sources(&mut sources),
            StepKind::UpdateProfile(p) => p.sources(&mut sources),
            StepKind::Branch(arms) => {
                sources.extend(arms.iter().filter_map(|a| a.when.as_ref()).map(Condition::source))
            }
            StepKind::WaitFor { event, .. } => sources.extend(event.when.as_ref().map(Condition::source)),
            StepKind::Generate(p) => p.sources(&mut sources),
            StepKind::Approve(a) => {
                sources.extend(a.when.as_ref().map(Condition::source));
                if let Some(d) = &a.default {
                    d.sources(&mut sources);
                }
            }
            _ => {}
        }
        for source in sources {
            for (at, _) in source.match_indices("steps.") {
                let rest = &source[at + 6..];
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
                let name = &rest[..end];
                let Some(target) = steps.iter().find(|s| s.id == name) else { continue };
                if let StepKind::Action(a) = &target.kind
                    && !a.await_result
                {
                    cx.problem(
                        &push_token(pointer, &i.to_string()),
                        format!("step `{}` reads the result of `{name}`, which does not wait for it", step.id),
                        format!("add `await: true` to step `{name}`"),
                    );
                }
            }
        }
    }
}

/// Unreachable steps, and loops a run could go round without ever waiting.
fn check_graph(cx: &mut Cx<'_>, steps: &[Step]) {
    let n = steps.len();
    // No step was read (each had a problem, already reported): there is no graph to check.
    if n == 0 {
        return;
    }
    let mut reached = vec![false; n];
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        stack.extend(successors(steps, i));
    }
    for (i, step) in steps.iter().enumerate() {
        if !reached[i] {
            cx.problem(
                &format!("/steps/{i}"),
                format!("step `{}` can never be reached", step.id),
                "no earlier step leads here: name it in a `next`, or remove it",
            );
        }
    }
    // A cycle among steps that do not wait runs forever in one go.
    let waits = |i: usize| matches!(steps[i].kind, StepKind::Wait(_) | StepKind::WaitFor { .. });
    // 0 = unseen, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; n];
    for start in 0..n {
        if state[start] != 0 || waits(start) {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>)> = vec![(start, successors(steps, start))];
        state[start] = 1;
        while let Some((node, pending)) = path.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(next) if waits(next) => {}
                Some(next) if state[next] == 1 => {
                    let from = path.iter().position(|(s, _)| *s == next).unwrap_or(0);
                    let cycle: Vec<&str> = path[from..].iter().map(|(s, _)| steps[*s].id.as_str()).collect();
                    cx.problem(
                        &format!("/steps/{next}"),
                        format!("the steps {} -> {} loop without a wait", cycle.join(" -> "), steps[next].id),
                        "a loop must pass a `wait` or `wait_for`, or it would run forever at once",
                    );
                    state[next] = 2;
                }
                Some(next) if state[next] == 0 => {
                    state[next] = 1;
                    path.push((next, successors(steps, next)));
                }
                Some(_) => {}
                None => {
                    state[node] = 2;
                    path.pop();
                }
            }
        }
    }
}
