//! The flow runtime inside the processor: it feeds each profile's inputs (events, due timers, action results)
//! to the core's pure machine and turns the effects into rows of the processor's batch (flow states, one timer
//! per profile, the outbox, run records, segment memberships), committed with the profiles and the log
//! position.
//!
//! Timers are rows (`timers`, indexed by due time). The runtime keeps a bounded window of them in memory: those
//! due within the next [`WINDOW`], read from the store when the window runs out and added to as batches set
//! new ones. A timer in the window that the profile no longer wants (its state moved on) is skipped when it
//! comes up, so the window never has to be kept exactly in step.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tutti_core::audit::{AuditKind, AuditRecord};
use tutti_core::{Millis, ProfileId};
use tutti_flows::Definitions;
pub use tutti_flows::FlowDefinitions;
use tutti_flows::def::StepKind;
use tutti_flows::machine::{
    Decision, DecisionKind, Effect, Input, ProfileState, Run, RunStatus, StepCounts, StepKey, WaitOn, World, apply,
};
use tutti_profiles::Profile;
use tutti_profiles::profile::Stamped;
use tutti_store::{FlowBatch, FlowMeasure, OutboxItem, ProfileStore, RunRecord, StoreError};

/// How far ahead the in-memory window of timers reaches.
pub const WINDOW: Millis = 60_000;
/// The most timers read into the window at once; the window ends at the last one read when there are more.
pub const WINDOW_LIMIT: usize = 100_000;
/// The most due profiles handled in one batch.
pub const TICKS_PER_BATCH: usize = 10_000;

/// A profile's flow state, and the timer and state rows as committed (so unchanged rows are not written again).
struct Cached {
    state: ProfileState,
    /// The committed timer: the state's next wake when it was committed.
    timer: Option<Millis>,
    /// Whether a state row is committed.
    stored: bool,
}

/// The runtime's memory: committed flow states of recently touched profiles and the timer window.
pub(crate) struct FlowRuntime {
    pub definitions: Arc<FlowDefinitions>,
    /// The definitions the current batch runs on, taken by [`FlowRuntime::begin`].
    defs: Arc<Definitions>,
    states: HashMap<ProfileId, Cached>,
    window: BTreeSet<(Millis, ProfileId)>,
    /// Timers due before this are all in `window`.
    window_end: Millis,
    /// How far ahead each read of the window reaches.
    window_length: Millis,
    /// Profiles changed in the current batch.
    touched: BTreeSet<ProfileId>,
    /// Runs that reached each counted step, across profiles: read from the store when first needed, then
    /// kept here (the processor is their only writer, or the store refuses a total another worker moved).
    counts: Option<StepCounts>,
    /// Counts changed in the current batch.
    counted: BTreeSet<StepKey>,
    /// What runs did in the current batch, to add to the flows' running totals.
    stats: HashMap<FlowMeasure, u64>,
    cache_limit: usize,
}

impl FlowRuntime {
    pub fn new(definitions: Arc<FlowDefinitions>) -> FlowRuntime {
        FlowRuntime {
            defs: definitions.get(),
            definitions,
            states: HashMap::new(),
            window: BTreeSet::new(),
            window_end: Millis::MIN,
            window_length: WINDOW,
            touched: BTreeSet::new(),
            counts: None,
            counted: BTreeSet::new(),
            stats: HashMap::new(),
            cache_limit: 50_000,
        }
    }

    /// Reads the timer window `length` ahead instead of [`WINDOW`]: a worker among several reads it often, since
    /// the others set timers of its profiles too.
    pub fn with_timer_window(mut self, length: Millis) -> FlowRuntime {
        self.window_length = length.max(1);
        self
    }

    /// Takes the definitions in force for the batch about to run, so that a change through the API applies
    /// from the next batch on and nothing reads the shared lock per event.
    pub fn begin(&mut self) {
        self.defs = self.definitions.get();
    }

