//! The machine's data: what it is given (the world, an input), what it keeps per profile (runs, entries,
//! suppressions, sends, segments), and what it returns (effects, decisions, dispatches).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Definitions;
use crate::policy::{Sent, Suppression};
use tutti_core::event::Event;
use tutti_core::time::{Millis, format_timestamp};
use tutti_segments::SegmentState;

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
    /// Segments defined or changed since the profile's events arrived: their membership worked out afresh from
    /// the profile and `history` (its events, oldest first; only segments with behaviour clauses read them).
    Reevaluate { segments: &'a [String], history: &'a [Event] },
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
    /// Opens and clicks may be tracked: the flow did not say `tracking: false`.
    #[serde(default = "policed_by_default")]
    pub tracking: bool,
}

fn policed_by_default() -> bool {
    true
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
        /// What a `generate` step wrote (`subject`, `body`, `passed`, and who wrote it: `by`, "the local
        /// generator" or the provider and model), so a dry run and the run's history show the copy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copy: Option<Value>,
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
    pub(super) fn view_if(&self, read: bool) -> Value {
        if read { self.view() } else { Value::Null }
    }

    pub(super) fn view(&self) -> Value {
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
