//! Budget proposals kept for a person to decide: a split of a channel's budget across creatives (computed by
//! `tutti_insights`), stored as proposed, then approved or rejected once, by a person, on the audit log.
//! Approving applies the split when the `ads` connector is configured: each creative's share becomes the daily
//! budget of the ad set or campaign `[connectors.ads] creatives` names for it, on Meta or Google Ads, each change
//! read before and after and kept on the proposal (`applied`) and in the audit record. A creative without a
//! target, or a change the platform refuses, is kept with why, and the rest still goes. They are kept as one
//! snapshot of the creative store (`creatives.db`, or Postgres), written under this process's lock: with
//! several workers, decide proposals through one of them.

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
        if approve && let Some(applied) = self.apply_split(id, &found["proposal"]) {
            found["applied"] = json!(applied);
        }
        let decided = found.clone();
        self.write(&all)?;
        let p = &decided["proposal"];
        let detail = json!({"proposal": id, "decision": status, "channel": p["channel"], "campaign": p["campaign"],
                            "budget_micros": p["budget_micros"], "reason": reason, "applied": decided["applied"]});
        self.engine.record(AuditKind::Budget, by, None, None, detail)?;
        Ok(decided)
    }

    /// Each creative's share as the daily budget of its ad set or campaign, through the `ads` connector; `None`
    /// when it is not configured (the decision is recorded only). Blocking: called on a blocking thread.
    fn apply_split(&self, id: &str, proposal: &Value) -> Option<Vec<Value>> {
        let ads = self.engine.checks.get("ads")?;
        let Some(blocking) = crate::connectors::BlockingSender::new() else {
            return Some(vec![json!({"error": "cannot reach the ad platforms: no runtime"})]);
        };
        let now = self.engine.clock.now_ms();
        let allocations = proposal["allocations"].as_array().cloned().unwrap_or_default();
        let applied = allocations
            .iter()
            .map(|a| {
                let creative = a["creative"].as_str().unwrap_or_default();
                let micros = a["budget_micros"].as_i64().unwrap_or(0);
                let amount = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
                let payload =
                    json!({"creative": creative, "amount": amount, "reason": format!("budget proposal {id}")});
                let key = format!("budget:{id}:{creative}");
                let action = tutti_connectors::Action {
                    key: &key,
                    profile: 0,
                    flow: "budget-proposals",
                    step: id,
                    operation: "set_daily_budget",
                    category: "internal",
                    channel: "ads",
                    payload: &payload,
                    now,
                    tracking: false,
                };
                match blocking.send(&*ads.sender, action, Some(ads.settings.timeout)) {
                    Some(Ok(done)) => {
                        json!({"creative": creative, "budget_micros": micros, "changes": done["changes"]})
                    }
                    Some(Err(failure)) => {
                        json!({"creative": creative, "budget_micros": micros, "error": failure.message()})
                    }
                    None => json!({"creative": creative, "budget_micros": micros, "error": "the change failed"}),
                }
            })
            .collect();
        Some(applied)
    }
}
