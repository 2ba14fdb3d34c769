//! The `update_profile` step.

use serde_json::Value;

use super::AfterStep;
use crate::def::{Payload, Step};
use crate::machine::{DecisionKind, Effect, Machine, Run};

impl Machine<'_, '_> {
    /// Renders traits for the profile; the shell applies them.
    pub(in crate::machine) fn update_profile_step(
        &mut self,
        run: &mut Run,
        step: &Step,
        payload: &Payload,
    ) -> AfterStep {
        let sid = Some(step.id.as_str());
        let run_view = run.view_if(payload.mentions("run"));
        let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
        match payload.render(&vars) {
            Ok(Value::Object(traits)) => {
                self.note(run, sid, DecisionKind::ProfileUpdated { traits: Value::Object(traits.clone()) });
                self.effects.push(Effect::UpdateProfile { run: run.id.clone(), traits });
            }
            Ok(_) => {}
            Err(e) if e.limit.is_some() => return self.fail(run, &step.id, &format!("its traits ({e})")),
            Err(e) => self.note(run, sid, DecisionKind::Error { reason: format!("the traits did not render: {e}") }),
        }
        run.step = step.next;
        AfterStep::Next
    }
}
