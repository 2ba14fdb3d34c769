//! The audit trail's record: one model call, approval decision, sign-in, change to the people who sign in, change
//! to a definition, replay or erasure, appended and never changed (an erasure may only redact what a record says
//! about the person).

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
    /// Someone signed in to the console, or was refused.
    SignIn,
    /// A person added, removed, given a role or a password, or signed out everywhere.
    People,
    /// A flow, segment or policy saved as a new version, or deleted.
    Definition,
    /// Dead letters made pending again.
    Replay,
    /// A profile erased.
    Erasure,
    /// A budget proposal approved or rejected.
    Budget,
    /// A copilot plan approved (its segment and flow created) or rejected.
    Plan,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::ModelCall => "model_call",
            AuditKind::Approval => "approval",
            AuditKind::SignIn => "sign_in",
            AuditKind::People => "people",
            AuditKind::Definition => "definition",
            AuditKind::Replay => "replay",
            AuditKind::Erasure => "erasure",
            AuditKind::Budget => "budget",
            AuditKind::Plan => "plan",
        }
    }

    pub const ALL: [AuditKind; 9] = [
        AuditKind::ModelCall,
        AuditKind::Approval,
        AuditKind::SignIn,
        AuditKind::People,
        AuditKind::Definition,
        AuditKind::Replay,
        AuditKind::Erasure,
        AuditKind::Budget,
        AuditKind::Plan,
    ];

    pub fn from_name(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == name)
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
