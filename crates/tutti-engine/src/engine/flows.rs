//! Flows as the API sees them: definitions, runs, approvals, the audit log, segments, the outbox and dead letters.

use std::sync::Arc;

use tokio::sync::oneshot;
use tutti_core::ProfileId;
use tutti_core::audit::AuditKind;
use tutti_store::{DeadLetterFilter, OutboxRow, StoredDefinition};

use crate::{DefinitionError, Engine, EngineError, connectors, definitions, dispatch, processor};

impl Engine {
    /// Stores a new version of a flow, segment or policy from its YAML, after checking it against everything
    /// else in force. `kind` and `id` are what the API path names. Returns the version. `by` is the person (or
    /// `admin token`) who saved it, for the audit log; `None` for the engine's own saves, which record
    /// themselves (a broadcast's flow) or need no record (tests). Blocking.
    pub fn put_definition(&self, kind: &str, id: &str, source: &str, by: Option<&str>) -> Result<u32, DefinitionError> {
        Ok(self.put_definitions(&[(kind, id, source)], by)?[0])
    }

    /// Stores new versions of several definitions as one change: checked together, stored in one transaction,
    /// and put in force at once, so the processor never runs with some of them (a segment whose backfill would
    /// run before the flow it triggers exists, and its first members would never enter). Returns the versions,
    /// in order. Blocking.
    pub fn put_definitions(
        &self,
        definitions: &[(&str, &str, &str)],
        by: Option<&str>,
    ) -> Result<Vec<u32>, DefinitionError> {
        let mut compiled = Vec::with_capacity(definitions.len());
        for (kind, id, source) in definitions {
            let definition = tutti_flows::compile(source, &connectors::all()).map_err(DefinitionError::Invalid)?;
            if definition.kind() != *kind {
                return Err(DefinitionError::KindMismatch {
                    expected: (*kind).into(),
                    found: definition.kind().into(),
                });
            }
            if definition.id() != *id {
                return Err(DefinitionError::IdMismatch { expected: (*id).into(), found: definition.id().into() });
            }
            compiled.push(definition);
        }
        let _guard = self.definitions_write.lock().unwrap_or_else(|e| e.into_inner());
        let mut trial = (*self.definitions.get()).clone();
        for definition in compiled {
            trial.insert(definition);
        }
        let problems: Vec<tutti_flows::Problem> = trial.check().into_iter().map(|(_, p)| p).collect();
        if !problems.is_empty() {
            return Err(DefinitionError::Invalid(problems));
        }
        let versions = self.flow_store.put_all(definitions, self.clock.now_ms()).map_err(EngineError::from)?;
        self.reload_definitions()?;
        if let Some(by) = by {
            for ((kind, id, _), version) in definitions.iter().zip(&versions) {
                let detail = serde_json::json!({"kind": kind, "id": id, "version": version, "change": "saved"});
                self.record(AuditKind::Definition, by, (*kind == "flow").then_some(*id), None, detail)?;
            }
        }
        Ok(versions)
    }

    /// Deletes a definition: a flow starts no new runs (runs going finish on their version); a segment or
    /// policy stops applying. Refused while a flow names a segment being deleted. `by` as for
    /// [`Engine::put_definition`]. Blocking.
    pub fn delete_definition(&self, kind: &str, id: &str, by: Option<&str>) -> Result<bool, DefinitionError> {
        let _guard = self.definitions_write.lock().unwrap_or_else(|e| e.into_inner());
        if kind == "segment" {
            let mut trial = (*self.definitions.get()).clone();
            trial.segments.remove(id);
            let problems: Vec<tutti_flows::Problem> = trial.check().into_iter().map(|(_, p)| p).collect();
            if !problems.is_empty() {
                return Err(DefinitionError::Invalid(problems));
            }
        }
        let existed = self.flow_store.delete(kind, id).map_err(EngineError::from)?;
        self.reload_definitions()?;
        if let (true, Some(by)) = (existed, by) {
            let detail = serde_json::json!({"kind": kind, "id": id, "change": "deleted"});
            self.record(AuditKind::Definition, by, (kind == "flow").then_some(id), None, detail)?;
        }
        Ok(existed)
    }

    pub(crate) fn reload_definitions(&self) -> Result<(), EngineError> {
        self.definitions.set(definitions::build(&self.flow_store.all()?, &self.flow_store.paused()?));
        Ok(())
    }

