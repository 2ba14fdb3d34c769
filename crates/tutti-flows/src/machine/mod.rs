//! The run state machine: everything flows, segments and policies decide for one profile, as a pure function
//! `apply(world, state, input, now) -> effects`.
//!
//! A profile's [`ProfileState`] holds its runs, its segment memberships, its entry records, the suppressions
//! in force and the messages recently sent (for caps). [`apply`] takes one input (an event, a tick of the
//! clock, a signal, an action's result), changes the state and returns effects: dispatches for the outbox,
//! profile updates, a record of every decision with its reason, and a snapshot of every run it touched. The
//! shell commits the state and the effects in one transaction and only then carries them out, so a crash
//! repeats nothing and loses nothing. Time enters only as `now`; [`ProfileState::next_wake`] says when the
//! profile next needs a tick (one timer per profile, whatever it waits for).
//!
//! An action's idempotency key is `<run>:<step>:<visit>`: a run passes a step once per visit, and a deferred
//! action retried after quiet hours keeps its key.
//!
//! Where things are: `types.rs` holds the data; `inputs/` one file per kind of input, `steps/` one per kind of
//! step, `segments.rs` and `runs.rs` what inputs and steps share; this file the machine itself and its records.

mod inputs;
mod runs;
mod segments;
mod steps;
mod types;

use std::collections::BTreeSet;

use serde_json::Value;

pub use types::*;

use crate::def::{Exit, Flow};
use tutti_core::event::{Event, EventType};
use tutti_core::time::{Millis, parse_timestamp};

/// The most steps one run takes in answer to one input, a guard behind the validator's loop check.
pub const MAX_STEPS_PER_INPUT: usize = 1000;
/// The most decisions a run keeps in its path; older ones are counted, not kept.
pub const MAX_PATH: usize = 200;
/// The most dedupe keys remembered per flow and profile.
pub const MAX_DEDUPE_KEYS: usize = 100;

/// Where an action goes and how policies counted it, for [`Machine::dispatch`].
struct Call<'c> {
    connector: &'c str,
    operation: &'c str,
    channel: &'c str,
    category: &'c str,
    await_result: bool,
    /// Policies apply to it (a send), checked again before each attempt.
    policed: bool,
}

/// Advances one profile by one input at `now`.
pub fn apply(world: &World<'_>, state: &mut ProfileState, input: Input<'_>, now: Millis) -> Vec<Effect> {
    let mut m = Machine { world, state, now, effects: Vec::new(), touched: BTreeSet::new() };
    match input {
        Input::Event(event) => m.on_event(event),
        Input::Tick => m.on_tick(),
        Input::Signal { name, payload } => m.on_signal(name, payload),
        Input::ActionResult { key, result } => m.on_result(key, result),
        Input::Approval { run, step, verdict } => m.on_approval(run, step, verdict),
        Input::Failure { reason } => m.on_failure(reason),
        Input::Reevaluate { segments, history } => m.on_reevaluate(segments, history),
    }
    m.finish()
}

struct Machine<'a, 'w> {
    world: &'a World<'w>,
    state: &'a mut ProfileState,
    now: Millis,
    effects: Vec<Effect>,
    touched: BTreeSet<String>,
}

/// A segment membership change within one input.
struct Change {
    segment: String,
    entered: bool,
}

impl Machine<'_, '_> {
    fn decision(&self, run: Option<&Run>, step: Option<&str>, kind: DecisionKind) -> Decision {
        Decision {
            at: self.now,
            profile: self.world.profile_id.to_owned(),
            flow: run.map(|r| r.flow.clone()),
            run: run.map(|r| r.id.clone()),
            step: step.map(str::to_owned),
            kind,
        }
    }

    fn record(&mut self, decision: Decision) {
        self.effects.push(Effect::Record(decision));
    }

    /// Records a decision about a run, in its path too.
    fn note(&mut self, run: &mut Run, step: Option<&str>, kind: DecisionKind) {
        let d = self.decision(Some(run), step, kind);
        if run.path.len() >= MAX_PATH {
            run.path.remove(0);
            run.path_dropped += 1;
        }
        run.path.push(d.clone());
        self.touched.insert(run.id.clone());
        self.record(d);
    }

    fn flow_decision(&mut self, flow: &Flow, kind: DecisionKind) {
        let mut d = self.decision(None, None, kind);
        d.flow = Some(flow.id.clone());
        self.record(d);
    }

    /// How many runs reached a counted step before this one: those committed, and those earlier in this input.
    pub(super) fn reached(&self, key: &StepKey) -> u64 {
        let here = self.effects.iter().filter(|e| matches!(e, Effect::Counted(k) if k == key)).count();
        self.world.counts.get(key).copied().unwrap_or(0) + here as u64
    }

