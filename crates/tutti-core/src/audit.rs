//! The audit trail's record: one model call or one approval decision, appended and never changed (an erasure
//! may only redact what a record says about the person).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Millis, ProfileId};

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A request to a provider (a model, or the local provider), with its output and the review's verdict.
    ModelCall,
    /// An approval requested, approved, edited and approved, rejected, escalated or expired.
    Approval,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::ModelCall => "model_call",
            AuditKind::Approval => "approval",
        }
    }

    pub fn from_name(name: &str) -> Option<AuditKind> {
        match name {
            "model_call" => Some(AuditKind::ModelCall),
            "approval" => Some(AuditKind::Approval),
            _ => None,
        }
    }
}

/// One entry of the audit log. The indexed columns are `at`, `kind`, `flow`, `run` and `profile`; `detail`
/// holds the rest (task, provider, model, prompt hash, template version, tokens, cost, latency, output,
/// verdict, approver...), as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: Millis,
    pub kind: AuditKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileId>,
    pub detail: Value,
}

/// Which records a query wants (every field that is set must match).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub kind: Option<AuditKind>,
    pub flow: Option<String>,
    pub run: Option<String>,
    pub profile: Option<ProfileId>,
    /// From this time on (inclusive), and before `until`.
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}
