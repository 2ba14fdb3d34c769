//! Storage for Tutti: the traits the engine programs against, and the embedded SQLite backend.
//!
//! Two stores, each with one writer:
//! - the **event log**: every accepted event, append-only, in arrival order (`seq`), with `messageId`
//!   deduplication. An event is acknowledged only after [`EventLog::append`] returned, which means it is durable.
//! - the **profile store**: identities, profiles, which events belong to which profile, merges and erasure
//!   tombstones, plus the processing checkpoint, all changed in one transaction per [`ProfileBatch`].
//!
//! Readers ([`EventReader`], [`ProfileReader`]) are separate handles so the HTTP API never waits on a writer.
//! A Postgres backend is to implement the same traits, so that nothing above this crate knows which backend it
//! talks to; so far it has its migrations and the partition leases of several workers ([`postgres`]).

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use std::collections::{BTreeMap, HashMap};

use tutti_core::audit::{AuditFilter, AuditRecord};
use tutti_core::creative::{Creative, Performance, Tag, Totals};
use tutti_core::{Millis, ProfileId};
use tutti_flows::StepKey;
use tutti_profiles::{Identifier, Profile};

/// Storage failures. The message is for logs; clients see only a stable code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(::postgres::Error),
    /// The event log on NATS JetStream failed (connection, refusal or timeout); nothing was acknowledged.
    #[error("the event bus: {0}")]
    Bus(String),
    /// Another worker changed what this write was worked out from (a profile, an identifier's owner): nothing
    /// was written, and the work is done again on fresh reads.
    #[error("changed by another worker meanwhile: {0}")]
    Conflict(String),
    /// A write of a partition by a worker that no longer holds it (its lease was taken over).
    #[error("partition {partition} is held under token {current}, not {token}: this worker lost it")]
    Fenced { partition: u32, token: i64, current: i64 },
}

/// Every Postgres error passes here on its way up, so that a lost connection is noticed
/// ([`postgres::pool::Reconnecting`]).
#[cfg(feature = "postgres")]
impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        postgres::pool::noticed(&e);
        StoreError::Postgres(e)
    }
}

mod partitions;
pub use partitions::{Held, IdBlock, routing_key};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An event ready to be appended: validated, normalised and serialised by the caller.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub message_id: String,
    /// Whether the message id came from the client (and so is worth deduplicating on).
    pub client_message_id: bool,
    pub received_at: Millis,
    pub body: Vec<u8>,
    /// What places the event in a partition of a partitioned log: its `userId`, or else its `anonymousId`, so
    /// one person's events stay in order on one partition.
    pub routing_key: String,
}

impl NewEvent {
    /// An accepted event as the log stores it. `client_message_id`: its message id came from the client (and so
    /// takes part in deduplication) rather than being made up by Tutti.
    pub fn of(event: tutti_core::Event, client_message_id: bool) -> NewEvent {
        let routing_key = routing_key(event.user_id.as_deref(), event.anonymous_id.as_deref(), &event.message_id);
        NewEvent {
            message_id: event.message_id,
            client_message_id,
            received_at: event.received_at,
            body: event.body,
            routing_key,
        }
    }
}

/// What happened to one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this sequence number.
    Stored(u64),
    /// A message with the same `messageId` was stored within the retention window; nothing was written.
    Duplicate,
}

impl Appended {
    /// The sequence number, when stored.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Appended::Stored(seq) => Some(*seq),
            Appended::Duplicate => None,
        }
    }
}

/// One event read back from the log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub received_at: Millis,
    pub body: Vec<u8>,
    /// The partition the log stored it under, when the log is partitioned (JetStream: its subject's suffix).
    /// A reader of some partitions passes over the others' events by it, without parsing them.
    pub partition: Option<u32>,
}

/// The append side of the event log. One writer at a time.
pub trait EventLog: Send {
    /// Appends the events in one transaction, deduplicating on client message ids (also within the call); the
    /// outcomes are in input order. Returns once the transaction is committed and visible to readers; it is
    /// durable once a [`LogSyncer::sync`] that began after this call returned has returned too. Splitting the two
    /// lets the intake write the next group while the last one is being flushed.
    fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Appended>>;

    /// A handle, usable from another thread, that makes what was appended durable.
    fn syncer(&self) -> Result<Box<dyn LogSyncer>>;

