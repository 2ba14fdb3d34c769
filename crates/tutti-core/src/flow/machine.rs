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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Definitions;
use super::def::{Approve, EntryRule, Exit, Fallback, Flow, QuietMode, StepKind, Trigger, WaitSpec};
use super::policy::{self, Rule, Sent, Subject, Suppression, Verdict};
use super::segment::{SegmentState, matches};
use crate::event::{Event, EventType};
use crate::time::{Millis, format_duration, format_timestamp, parse_timestamp};

/// The most steps one run takes in answer to one input, a guard behind the validator's loop check.
pub const MAX_STEPS_PER_INPUT: usize = 1000;
/// The most decisions a run keeps in its path; older ones are counted, not kept.
pub const MAX_PATH: usize = 200;
/// The most dedupe keys remembered per flow and profile.
pub const MAX_DEDUPE_KEYS: usize = 100;

/// What the machine knows of the world for one input: the definitions and the profile as it is now.
pub struct World<'a> {
    pub defs: &'a Definitions,
    /// The profile id as text (for run ids and split hashing).
    pub profile_id: &'a str,
    /// The profile's public JSON (`traits`, `timezone`, `event_counts`, ...).
    pub profile: &'a Value,
    /// How many runs reached each counted step, across profiles, before this input.
    pub counts: &'a StepCounts,
}

/// A step of one flow version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepKey {
    pub flow: String,
    pub version: u32,
    pub step: String,
}

/// How many runs reached each counted step (an `approve` step with `first_sends`), across all profiles. The
/// machine reads it and says what to add ([`Effect::Counted`]); the shell keeps it and commits it with the
/// batch.
pub type StepCounts = HashMap<StepKey, u64>;

/// One input to a profile's machine.
pub enum Input<'a> {
    /// An event, already folded into the profile.
    Event(&'a Event),
    /// The clock passed [`ProfileState::next_wake`].
    Tick,
    /// An inbound signal by name.
    Signal { name: &'a str, payload: &'a Value },
    /// A connector's answer to a dispatched action (by its key).
    ActionResult { key: &'a str, result: &'a Value },
    /// A person's decision on a run waiting at an `approve` step.
    Approval { run: &'a str, step: &'a str, verdict: &'a ApprovalDecision },
    /// Handling an input for this profile failed (the shell caught a panic): every active run fails with the
    /// reason, and the profile's time-based wakes are dropped so the failure does not repeat on the next tick.
    /// Segments and schedules are observed again with the profile's next event.
    Failure { reason: &'a str },
}

/// What an approver decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Approved as it is, or with `edits` (fields of the content replaced, such as `subject` and `body`).
    Approve {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edits: Option<Map<String, Value>>,
    },
    Reject {
        by: String,
        reason: String,
    },
}

/// The connector that writes copy for `generate` steps, and its operation.
pub const GENERATE_CONNECTOR: &str = "ai";
pub const GENERATE_OPERATION: &str = "generate";

/// What the shell must do after committing.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Hand an action to a connector (through the outbox).
    Dispatch(Dispatch),
    /// Set traits on the profile (as an identify event from the flow).
    UpdateProfile { run: String, traits: Map<String, Value> },
    /// A decision, for the record.
    Record(Decision),
    /// A run as it stands after this input (store it for inspection).
    Run(Box<Run>),
    /// One more run reached a counted step: add one to its count in [`StepCounts`].
    Counted(StepKey),
}

/// An action for the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// `<run>:<step>:<visit>`: stable across retries, unique per run, step and visit.
    pub key: String,
    pub run: String,
    pub flow: String,
    pub version: u32,
    pub step: String,
    pub connector: String,
    pub operation: String,
    pub channel: String,
    pub category: String,
    pub payload: Value,
    /// The run waits for the result: the dispatcher hands it back as [`Input::ActionResult`].
    #[serde(default)]
    pub await_result: bool,
    /// A message to the customer, which policies check again right before each delivery attempt; not a
    /// `generate` step's model call.
    #[serde(default = "policed_by_default")]
    pub policed: bool,
}

fn policed_by_default() -> bool {
    true
}

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

