//! The processor: reads the durable log in order, resolves identities, folds events into profiles.
//!
//! It is the single owner of the identity graph in the embedded engine. Each batch of events becomes one
//! [`ProfileBatch`] committed with the new checkpoint, so a crash at any point replays from the last checkpoint
//! and reaches the same state: nothing lost, nothing counted twice. Caches of identities and profiles are
//! bounded; whatever is not cached is read from the store.
//!
//! Erasure runs on the same thread, between batches, so it never races with the processing of the same person.

mod backfill;
mod broadcast;
mod commands;
mod fold;
mod partitions;

pub(crate) use partitions::Partitions;

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;
use tutti_core::{Event, ProfileId};
use tutti_log::LogFeed;
use tutti_profiles::{Identifier, IdentityConfig, Profile};
use tutti_store::{EventReader, IdBlock, OutboxRow, ProfileBatch, ProfileStore, StoreError, Tombstone};

use crate::flows::{FlowDefinitions, FlowRuntime};
use tutti_core::clock::{Clock, SystemClock};
use tutti_dispatch::ToDispatcher;
use tutti_dispatch::delivery_policy::{DeliveryPolicy, Standing};
use tutti_intake::{Intake, IntakeError};
use tutti_metrics::Metrics;

/// Processor failures.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("the processor is shut down")]
    Closed,
    #[error(transparent)]
    Analytics(#[from] tutti_analytics::sqlite::StoreError),
    #[error(transparent)]
    Conversations(#[from] tutti_conversations::store::StoreError),
    /// Running the flows of one profile on one input panicked. The batch is dropped and run again with that
    /// input failed (see [`InputId`]).
    #[error("handling {input} for profile {profile} failed: {reason}")]
    Panicked { input: InputId, profile: ProfileId, reason: String },
}

/// One input to the flows, as the processor knows it across a retried batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InputId {
    /// The event at this log position.
    Event(u64),
    /// A profile's due timers.
    Tick(ProfileId),
    /// A connector's answer to the action with this key.
    Result(String),
    /// A person's decision on this run.
    Approval(String),
    /// A segment backfill's re-evaluation of this profile.
    Reevaluate(ProfileId),
    /// A broadcast's signal to this member.
    Broadcast(String, ProfileId),
}

impl std::fmt::Display for InputId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputId::Event(seq) => write!(f, "event {seq}"),
            InputId::Tick(pid) => write!(f, "the timers of profile {pid}"),
            InputId::Result(key) => write!(f, "the result of action {key}"),
            InputId::Approval(run) => write!(f, "the decision on run {run}"),
            InputId::Reevaluate(pid) => write!(f, "the segment backfill of profile {pid}"),
            InputId::Broadcast(id, pid) => write!(f, "broadcast {id} to profile {pid}"),
        }
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReport {
    pub profile: ProfileId,
    pub identities: usize,
    pub events: usize,
}

pub(crate) enum Command {
    Erase {
        profile: ProfileId,
        reply: oneshot::Sender<Result<Option<ErasureReport>, String>>,
    },
    /// A person's decision on a run waiting at an approve step. The reply is the run as committed after it,
    /// or `None` when the run did not change (it no longer waits there).
    Approve {
        profile: ProfileId,
        run: String,
        step: String,
        decision: tutti_flows::machine::ApprovalDecision,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, String>>,
    },
}

/// The wait after a failed step, doubled with each failure after it up to [`MAX_FAILED_WAIT`].
const FAILED_STEP_WAIT: Duration = Duration::from_millis(20);

const MAX_FAILED_WAIT: Duration = Duration::from_secs(1);

/// Conflicts with other workers' commits in a row that are retried at once; more are handled as failures
/// (waited on, and logged), so a conflict that keeps coming cannot spin.
const MAX_QUICK_RETRIES: u32 = 16;

/// Tunables.
pub struct ProcessorSettings {
    pub batch_events: usize,
    pub profile_cache: usize,
    pub identity_cache: usize,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        // A batch is whatever is waiting, up to this: small when the processor keeps up (low latency for
        // read-your-writes), large when it is behind (a profile touched many times is written once).
        ProcessorSettings { batch_events: 10_000, profile_cache: 50_000, identity_cache: 200_000 }
    }
}

