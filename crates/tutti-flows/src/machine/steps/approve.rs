//! The `approve` step: whether a person must approve, and the request when they must.

use serde_json::json;

use super::AfterStep;
use crate::def::{Approve, Step};
use crate::machine::{DecisionKind, Effect, Machine, Run, RunStatus, StepKey, WaitOn, set_approval};
use tutti_core::time::format_timestamp;

impl Machine<'_, '_> {
    /// Holds the run for a person's decision, or goes on when approval is not needed.
    pub(in crate::machine) fn approve_step(&mut self, run: &mut Run, step: &Step, a: &Approve) -> AfterStep {
        let sid = Some(step.id.as_str());
        let run_view = run.view();
        let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
        let first = a.first_sends.map(|n| {
            let key = StepKey { flow: run.flow.clone(), version: run.version, step: step.id.clone() };
            let reached = self.reached(&key);
            if reached < n {
                self.effects.push(Effect::Counted(key));
            }
            (reached, n)
        });
        let needed = match (first, &a.when) {
            (Some((reached, n)), _) if reached < n => Ok(format!(
                "send {} of the first {n} of version {} is approved before it goes out",
                reached + 1,
                run.version
            )),
            (Some((_, n)), None) => Err(format!(
                "approval not needed: the first {n} sends of version {} have been held for approval",
                run.version
            )),
            (None, None) => Ok("every message of this step is approved".to_owned()),
            (_, Some(c)) => match c.evaluate(&vars) {
                Ok(true) => Ok(format!("`{}` is true", c.source())),
                Ok(false) => Err(format!("approval not needed: `{}` is false", c.source())),
                // Unsure is not a reason to send unreviewed.
                Err(e) => Ok(format!("`{}` could not decide ({e}), so approval is needed", c.source())),
            },
        };
        match needed {
            Err(reason) => {
                set_approval(run, &step.id, json!({"approval": "not_needed"}));
                self.note(run, sid, DecisionKind::Resumed { reason });
                run.step = step.next;
            }
            Ok(why) => {
                let reason = match a.reason.as_ref().map(|t| t.render(&vars)) {
                    Some(Ok(r)) if !r.trim().is_empty() => r,
                    _ => why,
                };
                let until = self.now + a.expires;
                set_approval(
                    run,
                    &step.id,
                    json!({"approval": "pending", "reason": reason, "content": a.content,
                           "requested_at": format_timestamp(self.now), "expires_at": format_timestamp(until),
                           "fallback": a.fallback.name()}),
                );
                self.note(run, sid, DecisionKind::ApprovalRequested { reason, until, escalated_to: None });
                run.status = RunStatus::Waiting { until, on: WaitOn::Approval };
                return AfterStep::Stop;
            }
        }
        AfterStep::Next
    }
}
