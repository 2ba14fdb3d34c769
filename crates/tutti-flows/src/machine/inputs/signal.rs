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
            let copy = matches!(flow.steps[i].kind, crate::def::StepKind::Generate(_)).then(|| copy_of(result));
            self.note(&mut run, Some(&step_id), DecisionKind::Result { key: key.to_owned(), copy });
            run.step = flow.steps[i].next;
            self.run_steps(&flow, &mut run, true);
        }
        self.state.runs.push(run);
    }
}

/// The part of a `generate` step's answer a person previews: the copy, whether it passed review, and who
/// wrote it (the local generator's copy is labelled as such).
fn copy_of(result: &Value) -> Value {
    let by = if result["local"] == json!(true) {
        "the local generator".to_owned()
    } else {
        format!("{}/{}", result["provider"].as_str().unwrap_or("?"), result["model"].as_str().unwrap_or("?"))
    };
    json!({"subject": result["subject"], "body": result["body"], "passed": result["passed"], "by": by,
           "error": result.get("error")})
}
