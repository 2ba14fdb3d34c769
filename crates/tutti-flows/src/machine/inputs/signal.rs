//! Inputs from outside the profile's own behaviour: a named signal, and an awaited action's answer.

use serde_json::{Value, json};

use crate::def::Trigger;
use crate::machine::{DecisionKind, Machine, RunStatus};

impl Machine<'_, '_> {
    pub(in crate::machine) fn on_signal(&mut self, name: &str, payload: &Value) {
        let body = json!({"type": "signal", "signal": name, "properties": payload});
        for flow in self.world.defs.current_flows() {
            if let Trigger::Signal { name: wanted, when } = &flow.trigger {
                let vars = [("event", &body), ("profile", self.world.profile)];
                if wanted == name && when.as_ref().is_none_or(|c| c.evaluate(&vars).unwrap_or(false)) {
                    self.start(flow, body.clone(), format!("signal {name}"));
                }
            }
        }
    }

    pub(in crate::machine) fn on_result(&mut self, key: &str, result: &Value) {
        let Some(at) =
            self.state.runs.iter().position(|r| matches!(&r.status, RunStatus::AwaitingResult { key: k } if k == key))
        else {
            return;
        };
        let mut run = self.state.runs.remove(at);
        if let Some(flow) = self.world.defs.flow(&run.flow, run.version).cloned()
            && let Some(i) = run.step
        {
            let step_id = flow.steps[i].id.clone();
            run.results.insert(step_id.clone(), result.clone());
            self.note(&mut run, Some(&step_id), DecisionKind::Result { key: key.to_owned() });
            run.step = flow.steps[i].next;
            self.run_steps(&flow, &mut run, true);
        }
        self.state.runs.push(run);
    }
}
