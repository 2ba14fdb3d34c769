//! Folding one event into the profile it belongs to: tombstones, identity resolution and merges, then the
//! profile's flows.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tutti_core::{Event, ProfileId};
use tutti_profiles::identity::resolve;
use tutti_profiles::{IdKind, Identifier, Profile, ResolveInput};
use tutti_store::MergeRecord;

use super::{InputId, Pending, Processor, ProcessorError, State};

impl Processor {
    pub(super) fn tombstone_hash(&self, id: &Identifier) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.erasure_key).expect("HMAC takes keys of any length");
        mac.update(id.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub(super) fn owner(&self, state: &mut State, id: &Identifier) -> Result<Option<ProfileId>, ProcessorError> {
        if let Some(p) = state.owners.get(id) {
            return Ok(Some(*p));
        }
        let found = self.store.owner(id)?;
        if let Some(p) = found {
            state.owners.insert(id.clone(), p);
        }
        Ok(found)
    }

    pub(super) fn load_profile<'s>(
        &self,
        state: &'s mut State,
        id: ProfileId,
    ) -> Result<&'s mut Profile, ProcessorError> {
        match state.profiles.entry(id) {
            std::collections::hash_map::Entry::Occupied(slot) => Ok(slot.into_mut()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                Ok(slot.insert(self.store.profile(id)?.unwrap_or_else(|| Profile::new(id))))
            }
        }
    }

    pub(super) fn fold(
        &self,
        state: &mut State,
        pending: &mut Pending,
        seq: u64,
        event: &Event,
        now: tutti_core::Millis,
    ) -> Result<(), ProcessorError> {
        let previous_is_user = match (&event.kind, &event.previous_id) {
            (tutti_core::EventType::Alias, Some(prev)) => {
                self.owner(state, &Identifier::new(IdKind::UserId, prev.trim()))?.is_some()
            }
            _ => false,
        };
        let ids = self.identity.identifiers(event, previous_is_user);
        if !state.tombstones.is_empty() {
            for id in &ids {
                if let Some(t) = state.tombstones.get(&self.tombstone_hash(id)) {
                    // Sent before the erasure (in flight, or a client retry of an old event): it must not bring
                    // the person back. Events that happen after the erasure are a new beginning.
                    if seq <= t.erase_seq || event.timestamp <= t.erased_at {
                        pending.dropped.push(seq);
                        return Ok(());
                    }
                }
            }
        }
        // Tutti's own events (a delivery's outcome) name their profile by id; they add no identifier.
        if let Some(pid) = event.internal_profile() {
            let exists = state.profiles.contains_key(&pid) || self.store.profile(pid)?.is_some();
            if !exists {
                // Merged away or erased since the action was queued.
                self.metrics.events_unattributed.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            if event.name.as_deref() == Some(tutti_core::event::ACTION_RESULT_EVENT) {
                return self.action_result(state, pending, seq, event, pid, now);
            }
            return self.attribute(state, pending, seq, event, pid, now);
        }
        if ids.is_empty() {
            self.metrics.events_unattributed.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut input = ResolveInput { identifiers: Vec::with_capacity(ids.len()), user_ids: BTreeMap::new() };
        for id in ids {
            let owner = self.owner(state, &id)?;
            if let Some(p) = owner
                && let std::collections::btree_map::Entry::Vacant(slot) = input.user_ids.entry(p)
            {
                slot.insert(self.load_profile(state, p)?.user_ids());
            }
            input.identifiers.push((id, owner));
        }
        let decision = resolve(&input, self.identity.max_user_ids);
        let target = match decision.target {
            Some(t) => t,
            None => {
                let id = self.new_profile_id(state)?;
                state.profiles.insert(id, Profile::new(id));
                pending.created += 1;
                id
            }
        };
        for from in decision.merge {
            self.load_profile(state, from)?;
            let absorbed = state.profiles.remove(&from).expect("loaded above");
            for id in &absorbed.identities {
                state.owners.insert(id.clone(), target);
            }
            self.load_profile(state, target)?.absorb(absorbed);
            state.flows.merge(&*self.store, target, from)?;
            pending.dirty.remove(&from);
            pending.batch.deleted.push(from);
            pending.batch.moves.push(MergeRecord {
                into: target,
                from,
                at: event.received_at,
                seq,
                message_id: event.message_id.clone(),
            });
        }
        for id in &decision.link {
            pending.batch.links.push((id.clone(), target));
            state.owners.insert(id.clone(), target);
        }
        self.load_profile(state, target)?.identities.extend(decision.link);
        self.attribute(state, pending, seq, event, target, now)
    }

    /// A connector's answer to an awaited action, from the log: to the run waiting for it, as an input of the
    /// machine. It is not the person's behaviour, so the profile does not fold it, but it is attributed to
    /// them, so an erasure removes it with the rest.
    pub(super) fn action_result(
        &self,
        state: &mut State,
        pending: &mut Pending,
        seq: u64,
        event: &Event,
        pid: ProfileId,
        now: tutti_core::Millis,
    ) -> Result<(), ProcessorError> {
        pending.batch.attributions.push((pid, seq));
        let body = event.body_value();
        let properties = &body["properties"];
        let Some(key) = properties["action_key"].as_str() else {
            tracing::error!(seq, "an action result without its key; skipped");
            return Ok(());
        };
        let input = tutti_flows::Input::ActionResult { key, result: &properties["result"] };
        self.flow_input(state, pending, pid, input, InputId::Result(key.to_owned()), now)
    }

    /// Folds an event into the profile it was attributed to and runs the profile's flows on it.
    pub(super) fn attribute(
        &self,
        state: &mut State,
        pending: &mut Pending,
        seq: u64,
        event: &Event,
        target: ProfileId,
        now: tutti_core::Millis,
    ) -> Result<(), ProcessorError> {
        let profile = self.load_profile(state, target)?;
        profile.apply(event);
        pending.batch.attributions.push((target, seq));
        pending.dirty.insert(target);
        if state.flows.active() {
            let profile = state.profiles.get_mut(&target).expect("loaded above");
            let input = tutti_flows::Input::Event(event);
            self.run_flows(
                &mut state.flows,
                &state.poisoned,
                profile,
                input,
                InputId::Event(seq),
                now,
                &mut pending.batch.flows,
            )?;
        }
        Ok(())
    }
}