/// One decision and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Millis,
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(flatten)]
    pub kind: DecisionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DecisionKind {
    Entered {
        trigger: String,
    },
    NotEntered {
        reason: String,
    },
    Action {
        connector: String,
        operation: String,
        key: String,
        channel: String,
        category: String,
        payload: Value,
    },
    Skipped {
        reason: String,
    },
    Deferred {
        until: Millis,
        reason: String,
    },
    Waiting {
        until: Millis,
        reason: String,
    },
    Resumed {
        reason: String,
    },
    Branch {
        arm: String,
        reason: String,
    },
    Split {
        arm: String,
        holdout: bool,
    },
    ProfileUpdated {
        traits: Value,
    },
    Result {
        key: String,
    },
    Exited {
        reason: String,
    },
    /// The run could not go on: a template or condition of a step ran into a limit, or handling an input for
    /// it failed. Nothing more happens in it.
    Failed {
        reason: String,
    },
    Completed,
    Goal {
        event: String,
    },
    SegmentEntered {
        segment: String,
    },
    SegmentLeft {
        segment: String,
    },
    Suppressed {
        policy: String,
        categories: Vec<String>,
        until: Millis,
    },
    Error {
        reason: String,
    },
    ApprovalRequested {
        reason: String,
        until: Millis,
        escalated_to: Option<String>,
    },
    Approved {
        by: String,
        edited: bool,
    },
    Rejected {
        by: String,
        reason: String,
    },
    ApprovalExpired {
        fallback: String,
    },
}

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunStatus {
    Waiting {
        until: Millis,
        on: WaitOn,
    },
    AwaitingResult {
        key: String,
    },
    Completed,
    Exited {
        reason: String,
    },
    /// Ended by a failure, with why (a limit a template or condition ran into, names the step and the limit).
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOn {
    /// A `wait` step.
    Timer,
    /// A `wait_for` step: an event, or the timeout at `until`.
    Event,
    /// An action deferred by quiet hours, retried at `until`.
    Deferred,
    /// An `approve` step: a person's decision, or the expiry at `until`.
    Approval,
}

/// One journey of one profile through one version of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub flow: String,
    pub version: u32,
    pub profile: String,
    pub started_at: Millis,
    /// The event (or segment change, schedule, signal) that started it; `event` in its templates.
    pub trigger: Value,
    /// The current step (by index), `None` once ended.
    pub step: Option<usize>,
    pub status: RunStatus,
    #[serde(default)]
    pub visits: BTreeMap<String, u32>,
    /// Results of awaited actions by step id; `run.steps` in templates.
    #[serde(default)]
    pub results: Map<String, Value>,
    /// The event that ended the latest `wait_for`; `run.last_event` in templates.
    #[serde(default)]
    pub last_event: Value,
    #[serde(default)]
    pub goal_at: Option<Millis>,
    #[serde(default)]
    pub ended_at: Option<Millis>,
    #[serde(default)]
    pub path: Vec<Decision>,
    /// Decisions dropped from the front of `path` to keep it bounded.
    #[serde(default)]
    pub path_dropped: u32,
    /// Ended from outside its steps (an `exit_when`, a segment exit, a suppression, its version gone): the
    /// actions it queued and that still wait go no further.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Why a policy skipped the run's last message step (consent, a suppression, a cap), until a later message
    /// goes: a run that then reaches its end ends with this reason instead of its `exit:` label, which would
    /// claim what did not happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Run {
    pub fn is_active(&self) -> bool {
        matches!(self.status, RunStatus::Waiting { .. } | RunStatus::AwaitingResult { .. })
    }

    /// The run as conditions and templates see it (`run.steps.<id>` holds each awaited action's result), or
    /// null when the reader does not read `run`: the view copies the trigger and results, so it is built only
    /// when needed.
    fn view_if(&self, read: bool) -> Value {
        if read { self.view() } else { Value::Null }
    }

    fn view(&self) -> Value {
        json!({
            "id": self.id, "flow": self.flow, "version": self.version,
            "started_at": format_timestamp(self.started_at), "steps": self.results, "last_event": self.last_event,
            "trigger": self.trigger,
        })
    }
}

/// When and how often a profile entered a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub count: u64,
    pub last: Millis,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// Everything flows remember about one profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    pub next_run: u64,
    #[serde(default)]
    pub runs: Vec<Run>,
    #[serde(default)]
    pub entries: BTreeMap<String, EntryRecord>,
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    #[serde(default)]
    pub sent: Vec<Sent>,
    #[serde(default)]
    pub segments: BTreeMap<String, SegmentState>,
    /// When a segment's membership next changes with time alone.
    #[serde(default)]
    pub segment_wake: BTreeMap<String, Millis>,
    /// Each scheduled flow's next firing for this profile.
    #[serde(default)]
    pub schedules: BTreeMap<String, Millis>,
}

impl ProfileState {
    /// When the profile next needs [`Input::Tick`], if ever.
    pub fn next_wake(&self) -> Option<Millis> {
        let runs = self.runs.iter().filter_map(|r| match &r.status {
            RunStatus::Waiting { until, .. } => Some(*until),
            _ => None,
        });
        runs.chain(self.segment_wake.values().copied()).chain(self.schedules.values().copied()).min()
    }