    /// The definitions the current batch runs on.
    pub fn defs(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// Whether anything is defined (otherwise events need not go through the machine at all).
    pub fn active(&self) -> bool {
        let defs = &self.defs;
        !(defs.flows.is_empty() && defs.segments.is_empty() && defs.policies.is_empty())
    }

    /// When the earliest timer in the window is due, if any is (for how long the processor may sleep).
    pub fn next_due(&self) -> Option<Millis> {
        self.window.first().map(|(at, _)| *at)
    }

    /// Profiles whose timer is due at `now`, with its due time, at most [`TICKS_PER_BATCH`], refilling the
    /// window when it ran out.
    pub fn due(&mut self, store: &dyn ProfileStore, now: Millis) -> Result<Vec<(Millis, ProfileId)>, StoreError> {
        if now >= self.window_end {
            let horizon = now.saturating_add(self.window_length);
            let rows = store.due_timers(horizon, WINDOW_LIMIT)?;
            self.window_end = if rows.len() == WINDOW_LIMIT { rows.last().map_or(horizon, |r| r.0) } else { horizon };
            self.window = rows.into_iter().collect();
        }
        let mut due = Vec::new();
        while let Some(&(at, pid)) = self.window.first() {
            if at > now || due.len() >= TICKS_PER_BATCH {
                break;
            }
            self.window.pop_first();
            due.push((at, pid));
        }
        Ok(due)
    }

    fn cached<'a>(
        states: &'a mut HashMap<ProfileId, Cached>,
        store: &dyn ProfileStore,
        pid: ProfileId,
    ) -> Result<&'a mut Cached, StoreError> {
        match states.entry(pid) {
            std::collections::hash_map::Entry::Occupied(slot) => Ok(slot.into_mut()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let (state, stored) = match store.flow_state(pid)? {
                    Some(bytes) => (
                        serde_json::from_slice::<ProfileState>(&bytes)
                            .map_err(|e| StoreError::Corrupt(format!("flow state of {pid}: {e}")))?,
                        true,
                    ),
                    None => (ProfileState::default(), false),
                };
                // The timer row is always committed with the state it was taken from.
                Ok(slot.insert(Cached { timer: state.next_wake(), state, stored }))
            }
        }
    }

    fn state<'a>(
        states: &'a mut HashMap<ProfileId, Cached>,
        store: &dyn ProfileStore,
        pid: ProfileId,
    ) -> Result<&'a mut ProfileState, StoreError> {
        Ok(&mut Self::cached(states, store, pid)?.state)
    }

    /// A profile's flow state as this runtime holds it (committed, once the batch is), if held.
    pub fn held_state(&self, pid: ProfileId) -> Option<&ProfileState> {
        self.states.get(&pid).map(|c| &c.state)
    }

    /// Whether a due timer still stands: the profile's state wants a tick by `now`.
    pub fn wants_tick(&mut self, store: &dyn ProfileStore, pid: ProfileId, now: Millis) -> Result<bool, StoreError> {
        Ok(Self::state(&mut self.states, store, pid)?.next_wake().is_some_and(|t| t <= now))
    }

    /// Runs one input through the machine for a profile, adding the effects to `batch`. Returns whether the
    /// profile itself changed (an `update_profile` step).
    pub fn apply(
        &mut self,
        store: &dyn ProfileStore,
        profile: &mut Profile,
        input: Input<'_>,
        now: Millis,
        batch: &mut FlowBatch,
    ) -> Result<bool, StoreError> {
        let defs = self.defs.clone();
        let pid = profile.id;
        let view = profile.to_public_json();
        let profile_id = pid.to_string();
        let counts = match &mut self.counts {
            Some(counts) => counts,
            unread => unread.insert(store.step_counts()?.into_iter().collect()),
        };
        let world = World { defs: &defs, profile_id: &profile_id, profile: &view, counts };
        let state = Self::state(&mut self.states, store, pid)?;
        let effects = apply(&world, state, input, now);
        // A profile counts once per flow: when this input's entries are all it ever had.
        let mut entered: Vec<&str> = Vec::new();
        for effect in &effects {
            if let Effect::Record(d) = effect {
                if let (DecisionKind::Entered { .. }, Some(flow)) = (&d.kind, &d.flow) {
                    entered.push(flow);
                }
                for (step, measure) in tutti_flows::stats::measures(d) {
                    let flow = d.flow.clone().unwrap_or_default();
                    *self.stats.entry(FlowMeasure { flow, step, measure }).or_default() += 1;
                }
            }
        }
        entered.sort_unstable();
        for flow in entered.chunk_by(|a, b| a == b) {
            let now_entered = state.entries.get(flow[0]).map_or(0, |e| e.count);
            if now_entered == flow.len() as u64 {
                let key = FlowMeasure { flow: flow[0].to_owned(), step: String::new(), measure: "profiles".into() };
                *self.stats.entry(key).or_default() += 1;
            }
        }
        self.touched.insert(pid);
        let mut profile_changed = false;
        let mut approvals: Vec<AuditRecord> = Vec::new();
        for effect in effects {
            match effect {
                Effect::Dispatch(d) => batch.outbox.push(OutboxItem {
                    key: d.key.clone(),
                    profile: pid,
                    connector: d.connector.clone(),
                    body: serde_json::to_vec(&d).expect("a dispatch always serialises"),
                    created_at: now,
                }),
                Effect::UpdateProfile { run, traits } => {
                    for (key, value) in traits {
                        let stamped = Stamped { value, at: now, message_id: format!("flow:{run}") };
                        profile.traits.insert(key, stamped);
                    }
                    profile_changed = true;
                }
                Effect::Record(decision) => match &decision.kind {
                    DecisionKind::SegmentEntered { segment } => batch.members.push((segment.clone(), pid, true)),
                    DecisionKind::SegmentLeft { segment } => batch.members.push((segment.clone(), pid, false)),
                    DecisionKind::ApprovalRequested { .. }
                    | DecisionKind::Approved { .. }
                    | DecisionKind::Rejected { .. }
                    | DecisionKind::ApprovalExpired { .. } => approvals.push(approval_record(pid, &decision)),
                    _ => tracing::debug!(target: "tutti::flows", decision = ?decision, "decision"),
                },
                Effect::Counted(key) => {
                    *self.counts.get_or_insert_default().entry(key.clone()).or_default() += 1;
                    self.counted.insert(key);
                }
                Effect::Run(run) => {
                    // What was approved is recorded as it went out (after any edits).
                    for record in approvals.iter_mut().filter(|r| r.run.as_deref() == Some(run.id.as_str())) {
                        attach_content(&defs, &run, record);
                    }
                    let state = match &run.status {
                        RunStatus::Waiting { on: WaitOn::Approval, .. } => "approval",
                        RunStatus::Waiting { .. } => "waiting",
                        RunStatus::AwaitingResult { .. } => "awaiting_result",
                        RunStatus::Completed => "completed",
                        RunStatus::Exited { .. } => "exited",
                        RunStatus::Failed { .. } => "failed",
                    };
                    batch.runs.push(RunRecord {
                        id: run.id.clone(),
                        profile: pid,
                        flow: run.flow.clone(),
                        version: run.version,
                        state: state.to_owned(),
                        started_at: run.started_at,
                        updated_at: now,
                        body: serde_json::to_vec(&run).expect("a run always serialises"),
                    });
                }
            }
        }
        batch.audit.append(&mut approvals);
        Ok(profile_changed)
    }

    /// A profile merged into another: its flow state joins the survivor's.
    pub fn merge(&mut self, store: &dyn ProfileStore, into: ProfileId, from: ProfileId) -> Result<(), StoreError> {
        let absorbed = std::mem::take(Self::state(&mut self.states, store, from)?);
        self.states.remove(&from);
        self.touched.remove(&from);
        Self::state(&mut self.states, store, into)?.absorb(absorbed);
        self.touched.insert(into);
        Ok(())
    }

    /// Adds the touched profiles' states and timers to the batch, and the new timers to the window. Rows that
    /// would not change (no timer before or after, no state to delete) are left out.
    pub fn finish(&mut self, batch: &mut FlowBatch) {
        batch.stats.extend(self.stats.drain());
        if let Some(counts) = &self.counts {
            for key in std::mem::take(&mut self.counted) {
                let n = counts.get(&key).copied().unwrap_or(0);
                batch.counts.push((key, n));
            }
        }
        for pid in std::mem::take(&mut self.touched) {
            let Some(cached) = self.states.get_mut(&pid) else { continue };
            let wake = cached.state.next_wake();
            if !cached.state.is_empty() {
                let bytes = serde_json::to_vec(&cached.state).expect("a flow state always serialises");
                batch.states.push((pid, Some(bytes)));
                cached.stored = true;
            } else if cached.stored {
                batch.states.push((pid, None));
                cached.stored = false;
            }
            if wake != cached.timer {
                batch.timers.push((pid, wake));
                cached.timer = wake;
            }
            if let Some(at) = wake
                && at < self.window_end
            {
                self.window.insert((at, pid));
            }
        }
    }

    /// After a failed commit: what is cached may be ahead of the store.
    pub fn forget(&mut self) {
        self.states.clear();
        self.touched.clear();
        self.counts = None;
        self.counted.clear();
        self.stats.clear();
        self.window.clear();
        self.window_end = Millis::MIN;
    }

    /// Keeps the cache of states bounded (only committed state is cached between batches).
    pub fn evict(&mut self) {
        if self.states.len() > self.cache_limit {
            let keep = self.cache_limit * 3 / 4;
            let excess: Vec<ProfileId> = self.states.keys().skip(keep).copied().collect();
            for pid in excess {
                self.states.remove(&pid);
            }
        }
    }

    /// Drops a profile's cached flow state (committed state only: it is read again when next needed).
    pub fn forget_profile(&mut self, pid: ProfileId) {
        if !self.touched.contains(&pid) {
            self.states.remove(&pid);
        }
    }

    /// Forgets a profile that was erased.
    pub fn erase(&mut self, pid: ProfileId) {
        self.states.remove(&pid);
        self.window.retain(|(_, p)| *p != pid);
    }
}