    /// Pauses (`true`) or resumes a flow: paused, it starts no runs; runs already going finish. On the audit log.
    /// Whether anything changed; [`DefinitionError::Engine`] for storage. Blocking.
    pub fn pause_flow(&self, id: &str, paused: bool, by: &str) -> Result<bool, EngineError> {
        let _guard = self.definitions_write.lock().unwrap_or_else(|e| e.into_inner());
        let changed = self.flow_store.set_paused(id, paused, self.clock.now_ms())?;
        if changed {
            self.reload_definitions()?;
            let change = if paused { "paused" } else { "resumed" };
            let detail = serde_json::json!({"kind": "flow", "id": id, "change": change});
            self.record(AuditKind::Definition, by, Some(id), None, detail)?;
        }
        Ok(changed)
    }

    /// Stored definitions of a kind: the latest version of each, deleted ones left out. Blocking.
    pub fn definitions(&self, kind: &str) -> Result<Vec<StoredDefinition>, EngineError> {
        let mut latest: std::collections::BTreeMap<String, StoredDefinition> = std::collections::BTreeMap::new();
        for d in self.flow_store.all()?.into_iter().filter(|d| d.kind == kind) {
            latest.insert(d.id.clone(), d);
        }
        Ok(latest.into_values().filter(|d| !d.deleted).collect())
    }

    /// Runs, newest first. Blocking.
    pub fn runs(
        &self,
        profile: Option<ProfileId>,
        flow: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        Ok(self.flow_store.runs(profile, flow, limit)?)
    }

    /// Runs waiting for a person's approval, oldest request first. Blocking.
    pub fn approvals(&self, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        Ok(self.flow_store.approvals(flow, limit)?)
    }

    /// One run (as JSON) and the profile it belongs to. Blocking.
    pub fn run(&self, id: &str) -> Result<Option<(ProfileId, Vec<u8>)>, EngineError> {
        Ok(self.flow_store.run(id)?)
    }

    /// Records a person's decision on a run waiting at the approve step `step`, and continues the run: an
    /// approved message goes out (once), a rejected one does not. Returns the run as it is after the
    /// decision, or `None` when the run did not change (it no longer waits there).
    pub async fn decide_approval(
        &self,
        profile: ProfileId,
        run: &str,
        step: &str,
        decision: tutti_flows::machine::ApprovalDecision,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let (reply, answer) = oneshot::channel();
        {
            let guard = self.processor.lock().unwrap_or_else(|e| e.into_inner());
            let tx = guard.as_ref().ok_or(EngineError::ProcessorGone)?;
            let command =
                processor::Command::Approve { profile, run: run.to_owned(), step: step.to_owned(), decision, reply };
            tx.send(command).map_err(|_| EngineError::ProcessorGone)?;
        }
        answer.await.map_err(|_| EngineError::ProcessorGone)?.map_err(EngineError::Processing)
    }

    /// Audit records after `after` that match the filter, oldest first. Blocking.
    pub fn audit(
        &self,
        filter: &tutti_core::audit::AuditFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, tutti_core::audit::AuditRecord)>, EngineError> {
        Ok(tutti_store::AuditLog::audit(&*self.flow_store, filter, after, limit)?)
    }

    /// A page of a segment's members and the total. Blocking.
    pub fn segment_members(
        &self,
        segment: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<ProfileId>, u64), EngineError> {
        Ok((self.flow_store.segment_members(segment, after, limit)?, self.flow_store.segment_count(segment)?))
    }

    /// Outbox rows in a state (`pending`, `done` or `dead`) with their last error. Blocking.
    pub fn outbox(&self, state: &str, limit: usize) -> Result<Vec<(OutboxRow, Option<String>)>, EngineError> {
        Ok(self.flow_store.outbox(state, limit)?)
    }

    /// Dead letters after `after`, oldest first, with why each was given up. Blocking.
    pub fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(OutboxRow, String)>, EngineError> {
        Ok(self.flow_store.dead_letters(filter, after, limit)?)
    }

    /// Makes dead letters pending again (attempts from zero, the same idempotency key) and hands them to the
    /// dispatcher. Returns the rows replayed. Blocking.
    pub fn replay(&self, filter: &DeadLetterFilter, limit: usize) -> Result<Vec<OutboxRow>, EngineError> {
        let rows = self.flow_store.replay(filter, self.clock.now_ms(), limit)?;
        if !rows.is_empty() {
            // If the dispatcher has stopped, the rows are pending in the table for the next start.
            let _ = self.replays.lock().expect("never poisoned").send(dispatch::Incoming::Replayed(rows.clone()));
        }
        Ok(rows)
    }

    /// Profiles waiting on a timer. Blocking.
    pub fn pending_timers(&self) -> Result<u64, EngineError> {
        Ok(self.flow_store.pending_timers()?)
    }

    /// The definitions in force.
    pub fn flow_definitions(&self) -> Arc<tutti_flows::Definitions> {
        self.definitions.get()
    }
}
