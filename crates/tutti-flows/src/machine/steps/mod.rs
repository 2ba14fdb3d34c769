//! Running a run's steps: one file per kind of step, each saying whether the run goes on to its next step.

mod action;
mod approve;
mod branch;
mod generate;
mod update_profile;
mod wait;

use crate::def::{Flow, StepKind};
use crate::machine::{DecisionKind, MAX_STEPS_PER_INPUT, Machine, Run, RunStatus};

/// What a step leaves the run to do.
pub(super) enum AfterStep {
    /// Go on to `run.step` now.
    Next,
    /// Stop here: the run waits (for time, an event, an answer or a person) or has ended.
    Stop,
}

impl Machine<'_, '_> {
    /// Takes the run through its steps until it waits or ends (at most [`MAX_STEPS_PER_INPUT`]). `entering`:
    /// the run arrives at its current step now (a visit), rather than resuming there.
    pub(super) fn run_steps(&mut self, flow: &Flow, run: &mut Run, mut entering: bool) {
        for _ in 0..MAX_STEPS_PER_INPUT {
            // One budget per step, within the flow's limits, for all its templates and conditions.
            let _meter = tutti_core::budget::Metered::start(flow.limits);
            let Some(i) = run.step else {
                match run.skipped.take() {
                    Some(reason) => self.end(run, RunStatus::Exited { reason: reason.clone() }, &reason),
                    None => self.end(run, RunStatus::Completed, "completed"),
                }
                return;
            };
            let step = &flow.steps[i];
            if entering {
                *run.visits.entry(step.id.clone()).or_default() += 1;
            }
            entering = true;
            let after = match &step.kind {
                StepKind::Action(action) => self.action_step(flow, run, step, action),
                StepKind::Wait(spec) => self.wait_step(run, step, spec),
                StepKind::WaitFor { event, timeout, .. } => self.wait_for_step(run, step, event, timeout),
                StepKind::Branch(arms) => self.branch_step(run, step, arms),
                StepKind::Split(arms) => self.split_step(flow, run, step, arms),
                StepKind::UpdateProfile(payload) => self.update_profile_step(run, step, payload),
                StepKind::Exit(label) => {
                    let reason = run.skipped.take().unwrap_or_else(|| label.clone());
                    self.end(run, RunStatus::Exited { reason: reason.clone() }, &reason);
                    AfterStep::Stop
                }
                StepKind::Generate(request) => self.generate_step(flow, run, step, request),
                StepKind::Approve(a) => self.approve_step(run, step, a),
            };
            if let AfterStep::Stop = after {
                return;
            }
        }
        let reason = format!("took {MAX_STEPS_PER_INPUT} steps without waiting");
        self.note(run, None, DecisionKind::Error { reason: reason.clone() });
        self.end(run, RunStatus::Exited { reason: reason.clone() }, &reason);
    }
}
