//! Starting and ending runs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::def::{EntryRule, Flow};
use crate::machine::steps::AfterStep;
use crate::machine::{DecisionKind, MAX_DEDUPE_KEYS, Machine, Run, RunStatus};
use tutti_core::time::{format_duration, format_timestamp};

impl Machine<'_, '_> {
    /// Ends every active run whose flow the predicate picks.
    pub(super) fn exit_runs(&mut self, pick: impl Fn(&Flow) -> bool, reason: &str) {
        let defs = self.world.defs;
        self.each_active_run(|m, run| {
            if defs.flow(&run.flow, run.version).is_some_and(|f| pick(f)) {
                m.interrupt(run, reason);
            }
        });
    }

    /// Calls `act` on every active run (runs it starts meanwhile are kept, not visited).
    pub(super) fn each_active_run(&mut self, mut act: impl FnMut(&mut Self, &mut Run)) {
        let mut runs = std::mem::take(&mut self.state.runs);
        for run in runs.iter_mut().filter(|r| r.is_active()) {
            act(self, run);
        }
        runs.append(&mut self.state.runs);
        self.state.runs = runs;
    }

    pub(super) fn end(&mut self, run: &mut Run, status: RunStatus, reason: &str) {
        let step = run.step.and_then(|i| self.world.defs.flow(&run.flow, run.version).map(|f| f.steps[i].id.clone()));
        run.status = status.clone();
        run.ended_at = Some(self.now);
        let kind = match status {
            RunStatus::Completed => DecisionKind::Completed,
            RunStatus::Failed { .. } => DecisionKind::Failed { reason: reason.to_owned() },
            _ => DecisionKind::Exited { reason: reason.to_owned() },
        };
        self.note(run, step.as_deref(), kind);
        run.step = None;
    }

    /// Ends a run from outside its steps; see [`Run::interrupted`].
    pub(super) fn interrupt(&mut self, run: &mut Run, reason: &str) {
        run.interrupted = true;
        self.end(run, RunStatus::Exited { reason: reason.to_owned() }, reason);
    }

    /// Ends a run that cannot go on because `what` at step `step` failed.
    pub(super) fn fail(&mut self, run: &mut Run, step: &str, what: &str) -> AfterStep {
        let reason = format!("step {step} failed: {what}");
        self.end(run, RunStatus::Failed { reason: reason.clone() }, &reason);
        AfterStep::Stop
    }

    /// Starts a run if the entry rules allow.
    pub(super) fn start(&mut self, flow: &std::sync::Arc<Flow>, trigger: Value, described: String) {
        let going = self.state.runs.iter().filter(|r| r.flow == flow.id && r.is_active()).count();
        let record = self.state.entries.get(&flow.id).cloned().unwrap_or_default();
        let mut dedupe_key = None;
        let refusal = match &flow.entry.rule {
            EntryRule::Once if record.count > 0 => {
                Some(format!("entered before ({}); entry is once", format_timestamp(record.last)))
            }
            EntryRule::OncePer(period) if record.count > 0 && self.now - record.last < *period => Some(format!(
                "entered at {}; entry is once per {}",
                format_timestamp(record.last),
                format_duration(*period)
            )),
            EntryRule::EveryTime { dedupe: Some(t) } => {
                match t.render(&[("event", &trigger), ("profile", self.world.profile)]) {
                    Ok(key) if record.keys.contains(&key) => Some(format!("dedupe key `{key}` already entered")),
                    Ok(key) => {
                        dedupe_key = Some(key);
                        None
                    }
                    Err(e) => Some(format!("the dedupe key could not be rendered: {e}")),
                }
            }
            _ => None,
        };
        let refusal = refusal.or_else(|| {
            (going >= flow.entry.max_concurrent as usize)
                .then(|| format!("{going} run(s) already going; max_concurrent is {}", flow.entry.max_concurrent))
        });
        if let Some(reason) = refusal {
            self.flow_decision(flow, DecisionKind::NotEntered { reason });
            return;
        }
        let entry = self.state.entries.entry(flow.id.clone()).or_default();
        entry.count += 1;
        entry.last = self.now;
        if let Some(key) = dedupe_key {
            entry.keys.push(key);
            if entry.keys.len() > MAX_DEDUPE_KEYS {
                entry.keys.remove(0);
            }
        }
        self.state.next_run += 1;
        let mut run = Run {
            id: format!("{}-{}", self.world.profile_id, self.state.next_run),
            flow: flow.id.clone(),
            version: flow.version,
            profile: self.world.profile_id.to_owned(),
            started_at: self.now,
            trigger,
            step: Some(0),
            status: RunStatus::Completed,
            visits: BTreeMap::new(),
            results: Map::new(),
            last_event: Value::Null,
            goal_at: None,
            ended_at: None,
            path: Vec::new(),
            path_dropped: 0,
            interrupted: false,
            skipped: None,
        };
        self.note(&mut run, None, DecisionKind::Entered { trigger: described });
        self.run_steps(flow, &mut run, true);
        self.state.runs.push(run);
    }
}
