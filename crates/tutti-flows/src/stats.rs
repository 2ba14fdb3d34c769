//! What a decision adds to its flow's running totals: the measures a flow's page shows per step (reached,
//! acted, skipped and why, each arm taken, approvals decided) and for the flow as a whole (entered, not
//! entered and why, goal reached, completed, exited and why, failed). The engine sums them as batches commit.

use crate::machine::{Decision, DecisionKind};

/// The longest reason kept in a measure's name: reasons are grouped by what comes before their first `:`.
const MOST: usize = 60;

/// The kind of a reason: what comes before its first `:` (`unsubscribed: traits.email_subscribe is ...` is
/// `unsubscribed`), at most [`MOST`] characters, so measures stay few however detailed reasons are.
pub fn reason_kind(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or("").trim();
    head.chars().take(MOST).collect()
}

/// The (step, measure) pairs a decision adds one to; step is empty for the flow as a whole.
pub fn measures(decision: &Decision) -> Vec<(String, String)> {
    let step = decision.step.clone().unwrap_or_default();
    let at_step =
        |measures: &[String]| -> Vec<(String, String)> { measures.iter().map(|m| (step.clone(), m.clone())).collect() };
    let flow_wide = |measure: String| vec![(String::new(), measure)];
    match &decision.kind {
        DecisionKind::Entered { .. } => flow_wide("entered".into()),
        DecisionKind::NotEntered { reason } => flow_wide(format!("not_entered:{}", reason_kind(reason))),
        DecisionKind::Action { .. } => at_step(&["reached".into(), "acted".into()]),
        DecisionKind::Skipped { reason } => at_step(&["reached".into(), format!("skipped:{}", reason_kind(reason))]),
        DecisionKind::Waiting { .. } | DecisionKind::ProfileUpdated { .. } | DecisionKind::ApprovalRequested { .. } => {
            at_step(&["reached".into()])
        }
        DecisionKind::Branch { arm, .. } | DecisionKind::Split { arm, .. } => {
            at_step(&["reached".into(), format!("arm:{arm}")])
        }
        DecisionKind::Approved { .. } => at_step(&["approved".into()]),
        DecisionKind::Rejected { .. } => at_step(&["rejected".into()]),
        DecisionKind::ApprovalExpired { .. } => at_step(&["expired".into()]),
        DecisionKind::Failed { .. } => at_step(&["failed".into()]),
        DecisionKind::Exited { reason } => flow_wide(format!("exited:{}", reason_kind(reason))),
        DecisionKind::Completed => flow_wide("completed".into()),
        DecisionKind::Goal { .. } => flow_wide("goal".into()),
        DecisionKind::Deferred { .. }
        | DecisionKind::Resumed { .. }
        | DecisionKind::Result { .. }
        | DecisionKind::SegmentEntered { .. }
        | DecisionKind::SegmentLeft { .. }
        | DecisionKind::Suppressed { .. }
        | DecisionKind::Error { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(step: Option<&str>, kind: DecisionKind) -> Decision {
        Decision { at: 0, profile: "p1".into(), flow: Some("f".into()), run: None, step: step.map(Into::into), kind }
    }

    #[test]
    fn steps_count_what_they_did_and_the_flow_counts_how_runs_began_and_ended() {
        let skipped = decision(Some("mail"), DecisionKind::Skipped { reason: "unsubscribed: traits.x is true".into() });
        assert_eq!(
            measures(&skipped),
            [("mail".to_owned(), "reached".to_owned()), ("mail".to_owned(), "skipped:unsubscribed".to_owned())]
        );
        let exited = decision(Some("wait"), DecisionKind::Exited { reason: "goal reached: Order Completed".into() });
        assert_eq!(measures(&exited), [(String::new(), "exited:goal reached".to_owned())]);
        let resumed = decision(Some("wait"), DecisionKind::Resumed { reason: "timer".into() });
        assert!(measures(&resumed).is_empty(), "a step is reached once, not again when it resumes");
        assert_eq!(reason_kind(&"x".repeat(200)).len(), MOST);
    }
}