    /// Whether nothing is remembered (the shell may delete the row).
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.entries.is_empty()
            && self.suppressions.is_empty()
            && self.sent.is_empty()
            && self
                .segments
                .values()
                .all(|s| !s.member && s.clauses.iter().all(|c| c.times.is_empty() && c.since.is_none()))
            && self.schedules.is_empty()
    }

    /// Takes in the state of a profile merged into this one: both profiles' runs go on, entry records and
    /// suppressions join (the stricter wins), sends count together, segment memories join.
    pub fn absorb(&mut self, other: ProfileState) {
        self.next_run = self.next_run.max(other.next_run);
        let mut ids: BTreeSet<String> = self.runs.iter().map(|r| r.id.clone()).collect();
        for run in other.runs {
            if ids.insert(run.id.clone()) {
                self.runs.push(run);
            }
        }
        for (flow, record) in other.entries {
            let mine = self.entries.entry(flow).or_default();
            mine.count += record.count;
            mine.last = mine.last.max(record.last);
            for key in record.keys {
                if !mine.keys.contains(&key) {
                    mine.keys.push(key);
                }
            }
        }
        for s in other.suppressions {
            match self.suppressions.iter_mut().find(|m| m.policy == s.policy) {
                Some(mine) => mine.until = mine.until.max(s.until),
                None => self.suppressions.push(s),
            }
        }
        self.sent.extend(other.sent);
        self.sent.sort_by_key(|s| s.at);
        for (id, theirs) in other.segments {
            let mine = self.segments.entry(id).or_default();
            mine.clauses.resize_with(mine.clauses.len().max(theirs.clauses.len()), Default::default);
            for (m, t) in mine.clauses.iter_mut().zip(theirs.clauses) {
                m.times.extend(t.times);
                m.times.sort_unstable();
                m.since = m.since.max(t.since);
            }
        }
        for (id, at) in other.segment_wake {
            let e = self.segment_wake.entry(id).or_insert(at);
            *e = (*e).min(at);
        }
        for (id, at) in other.schedules {
            let e = self.schedules.entry(id).or_insert(at);
            *e = (*e).min(at);
        }
    }

    /// Whether the profile is a member of the segment.
    pub fn in_segment(&self, id: &str) -> bool {
        self.segments.get(id).is_some_and(|s| s.member)
    }
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

    fn on_event(&mut self, event: &Event) {
        let body = event.body_value();
        let name = event.name.as_deref();
        let profile = self.world.profile;
        let vars = [("event", &body), ("profile", profile)];
        // 1. Suppressions first, so nothing this event triggers slips past them.
        let defs = self.world.defs;
        for policy in defs.policies.values() {
            if let Rule::Suppress { on, categories, duration, exit_runs } = &policy.rule
                && matches(on, event.kind, name, &vars)
            {
                let until = self.now + duration;
                self.state.suppressions.retain(|s| s.policy != policy.id);
                self.state.suppressions.push(Suppression {
                    policy: policy.id.clone(),
                    categories: categories.clone(),
                    until,
                });
                self.record(self.decision(
                    None,
                    None,
                    DecisionKind::Suppressed { policy: policy.id.clone(), categories: categories.clone(), until },
                ));
                if *exit_runs {
                    let reason = format!(
                        "suppressed by policy {} ({} for {})",
                        policy.id,
                        categories.join(", "),
                        format_duration(*duration)
                    );
                    self.exit_runs(
                        |flow| categories.contains(&flow.category) && !policy.exempt.contains(&flow.category),
                        &reason,
                    );
                }
            }
        }
        // 2. Segments.
        let changes = self.observe_segments(Some((event, &body)));
        // 3. Exits, goals and waits of runs already going.
        let mut runs = std::mem::take(&mut self.state.runs);
        for run in runs.iter_mut() {
            let Some(flow) = defs.flow(&run.flow, run.version).cloned() else { continue };
            if let Some(goal) = &flow.goal
                && run.goal_at.is_none()
                && self.now <= run.started_at + goal.within
                && matches(&goal.event, event.kind, name, &vars)
            {
                run.goal_at = Some(self.now);
                self.note(run, None, DecisionKind::Goal { event: describe(event) });
            }
            if run.is_active() {
                let exit = flow
                    .exit_when
                    .iter()
                    .find_map(|x| match x {
                        Exit::Event(m) if matches(m, event.kind, name, &vars) => {
                            Some(format!("exit_when: {}", describe(event)))
                        }
                        _ => None,
                    })
                    .or_else(|| segment_exit(&flow, &changes));
                if let Some(reason) = exit {
                    self.interrupt(run, &reason);
                    continue;
                }
            }
            if let (RunStatus::Waiting { on: WaitOn::Event, .. }, Some(i)) = (&run.status, run.step)
                && let StepKind::WaitFor { event: m, on_event, .. } = &flow.steps[i].kind
            {
                let run_view = run.view_if(m.when.as_ref().is_some_and(|c| c.reads("run")));
                let wait_vars = [("event", &body), ("profile", profile), ("run", &run_view)];
                if matches(m, event.kind, name, &wait_vars) {
                    let step_id = flow.steps[i].id.clone();
                    self.note(
                        run,
                        Some(&step_id),
                        DecisionKind::Resumed { reason: format!("{} arrived", describe(event)) },
                    );
                    run.last_event = body.clone();
                    run.step = *on_event;
                    self.run_steps(&flow, run, true);
                }
            }
        }
        runs.append(&mut self.state.runs);
        self.state.runs = runs;
        // 4. New runs.
        for flow in defs.current_flows() {
            if let Trigger::Event(m) = &flow.trigger
                && matches(m, event.kind, name, &vars)
            {
                self.start(flow, body.clone(), describe(event));
            }
        }
        self.segment_triggers(&changes);
        self.refresh_schedules();
    }

    fn on_failure(&mut self, reason: &str) {
        self.each_active_run(|m, run| m.end(run, RunStatus::Failed { reason: reason.to_owned() }, reason));
        self.state.segment_wake.clear();
        self.state.schedules.clear();
    }

    fn on_tick(&mut self) {
        let now = self.now;
        let defs = self.world.defs;
        // Segments whose windows slid.
        let due: Vec<String> =
            self.state.segment_wake.iter().filter(|(_, t)| **t <= now).map(|(s, _)| s.clone()).collect();
        let changes = if due.is_empty() { Vec::new() } else { self.observe_segments(None) };
        self.exit_on_segments(&changes);
        // Runs whose wait is over.
        let mut runs = std::mem::take(&mut self.state.runs);
        for run in runs.iter_mut() {
            let RunStatus::Waiting { until, on } = run.status.clone() else { continue };
            if until > now {
                continue;
            }
            let Some(flow) = defs.flow(&run.flow, run.version).cloned() else {
                self.interrupt(run, "its flow version is gone");
                continue;
            };
            let Some(i) = run.step else { continue };
            let step_id = flow.steps[i].id.clone();
            match on {
                WaitOn::Timer => {
                    self.note(run, Some(&step_id), DecisionKind::Resumed { reason: "the wait is over".into() });
                    run.step = flow.steps[i].next;
                    self.run_steps(&flow, run, true);
                }
                WaitOn::Event => {
                    let StepKind::WaitFor { on_timeout, timeout, .. } = &flow.steps[i].kind else { continue };
                    self.note(
                        run,
                        Some(&step_id),
                        DecisionKind::Resumed { reason: format!("timed out after {}", format_duration(*timeout)) },
                    );
                    run.step = *on_timeout;
                    self.run_steps(&flow, run, true);
                }
                WaitOn::Deferred => {
                    self.note(run, Some(&step_id), DecisionKind::Resumed { reason: "quiet hours are over".into() });
                    self.run_steps(&flow, run, false);
                }
                WaitOn::Approval => {
                    let StepKind::Approve(a) = &flow.steps[i].kind else { continue };
                    self.approval_expired(&flow, i, a, run);
                }
            }
        }
        runs.append(&mut self.state.runs);
        self.state.runs = runs;
        self.segment_triggers(&changes);
        // Schedules that are due.
        let due: Vec<String> =
            self.state.schedules.iter().filter(|(_, t)| **t <= now).map(|(f, _)| f.clone()).collect();
        for flow_id in due {
            self.state.schedules.remove(&flow_id);
            let Some(flow) = defs.current_flows().find(|f| f.id == flow_id).cloned() else { continue };
            if let Trigger::Schedule { cron, when, .. } = &flow.trigger {
                let ok = when.as_ref().is_none_or(|c| c.evaluate(&[("profile", self.world.profile)]).unwrap_or(false));
                if ok {
                    let trigger = json!({"type": "schedule", "schedule": cron.source(), "at": format_timestamp(now)});
                    self.start(&flow, trigger, format!("schedule {}", cron.source()));
                }
            }
        }
        self.refresh_schedules();
    }

    fn on_signal(&mut self, name: &str, payload: &Value) {
        let body = json!({"type": "signal", "signal": name, "properties": payload});
        for flow in self.world.defs.current_flows() {
            if let Trigger::Signal { name: wanted, when } = &flow.trigger {
                let vars = [("event", &body), ("profile", self.world.profile)];
                if wanted == name && when.as_ref().is_none_or(|c| c.evaluate(&vars).unwrap_or(false)) {
                    self.start(flow, body.clone(), format!("signal {name}"));
                }
            }
        }
    }

    fn on_result(&mut self, key: &str, result: &Value) {
        let Some(at) =
            self.state.runs.iter().position(|r| matches!(&r.status, RunStatus::AwaitingResult { key: k } if k == key))
        else {
            return;
        };
        let mut run = self.state.runs.remove(at);
        if let Some(flow) = self.world.defs.flow(&run.flow, run.version).cloned()
            && let Some(i) = run.step
        {
            let step_id = flow.steps[i].id.clone();
            run.results.insert(step_id.clone(), result.clone());
            self.note(&mut run, Some(&step_id), DecisionKind::Result { key: key.to_owned() });
            run.step = flow.steps[i].next;
            self.run_steps(&flow, &mut run, true);
        }
        self.state.runs.push(run);
    }

    /// A decision on a run waiting for approval at `step`; anything else (another run, a decision already
    /// taken, an approval that expired) changes nothing.
    fn on_approval(&mut self, run_id: &str, step_id: &str, verdict: &ApprovalDecision) {
        let defs = self.world.defs;
        let Some(at) = self.state.runs.iter().position(|r| {
            r.id == run_id
                && matches!(r.status, RunStatus::Waiting { on: WaitOn::Approval, .. })
                && r.step.and_then(|i| defs.flow(&r.flow, r.version).map(|f| f.steps[i].id == step_id)) == Some(true)
        }) else {
            return;
        };
        let mut run = self.state.runs.remove(at);
        let flow = defs.flow(&run.flow, run.version).cloned().expect("checked above");
        let i = run.step.expect("checked above");
        let StepKind::Approve(a) = &flow.steps[i].kind else { unreachable!("an approval wait is at an approve step") };
        // A decision after the deadline is late: the expiry comes first, and the decision counts only if the
        // approval is still open after it (escalated).
        if let RunStatus::Waiting { until, .. } = run.status
            && until <= self.now
        {
            self.approval_expired(&flow, i, a, &mut run);
            if !(matches!(run.status, RunStatus::Waiting { on: WaitOn::Approval, .. }) && run.step == Some(i)) {
                self.state.runs.push(run);
                return;
            }
        }
        let at_time = format_timestamp(self.now);
        match verdict {
            ApprovalDecision::Approve { by, edits } => {
                let edited = edits.as_ref().is_some_and(|e| !e.is_empty());
                if let Some(content) = &a.content {
                    let slot = run.results.entry(content.clone()).or_insert_with(|| json!({}));
                    if let Value::Object(fields) = slot {
                        for (k, v) in edits.iter().flatten() {
                            fields.insert(k.clone(), v.clone());
                        }
                        fields.insert("approved_by".into(), by.clone().into());
                        fields.insert("approved_at".into(), at_time.clone().into());
                        if edited {
                            fields.insert("edited_by".into(), by.clone().into());
                        }
                    }
                }
                set_approval(
                    &mut run,
                    step_id,
                    json!({"approval": "approved", "by": by, "at": at_time, "edited": edited}),
                );
                self.note(&mut run, Some(step_id), DecisionKind::Approved { by: by.clone(), edited });
                run.step = flow.steps[i].next;
                self.run_steps(&flow, &mut run, true);
            }
            ApprovalDecision::Reject { by, reason } => {
                set_approval(
                    &mut run,
                    step_id,
                    json!({"approval": "rejected", "by": by, "at": at_time, "reason": reason}),
                );
                self.note(&mut run, Some(step_id), DecisionKind::Rejected { by: by.clone(), reason: reason.clone() });
                match a.on_reject {
                    Some(next) => {
                        run.step = Some(next);
                        self.run_steps(&flow, &mut run, true);
                    }
                    None => {
                        let why = format!("rejected by {by}: {reason}");
                        self.end(&mut run, RunStatus::Exited { reason: why.clone() }, &why);
                    }
                }
            }
        }
        self.state.runs.push(run);
    }

    /// Nobody decided in time: escalate once, send the default, or skip.
    fn approval_expired(&mut self, flow: &Flow, i: usize, a: &Approve, run: &mut Run) {
        let step_id = flow.steps[i].id.clone();
        let escalated = run.results.get(&step_id).is_some_and(|r| r["escalated_to"].is_string());
        if a.fallback == Fallback::Escalate && !escalated {
            let until = self.now + a.expires;
            let to = a.escalate_to.clone().unwrap_or_default();
            if let Some(Value::Object(r)) = run.results.get_mut(&step_id) {
                r.insert("escalated_to".into(), to.clone().into());
                r.insert("expires_at".into(), format_timestamp(until).into());
            }
            self.note(
                run,
                Some(&step_id),
                DecisionKind::ApprovalRequested {
                    reason: format!("nobody decided in {}; escalated to {to}", format_duration(a.expires)),
                    until,
                    escalated_to: Some(to),
                },
            );
            run.status = RunStatus::Waiting { until, on: WaitOn::Approval };
            return;
        }
        let fallback = if a.fallback == Fallback::SendDefault { Fallback::SendDefault } else { Fallback::Skip };
        set_approval(
            run,
            &step_id,
            json!({"approval": "expired", "fallback": fallback.name(), "at": format_timestamp(self.now)}),
        );
        self.note(run, Some(&step_id), DecisionKind::ApprovalExpired { fallback: fallback.name().into() });
        if fallback == Fallback::SendDefault {
            let run_view = run.view();
            let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
            match a.default.as_ref().map(|d| d.render(&vars)) {
                Some(Ok(Value::Object(default))) => {
                    if let Some(content) = &a.content {
                        let mut fields = default;
                        fields.insert("source".into(), "default".into());
                        run.results.insert(content.clone(), Value::Object(fields));
                    }
                    run.step = flow.steps[i].next;
                    self.run_steps(flow, run, true);
                }
                other => {
                    let why = match other {
                        Some(Err(e)) => format!("the default did not render: {e}"),
                        _ => "the default is not a mapping".to_owned(),
                    };
                    self.note(run, Some(&step_id), DecisionKind::Error { reason: why.clone() });
                    self.end(run, RunStatus::Exited { reason: why.clone() }, &why);
                }
            }
            return;
        }
        match a.on_skip {
            Some(next) => {
                run.step = Some(next);
                self.run_steps(flow, run, true);
            }
            None => {
                let why = "approval expired; nothing sent";
                self.end(run, RunStatus::Exited { reason: why.into() }, why);
            }
        }
    }

    /// Folds an event (if any) into every segment's state and re-evaluates membership.
    fn observe_segments(&mut self, event: Option<(&Event, &Value)>) -> Vec<Change> {
        let mut changes = Vec::new();
        for segment in self.world.defs.segments.values() {
            let st = self.state.segments.entry(segment.id.clone()).or_default();
            if let Some((e, body)) = event {
                segment.observe(st, e.kind, e.name.as_deref(), e.timestamp, body);
            }
            let (member, wake) = segment.evaluate(st, self.world.profile, self.now);
            match wake {
                Some(t) => self.state.segment_wake.insert(segment.id.clone(), t),
                None => self.state.segment_wake.remove(&segment.id),
            };
            if member != st.member {
                st.member = member;
                changes.push(Change { segment: segment.id.clone(), entered: member });
            }
        }
        for c in &changes {
            let kind = if c.entered {
                DecisionKind::SegmentEntered { segment: c.segment.clone() }
            } else {
                DecisionKind::SegmentLeft { segment: c.segment.clone() }
            };
            self.record(self.decision(None, None, kind));
        }
        changes
    }

    fn exit_on_segments(&mut self, changes: &[Change]) {
        if !changes.iter().any(|c| c.entered) {
            return;
        }
        let defs = self.world.defs;
        self.each_active_run(|m, run| {
            if let Some(reason) = defs.flow(&run.flow, run.version).and_then(|f| segment_exit(f, changes)) {
                m.interrupt(run, &reason);
            }
        });
    }

    fn segment_triggers(&mut self, changes: &[Change]) {
        for c in changes {
            for flow in self.world.defs.current_flows() {
                if let Trigger::Segment { id, leave, when } = &flow.trigger
                    && *id == c.segment
                    && *leave != c.entered
                {
                    let body = json!({"type": "segment", "segment": id, "entered": c.entered});
                    let vars = [("event", &body), ("profile", self.world.profile)];
                    if when.as_ref().is_none_or(|w| w.evaluate(&vars).unwrap_or(false)) {
                        let what = if c.entered { "entered" } else { "left" };
                        self.start(flow, body.clone(), format!("{what} segment {id}"));
                    }
                }
            }
        }
    }

    /// Keeps one pending firing per scheduled flow whose audience the profile is in.
    fn refresh_schedules(&mut self) {
        for flow in self.world.defs.current_flows() {
            let Trigger::Schedule { cron, zone, segment, .. } = &flow.trigger else { continue };
            let in_audience = segment.as_ref().is_none_or(|s| self.state.in_segment(s));
            if !in_audience {
                self.state.schedules.remove(&flow.id);
            } else if !self.state.schedules.contains_key(&flow.id) {
                let tz = policy::resolve_zone(zone, self.world.profile);
                if let Some(next) = cron.next_after(self.now, &tz) {
                    self.state.schedules.insert(flow.id.clone(), next);
                }
            }
        }
        let live: BTreeSet<&str> = self.world.defs.current_flows().map(|f| f.id.as_str()).collect();
        self.state.schedules.retain(|f, _| live.contains(f.as_str()));
    }

    /// Ends every active run whose flow the predicate picks.
    fn exit_runs(&mut self, pick: impl Fn(&Flow) -> bool, reason: &str) {
        let defs = self.world.defs;
        self.each_active_run(|m, run| {
            if defs.flow(&run.flow, run.version).is_some_and(|f| pick(f)) {
                m.interrupt(run, reason);
            }
        });
    }

    /// Calls `act` on every active run (runs it starts meanwhile are kept, not visited).
    fn each_active_run(&mut self, mut act: impl FnMut(&mut Self, &mut Run)) {
        let mut runs = std::mem::take(&mut self.state.runs);
        for run in runs.iter_mut().filter(|r| r.is_active()) {
            act(self, run);
        }
        runs.append(&mut self.state.runs);
        self.state.runs = runs;
    }

    fn end(&mut self, run: &mut Run, status: RunStatus, reason: &str) {
        let step = run.step.and_then(|i| self.world.defs.flow(&run.flow, run.version).map(|f| f.steps[i].id.clone()));
        run.status = status.clone();
        run.ended_at = Some(self.now);
        let kind = match status {
            RunStatus::Completed => DecisionKind::Completed,
            RunStatus::Failed { .. } => DecisionKind::Failed { reason: reason.to_owned() },
            _ => DecisionKind::Exited { reason: reason.to_owned() },
        };
        self.note(run, step.as_deref(), kind);
        run.step = None;
    }

    /// Ends a run from outside its steps; see [`Run::interrupted`].
    fn interrupt(&mut self, run: &mut Run, reason: &str) {
        run.interrupted = true;
        self.end(run, RunStatus::Exited { reason: reason.to_owned() }, reason);
    }

    /// Ends a run that cannot go on because `what` at step `step` failed.
    fn fail(&mut self, run: &mut Run, step: &str, what: &str) {
        let reason = format!("step {step} failed: {what}");
        self.end(run, RunStatus::Failed { reason: reason.clone() }, &reason);
    }

    /// Starts a run if the entry rules allow.
    fn start(&mut self, flow: &std::sync::Arc<Flow>, trigger: Value, described: String) {
        let going = self.state.runs.iter().filter(|r| r.flow == flow.id && r.is_active()).count();
        let record = self.state.entries.get(&flow.id).cloned().unwrap_or_default();
        let mut dedupe_key = None;
        let refusal = match &flow.entry.rule {
            EntryRule::Once if record.count > 0 => {
                Some(format!("entered before ({}); entry is once", format_timestamp(record.last)))
            }
            EntryRule::OncePer(period) if record.count > 0 && self.now - record.last < *period => Some(format!(
                "entered at {}; entry is once per {}",
                format_timestamp(record.last),
                format_duration(*period)
            )),
            EntryRule::EveryTime { dedupe: Some(t) } => {
                match t.render(&[("event", &trigger), ("profile", self.world.profile)]) {
                    Ok(key) if record.keys.contains(&key) => Some(format!("dedupe key `{key}` already entered")),
                    Ok(key) => {
                        dedupe_key = Some(key);
                        None
                    }
                    Err(e) => Some(format!("the dedupe key could not be rendered: {e}")),
                }
            }
            _ => None,
        };
        let refusal = refusal.or_else(|| {
            (going >= flow.entry.max_concurrent as usize)
                .then(|| format!("{going} run(s) already going; max_concurrent is {}", flow.entry.max_concurrent))
        });
        if let Some(reason) = refusal {
            self.flow_decision(flow, DecisionKind::NotEntered { reason });
            return;
        }
        let entry = self.state.entries.entry(flow.id.clone()).or_default();
        entry.count += 1;
        entry.last = self.now;
        if let Some(key) = dedupe_key {
            entry.keys.push(key);
            if entry.keys.len() > MAX_DEDUPE_KEYS {
                entry.keys.remove(0);
            }
        }
        self.state.next_run += 1;
        let mut run = Run {
            id: format!("{}-{}", self.world.profile_id, self.state.next_run),
            flow: flow.id.clone(),
            version: flow.version,
            profile: self.world.profile_id.to_owned(),
            started_at: self.now,
            trigger,
            step: Some(0),
            status: RunStatus::Completed,
            visits: BTreeMap::new(),
            results: Map::new(),
            last_event: Value::Null,
            goal_at: None,
            ended_at: None,
            path: Vec::new(),
            path_dropped: 0,
            interrupted: false,
            skipped: None,
        };
        self.note(&mut run, None, DecisionKind::Entered { trigger: described });
        self.run_steps(flow, &mut run, true);
        self.state.runs.push(run);
    }

    /// Runs steps from `run.step` until the run waits or ends. `entering` is false when resuming a deferred
    /// action, which keeps its visit (and so its idempotency key).
    fn run_steps(&mut self, flow: &Flow, run: &mut Run, mut entering: bool) {
        for _ in 0..MAX_STEPS_PER_INPUT {
            // One budget per step, within the flow's limits, for all its templates and conditions.
            let _meter = crate::budget::Metered::start(flow.limits);
            let Some(i) = run.step else {
                match run.skipped.take() {
                    Some(reason) => self.end(run, RunStatus::Exited { reason: reason.clone() }, &reason),
                    None => self.end(run, RunStatus::Completed, "completed"),
                }
                return;
            };
            let step = &flow.steps[i];
            if entering {
                *run.visits.entry(step.id.clone()).or_default() += 1;
            }
            entering = true;
            let sid = Some(step.id.as_str());
            match &step.kind {
                StepKind::Action(action) => {
                    let subject = Subject {
                        profile: self.world.profile,
                        suppressions: &self.state.suppressions,
                        sent: &self.state.sent,
                    };
                    let verdict = policy::check(
                        self.world.defs.policies.values().map(|p| &**p),
                        &subject,
                        &action.channel,
                        &action.category,
                        self.now,
                    );
                    match verdict {
                        Verdict::Allow => {
                            let run_view = run.view_if(action.with.mentions("run"));
                            let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
                            match action.with.render(&vars) {
                                Ok(payload) => {
                                    let call = Call {
                                        connector: &action.connector,
                                        operation: &action.operation,
                                        channel: &action.channel,
                                        category: &action.category,
                                        await_result: action.await_result,
                                        policed: true,
                                    };
                                    let key = self.dispatch(run, &step.id, call, payload.clone(), payload);
                                    run.skipped = None;
                                    self.state.sent.push(Sent {
                                        at: self.now,
                                        channel: action.channel.clone(),
                                        category: action.category.clone(),
                                        key: Some(key.clone()),
                                    });
                                    self.forget_old_sends();
                                    if action.await_result {
                                        run.status = RunStatus::AwaitingResult { key };
                                        return;
                                    }
                                }
                                Err(e) if e.limit.is_some() => {
                                    return self.fail(run, &step.id, &format!("its payload ({e})"));
                                }
                                Err(e) => self.note(
                                    run,
                                    sid,
                                    DecisionKind::Error { reason: format!("the payload did not render: {e}") },
                                ),
                            }
                            run.step = step.next;
                        }
                        Verdict::Skip(reason) => {
                            run.skipped = Some(reason.clone());
                            self.note(run, sid, DecisionKind::Skipped { reason });
                            run.step = step.next;
                        }
                        Verdict::Defer { until, reason } => {
                            if flow.quiet_hours == QuietMode::Drop {
                                let reason = format!("{reason}; the flow drops such actions");
                                run.skipped = Some(reason.clone());
                                self.note(run, sid, DecisionKind::Skipped { reason });
                                run.step = step.next;
                            } else {
                                self.note(run, sid, DecisionKind::Deferred { until, reason });
                                run.status = RunStatus::Waiting { until, on: WaitOn::Deferred };
                                return;
                            }
                        }
                    }
                }
                StepKind::Wait(spec) => {
                    let (until, reason) = match spec {
                        WaitSpec::For(d) => (Some(self.now + d), format!("wait {}", format_duration(*d))),
                        WaitSpec::UntilTime { at, zone } => {
                            let tz = policy::resolve_zone(zone, self.world.profile);
                            (
                                Some(at.next_at_or_after(self.now, &tz)),
                                format!("until {at} in {}", tz.iana_name().unwrap_or("UTC")),
                            )
                        }
                        WaitSpec::UntilTrait { name, offset } => {
                            let date = trait_time(&self.world.profile["traits"][name]);
                            let shifted = date.map(|d| d + offset);
                            (
                                shifted,
                                format!(
                                    "until traits.{name}{}",
                                    if *offset == 0 {
                                        String::new()
                                    } else {
                                        format!(
                                            " {}{}",
                                            if *offset < 0 { "-" } else { "+" },
                                            format_duration(offset.abs())
                                        )
                                    }
                                ),
                            )
                        }
                    };
                    match until {
                        Some(until) if until > self.now => {
                            self.note(run, sid, DecisionKind::Waiting { until, reason });
                            run.status = RunStatus::Waiting { until, on: WaitOn::Timer };
                            return;
                        }
                        Some(_) => {
                            self.note(run, sid, DecisionKind::Resumed { reason: format!("{reason}: already past") });
                            run.step = step.next;
                        }
                        None => {
                            self.note(
                                run,
                                sid,
                                DecisionKind::Resumed {
                                    reason: format!("{reason}: the trait is not a date; not waiting"),
                                },
                            );
                            run.step = step.next;
                        }
                    }
                }
                StepKind::WaitFor { event, timeout, .. } => {
                    let until = self.now + timeout;
                    let what =
                        event.name.clone().or_else(|| event.kind.map(|k| k.as_str().to_owned())).unwrap_or_default();
                    self.note(
                        run,
                        sid,
                        DecisionKind::Waiting {
                            until,
                            reason: format!("for {what}, at most {}", format_duration(*timeout)),
                        },
                    );
                    run.status = RunStatus::Waiting { until, on: WaitOn::Event };
                    return;
                }
                StepKind::Branch(arms) => {
                    let run_view = run.view_if(arms.iter().any(|a| a.when.as_ref().is_some_and(|c| c.reads("run"))));
                    let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
                    let mut chosen = None;
                    let mut why = Vec::new();
                    for (n, arm) in arms.iter().enumerate() {
                        match &arm.when {
                            None => {
                                chosen = Some((n, arm.next, "no other arm matched".to_owned()));
                                break;
                            }
                            Some(c) => match c.evaluate(&vars) {
                                Ok(true) => {
                                    chosen = Some((n, arm.next, format!("`{}` is true", c.source())));
                                    break;
                                }
                                Ok(false) => why.push(format!("`{}` is false", c.source())),
                                Err(e) if e.limit.is_some() => {
                                    let reason = format!("the condition `{}` ({e})", c.source());
                                    return self.fail(run, &step.id, &reason);
                                }
                                Err(e) => why.push(format!("`{}` could not decide ({e})", c.source())),
                            },
                        }
                    }
                    let (arm, next, reason) = match chosen {
                        Some((n, next, reason)) if why.is_empty() => (n.to_string(), next, reason),
                        Some((n, next, reason)) => (n.to_string(), next, format!("{}; {reason}", why.join("; "))),
                        None => ("none".to_owned(), step.next, format!("{}; going on", why.join("; "))),
                    };
                    self.note(run, sid, DecisionKind::Branch { arm, reason });
                    run.step = next;
                }
                StepKind::Split(arms) => {
                    let bucket = bucket(self.world.profile_id, &flow.id, &step.id);
                    let mut edge = 0u32;
                    let arm = arms.iter().find(|a| {
                        edge += a.percent;
                        bucket < edge
                    });
                    let Some(arm) = arm.or(arms.last()) else {
                        run.step = step.next;
                        continue;
                    };
                    self.note(run, sid, DecisionKind::Split { arm: arm.name.clone(), holdout: arm.holdout });
                    if arm.holdout {
                        self.end(
                            run,
                            RunStatus::Exited { reason: format!("holdout arm {}", arm.name) },
                            &format!("holdout arm {}", arm.name),
                        );
                        return;
                    }
                    run.step = arm.next;
                }
                StepKind::UpdateProfile(payload) => {
                    let run_view = run.view_if(payload.mentions("run"));
                    let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
                    match payload.render(&vars) {
                        Ok(Value::Object(traits)) => {
                            self.note(run, sid, DecisionKind::ProfileUpdated { traits: Value::Object(traits.clone()) });
                            self.effects.push(Effect::UpdateProfile { run: run.id.clone(), traits });
                        }
                        Ok(_) => {}
                        Err(e) if e.limit.is_some() => return self.fail(run, &step.id, &format!("its traits ({e})")),
                        Err(e) => self.note(
                            run,
                            sid,
                            DecisionKind::Error { reason: format!("the traits did not render: {e}") },
                        ),
                    }
                    run.step = step.next;
                }
                StepKind::Exit(label) => {
                    let reason = run.skipped.take().unwrap_or_else(|| label.clone());
                    self.end(run, RunStatus::Exited { reason: reason.clone() }, &reason);
                    return;
                }
                StepKind::Generate(request) => {
                    let run_view = run.view();
                    let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
                    match request.render(&vars) {
                        Ok(request) => {
                            let channel = request["channel"]
                                .as_str()
                                .map(str::to_owned)
                                .or_else(|| flow.channel.clone())
                                .unwrap_or_else(|| "email".to_owned());
                            // Everything the personalisation context is built from travels with the request.
                            let payload = json!({
                                "request": request, "profile": self.world.profile, "event": run.trigger,
                                "run": {"id": run.id, "flow": run.flow, "version": run.version, "step": step.id,
                                        "steps": run.results, "last_event": run.last_event},
                            });
                            let call = Call {
                                connector: GENERATE_CONNECTOR,
                                operation: GENERATE_OPERATION,
                                channel: &channel,
                                category: &flow.category,
                                await_result: true,
                                policed: false,
                            };
                            // The decision shows the request, not the whole profile that travels with it.
                            let key = self.dispatch(run, &step.id, call, payload, request);
                            run.status = RunStatus::AwaitingResult { key };
                            return;
                        }
                        Err(e) if e.limit.is_some() => return self.fail(run, &step.id, &format!("its request ({e})")),
                        Err(e) => {
                            self.note(
                                run,
                                sid,
                                DecisionKind::Error { reason: format!("the request did not render: {e}") },
                            );
                            run.step = step.next;
                        }
                    }
                }
                StepKind::Approve(a) => {
                    let run_view = run.view();
                    let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
                    let first = a.first_sends.map(|n| {
                        let key = StepKey { flow: run.flow.clone(), version: run.version, step: step.id.clone() };
                        let reached = self.reached(&key);
                        if reached < n {
                            self.effects.push(Effect::Counted(key));
                        }
                        (reached, n)
                    });
                    let needed = match (first, &a.when) {
                        (Some((reached, n)), _) if reached < n => Ok(format!(
                            "send {} of the first {n} of version {} is approved before it goes out",
                            reached + 1,
                            run.version
                        )),
                        (Some((_, n)), None) => Err(format!(
                            "approval not needed: the first {n} sends of version {} have been held for approval",
                            run.version
                        )),
                        (None, None) => Ok("every message of this step is approved".to_owned()),
                        (_, Some(c)) => match c.evaluate(&vars) {
                            Ok(true) => Ok(format!("`{}` is true", c.source())),
                            Ok(false) => Err(format!("approval not needed: `{}` is false", c.source())),
                            // Unsure is not a reason to send unreviewed.
                            Err(e) => Ok(format!("`{}` could not decide ({e}), so approval is needed", c.source())),
                        },
                    };
                    match needed {
                        Err(reason) => {
                            set_approval(run, &step.id, json!({"approval": "not_needed"}));
                            self.note(run, sid, DecisionKind::Resumed { reason });
                            run.step = step.next;
                        }
                        Ok(why) => {
                            let reason = match a.reason.as_ref().map(|t| t.render(&vars)) {
                                Some(Ok(r)) if !r.trim().is_empty() => r,
                                _ => why,
                            };
                            let until = self.now + a.expires;
                            set_approval(
                                run,
                                &step.id,
                                json!({"approval": "pending", "reason": reason, "content": a.content,
                                       "requested_at": format_timestamp(self.now), "expires_at": format_timestamp(until),
                                       "fallback": a.fallback.name()}),
                            );
                            self.note(run, sid, DecisionKind::ApprovalRequested { reason, until, escalated_to: None });
                            run.status = RunStatus::Waiting { until, on: WaitOn::Approval };
                            return;
                        }
                    }
                }
            }
        }
        let reason = format!("took {MAX_STEPS_PER_INPUT} steps without waiting");
        self.note(run, None, DecisionKind::Error { reason: reason.clone() });
        self.end(run, RunStatus::Exited { reason: reason.clone() }, &reason);
    }

    /// How many runs reached a counted step before this one: those committed, and those earlier in this input.
    fn reached(&self, key: &StepKey) -> u64 {
        let here = self.effects.iter().filter(|e| matches!(e, Effect::Counted(k) if k == key)).count();
        self.world.counts.get(key).copied().unwrap_or(0) + here as u64
    }

    /// Hands an action to the outbox and records the decision, returning its key `<run>:<step>:<visit>`.
    /// `shown` is the payload as the decision records it.
    fn dispatch(&mut self, run: &mut Run, step: &str, call: Call<'_>, payload: Value, shown: Value) -> String {
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
    fn forget_old_sends(&mut self) {
        let memory = self.world.defs.policies.values().map(|p| p.memory()).max().unwrap_or(0);
        let horizon = self.now - memory;
        self.state.sent.retain(|s| s.at > horizon);
    }

    fn finish(mut self) -> Vec<Effect> {
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
    let mut hash = crate::hash::Fnv1a::new();
    for part in [profile, flow, step] {
        hash.write(part.as_bytes()).write(&[0xff]);
    }
    (hash.finish() % 100) as u32
}
