//! Budget proposals kept for a person to decide: a split of a channel's budget across creatives (computed by
//! `tutti_insights`), stored as proposed, then approved or rejected once, by a person, on the audit log.
//! Approving records the decision; applying the split to an ad platform is the next step's (none is wired).
//! They are kept as one snapshot in `creatives.db`, written under one lock.

use std::sync::Mutex;

use serde_json::{Value, json};
use tutti_core::audit::AuditKind;

use crate::EngineError;
use crate::engine::InsightsHandle;

const SNAPSHOT: &str = "budget-proposals";
/// The most proposals kept; the oldest decided ones go first.
const KEEP: usize = 200;

/// One writer at a time: a read-modify-write of the snapshot.
static WRITE: Mutex<()> = Mutex::new(());

/// Why a decision on a proposal was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("no budget proposal `{0}`")]
    Unknown(String),
    #[error("budget proposal `{0}` was {1} already")]
    Closed(String, String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl InsightsHandle<'_> {
    fn read(&self) -> Result<Vec<Value>, EngineError> {
        let text = self.creatives().snapshot(SNAPSHOT)?;
        Ok(text.and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok()).unwrap_or_default())
    }

    fn write(&self, all: &[Value]) -> Result<(), EngineError> {
        Ok(self.creatives().put_snapshot(SNAPSHOT, &Value::Array(all.to_vec()).to_string())?)
    }

    /// Every proposal, newest first.
    pub fn budget_proposals(&self) -> Result<Vec<Value>, EngineError> {
        let mut all = self.read()?;
        all.reverse();
        Ok(all)
    }

    /// Keeps a proposal (`tutti_insights::budget::BudgetProposal` as JSON) made by `by`; returns it as kept.
    pub fn propose_budget(&self, by: &str, proposal: Value) -> Result<Value, EngineError> {
        let _one = WRITE.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        let next = all.iter().filter_map(|p| p["id"].as_str()?.strip_prefix('b')?.parse::<u64>().ok()).max();
        let kept = json!({
            "id": format!("b{}", next.map_or(1, |n| n + 1)),
            "proposed_at": tutti_core::time::format_timestamp(self.engine.clock.now_ms()),
            "proposed_by": by,
            "status": "proposed",
            "proposal": proposal,
        });
        all.push(kept.clone());
        while all.len() > KEEP {
            match all.iter().position(|p| p["status"] != "proposed") {
                Some(i) => all.remove(i),
                None => all.remove(0),
            };
        }
        self.write(&all)?;
        Ok(kept)
    }

    /// Approves or rejects a proposal still proposed, as `by`, with an optional reason; on the audit log.
    pub fn decide_budget(&self, id: &str, by: &str, approve: bool, reason: &str) -> Result<Value, BudgetError> {
        let _one = WRITE.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        let Some(found) = all.iter_mut().find(|p| p["id"] == id) else { return Err(BudgetError::Unknown(id.into())) };
        if found["status"] != "proposed" {
            return Err(BudgetError::Closed(id.into(), found["status"].as_str().unwrap_or("decided").into()));
        }
        let status = if approve { "approved" } else { "rejected" };
        found["status"] = json!(status);
        found["decided_by"] = json!(by);
        found["decided_at"] = json!(tutti_core::time::format_timestamp(self.engine.clock.now_ms()));
        if !reason.is_empty() {
            found["reason"] = json!(reason);
        }
        let decided = found.clone();
        self.write(&all)?;
        let p = &decided["proposal"];
        let detail = json!({"proposal": id, "decision": status, "channel": p["channel"], "campaign": p["campaign"],
                            "budget_micros": p["budget_micros"], "reason": reason});
        self.engine.record(AuditKind::Budget, by, None, None, detail)?;
        Ok(decided)
    }
}
