//! The `branch` and `split` steps: where a run goes next.

use super::AfterStep;
use crate::def::{BranchArm, Flow, SplitArm, Step};
use crate::machine::{DecisionKind, Machine, Run, RunStatus, bucket};

impl Machine<'_, '_> {
    /// Takes the first arm whose condition holds (an arm without one always does).
    pub(in crate::machine) fn branch_step(&mut self, run: &mut Run, step: &Step, arms: &[BranchArm]) -> AfterStep {
        let sid = Some(step.id.as_str());
        let run_view = run.view_if(arms.iter().any(|a| a.when.as_ref().is_some_and(|c| c.reads("run"))));
        let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
        let mut chosen = None;
        let mut why = Vec::new();
        for (n, arm) in arms.iter().enumerate() {
            match &arm.when {
                None => {
                    chosen = Some((n, arm.next, "no other arm matched".to_owned()));
                    break;
                }
                Some(c) => match c.evaluate(&vars) {
                    Ok(true) => {
                        chosen = Some((n, arm.next, format!("`{}` is true", c.source())));
                        break;
                    }
                    Ok(false) => why.push(format!("`{}` is false", c.source())),
                    Err(e) if e.limit.is_some() => {
                        let reason = format!("the condition `{}` ({e})", c.source());
                        return self.fail(run, &step.id, &reason);
                    }
                    Err(e) => why.push(format!("`{}` could not decide ({e})", c.source())),
                },
            }
        }
        let (arm, next, reason) = match chosen {
            Some((n, next, reason)) if why.is_empty() => (n.to_string(), next, reason),
            Some((n, next, reason)) => (n.to_string(), next, format!("{}; {reason}", why.join("; "))),
            None => ("none".to_owned(), step.next, format!("{}; going on", why.join("; "))),
        };
        self.note(run, sid, DecisionKind::Branch { arm, reason });
        run.step = next;
        AfterStep::Next
    }

    /// Takes the arm the profile's stable bucket falls in; a holdout arm ends the run.
    pub(in crate::machine) fn split_step(
        &mut self,
        flow: &Flow,
        run: &mut Run,
        step: &Step,
        arms: &[SplitArm],
    ) -> AfterStep {
        let sid = Some(step.id.as_str());
        let bucket = bucket(self.world.profile_id, &flow.id, &step.id);
        let mut edge = 0u32;
        let arm = arms.iter().find(|a| {
            edge += a.percent;
            bucket < edge
        });
        let Some(arm) = arm.or(arms.last()) else {
            run.step = step.next;
            return AfterStep::Next;
        };
        self.note(run, sid, DecisionKind::Split { arm: arm.name.clone(), holdout: arm.holdout });
        if arm.holdout {
            self.end(
                run,
                RunStatus::Exited { reason: format!("holdout arm {}", arm.name) },
                &format!("holdout arm {}", arm.name),
            );
            return AfterStep::Stop;
        }
        run.step = arm.next;
        AfterStep::Next
    }
}