    /// Deletes events (erasure). Missing sequence numbers are ignored. Returns how many were deleted.
    fn delete(&mut self, seqs: &[u64]) -> Result<usize>;

    /// Keeps the deduplication window bounded: examines up to `limit` remembered message ids, continuing a
    /// sweep where the last call stopped, and forgets those received before `before`. Returns (examined,
    /// forgotten); fewer than `limit` examined means the sweep is complete and the next call starts over.
    fn prune_dedup(&mut self, before: Millis, limit: usize) -> Result<(usize, usize)>;

    /// Removes every trace of deleted data from the files: overwritten free space and an emptied write-ahead log.
    fn scrub(&mut self) -> Result<()>;
}

/// Makes everything appended to an [`EventLog`] so far durable (an fsync, for a file-backed log).
pub trait LogSyncer: Send {
    fn sync(&self) -> Result<()>;
}

/// The read side of the event log.
pub trait EventReader: Send + Sync {
    /// Events with `seq > after`, ascending, at most `limit`.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>>;
    /// The events with these sequence numbers that still exist, in the order given.
    fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>>;
    /// The highest sequence number ever assigned (0 when empty).
    fn head(&self) -> Result<u64>;
}

/// A merge, as recorded for audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRecord {
    pub into: ProfileId,
    pub from: ProfileId,
    /// Server time of the event that caused it.
    pub at: Millis,
    /// The event that caused it.
    pub seq: u64,
    pub message_id: String,
}

/// An erased identifier, kept only as a keyed hash so that in-flight events cannot re-create the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub hash: [u8; 32],
    pub erased_at: Millis,
    /// The log head when the erasure happened: events up to it were already in flight.
    pub erase_seq: u64,
}

/// Everything one processing step changes, committed atomically with the new checkpoint.
///
/// Applied in this order: links, attributions, then moves in the order given (so an event attributed to a
/// profile earlier in the batch follows that profile into a later merge), then profile upserts and deletions.
#[derive(Debug, Default)]
pub struct ProfileBatch {
    /// Identifier now owned by a profile (insert or reassign).
    pub links: Vec<(Identifier, ProfileId)>,
    /// Event `seq` belongs to the profile.
    pub attributions: Vec<(ProfileId, u64)>,
    /// Merges: everything owned by `from` now belongs to `into`.
    pub moves: Vec<MergeRecord>,
    /// Profiles to write in full.
    pub profiles: Vec<Profile>,
    /// Profiles that no longer exist (merged away).
    pub deleted: Vec<ProfileId>,
    /// The highest log `seq` this batch covers.
    pub checkpoint: u64,
    /// The next unused profile id after this batch.
    pub next_profile_id: u64,
    /// What flows changed, committed with the profiles so that a replay neither repeats nor loses it.
    pub flows: FlowBatch,
}

/// Flow state changed by one processing step.
#[derive(Debug, Default)]
pub struct FlowBatch {
    /// A profile's flow state (opaque bytes), or `None` to forget it.
    pub states: Vec<(ProfileId, Option<Vec<u8>>)>,
    /// A profile's next wake-up, or `None` for none. One timer per profile.
    pub timers: Vec<(ProfileId, Option<Millis>)>,
    /// Actions to dispatch. A key already in the outbox is ignored, so an action is never queued twice.
    pub outbox: Vec<OutboxItem>,
    /// Runs to record (insert or replace by id).
    pub runs: Vec<RunRecord>,
    /// Segment membership changes: (segment, profile, member).
    pub members: Vec<(String, ProfileId, bool)>,
    /// Approval decisions for the audit trail, committed with the runs they changed.
    pub audit: Vec<AuditRecord>,
    /// Counts of runs that reached a counted step, across profiles (the new totals).
    pub counts: Vec<(StepKey, u64)>,
    /// What runs did, per flow and step, to add to the running totals (see [`FlowMeasure`]).
    pub stats: Vec<(FlowMeasure, u64)>,
    /// Segment backfills as they now stand (insert or replace by segment).
    pub backfills: Vec<Backfill>,
    /// Broadcasts' progress (by id; a cancelled broadcast stays cancelled).
    pub broadcasts: Vec<Broadcast>,
    /// Segment sizes to remember: (segment, day as YYYY-MM-DD, members), the latest of a day replacing the rest.
    pub sizes: Vec<(String, String, u64)>,
}

