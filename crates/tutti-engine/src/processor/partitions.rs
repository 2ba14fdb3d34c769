//! The processor as one of several workers: it follows the partitions its worker holds ([`Partitions`]), folds
//! only their events, gives new profiles ids of their blocks, and does the work of the whole cluster (segment
//! backfills and sizes, broadcasts) only while it holds partition 0.
//!
//! Each partition has its own checkpoint. The processor reads the log from the lowest of those it holds and
//! takes an event only when its partition is held and the event lies past that partition's checkpoint, so a
//! partition taken over from a worker that was further along is not folded twice. A commit moves every held
//! partition's checkpoint to the batch's end (never back), fenced by their leases.

use std::collections::BTreeMap;
use std::sync::Arc;

use tutti_core::{Event, ProfileId};
use tutti_log::{HashPartitioner, Partitioner};
use tutti_store::postgres::leases::Ownership;

use tutti_store::StoreError;

use super::{Processor, ProcessorError, State};

/// The partitions a worker holds, and how events map to them.
pub(crate) struct Partitions {
    pub ownership: Arc<Ownership>,
    pub partitioner: HashPartitioner,
    /// Builds the definitions again from the database (another worker's API changed them).
    pub reload_definitions: crate::cluster::Reload,
}

/// The processor's view of what it holds.
#[derive(Default)]
pub(super) struct HeldState {
    /// The [`Ownership`] generation this view follows.
    generation: u64,
    /// Each held partition's checkpoint.
    pub checkpoints: BTreeMap<u32, u64>,
    /// The partition of the event being folded (0 when the log has one).
    pub current: u32,
    /// The definitions' version last built (`None` until the first batch).
    pub definitions: Option<String>,
}

impl Processor {
    /// Follows a change of what the worker holds: the store is told, the caches go, and reading starts again
    /// from the lowest held checkpoint. Returns whether the processor holds anything to work on.
    pub(super) fn follow_ownership(&mut self, state: &mut State) -> Result<bool, ProcessorError> {
        let Some(partitions) = &self.partitions else { return Ok(true) };
        let (generation, held) = partitions.ownership.held();
        if generation != state.held.generation {
            self.store.hold(&held);
            self.reset(state)?;
            state.held.checkpoints = self.store.checkpoints()?.into_iter().collect();
            state.tombstones = self.store.tombstones()?.into_iter().map(|t| (t.hash, t)).collect();
            state.held.generation = generation;
            state.checkpoint = state.held.checkpoints.values().min().copied().unwrap_or(0);
            let partitions: Vec<u32> = held.iter().map(|h| h.partition).collect();
            tracing::debug!(?partitions, from = state.checkpoint, "the processor follows its partitions");
        }
        if held.is_empty() {
            // Nothing to read: wait for the next change of the head, or of what is held.
            state.checkpoint = self.feed.head();
        }
        Ok(!held.is_empty())
    }

    /// Whether the event at `seq`, stored under `partition`, is one this processor does not fold now, known
    /// before it is parsed: when the log says its partition, and that partition is not held or is past it.
    /// (Every worker reads the whole log; most of it is others', and parsing it was most of the cost.)
    pub(super) fn passes_over(&self, state: &State, seq: u64, partition: Option<u32>) -> bool {
        match (&self.partitions, partition) {
            (Some(_), Some(partition)) => state.held.checkpoints.get(&partition).is_none_or(|&at| seq <= at),
            _ => false,
        }
    }

    /// Whether this processor folds the event at `seq` now: always when the log has one partition; otherwise
    /// when its partition (as the log stored it, else worked out from the event as the appender did) is held
    /// and the event lies past that partition's checkpoint.
    pub(super) fn takes(&self, state: &mut State, seq: u64, stored_in: Option<u32>, event: &Event) -> bool {
        let Some(partitions) = &self.partitions else { return true };
        let partition = stored_in.unwrap_or_else(|| {
            let key =
                tutti_store::routing_key(event.user_id.as_deref(), event.anonymous_id.as_deref(), &event.message_id);
            partitions.partitioner.partition_of(key.as_bytes())
        });
        match state.held.checkpoints.get(&partition) {
            Some(&checkpoint) if seq > checkpoint => {
                state.held.current = partition;
                true
            }
            _ => false,
        }
    }

    /// Whether this processor does the cluster's own work (backfills, segment sizes, broadcasts).
    pub(super) fn does_cluster_work(&self, state: &State) -> bool {
        self.partitions.is_none() || state.held.checkpoints.contains_key(&0)
    }

    /// After a commit at `checkpoint`: every held partition is processed up to it.
    pub(super) fn advance_partitions(&self, state: &mut State, checkpoint: u64) {
        for seq in state.held.checkpoints.values_mut() {
            *seq = (*seq).max(checkpoint);
        }
    }

    /// An id for a new profile first seen in the partition being folded.
    pub(super) fn new_profile_id(&self, state: &mut State) -> Result<ProfileId, ProcessorError> {
        let partition = state.held.current;
        loop {
            if let Some(block) = state.ids.get_mut(&partition)
                && let Some(id) = block.take()
            {
                return Ok(ProfileId(id));
            }
            state.ids.insert(partition, self.store.reserve_profile_ids(partition)?);
        }
    }

    /// Forgets the ids in hand (after a failed commit): a processor alone counts on from the store's next id;
    /// one of several reserves new blocks as it needs them.
    pub(super) fn reload_ids(&self, state: &mut State) -> Result<(), ProcessorError> {
        state.ids.clear();
        if self.partitions.is_none() {
            state.ids.insert(0, self.store.reserve_profile_ids(0)?);
        }
        Ok(())
    }

    /// Builds the definitions again when another worker's API changed them. Called after the batch's head is
    /// read, so an event appended after a change was saved runs on the change.
    pub(super) fn follow_definitions(&self, state: &mut State) -> Result<(), ProcessorError> {
        let Some(partitions) = &self.partitions else { return Ok(()) };
        // The first look builds them too: a change may have landed between the start's build and this batch.
        let version = self.store.definitions_version()?;
        if version != state.held.definitions {
            (partitions.reload_definitions)().map_err(|e| StoreError::Corrupt(format!("definitions: {e}")))?;
            state.held.definitions = version;
        }
        Ok(())
    }

    /// Reads the tombstones again when another worker has recorded one.
    pub(super) fn refresh_tombstones(&self, state: &mut State) -> Result<(), ProcessorError> {
        if self.partitions.is_some() && self.store.tombstone_count()? != state.tombstones.len() {
            state.tombstones = self.store.tombstones()?.into_iter().map(|t| (t.hash, t)).collect();
        }
        Ok(())
    }
}
