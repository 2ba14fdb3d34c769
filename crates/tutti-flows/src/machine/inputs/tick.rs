//! A tick of the clock: runs whose wait is over, segment memberships that change with time alone, schedules due.

use serde_json::json;

use crate::def::{StepKind, Trigger};
use crate::machine::{DecisionKind, Machine, RunStatus, WaitOn};
use tutti_core::time::{format_duration, format_timestamp};

impl Machine<'_, '_> {
    pub(in crate::machine) fn on_tick(&mut self) {
        let now = self.now;
        let defs = self.world.defs;
        // Segments whose windows slid.
        let due: Vec<String> =
            self.state.segment_wake.iter().filter(|(_, t)| **t <= now).map(|(s, _)| s.clone()).collect();
        let changes = if due.is_empty() { Vec::new() } else { self.observe_segments(None) };
        self.exit_on_segments(&changes);
        // Runs whose wait is over.
        let mut runs = std::mem::take(&mut self.state.runs);
        for run in runs.iter_mut() {
            let RunStatus::Waiting { until, on } = run.status.clone() else { continue };
            if until > now {
                continue;
            }
            let Some(flow) = defs.flow(&run.flow, run.version).cloned() else {
                self.interrupt(run, "its flow version is gone");
                continue;
            };
            let Some(i) = run.step else { continue };
            let step_id = flow.steps[i].id.clone();
            match on {
                WaitOn::Timer => {
                    self.note(run, Some(&step_id), DecisionKind::Resumed { reason: "the wait is over".into() });
                    run.step = flow.steps[i].next;
                    self.run_steps(&flow, run, true);
                }
                WaitOn::Event => {
                    let StepKind::WaitFor { on_timeout, timeout, .. } = &flow.steps[i].kind else { continue };
                    self.note(
                        run,
                        Some(&step_id),
                        DecisionKind::Resumed { reason: format!("timed out after {}", format_duration(*timeout)) },
                    );
                    run.step = *on_timeout;
                    self.run_steps(&flow, run, true);
                }
                WaitOn::Deferred => {
                    self.note(run, Some(&step_id), DecisionKind::Resumed { reason: "quiet hours are over".into() });
                    self.run_steps(&flow, run, false);
                }
                WaitOn::Approval => {
                    let StepKind::Approve(a) = &flow.steps[i].kind else { continue };
                    self.approval_expired(&flow, i, a, run);
                }
            }
        }
        runs.append(&mut self.state.runs);
        self.state.runs = runs;
        self.segment_triggers(&changes);
        // Schedules that are due.
        let due: Vec<String> =
            self.state.schedules.iter().filter(|(_, t)| **t <= now).map(|(f, _)| f.clone()).collect();
        for flow_id in due {
            self.state.schedules.remove(&flow_id);
            let Some(flow) = defs.current_flows().find(|f| f.id == flow_id).cloned() else { continue };
            if let Trigger::Schedule { cron, when, .. } = &flow.trigger {
                let ok = when.as_ref().is_none_or(|c| c.evaluate(&[("profile", self.world.profile)]).unwrap_or(false));
                if ok {
                    let trigger = json!({"type": "schedule", "schedule": cron.source(), "at": format_timestamp(now)});
                    self.start(&flow, trigger, format!("schedule {}", cron.source()));
                }
            }
        }
        self.refresh_schedules();
    }
}