    /// Hands an action to the outbox and records the decision, returning its key `<run>:<step>:<visit>`.
    /// `shown` is the payload as the decision records it.
    pub(super) fn dispatch(
        &mut self,
        run: &mut Run,
        step: &str,
        call: Call<'_>,
        payload: Value,
        shown: Value,
    ) -> String {
        let visit = run.visits.get(step).copied().unwrap_or(1);
        let key = format!("{}:{step}:{visit}", run.id);
        self.effects.push(Effect::Dispatch(Dispatch {
            key: key.clone(),
            run: run.id.clone(),
            flow: run.flow.clone(),
            version: run.version,
            step: step.to_owned(),
            connector: call.connector.to_owned(),
            operation: call.operation.to_owned(),
            channel: call.channel.to_owned(),
            category: call.category.to_owned(),
            payload,
            await_result: call.await_result,
            policed: call.policed,
            tracking: self.world.defs.flow(&run.flow, run.version).is_none_or(|f| f.tracking),
        }));
        self.note(
            run,
            Some(step),
            DecisionKind::Action {
                connector: call.connector.to_owned(),
                operation: call.operation.to_owned(),
                key: key.clone(),
                channel: call.channel.to_owned(),
                category: call.category.to_owned(),
                payload: shown,
            },
        );
        key
    }

    /// Sends older than the longest cap window no longer count.
    pub(super) fn forget_old_sends(&mut self) {
        let memory = self.world.defs.policies.values().map(|p| p.memory()).max().unwrap_or(0);
        let horizon = self.now - memory;
        self.state.sent.retain(|s| s.at > horizon);
    }

    pub(super) fn finish(mut self) -> Vec<Effect> {
        let now = self.now;
        self.state.suppressions.retain(|s| s.until > now);
        if self.world.defs.policies.values().all(|p| p.memory() == 0) {
            self.state.sent.clear();
        }
        // Ended runs stay while their goal window is open, then leave the state (the shell keeps their record).
        let defs = self.world.defs;
        let mut kept = Vec::with_capacity(self.state.runs.len());
        for run in std::mem::take(&mut self.state.runs) {
            let goal_open = || {
                run.goal_at.is_none()
                    && defs
                        .flow(&run.flow, run.version)
                        .and_then(|f| f.goal.as_ref())
                        .is_some_and(|g| run.started_at + g.within > now)
            };
            let keep = run.is_active() || goal_open();
            match (self.touched.contains(&run.id), keep) {
                (true, true) => {
                    self.effects.push(Effect::Run(Box::new(run.clone())));
                    kept.push(run);
                }
                (true, false) => self.effects.push(Effect::Run(Box::new(run))),
                (false, true) => kept.push(run),
                (false, false) => {}
            }
        }
        self.state.runs = kept;
        self.effects
    }
}

/// Records where an approval stands in `run.steps.<step>`.
fn set_approval(run: &mut Run, step: &str, state: Value) {
    run.results.insert(step.to_owned(), state);
}

/// The flow's `exit_when` that one of the segments just entered meets, as a reason.
fn segment_exit(flow: &Flow, changes: &[Change]) -> Option<String> {
    flow.exit_when.iter().find_map(|x| match x {
        Exit::Segment(id) if changes.iter().any(|c| c.entered && c.segment == *id) => {
            Some(format!("exit_when: entered segment {id}"))
        }
        _ => None,
    })
}

/// A short description of an event for records.
fn describe(event: &Event) -> String {
    match (&event.kind, &event.name) {
        (EventType::Track, Some(name)) => name.clone(),
        (kind, Some(name)) => format!("{} {name}", kind.as_str()),
        (kind, None) => kind.as_str().to_owned(),
    }
}

/// A trait holding a date: RFC 3339 text, a `YYYY-MM-DD` date (midnight UTC), or milliseconds.
fn trait_time(value: &Value) -> Option<Millis> {
    match value {
        Value::String(s) => parse_timestamp(s).or_else(|| {
            let date: jiff::civil::Date = s.parse().ok()?;
            Some(date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond())
        }),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A profile's bucket (0..100) for a split: FNV-1a of the profile, flow and step, so the same person lands in
/// the same arm every time and splits in different steps are independent.
pub fn bucket(profile: &str, flow: &str, step: &str) -> u32 {
    let mut hash = tutti_core::hash::Fnv1a::new();
    for part in [profile, flow, step] {
        hash.write(part.as_bytes()).write(&[0xff]);
    }
    (hash.finish() % 100) as u32
}