/// The CPU priority of the processor relative to the intake and the HTTP handlers (a `nice` increment).
///
/// Acknowledging events is what clients wait for; folding them into profiles may trail by a moment. When the
/// cores are busy, this lets intake take the CPU first and the processor catch up in the gaps; on an idle
/// machine it changes nothing. The delivery thread, which mostly waits on vendors, keeps the normal level (its
/// dispatch overhead is measured in docs/benchmarks.md). Linux applies it to the calling thread only.
const BACKGROUND_NICE: i32 = 10;

pub(crate) fn lower_priority(what: &str) {
    #[cfg(target_os = "linux")]
    {
        // Linux takes an absolute nice value; add to whatever the process runs at.
        let me = Some(rustix::thread::gettid());
        let nice = rustix::process::getpriority_process(me)
            .and_then(|now| rustix::process::setpriority_process(me, (now + BACKGROUND_NICE).min(19)));
        if let Err(e) = nice {
            tracing::warn!(error = %e, "could not lower the {what}'s CPU priority; it will compete with intake");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = what;
}

pub(crate) struct Processor {
    pub store: Box<dyn ProfileStore>,
    pub events: Arc<dyn EventReader>,
    pub intake: Intake,
    pub feed: Arc<dyn LogFeed>,
    /// Where the processor announces its checkpoint, for callers waiting to read their own writes.
    pub processed: Arc<dyn LogFeed>,
    pub commands: mpsc::Receiver<Command>,
    pub identity: IdentityConfig,
    pub erasure_key: [u8; 32],
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub settings: ProcessorSettings,
    pub definitions: Arc<FlowDefinitions>,
    /// Where each batch's new actions go once committed.
    pub dispatcher: ToDispatcher,
    /// Where each batch's profiles' standing goes, for the policies checked before each delivery attempt.
    pub policy: Arc<DeliveryPolicy>,
    /// The analytics store, whose rows about a person go with them on erasure.
    pub analytics: Option<crate::analytics::SharedWriter>,
    /// The conversations store, whose conversations with a person go with them on erasure.
    pub conversations: Option<Arc<tutti_conversations::store::ConversationStore>>,
    /// Set when several workers share the log: the partitions this one holds.
    pub partitions: Option<Partitions>,
}

struct State {
    /// Where the next read of the log starts.
    checkpoint: u64,
    /// Ids for new profiles, by the partition they are first seen in.
    ids: HashMap<u32, IdBlock>,
    held: partitions::HeldState,
    tombstones: HashMap<[u8; 32], Tombstone>,
    owners: HashMap<Identifier, ProfileId>,
    profiles: HashMap<ProfileId, Profile>,
    flows: FlowRuntime,
    /// Inputs whose handling panicked, with why: when the batch runs again, each fails its profile's active
    /// runs instead of running them, and the checkpoint moves past it, so it never fails the processor twice.
    poisoned: HashMap<InputId, String>,
    backfills: backfill::Backfills,
    /// When segments' sizes are next recorded (hourly, and at once after a backfill ends).
    sizes_due: tutti_core::Millis,
}

/// Changes gathered over one batch.
#[derive(Default)]
struct Pending {
    batch: ProfileBatch,
    dirty: BTreeSet<ProfileId>,
    /// Events of erased people, to delete from the log.
    dropped: Vec<u64>,
    created: i64,
}

impl Processor {
    pub fn run(mut self) {
        lower_priority("processor");
        // Down again when this thread ends, by returning or by a panic outside any one input's flows.
        struct Up(Arc<Metrics>);
        impl Drop for Up {
            fn drop(&mut self) {
                self.0.processor_up.store(false, Ordering::Relaxed);
            }
        }
        let _up = Up(self.metrics.clone());
        let mut state = match self.load() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the processor could not start");
                return;
            }
        };
        self.processed.publish(state.checkpoint);
        // Consecutive failed steps: each waits longer before the next try, and only the first is logged as an
        // error, so a log or store that is away for a while (a NATS restart) neither spins nor floods the log.
        let mut failures: u32 = 0;
        // Consecutive conflicts with other workers' commits, retried at once up to a point.
        let mut conflicts: u32 = 0;
        loop {
            // Liveness is about real time, whatever clock the flows run on.
            self.metrics.processor_beat.store(SystemClock.now_ms(), Ordering::Relaxed);
            while let Ok(command) = self.commands.try_recv() {
                self.handle(&mut state, command);
            }
            let stepped = self.step(&mut state);
            if stepped.is_ok() {
                conflicts = 0;
            }
            if stepped.is_ok() && failures > 0 {
                tracing::info!(failures, "processing goes on after failed attempts");
                failures = 0;
            }
            match stepped {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) if self.feed.is_closed() => {
                    tracing::error!(error = %e, "processing failed during shutdown; the rest replays at next start");
                    break;
                }
                // Another worker changed what the batch was worked out from (one person's events on two
                // partitions), or took a partition: run it again at once on fresh reads.
                Err(ProcessorError::Store(StoreError::Conflict(why))) if conflicts < MAX_QUICK_RETRIES => {
                    conflicts += 1;
                    tracing::debug!(why, "a batch met another worker's commit; working it out again");
                    continue;
                }
                Err(ProcessorError::Panicked { input, profile, reason }) => {
                    tracing::error!(%input, %profile, reason, "handling an input panicked; it fails its profile's active runs and processing goes on");
                    state.poisoned.insert(input, reason);
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::error!(error = %e, "processing failed; retrying from the last checkpoint");
                    } else {
                        tracing::debug!(error = %e, failures, "processing failed again");
                    }
                    std::thread::park_timeout(
                        FAILED_STEP_WAIT.saturating_mul(1 << (failures - 1).min(6)).min(MAX_FAILED_WAIT),
                    );
                    continue;
                }
            }
            if self.feed.is_closed() && self.feed.head() <= state.checkpoint {
                break;
            }
            // Woken by new events at once; otherwise when the next timer is due, and at least every 20 ms (how
            // long an erasure request or an action result may wait).
            let wait = state.flows.next_due().map_or(20, |at| (at - self.clock.now_ms()).clamp(0, 20));
            self.feed.wait_beyond(state.checkpoint, Duration::from_millis(wait as u64));
        }
        self.processed.close();
    }

    fn load(&self) -> Result<State, ProcessorError> {
        let checkpoint = self.store.checkpoint()?;
        let tombstones = self.store.tombstones()?.into_iter().map(|t| (t.hash, t)).collect();
        self.metrics.profiles.store(self.store.count_profiles()? as i64, Ordering::Relaxed);
        self.metrics.processed_seq.store(checkpoint, Ordering::Relaxed);
        self.metrics.log_head.fetch_max(self.events.head()?, Ordering::Relaxed);
        let mut state = State {
            checkpoint,
            ids: HashMap::new(),
            held: partitions::HeldState::default(),
            tombstones,
            owners: HashMap::new(),
            profiles: HashMap::new(),
            // Other workers set timers of this worker's profiles too: the window is read again every second.
            flows: match self.partitions {
                None => FlowRuntime::new(self.definitions.clone()),
                Some(_) => FlowRuntime::new(self.definitions.clone()).with_timer_window(1_000),
            },
            poisoned: HashMap::new(),
            backfills: backfill::Backfills::default(),
            sizes_due: 0,
        };
        self.reload_ids(&mut state)?;
        Ok(state)
    }

    /// Processes one batch: new durable events (action results among them) and due timers. Returns whether
    /// there may be more to do at once.
    fn step(&mut self, state: &mut State) -> Result<bool, ProcessorError> {
        let now = self.clock.now_ms();
        if !self.follow_ownership(state)? {
            return Ok(false);
        }
        // Only what is durable: an event committed but not yet flushed could vanish in a power cut, and its
        // effect on a profile must not outlive it.
        let head = self.feed.head();
        self.follow_definitions(state)?;
        // One version of the definitions for the whole batch.
        state.flows.begin();
        let due = state.flows.due(&*self.store, now)?;
        let mut pending = Pending::default();
        let cluster_work = self.does_cluster_work(state);
        if cluster_work {
            self.compare_backfills(state, &mut pending, now)?;
        }
        let backfilling = cluster_work && (state.backfills.unfinished() || !pending.batch.flows.backfills.is_empty());
        let broadcasting = cluster_work && self.store.open_broadcasts()?.iter().any(|b| b.send_at <= now);
        let sizing = cluster_work && now >= state.sizes_due && !state.flows.defs().segments.is_empty();
        if head <= state.checkpoint && due.is_empty() && !backfilling && !broadcasting && !sizing {
            return Ok(false);
        }
        self.refresh_tombstones(state)?;
        let mut stored = if head > state.checkpoint {
            self.events.read_after(state.checkpoint, self.settings.batch_events)?
        } else {
            Vec::new()
        };
        let read = stored.len();
        stored.retain(|e| e.seq <= head);
        let full = read == self.settings.batch_events && stored.len() == read;
        let mut last = state.checkpoint;
        let mut more_backfill = false;
        let mut more_broadcast = false;
        let outcome = (|| {
            for record in stored {
                last = record.seq;
                if self.passes_over(state, record.seq, record.partition) {
                    continue;
                }
                match Event::from_stored(record.body) {
                    Ok(event) if self.takes(state, record.seq, record.partition, &event) => {
                        self.fold(state, &mut pending, record.seq, &event, now)?
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(seq = record.seq, error = %e, "stored event cannot be read; skipped")
                    }
                }
            }
            let ticks = due.len();
            for (at, pid) in due {
                // Among several workers the profile is read before its flow state, so that a flow state older
                // than the profile's version cannot pass the commit's check (see `flow_input`).
                if self.partitions.is_some() && !self.cache_profile(state, pid)? {
                    continue;
                }
                if state.flows.wants_tick(&*self.store, pid, now)? {
                    self.metrics.timer_lateness.observe((now - at).max(0) as f64 / 1000.0);
                    let input = tutti_flows::Input::Tick;
                    self.flow_input(state, &mut pending, pid, input, InputId::Tick(pid), now)?;
                }
            }
            self.metrics.timers_fired.fetch_add(ticks as u64, Ordering::Relaxed);
            // Events first: a backfill takes its turn only when they leave room.
            // Sizes first: a backfill ending below asks for its segment's size at the next batch.
            if sizing {
                self.record_sizes(state, &mut pending, now)?;
            }
            if !full && backfilling {
                more_backfill = self.backfill_chunk(state, &mut pending, now)?;
            }
            if !full && broadcasting {
                more_broadcast = self.broadcast_chunk(state, &mut pending, now)?;
            }
            Ok::<(), ProcessorError>(())
        })();
        if let Err(e) = outcome {
            self.reset(state)?;
            return Err(e);
        }
        state.flows.finish(&mut pending.batch.flows);
        // Everything up to the head read before this batch is covered, including erased gaps.
        let checkpoint = if full { last } else { last.max(head).max(state.checkpoint) };
        if !pending.dropped.is_empty() {
            // Deleted before the checkpoint moves past them: after a crash they are simply gone, never orphaned.
            self.intake.delete_blocking(pending.dropped.clone())?;
        }
        self.commit(state, &mut pending, checkpoint)?;
        state.poisoned.clear();
        if !pending.dropped.is_empty() {
            self.metrics.events_erased_in_flight.fetch_add(pending.dropped.len() as u64, Ordering::Relaxed);
            self.intake.scrub_blocking()?;
            self.store.scrub()?;
        }
        state.checkpoint = checkpoint;
        self.advance_partitions(state, checkpoint);
        self.metrics.profiles.fetch_add(pending.created - pending.batch.deleted.len() as i64, Ordering::Relaxed);
        self.metrics.merges.fetch_add(pending.batch.moves.len() as u64, Ordering::Relaxed);
        self.metrics.events_processed.fetch_add(pending.batch.attributions.len() as u64, Ordering::Relaxed);
        // One of several workers reports the cluster's progress instead (cluster.rs).
        if self.partitions.is_none() {
            self.metrics.processed_seq.store(checkpoint, Ordering::Relaxed);
        }
        self.processed.publish(checkpoint);
        self.evict(state);
        state.flows.evict();
        Ok(full || more_backfill || more_broadcast)
    }

    /// Commits a batch at `checkpoint` and hands its new actions to the dispatcher. On failure the caches are
    /// dropped (they may hold uncommitted changes) and everything replays from the last checkpoint.
    fn commit(&mut self, state: &mut State, pending: &mut Pending, checkpoint: u64) -> Result<(), ProcessorError> {
        pending.batch.checkpoint = checkpoint;
        pending.batch.next_profile_id = state.ids.get(&0).map_or(0, |b| b.next);
        pending.batch.profiles = pending.dirty.iter().filter_map(|id| state.profiles.get(id).cloned()).collect();
        let queued = match self.store.commit(&pending.batch) {
            Ok(queued) => queued,
            Err(e) => {
                self.reset(state)?;
                return Err(e.into());
            }
        };
        self.publish_standings(state, pending);
        self.metrics.actions_queued.fetch_add(pending.batch.flows.outbox.len() as u64, Ordering::Relaxed);
        let (mut started, mut ended) = (0, 0);
        for (m, n) in &pending.batch.flows.stats {
            let measure = m.measure.as_str();
            if m.step.is_empty() && measure == "entered" {
                started += n;
            } else if matches!(measure, "completed" | "failed") || (m.step.is_empty() && measure.starts_with("exited:"))
            {
                ended += n;
            }
        }
        self.metrics.runs_started.fetch_add(started, Ordering::Relaxed);
        self.metrics.runs_ended.fetch_add(ended, Ordering::Relaxed);
        for run in pending.batch.flows.runs.iter().filter(|r| r.state == "failed") {
            self.metrics.runs_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(run = %run.id, flow = %run.flow, profile = %run.profile, "a run failed; its reason is on the run");
        }
        let rows = std::mem::take(&mut pending.batch.flows.outbox)
            .into_iter()
            .zip(queued)
            .filter_map(|(item, seq)| {
                let mut row = OutboxRow::queued(seq?, item);
                row.partition = self.store.outbox_partition(row.profile);
                Some(row)
            })
            .collect();
        self.dispatcher.queued(rows);
        Ok(())
    }

    /// After a commit, and before its actions are handed over: publishes the standing of every profile the batch
    /// queued actions for or that has actions waiting already, and has the dispatcher look again at the
    /// waiting ones, so a complaint, an unsubscribe or an exit stops them before their next attempt.
    fn publish_standings(&self, state: &State, pending: &Pending) {
        let batch = &pending.batch.flows;
        let queued: BTreeSet<ProfileId> = batch.outbox.iter().map(|o| o.profile).collect();
        let mut ended: HashMap<ProfileId, HashMap<String, String>> = HashMap::new();
        // Runs interrupted from outside their steps, or failed: their waiting actions go no further. (A run that
        // reaches an `exit:` step ends normally; what it sent on the way stands.)
        for run in batch.runs.iter().filter(|r| r.state == "exited" || r.state == "failed") {
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&run.body) else { continue };
            if run.state == "exited" && body["interrupted"] != true {
                continue;
            }
            let reason = body["status"]["reason"].as_str().map_or_else(|| run.state.clone(), str::to_owned);
            ended.entry(run.profile).or_default().insert(run.id.clone(), reason);
        }
        let mut revisit = Vec::new();
        let touched = pending.dirty.iter().chain(&queued).chain(ended.keys()).copied().collect::<BTreeSet<_>>();
        for pid in touched {
            let held = self.policy.holds(pid);
            if !held && !queued.contains(&pid) {
                continue;
            }
            let Some(profile) = state.profiles.get(&pid) else { continue };
            let mut standing = Standing::of(profile.to_public_json(), state.flows.held_state(pid));
            standing.ended = ended.remove(&pid).unwrap_or_default();
            self.policy.publish(pid, standing);
            if held {
                revisit.push(pid);
            }
        }
        self.dispatcher.revisit(revisit);
    }

    /// Drops every cache after a failure: everything replays from the last checkpoint.
    fn reset(&self, state: &mut State) -> Result<(), ProcessorError> {
        state.owners.clear();
        state.profiles.clear();
        state.flows.forget();
        Self::forget_backfills(state);
        // Sizes recorded in the failed batch were not committed: recorded again at the next one.
        state.sizes_due = 0;
        self.reload_ids(state)
    }

    /// Runs one input through the profile's flows, if any are defined.
    fn flow_input(
        &self,
        state: &mut State,
        pending: &mut Pending,
        pid: ProfileId,
        input: tutti_flows::Input<'_>,
        id: InputId,
        now: tutti_core::Millis,
    ) -> Result<(), ProcessorError> {
        // A profile merged away or erased since its timer was set or its action queued has nothing to run.
        if !self.cache_profile(state, pid)? {
            return Ok(());
        }
        let profile = state.profiles.get_mut(&pid).expect("cached above");
        let changed =
            self.run_flows(&mut state.flows, &state.poisoned, profile, input, id, now, &mut pending.batch.flows)?;
        // Among several workers, a flow state is written only with its profile at the version it was read at:
        // another worker's change to either (an approval through its API, one person's events on two
        // partitions) then fails this commit, which is worked out again on fresh reads, instead of being
        // overwritten. The profile is read before its flow state (here and before a timer's tick), and the two
        // leave the caches together, so a flow state is never older than the version it is checked with.
        if changed || self.partitions.is_some() {
            pending.dirty.insert(pid);
        }
        Ok(())
    }

    /// Has the profile in the cache, read from the store when missing. Returns whether it exists.
    fn cache_profile(&self, state: &mut State, pid: ProfileId) -> Result<bool, ProcessorError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = state.profiles.entry(pid) {
            match self.store.profile(pid)? {
                Some(p) => {
                    slot.insert(p);
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Runs one input through a profile's flows, isolated: a panic becomes [`ProcessorError::Panicked`] naming
    /// the input, and an input that panicked before fails the profile's active runs instead of running again.
    #[allow(clippy::too_many_arguments)]
    fn run_flows(
        &self,
        flows: &mut FlowRuntime,
        poisoned: &HashMap<InputId, String>,
        profile: &mut Profile,
        input: tutti_flows::Input<'_>,
        id: InputId,
        now: tutti_core::Millis,
        batch: &mut tutti_store::FlowBatch,
    ) -> Result<bool, ProcessorError> {
        if let Some(why) = poisoned.get(&id) {
            self.metrics.inputs_failed.fetch_add(1, Ordering::Relaxed);
            let reason = format!("handling {id} failed: {why}");
            return Ok(flows.apply(
                &*self.store,
                profile,
                tutti_flows::Input::Failure { reason: &reason },
                now,
                batch,
            )?);
        }
        let pid = profile.id;
        let handle = || {
            #[cfg(feature = "fault-injection")]
            let input = crate::faults::maybe_panic(input);
            flows.apply(&*self.store, profile, input, now, batch)
        };
        match catch_unwind(AssertUnwindSafe(handle)) {
            Ok(applied) => Ok(applied?),
            Err(panic) => Err(ProcessorError::Panicked {
                input: id,
                profile: pid,
                reason: tutti_core::budget::panic_text(&*panic),
            }),
        }
    }

    /// Caches hold only committed state here, so any entry may go.
    fn evict(&self, state: &mut State) {
        if state.profiles.len() > self.settings.profile_cache {
            let keep = self.settings.profile_cache * 3 / 4;
            let excess: Vec<ProfileId> = state.profiles.keys().skip(keep).copied().collect();
            for id in excess {
                state.profiles.remove(&id);
                // Among several workers a flow state is only as fresh as its profile's version (`flow_input`).
                if self.partitions.is_some() {
                    state.flows.forget_profile(id);
                }
            }
        }
        if state.owners.len() > self.settings.identity_cache {
            let keep = self.settings.identity_cache * 3 / 4;
            let excess: Vec<Identifier> = state.owners.keys().skip(keep).cloned().collect();
            for id in excess {
                state.owners.remove(&id);
            }
        }
    }
}
