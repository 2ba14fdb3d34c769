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
//! ```//!
//! This file holds the types; reading them from YAML is in `read.rs` (the flow's top level) and `steps.rs` (its
//! steps), and the checks across steps in `graph.rs`.

mod graph;
mod read;
mod steps;

pub use tutti_core::event_match::EventMatch;

pub use read::compile;
pub(super) use read::read_zone;

use serde_json::Value;

use tutti_core::budget::Limits;
use tutti_core::condition::Condition;
use tutti_core::cron::Cron;
use tutti_core::template::{RenderError, Template};
use tutti_core::time::{Millis, TimeOfDay};
use tutti_core::yaml::Pos;

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
    /// Opens and clicks of its emails may be tracked (`tracking: false` turns it off).
    pub tracking: bool,
    /// What its actions may cost in all (`budget: {amount, currency}`), charged at the connectors' prices when
    /// they are delivered; the dispatcher skips what would go past it.
    pub budget: Option<tutti_core::money::Money>,
    /// What each step's templates and conditions may do (`limits:`), the defaults or lower.
    pub limits: Limits,
    pub steps: Vec<Step>,
    /// A retired flow starts no runs; runs already going finish on the version they started on.
    pub retired: bool,
    /// Retired by a person's pause (until they resume it), not by deletion or `retired:` in its YAML.
    pub paused: bool,
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
