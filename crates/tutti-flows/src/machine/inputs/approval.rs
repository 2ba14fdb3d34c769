//! A person's decision on a run waiting at an `approve` step, and what happens when nobody decides in time.

use serde_json::{Value, json};

use crate::def::{Approve, Fallback, Flow, StepKind};
use crate::machine::{ApprovalDecision, DecisionKind, Machine, Run, RunStatus, WaitOn, set_approval};
use tutti_core::time::{format_duration, format_timestamp};

impl Machine<'_, '_> {
    /// A decision on a run waiting for approval at `step`; anything else (another run, a decision already
    /// taken, an approval that expired) changes nothing.
    pub(in crate::machine) fn on_approval(&mut self, run_id: &str, step_id: &str, verdict: &ApprovalDecision) {
        let defs = self.world.defs;
        let Some(at) = self.state.runs.iter().position(|r| {
            r.id == run_id
                && matches!(r.status, RunStatus::Waiting { on: WaitOn::Approval, .. })
                && r.step.and_then(|i| defs.flow(&r.flow, r.version).map(|f| f.steps[i].id == step_id)) == Some(true)
        }) else {
            return;
        };
        let mut run = self.state.runs.remove(at);
        let flow = defs.flow(&run.flow, run.version).cloned().expect("checked above");
        let i = run.step.expect("checked above");
        let StepKind::Approve(a) = &flow.steps[i].kind else { unreachable!("an approval wait is at an approve step") };
        // A decision after the deadline is late: the expiry comes first, and the decision counts only if the
        // approval is still open after it (escalated).
        if let RunStatus::Waiting { until, .. } = run.status
            && until <= self.now
        {
            self.approval_expired(&flow, i, a, &mut run);
            if !(matches!(run.status, RunStatus::Waiting { on: WaitOn::Approval, .. }) && run.step == Some(i)) {
                self.state.runs.push(run);
                return;
            }
        }
        let at_time = format_timestamp(self.now);
        match verdict {
            ApprovalDecision::Approve { by, edits } => {
                let edited = edits.as_ref().is_some_and(|e| !e.is_empty());
                if let Some(content) = &a.content {
                    let slot = run.results.entry(content.clone()).or_insert_with(|| json!({}));
                    if let Value::Object(fields) = slot {
                        for (k, v) in edits.iter().flatten() {
                            fields.insert(k.clone(), v.clone());
                        }
                        fields.insert("approved_by".into(), by.clone().into());
                        fields.insert("approved_at".into(), at_time.clone().into());
                        if edited {
                            fields.insert("edited_by".into(), by.clone().into());
                        }
                    }
                }
                set_approval(
                    &mut run,
                    step_id,
                    json!({"approval": "approved", "by": by, "at": at_time, "edited": edited}),
                );
                self.note(&mut run, Some(step_id), DecisionKind::Approved { by: by.clone(), edited });
                run.step = flow.steps[i].next;
                self.run_steps(&flow, &mut run, true);
            }
            ApprovalDecision::Reject { by, reason } => {
                set_approval(
                    &mut run,
                    step_id,
                    json!({"approval": "rejected", "by": by, "at": at_time, "reason": reason}),
                );
                self.note(&mut run, Some(step_id), DecisionKind::Rejected { by: by.clone(), reason: reason.clone() });
                match a.on_reject {
                    Some(next) => {
                        run.step = Some(next);
                        self.run_steps(&flow, &mut run, true);
                    }
                    None => {
                        let why = format!("rejected by {by}: {reason}");
                        self.end(&mut run, RunStatus::Exited { reason: why.clone() }, &why);
                    }
                }
            }
        }
        self.state.runs.push(run);
    }

    /// Nobody decided in time: escalate once, send the default, or skip.
    pub(in crate::machine) fn approval_expired(&mut self, flow: &Flow, i: usize, a: &Approve, run: &mut Run) {
        let step_id = flow.steps[i].id.clone();
        let escalated = run.results.get(&step_id).is_some_and(|r| r["escalated_to"].is_string());
        if a.fallback == Fallback::Escalate && !escalated {
            let until = self.now + a.expires;
            let to = a.escalate_to.clone().unwrap_or_default();
            if let Some(Value::Object(r)) = run.results.get_mut(&step_id) {
                r.insert("escalated_to".into(), to.clone().into());
                r.insert("expires_at".into(), format_timestamp(until).into());
            }
            self.note(
                run,
                Some(&step_id),
                DecisionKind::ApprovalRequested {
                    reason: format!("nobody decided in {}; escalated to {to}", format_duration(a.expires)),
                    until,
                    escalated_to: Some(to),
                },
            );
            run.status = RunStatus::Waiting { until, on: WaitOn::Approval };
            return;
        }
        let fallback = if a.fallback == Fallback::SendDefault { Fallback::SendDefault } else { Fallback::Skip };
        set_approval(
            run,
            &step_id,
            json!({"approval": "expired", "fallback": fallback.name(), "at": format_timestamp(self.now)}),
        );
        self.note(run, Some(&step_id), DecisionKind::ApprovalExpired { fallback: fallback.name().into() });
        if fallback == Fallback::SendDefault {
            let run_view = run.view();
            let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
            match a.default.as_ref().map(|d| d.render(&vars)) {
                Some(Ok(Value::Object(default))) => {
                    if let Some(content) = &a.content {
                        let mut fields = default;
                        fields.insert("source".into(), "default".into());
                        run.results.insert(content.clone(), Value::Object(fields));
                    }
                    run.step = flow.steps[i].next;
                    self.run_steps(flow, run, true);
                }
                other => {
                    let why = match other {
                        Some(Err(e)) => format!("the default did not render: {e}"),
                        _ => "the default is not a mapping".to_owned(),
                    };
                    self.note(run, Some(&step_id), DecisionKind::Error { reason: why.clone() });
                    self.end(run, RunStatus::Exited { reason: why.clone() }, &why);
                }
            }
            return;
        }
        match a.on_skip {
            Some(next) => {
                run.step = Some(next);
                self.run_steps(flow, run, true);
            }
            None => {
                let why = "approval expired; nothing sent";
                self.end(run, RunStatus::Exited { reason: why.into() }, why);
            }
        }
    }
}
