//! The `action` step: policies at step time, the payload rendered, the action handed to the outbox.

use super::AfterStep;
use crate::def::{Action, Flow, QuietMode, Step};
use crate::machine::{Call, DecisionKind, Machine, Run, RunStatus, WaitOn};
use crate::policy::{self, Sent, Subject, Verdict};

impl Machine<'_, '_> {
    /// Sends an action, unless a policy skips or defers it.
    pub(in crate::machine) fn action_step(
        &mut self,
        flow: &Flow,
        run: &mut Run,
        step: &Step,
        action: &Action,
    ) -> AfterStep {
        let sid = Some(step.id.as_str());
        let subject =
            Subject { profile: self.world.profile, suppressions: &self.state.suppressions, sent: &self.state.sent };
        let verdict = policy::check(
            self.world.defs.policies.values().map(|p| &**p),
            &subject,
            &action.channel,
            &action.category,
            self.now,
        );
        match verdict {
            Verdict::Allow => {
                let run_view = run.view_if(action.with.mentions("run"));
                let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
                match action.with.render(&vars) {
                    Ok(payload) => {
                        let call = Call {
                            connector: &action.connector,
                            operation: &action.operation,
                            channel: &action.channel,
                            category: &action.category,
                            await_result: action.await_result,
                            policed: true,
                        };
                        let key = self.dispatch(run, &step.id, call, payload.clone(), payload);
                        run.skipped = None;
                        self.state.sent.push(Sent {
                            at: self.now,
                            channel: action.channel.clone(),
                            category: action.category.clone(),
                            key: Some(key.clone()),
                        });
                        self.forget_old_sends();
                        if action.await_result {
                            run.status = RunStatus::AwaitingResult { key };
                            return AfterStep::Stop;
                        }
                    }
                    Err(e) if e.limit.is_some() => {
                        return self.fail(run, &step.id, &format!("its payload ({e})"));
                    }
                    Err(e) => {
                        self.note(run, sid, DecisionKind::Error { reason: format!("the payload did not render: {e}") })
                    }
                }
                run.step = step.next;
            }
            Verdict::Skip(reason) => {
                run.skipped = Some(reason.clone());
                self.note(run, sid, DecisionKind::Skipped { reason });
                run.step = step.next;
            }
            Verdict::Defer { until, reason } => {
                if flow.quiet_hours == QuietMode::Drop {
                    let reason = format!("{reason}; the flow drops such actions");
                    run.skipped = Some(reason.clone());
                    self.note(run, sid, DecisionKind::Skipped { reason });
                    run.step = step.next;
                } else {
                    self.note(run, sid, DecisionKind::Deferred { until, reason });
                    run.status = RunStatus::Waiting { until, on: WaitOn::Deferred };
                    return AfterStep::Stop;
                }
            }
        }
        AfterStep::Next
    }
}