/// A one-off send to a segment's members: its flow (`broadcast-<id>`, started by the signal of the same name
/// for each member), when it goes, and how far it has come. Members are walked in profile id order;
/// `next_profile` is the last one signalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: String,
    pub name: String,
    pub segment: String,
    /// `scheduled`, `sending`, `sent` or `cancelled`.
    pub status: String,
    pub send_at: Millis,
    pub created_by: String,
    pub created_at: Millis,
    /// Members when sending began; `done` of them signalled so far.
    pub total: u64,
    pub done: u64,
    pub next_profile: u64,
    pub finished_at: Option<Millis>,
}

/// A segment's membership worked out over the profiles that existed before it was defined or changed: how
/// far it has come. `next_profile` is the last profile id done (profiles are walked in id order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    pub segment: String,
    /// The SHA-256 of the segment's source the backfill is for: a changed segment starts a new one.
    pub source_hash: String,
    pub next_profile: u64,
    pub done: u64,
    /// Profiles when it started; those created since are evaluated as their events arrive.
    pub total: u64,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
}

/// One running total of what a flow's runs did: `measure` at `step` (empty for the flow as a whole), such as
/// `entered`, `profiles` (entered for the first time), `reached`, `acted`, `skipped:<why>`, `arm:<arm>`,
/// `exited:<why>`, `goal`, `completed`, `failed`. Summed over the flow's versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowMeasure {
    pub flow: String,
    pub step: String,
    pub measure: String,
}

/// An action waiting to be dispatched.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// The idempotency key: `<run>:<step>:<visit>`.
    pub key: String,
    pub profile: ProfileId,
    pub connector: String,
    /// The dispatch as JSON.
    pub body: Vec<u8>,
    pub created_at: Millis,
}

/// An action read back from the outbox for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub seq: u64,
    pub key: String,
    pub profile: ProfileId,
    pub connector: String,
    pub body: Vec<u8>,
    pub created_at: Millis,
    /// When the next attempt is due (the creation time until an attempt fails).
    pub due_at: Millis,
    pub attempts: u32,
    /// The partition of the log whose worker delivers it (0 with one worker).
    pub partition: u32,
}

impl OutboxRow {
    /// The row an item becomes once queued as `seq`.
    pub fn queued(seq: u64, item: OutboxItem) -> OutboxRow {
        OutboxRow {
            seq,
            key: item.key,
            profile: item.profile,
            connector: item.connector,
            body: item.body,
            created_at: item.created_at,
            due_at: item.created_at,
            attempts: 0,
            partition: 0,
        }
    }
}

/// Which dead letters a listing or a replay means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetterFilter {
    /// These sequence numbers only (empty: any).
    pub seqs: Vec<u64>,
    pub connector: Option<String>,
    /// The flow, as the action's key does not carry it: matched on the stored action.
    pub flow: Option<String>,
}

/// Which actions a delivery query wants (every field that is set must match).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    /// `pending`, `done`, `dead` or `skipped`.
    pub state: Option<String>,
    pub profile: Option<ProfileId>,
    pub connector: Option<String>,
    /// Matched on the stored action, as the action's key does not carry it.
    pub flow: Option<String>,
    /// Queued from this time on (inclusive), and before `until`.
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

/// An action as the delivery history shows it: the row, where it stands, and the vendor's answer or why it
/// failed or was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub row: OutboxRow,
    pub state: String,
    pub result: Option<String>,
    pub error: Option<String>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered; the connector's result (JSON), and what it cost the flow when the connector has a price.
    Done { result: String, cost: Option<Cost> },
    /// Try again at `at`.
    Retry { at: Millis, error: String },
    /// Given up: a dead letter, kept for inspection and replay.
    Dead { error: String },
    /// Not attempted (the connector's circuit breaker is open, the vendor asked for a pause, or the profile's
    /// quiet hours): due again at `at`, without counting an attempt.
    Defer { at: Millis },
    /// Not attempted, and never will be: a policy stopped it right before the attempt (an unsubscribe, a
    /// suppression, a cap, an erasure, its run exited); the reason says which.
    Skipped { reason: String },
}