/// An approval decision as an audit record: what happened, who decided, why.
fn approval_record(pid: ProfileId, d: &Decision) -> AuditRecord {
    let mut detail = match &d.kind {
        DecisionKind::ApprovalRequested { reason, until, escalated_to } => {
            let what = if escalated_to.is_some() { "escalated" } else { "requested" };
            json!({"decision": what, "reason": reason, "expires_at": tutti_core::time::format_timestamp(*until),
                   "escalated_to": escalated_to})
        }
        DecisionKind::Approved { by, edited } => {
            json!({"decision": if *edited { "edited_and_approved" } else { "approved" }, "approver": by})
        }
        DecisionKind::Rejected { by, reason } => json!({"decision": "rejected", "approver": by, "reason": reason}),
        DecisionKind::ApprovalExpired { fallback } => json!({"decision": "expired", "fallback": fallback}),
        other => json!({"decision": format!("{other:?}")}),
    };
    detail["step"] = d.step.clone().map_or(Value::Null, Value::String);
    AuditRecord {
        at: d.at,
        kind: AuditKind::Approval,
        flow: d.flow.clone(),
        run: d.run.clone(),
        profile: Some(pid),
        detail,
    }
}

/// Adds to an approval's record the content it was about, as the run now holds it, and the flow version.
fn attach_content(defs: &Definitions, run: &Run, record: &mut AuditRecord) {
    record.detail["version"] = run.version.into();
    let step = record.detail["step"].as_str().unwrap_or_default();
    let Some(flow) = defs.flow(&run.flow, run.version) else { return };
    let content = flow.steps.iter().find(|s| s.id == step).and_then(|s| match &s.kind {
        StepKind::Approve(a) => a.content.as_ref(),
        _ => None,
    });
    if let Some(c) = content.and_then(|c| run.results.get(c)) {
        record.detail["content"] = c.clone();
    }
}
