//! An event: exits and goals of waiting runs, segment changes, runs waiting for it, new runs it triggers;
//! and a failure while handling one.

use crate::def::{Exit, StepKind, Trigger};
use crate::machine::{DecisionKind, Machine, RunStatus, WaitOn, describe, segment_exit};
use crate::policy::{Rule, Suppression};
use tutti_core::event::Event;
use tutti_core::event_match::matches;
use tutti_core::time::format_duration;

impl Machine<'_, '_> {
    pub(in crate::machine) fn on_event(&mut self, event: &Event) {
        let body = event.body_value();
        let name = event.name.as_deref();
        let profile = self.world.profile;
        let vars = [("event", &body), ("profile", profile)];
        // 1. Suppressions first, so nothing this event triggers slips past them.
        let defs = self.world.defs;
        for policy in defs.policies.values() {
            if let Rule::Suppress { on, categories, duration, exit_runs } = &policy.rule
                && matches(on, event.kind, name, &vars)
            {
                let until = self.now + duration;
                self.state.suppressions.retain(|s| s.policy != policy.id);
                self.state.suppressions.push(Suppression {
                    policy: policy.id.clone(),
                    categories: categories.clone(),
                    until,
                });
                self.record(self.decision(
                    None,
                    None,
                    DecisionKind::Suppressed { policy: policy.id.clone(), categories: categories.clone(), until },
                ));
                if *exit_runs {
                    let reason = format!(
                        "suppressed by policy {} ({} for {})",
                        policy.id,
                        categories.join(", "),
                        format_duration(*duration)
                    );
                    self.exit_runs(
                        |flow| categories.contains(&flow.category) && !policy.exempt.contains(&flow.category),
                        &reason,
                    );
                }
            }
        }
        // 2. Segments.
        let changes = self.observe_segments(Some((event, &body)));
        // 3. Exits, goals and waits of runs already going.
        let mut runs = std::mem::take(&mut self.state.runs);
        for run in runs.iter_mut() {
            let Some(flow) = defs.flow(&run.flow, run.version).cloned() else { continue };
            if let Some(goal) = &flow.goal
                && run.goal_at.is_none()
                && self.now <= run.started_at + goal.within
                && matches(&goal.event, event.kind, name, &vars)
            {
                run.goal_at = Some(self.now);
                self.note(run, None, DecisionKind::Goal { event: describe(event) });
            }
            if run.is_active() {
                let exit = flow
                    .exit_when
                    .iter()
                    .find_map(|x| match x {
                        Exit::Event(m) if matches(m, event.kind, name, &vars) => {
                            Some(format!("exit_when: {}", describe(event)))
                        }
                        _ => None,
                    })
                    .or_else(|| segment_exit(&flow, &changes));
                if let Some(reason) = exit {
                    self.interrupt(run, &reason);
                    continue;
                }
            }
            if let (RunStatus::Waiting { on: WaitOn::Event, .. }, Some(i)) = (&run.status, run.step)
                && let StepKind::WaitFor { event: m, on_event, .. } = &flow.steps[i].kind
            {
                let run_view = run.view_if(m.when.as_ref().is_some_and(|c| c.reads("run")));
                let wait_vars = [("event", &body), ("profile", profile), ("run", &run_view)];
                if matches(m, event.kind, name, &wait_vars) {
                    let step_id = flow.steps[i].id.clone();
                    self.note(
                        run,
                        Some(&step_id),
                        DecisionKind::Resumed { reason: format!("{} arrived", describe(event)) },
                    );
                    run.last_event = body.clone();
                    run.step = *on_event;
                    self.run_steps(&flow, run, true);
                }
            }
        }
        runs.append(&mut self.state.runs);
        self.state.runs = runs;
        // 4. New runs.
        for flow in defs.current_flows() {
            if let Trigger::Event(m) = &flow.trigger
                && matches(m, event.kind, name, &vars)
            {
                self.start(flow, body.clone(), describe(event));
            }
        }
        self.segment_triggers(&changes);
        self.refresh_schedules();
    }

    pub(in crate::machine) fn on_failure(&mut self, reason: &str) {
        self.each_active_run(|m, run| m.end(run, RunStatus::Failed { reason: reason.to_owned() }, reason));
        self.state.segment_wake.clear();
        self.state.schedules.clear();
    }
}