/// What a delivered action cost, charged to its flow's spend when the outcome is settled (once, whatever the
/// retries).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cost {
    pub flow: String,
    pub micros: i64,
    pub currency: String,
}

/// A flow's spend in one currency: what its delivered actions cost, and how many were charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub flow: String,
    pub currency: String,
    pub micros: i64,
    pub actions: u64,
}

/// A run as stored for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub profile: ProfileId,
    pub flow: String,
    pub version: u32,
    /// `waiting`, `approval` (waiting for a person), `awaiting_result`, `completed`, `exited` or `failed`.
    pub state: String,
    pub started_at: Millis,
    pub updated_at: Millis,
    /// The whole run as JSON.
    pub body: Vec<u8>,
}

/// A stored definition (flow, segment or policy) version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDefinition {
    pub kind: String,
    pub id: String,
    pub version: u32,
    pub source: String,
    pub created_at: Millis,
    /// Deleted through the API: no new runs; runs already going finish on their version.
    pub deleted: bool,
}

/// The processor's read-write view of profiles. One writer at a time.
pub trait ProfileStore: Send {
    /// The profile that owns an identifier.
    fn owner(&self, id: &Identifier) -> Result<Option<ProfileId>>;
    /// A profile's stored state.
    fn profile(&self, id: ProfileId) -> Result<Option<Profile>>;
    /// Commits a batch atomically and durably. Returns the sequence number each of `batch.flows.outbox` was
    /// queued as, in order, or `None` for an action whose key was already queued.
    fn commit(&mut self, batch: &ProfileBatch) -> Result<Vec<Option<u64>>>;
    /// The highest log `seq` already processed.
    fn checkpoint(&self) -> Result<u64>;
    /// The next unused profile id.
    fn next_profile_id(&self) -> Result<u64>;
    /// The partitions of the log this store's processor holds now, when several processors share the store:
    /// its commits are fenced by them, and its timers and checkpoints are theirs. A store with one processor
    /// has no partitions and ignores this.
    fn hold(&mut self, _held: &[Held]) {}
    /// The highest log `seq` processed in each partition held ([`ProfileStore::hold`]); partition 0 alone for a
    /// store with one processor.
    fn checkpoints(&self) -> Result<Vec<(u32, u64)>> {
        Ok(vec![(0, self.checkpoint()?)])
    }
    /// Ids for new profiles first seen in `partition`. One processor alone counts from
    /// [`ProfileStore::next_profile_id`]; see [`IdBlock`].
    fn reserve_profile_ids(&self, _partition: u32) -> Result<IdBlock> {
        Ok(IdBlock::from(self.next_profile_id()?))
    }
    /// The partition whose worker delivers an action for `profile` queued by this store's commits now (0 for a
    /// store with one processor).
    fn outbox_partition(&self, _profile: ProfileId) -> u32 {
        0
    }
    /// What changes whenever definitions are saved, deleted, paused or resumed, when several workers share the
    /// store (another worker's API may have made the change); `None` for a store with one processor.
    fn definitions_version(&self) -> Result<Option<String>> {
        Ok(None)
    }
    /// How many tombstones there are (so a processor sharing the store knows when another recorded one).
    fn tombstone_count(&self) -> Result<usize> {
        Ok(self.tombstones()?.len())
    }
    /// How many profiles exist.
    fn count_profiles(&self) -> Result<u64>;
    /// Every event sequence number attributed to the profile.
    fn event_seqs(&self, id: ProfileId) -> Result<Vec<u64>>;
    /// Erases a profile: its identities, its event attributions, its merge records, its state; records the
    /// tombstones. Returns the log sequence numbers of its events, for the caller to delete from the log.
    fn erase(&mut self, id: ProfileId, tombstones: &[Tombstone]) -> Result<Vec<u64>>;
    /// Every profile merged into this one, directly or through others (what an erasure of it also erases).
    fn merged_into(&self, id: ProfileId) -> Result<Vec<ProfileId>>;
    /// All tombstones.
    fn tombstones(&self) -> Result<Vec<Tombstone>>;
    /// As [`EventLog::scrub`].
    fn scrub(&mut self) -> Result<()>;
    /// A profile's flow state, as last committed.
    fn flow_state(&self, id: ProfileId) -> Result<Option<Vec<u8>>>;
    /// Timers due before `before`, earliest first, at most `limit`.
    fn due_timers(&self, before: Millis, limit: usize) -> Result<Vec<(Millis, ProfileId)>>;
    /// Every counted step's count, as last committed.
    fn step_counts(&self) -> Result<Vec<(StepKey, u64)>>;
    /// Broadcasts not yet sent nor cancelled.
    fn open_broadcasts(&self) -> Result<Vec<Broadcast>>;
    /// Members of a segment above `after`, in id order.
    fn members_after(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>>;
    fn member_count(&self, segment: &str) -> Result<u64>;
    /// Profile ids above `after`, ascending.
    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>>;
    /// Every segment backfill, finished or not.
    fn backfills(&self) -> Result<Vec<Backfill>>;
}

/// The outbox as the dispatcher sees it (its own connection).
pub trait Outbox: Send {
    /// Pending actions (due now or later) queued as `seq` numbers above `after`, in that order.
    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>>;
    /// Records how attempts ended, in one transaction, together with the [`OutcomeJournal`] id they come up
    /// to. Returns, for each, whether its row was still there (an erasure deletes a profile's rows).
    fn settle(&mut self, outcomes: &[(u64, Outcome)], journal: u64) -> Result<Vec<bool>>;
    /// The highest [`OutcomeJournal`] id settled so far (0 for none).
    fn journal_settled(&self) -> Result<u64>;
}

/// One outcome in the [`OutcomeJournal`]: `id` orders the journal, `seq` names the outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub id: u64,
    pub seq: u64,
    pub outcome: Outcome,
}

