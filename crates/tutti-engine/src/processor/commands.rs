//! What the API asks of the processor between batches: an approval decision, an erasure.

use std::sync::atomic::Ordering;

use tutti_core::ProfileId;
use tutti_store::Tombstone;

use super::{Command, ErasureReport, InputId, Pending, Processor, ProcessorError, State};
use tutti_dispatch::delivery_policy::Standing;

impl Processor {
    pub(super) fn handle(&mut self, state: &mut State, command: Command) {
        match command {
            Command::Erase { profile, reply } => {
                let result = self.erase(state, profile).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, %profile, "erasure failed; it can be retried");
                }
                let _ = reply.send(result);
            }
            Command::Approve { profile, run, step, decision, reply } => {
                // Another worker's commit met (one that moved the step's count, say) left fresh reads behind:
                // the decision is worked out again on them, as a batch would be.
                let mut result = self.approve(state, profile, &run, &step, &decision);
                for _ in 0..super::MAX_QUICK_RETRIES {
                    if !matches!(result, Err(ProcessorError::Store(tutti_store::StoreError::Conflict(_)))) {
                        break;
                    }
                    result = self.approve(state, profile, &run, &step, &decision);
                }
                let result = result.map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, run, "an approval could not be recorded; it can be retried");
                }
                let _ = reply.send(result);
            }
        }
    }

    /// Runs a decision through the profile's flows and commits it on its own (the log position stays). Late
    /// decisions meet the expiry first; the machine decides.
    fn approve(
        &mut self,
        state: &mut State,
        profile: ProfileId,
        run: &str,
        step: &str,
        decision: &tutti_flows::machine::ApprovalDecision,
    ) -> Result<Option<Vec<u8>>, ProcessorError> {
        let now = self.clock.now_ms();
        if self.partitions.is_some() {
            // The profile may be another worker's (its home partition held there): what this one cached of it
            // may be behind, so the decision is worked out on fresh reads.
            state.profiles.remove(&profile);
            state.flows.forget_profile(profile);
        }
        state.flows.begin();
        let mut pending = Pending::default();
        let input = tutti_flows::Input::Approval { run, step, verdict: decision };
        if let Err(e) = self.flow_input(state, &mut pending, profile, input, InputId::Approval(run.to_owned()), now) {
            self.reset(state)?;
            return Err(e);
        }
        state.flows.finish(&mut pending.batch.flows);
        let changed = pending.batch.flows.runs.iter().rev().find(|r| r.id == run).map(|r| r.body.clone());
        let checkpoint = state.checkpoint;
        self.commit(state, &mut pending, checkpoint)?;
        Ok(changed)
    }

    fn erase(&mut self, state: &mut State, id: ProfileId) -> Result<Option<ErasureReport>, ProcessorError> {
        let Some(profile) = self.store.profile(id)? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let erase_seq = self.events.head()?;
        let tombstones: Vec<Tombstone> = profile
            .identities
            .iter()
            .map(|i| Tombstone { hash: self.tombstone_hash(i), erased_at: now, erase_seq })
            .collect();
        // The log first: if we crash after it, the profile is still there and a retried erasure finishes the job.
        let seqs = self.store.event_seqs(id)?;
        self.intake.delete_blocking(seqs.clone())?;
        // Before the profile goes: a crash between leaves the profile, and a retried erasure does this again.
        if let Some(analytics) = &self.analytics {
            let mut people = self.store.merged_into(id)?;
            people.push(id);
            analytics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .erase(&people.iter().map(|p| p.0).collect::<Vec<_>>())?;
        }
        if let Some(conversations) = &self.conversations {
            let identifiers: Vec<(String, String)> =
                profile.identities.iter().map(|i| (i.kind.as_str().to_owned(), i.value.clone())).collect();
            conversations.erase_person(&identifiers)?;
        }
        self.store.erase(id, &tombstones)?;
        self.intake.scrub_blocking()?;
        self.store.scrub()?;
        for t in &tombstones {
            state.tombstones.insert(t.hash, t.clone());
        }
        for i in &profile.identities {
            state.owners.remove(i);
        }
        state.profiles.remove(&id);
        state.flows.erase(id);
        self.policy.publish(id, Standing { erased: true, ..Standing::default() });
        self.dispatcher.erased(id);
        self.metrics.profiles.fetch_sub(1, Ordering::Relaxed);
        Ok(Some(ErasureReport { profile: id, identities: profile.identities.len(), events: seqs.len() }))
    }
}
