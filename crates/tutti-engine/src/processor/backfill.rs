//! Segment backfills: a segment defined or changed after people's events arrived is worked out over every
//! profile that existed then, so that its members, its counts and the flows it triggers are right at once
//! instead of each person's next event.
//!
//! Whenever the definitions in force change (and at start), each segment's source is hashed and compared with
//! its backfill's: a new or changed segment starts a backfill over the profiles in id order. Between batches
//! of events, and only when the batch did not fill up (events come first), the processor takes the next
//! [`CHUNK`] profiles of the oldest unfinished backfill through the machine (`Input::Reevaluate`, with each
//! profile's recent events for segments that count behaviour). The backfill's cursor is committed in the same
//! transaction as the memberships it changed, so after a crash it resumes where it stood, and a profile is
//! never evaluated twice to different effect.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::Digest;
use tutti_core::Millis;
use tutti_core::event::Event;
use tutti_flows::Definitions;
use tutti_store::Backfill;

use super::{InputId, Pending, Processor, ProcessorError, State};

/// Profiles re-evaluated per batch: small enough that a batch of events waiting behind it is not held long.
pub(super) const CHUNK: usize = 500;
/// The most recent events of a profile read for a segment with behaviour clauses: windows count events within
/// days or weeks, and a profile's older events cannot change them.
const HISTORY: usize = 1_000;
/// How often segments' sizes are recorded.
const SIZES_EVERY: Millis = 3_600_000;

/// The backfills the processor knows, and the definitions it last compared them with.
#[derive(Default)]
pub(super) struct Backfills {
    by_segment: BTreeMap<String, Backfill>,
    loaded: bool,
    compared: Option<Arc<Definitions>>,
}

impl Backfills {
    /// Whether a backfill is known to be unfinished (before they are loaded: not known).
    pub(super) fn unfinished(&self) -> bool {
        self.by_segment.values().any(|b| b.finished_at.is_none())
    }
}

pub(super) fn source_hash(source: &str) -> String {
    sha2::Sha256::digest(source.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Processor {
    /// Starts a backfill for each segment in force that is new or changed since its last one.
    pub(super) fn compare_backfills(
        &self,
        state: &mut State,
        pending: &mut Pending,
        now: Millis,
    ) -> Result<(), ProcessorError> {
        let defs = state.flows.defs().clone();
        if state.backfills.compared.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &defs)) {
            return Ok(());
        }
        if !state.backfills.loaded {
            state.backfills.by_segment = self.store.backfills()?.into_iter().map(|b| (b.segment.clone(), b)).collect();
            state.backfills.loaded = true;
        }
        for (id, segment) in &defs.segments {
            let hash = source_hash(&segment.source);
            if state.backfills.by_segment.get(id).is_some_and(|b| b.source_hash == hash) {
                continue;
            }
            let total = self.store.count_profiles()?;
            let backfill = Backfill {
                segment: id.clone(),
                source_hash: hash,
                next_profile: 0,
                done: 0,
                total,
                started_at: now,
                finished_at: (total == 0).then_some(now),
            };
            tracing::info!(segment = %id, profiles = total, "segment backfill started");
            pending.batch.flows.backfills.push(backfill.clone());
            state.backfills.by_segment.insert(id.clone(), backfill);
        }
        state.backfills.compared = Some(defs);
        Ok(())
    }

    /// Takes the next chunk of the oldest unfinished backfill through the machine. Returns whether any
    /// backfill has more to do.
    pub(super) fn backfill_chunk(
        &self,
        state: &mut State,
        pending: &mut Pending,
        now: Millis,
    ) -> Result<bool, ProcessorError> {
        let defs = state.flows.defs().clone();
        let Some(mut backfill) = state
            .backfills
            .by_segment
            .values()
            .filter(|b| b.finished_at.is_none() && defs.segments.contains_key(&b.segment))
            .min_by_key(|b| b.started_at)
            .cloned()
        else {
            return Ok(false);
        };
        let segment = defs.segments[&backfill.segment].clone();
        let segments = [backfill.segment.clone()];
        let ids = self.store.profile_ids_after(backfill.next_profile, CHUNK)?;
        for pid in &ids {
            let history = if segment.has_behaviour() { self.history(*pid)? } else { Vec::new() };
            let input = tutti_flows::Input::Reevaluate { segments: &segments, history: &history };
            self.flow_input(state, pending, *pid, input, InputId::Reevaluate(*pid), now)?;
            backfill.next_profile = pid.0;
            backfill.done += 1;
        }
        if ids.len() < CHUNK {
            backfill.finished_at = Some(now);
            // The segment's size, once this last chunk is committed.
            state.sizes_due = 0;
            tracing::info!(segment = %backfill.segment, profiles = backfill.done, "segment backfill finished");
        }
        let more = backfill.finished_at.is_none()
            || state.backfills.by_segment.values().any(|b| b.finished_at.is_none() && b.segment != backfill.segment);
        pending.batch.flows.backfills.push(backfill.clone());
        state.backfills.by_segment.insert(backfill.segment.clone(), backfill);
        Ok(more)
    }

    /// Remembers each segment's members for today (the processor's clock's day, UTC), as committed so far.
    pub(super) fn record_sizes(
        &self,
        state: &mut State,
        pending: &mut Pending,
        now: Millis,
    ) -> Result<(), ProcessorError> {
        let day = tutti_core::time::format_timestamp(now).chars().take(10).collect::<String>();
        for segment in state.flows.defs().segments.keys() {
            let count = self.store.member_count(segment)?;
            pending.batch.flows.sizes.push((segment.clone(), day.clone(), count));
        }
        state.sizes_due = now + SIZES_EVERY;
        Ok(())
    }

    /// A profile's most recent events, oldest first.
    fn history(&self, pid: tutti_core::ProfileId) -> Result<Vec<Event>, ProcessorError> {
        let seqs = self.store.event_seqs(pid)?;
        let recent = &seqs[seqs.len().saturating_sub(HISTORY)..];
        let stored = self.events.read_seqs(recent)?;
        Ok(stored.into_iter().filter_map(|e| Event::from_stored(e.body).ok()).collect())
    }

    /// After a failed commit: what is cached may be ahead of the store.
    pub(super) fn forget_backfills(state: &mut State) {
        state.backfills = Backfills::default();
    }
}