/// Where the dispatcher writes how each attempt ended the moment the vendor answers: a store of its own, so the
/// write never waits for the processor's transaction on the outbox. Entries are settled into the outbox soon
/// after, in batches ([`Outbox::settle`], which remembers the id it came up to), and forgotten once settled; at
/// start, whatever was journalled and not settled is settled first.
pub trait OutcomeJournal: Send {
    /// Appends outcomes (outbox `seq`, how it ended) in one transaction, forgetting entries up to `forget` in the
    /// same one. Returns the id of the last one appended.
    fn append(&mut self, outcomes: &[(u64, Outcome)], forget: u64) -> Result<u64>;
    /// Entries after `after`, oldest first.
    fn after(&self, after: u64) -> Result<Vec<JournalEntry>>;
    /// Forgets entries up to `id` and hands out only ids above it from now on, even if the journal's file was
    /// lost, so nothing new is mistaken for what the outbox settled already.
    fn continue_after(&mut self, id: u64) -> Result<()>;
    /// Empties the write-ahead log into the file, whose freed space is zeroed, so forgotten entries (which may
    /// hold a vendor's answer about an erased person) are gone from disk.
    fn scrub(&mut self) -> Result<()>;
}

/// Flow queries for the API, and the definitions managed through it.
pub trait FlowReader: Send + Sync {
    /// Runs, newest first, filtered by profile and flow.
    fn runs(&self, profile: Option<ProfileId>, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>>;
    /// Members of a segment after a profile id, in id order.
    fn segment_members(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>>;
    fn segment_count(&self, segment: &str) -> Result<u64>;
    /// Outbox rows in a state (`pending`, `done`, `dead`), oldest first.
    fn outbox(&self, state: &str, limit: usize) -> Result<Vec<(OutboxRow, Option<String>)>>;
    /// Dead letters after `after` (a sequence number), oldest first, optionally of one connector or flow, with
    /// why each was given up.
    fn dead_letters(&self, filter: &DeadLetterFilter, after: u64, limit: usize) -> Result<Vec<(OutboxRow, String)>>;
    /// Makes dead letters pending again (attempts back to zero, due at `now`), the chosen ones or all that match
    /// the filter, at most `limit`. Returns the rows as they now are, for the dispatcher.
    fn replay(&self, filter: &DeadLetterFilter, now: Millis, limit: usize) -> Result<Vec<OutboxRow>>;
    /// Actions queued before `before` (a sequence number; 0 for the newest), newest first, that match.
    fn deliveries(&self, filter: &DeliveryFilter, before: u64, limit: usize) -> Result<Vec<Delivery>>;
    /// Every segment backfill, finished or not.
    fn backfills(&self) -> Result<Vec<Backfill>>;
    /// Every broadcast, newest first.
    fn broadcasts(&self) -> Result<Vec<Broadcast>>;
    /// A segment's members day by day, the last `days` days recorded, oldest first.
    fn segment_history(&self, segment: &str, days: usize) -> Result<Vec<(String, u64)>>;
    /// Adds a broadcast; `false` when its id is taken.
    fn add_broadcast(&self, broadcast: &Broadcast) -> Result<bool>;
    /// Cancels a broadcast not yet sent; `false` when there is none such.
    fn cancel_broadcast(&self, id: &str) -> Result<bool>;
    /// A flow's running totals: (step, measure, count), by step and measure.
    fn flow_stats(&self, flow: &str) -> Result<Vec<(String, String, u64)>>;
    /// Which of `segments` the profile is a member of.
    fn segments_of(&self, profile: ProfileId, segments: &[&str]) -> Result<Vec<String>>;
    fn pending_timers(&self) -> Result<u64>;
    /// Runs waiting for a person's approval, oldest request first, optionally of one flow.
    fn approvals(&self, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>>;
    /// One run and the profile it belongs to now.
    fn run(&self, id: &str) -> Result<Option<(ProfileId, Vec<u8>)>>;
    /// A profile's committed flow state (its machine state as JSON), as the processor last wrote it.
    fn flow_state(&self, id: ProfileId) -> Result<Option<Vec<u8>>>;
    /// What flows have spent, per currency (one flow's, or every flow's), as settled.
    fn spend(&self, flow: Option<&str>) -> Result<Vec<Spend>>;
}

/// The append-only audit trail: model calls, approvals, and what people did (see `tutti_core::audit`).
pub trait AuditLog: Send + Sync {
    /// Appends records in one transaction.
    fn append(&self, records: &[AuditRecord]) -> Result<()>;
    /// Records after `after` (a sequence number) that match, oldest first.
    fn audit(&self, filter: &AuditFilter, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>>;
    /// Records before `before` (0: the newest) that match, newest first.
    fn audit_newest(&self, filter: &AuditFilter, before: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>>;
}

/// Definitions written through the admin API, kept with every version runs may still use.
pub trait DefinitionStore: Send + Sync {
    /// Every stored version of every definition.
    fn all(&self) -> Result<Vec<StoredDefinition>>;
    /// Stores a new version and returns its number (one above the highest).
    fn put(&self, kind: &str, id: &str, source: &str, at: Millis) -> Result<u32> {
        Ok(self.put_all(&[(kind, id, source)], at)?[0])
    }
    /// Stores a new version of each `(kind, id, source)` in one transaction: all or none. Returns their numbers,
    /// in order.
    fn put_all(&self, definitions: &[(&str, &str, &str)], at: Millis) -> Result<Vec<u32>>;
    /// Marks a definition deleted (its versions stay for the runs that use them). Returns whether it existed.
    fn delete(&self, kind: &str, id: &str) -> Result<bool>;
    /// Flows paused: they start no runs until resumed.
    fn paused(&self) -> Result<Vec<String>>;
    /// Pauses or resumes a flow; whether that changed anything.
    fn set_paused(&self, flow: &str, paused: bool, at: Millis) -> Result<bool>;
}

/// Everything flows keep that the API and the engine read and change outside the processor's batches: flow
/// queries, the definitions, the audit log. One handle, on SQLite or Postgres.
pub trait FlowStore: FlowReader + DefinitionStore + AuditLog {}

impl<T: FlowReader + DefinitionStore + AuditLog> FlowStore for T {}

/// Read-only profile queries for the API.
pub trait ProfileReader: Send + Sync {
    fn owner(&self, id: &Identifier) -> Result<Option<ProfileId>>;
    fn profile(&self, id: ProfileId) -> Result<Option<Profile>>;
    /// Sequence numbers of the profile's events, newest first, below `before` when given.
    fn event_seqs(&self, id: ProfileId, before: Option<u64>, limit: usize) -> Result<Vec<u64>>;
    /// Merges into this profile, oldest first.
    fn merges(&self, id: ProfileId) -> Result<Vec<MergeRecord>>;
    /// Merges recorded after the one numbered `after`, in order: (number, into, from).
    fn merges_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, ProfileId, ProfileId)>>;
    fn count_profiles(&self) -> Result<u64>;
    /// Profiles above id `after` and up to `upto` whose trait `name` reads `value` (as text: `5000`, `pro`,
    /// `1` for true), at most `limit`, in id order. Traits are not indexed: callers scan in ranges.
    fn with_trait(&self, name: &str, value: &str, after: u64, upto: u64, limit: usize) -> Result<Vec<ProfileId>>;
    /// The highest profile id there is (0 for none).
    fn last_profile_id(&self) -> Result<u64>;
    /// Ids of profiles above `after`, lowest first, at most `limit`. Ids are sparse when several workers share
    /// the store (each partition has its own blocks), so a scan of every profile pages through these rather
    /// than counting up to [`ProfileReader::last_profile_id`].
    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>>;
    /// Ids of the newest profiles (the highest ids), highest first, at most `limit`.
    fn newest_profile_ids(&self, limit: usize) -> Result<Vec<ProfileId>>;
}

/// What a write of creatives, performance rows or conversations did, row by row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub inserted: u64,
    pub updated: u64,
    /// Already stored exactly so: re-importing a file lands here.
    pub unchanged: u64,
}

impl Changes {
    pub fn add(&mut self, other: Changes) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// Creatives, their tags and their daily performance (creative intelligence). Safe to share between threads.
pub trait CreativeStore: Send + Sync {
    /// Inserts or updates creatives by id. Tags carried by a creative are written like [`CreativeStore::put_tags`].
    fn put_creatives(&self, creatives: &[Creative]) -> Result<Changes>;
    /// Inserts or replaces rows by (creative, day): a day's numbers are whatever the latest export said.
    fn put_performance(&self, rows: &[Performance]) -> Result<Changes>;
    /// Sets tags of one creative. A manual tag is never replaced by one that is not manual; a manual tag
    /// replaces anything.
    fn put_tags(&self, creative: &str, tags: &BTreeMap<String, Tag>) -> Result<()>;
    /// Removes a manual tag, so the next tagging decides that trait again. Returns whether there was one.
    fn clear_manual_tag(&self, creative: &str, name: &str) -> Result<bool>;
    /// Every creative with its tags, by id.
    fn creatives(&self) -> Result<Vec<Creative>>;
    fn creative(&self, id: &str) -> Result<Option<Creative>>;
    /// Each creative's sums over the days in `[from, to]` (all days when `None`), by creative id.
    fn totals(
        &self,
        from: Option<tutti_core::creative::Date>,
        to: Option<tutti_core::creative::Date>,
    ) -> Result<HashMap<String, Totals>>;
    /// Rows of performance stored.
    fn count_performance(&self) -> Result<u64>;
    /// A saved report (JSON), such as the last one alerts were computed from.
    fn snapshot(&self, name: &str) -> Result<Option<String>>;
    fn put_snapshot(&self, name: &str, body: &str) -> Result<()>;
}

/// What connectors remember between actions, per connector, by key (`sqlite/connectors.rs`,
/// `postgres/connectors.rs`): the task a topic already has, what a website slot shows a profile, the audience
/// members waiting for the next batch. Keys compare byte by byte in every backend. Safe to share between threads.
pub trait ConnectorMemory: Send + Sync {
    fn get(&self, connector: &str, key: &str) -> Result<Option<String>>;
    /// Sets `key` to `value`, replacing what it was; `at` is when, in milliseconds.
    fn put(&self, connector: &str, key: &str, value: &str, at: tutti_core::Millis) -> Result<()>;
    /// Forgets the keys, all or none.
    fn remove(&self, connector: &str, keys: &[String]) -> Result<()>;
    /// Entries whose key starts with `prefix` and sorts after `after`, in key order, at most `limit`.
    fn scan(&self, connector: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<(String, String)>>;
    /// Holds `key` for this process alone among all that share the memory, until the answer is dropped; `None`
    /// when another process holds it now. A memory only one process opens holds nothing: the connector's own
    /// lock in the process is enough.
    fn try_hold(&self, _connector: &str, _key: &str) -> Result<Option<Box<dyn Send>>> {
        Ok(Some(Box::new(())))
    }
}
