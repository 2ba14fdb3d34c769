//! What happened, as people look it up: the delivery history of actions, and the audit log's records of what
//! people did (sign-ins, changes to people and definitions, replays, erasures).

use serde_json::Value;
use tutti_core::ProfileId;
use tutti_core::audit::{AuditKind, AuditRecord};
use tutti_store::{Delivery, DeliveryFilter};

use crate::{Engine, EngineError};

impl Engine {
    /// Actions queued before `before` (0: the newest), newest first, that match the filter, with where each
    /// stands and the vendor's answer or why it failed or was skipped. Blocking.
    pub fn deliveries(&self, filter: &DeliveryFilter, before: u64, limit: usize) -> Result<Vec<Delivery>, EngineError> {
        Ok(self.flow_store.deliveries(filter, before, limit)?)
    }

    /// A flow's running totals, summed over its versions: (step, measure, count); the step is empty for the
    /// flow as a whole (see `tutti_store::FlowMeasure`). Blocking.
    pub fn flow_stats(&self, flow: &str) -> Result<Vec<(String, String, u64)>, EngineError> {
        Ok(self.flow_store.flow_stats(flow)?)
    }

    /// Every segment backfill (a segment worked out over the profiles that existed before it), finished or not.
    /// Blocking.
    pub fn segment_backfills(&self) -> Result<Vec<tutti_store::Backfill>, EngineError> {
        Ok(self.flow_store.backfills()?)
    }

    /// A segment's members day by day (as recorded hourly), the last `days` days, oldest first. Blocking.
    pub fn segment_history(&self, segment: &str, days: usize) -> Result<Vec<(String, u64)>, EngineError> {
        Ok(self.flow_store.segment_history(segment, days)?)
    }

    /// The segments in force that the profile is a member of. Blocking.
    pub fn segments_of(&self, profile: ProfileId) -> Result<Vec<String>, EngineError> {
        let definitions = self.flow_definitions();
        let ids: Vec<&str> = definitions.segments.keys().map(String::as_str).collect();
        Ok(self.flow_store.segments_of(profile, &ids)?)
    }

    /// Audit records before `before` (0: the newest) that match, newest first. Blocking.
    pub fn audit_newest(
        &self,
        filter: &tutti_core::audit::AuditFilter,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, EngineError> {
        Ok(self.flow_store.audit_newest(filter, before, limit)?)
    }

    /// When a four-eyes policy is in force (`approvals: { authors_may_approve: false }`), the policy's id and
    /// the person who saved version `version` of `flow` through the API or the console (from the audit log);
    /// `None` when no such policy applies or nobody saved it (a flow loaded from files has no author). Blocking.
    pub fn four_eyes(&self, flow: &str, version: u64) -> Result<Option<(String, String)>, EngineError> {
        let defs = self.flow_definitions();
        let Some(policy) = defs
            .policies
            .values()
            .find(|p| matches!(p.rule, tutti_flows::policy::Rule::Approvals { authors_may_approve: false }))
        else {
            return Ok(None);
        };
        let filter = tutti_core::audit::AuditFilter {
            kind: Some(AuditKind::Definition),
            flow: Some(flow.to_owned()),
            ..Default::default()
        };
        let saved = self.audit_newest(&filter, 0, 1000)?.into_iter().find(|(_, r)| {
            r.detail["kind"] == "flow" && r.detail["change"] == "saved" && r.detail["version"].as_u64() == Some(version)
        });
        Ok(saved.and_then(|(_, r)| r.detail["by"].as_str().map(|by| (policy.id.clone(), by.to_owned()))))
    }

    /// Appends what a person (`by`: their email, or `admin token`) did to the audit log, stamped now. `detail`
    /// says what; `by` is added to it. Blocking.
    pub fn record(
        &self,
        kind: AuditKind,
        by: &str,
        flow: Option<&str>,
        profile: Option<ProfileId>,
        detail: Value,
    ) -> Result<(), EngineError> {
        let mut detail = match detail {
            Value::Object(map) => map,
            other => [("what".to_owned(), other)].into_iter().collect(),
        };
        detail.insert("by".into(), Value::String(by.to_owned()));
        let record = AuditRecord {
            at: self.clock.now_ms(),
            kind,
            flow: flow.map(str::to_owned),
            run: None,
            profile,
            detail: Value::Object(detail),
        };
        Ok(self.flow_store.append(&[record])?)
    }
}
