//! The `generate` step: copy for this profile, asked of the `ai` connector and awaited.

use serde_json::json;

use super::AfterStep;
use crate::def::{Flow, Payload, Step};
use crate::machine::{Call, DecisionKind, GENERATE_CONNECTOR, GENERATE_OPERATION, Machine, Run, RunStatus};

impl Machine<'_, '_> {
    /// Dispatches the rendered request with everything its personalisation reads, and waits for the answer.
    pub(in crate::machine) fn generate_step(
        &mut self,
        flow: &Flow,
        run: &mut Run,
        step: &Step,
        request: &Payload,
    ) -> AfterStep {
        let sid = Some(step.id.as_str());
        let run_view = run.view();
        let vars = [("event", &run.trigger), ("profile", self.world.profile), ("run", &run_view)];
        match request.render(&vars) {
            Ok(request) => {
                let channel = request["channel"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| flow.channel.clone())
                    .unwrap_or_else(|| "email".to_owned());
                // Everything the personalisation context is built from travels with the request.
                let payload = json!({
                    "request": request, "profile": self.world.profile, "event": run.trigger,
                    "category": flow.category,
                    "run": {"id": run.id, "flow": run.flow, "version": run.version, "step": step.id,
                            "steps": run.results, "last_event": run.last_event},
                });
                let call = Call {
                    connector: GENERATE_CONNECTOR,
                    operation: GENERATE_OPERATION,
                    channel: &channel,
                    category: &flow.category,
                    await_result: true,
                    policed: false,
                };
                // The decision shows the request, not the whole profile that travels with it.
                let key = self.dispatch(run, &step.id, call, payload, request);
                run.status = RunStatus::AwaitingResult { key };
                return AfterStep::Stop;
            }
            Err(e) if e.limit.is_some() => return self.fail(run, &step.id, &format!("its request ({e})")),
            Err(e) => {
                self.note(run, sid, DecisionKind::Error { reason: format!("the request did not render: {e}") });
                run.step = step.next;
            }
        }
        AfterStep::Next
    }
}
