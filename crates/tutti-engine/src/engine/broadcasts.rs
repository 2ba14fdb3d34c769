//! Broadcasts as people make them: a one-off message to a segment's members, reviewed before it is scheduled
//! (how many it reaches, the message rendered for a few of them, what the policies say about each now), sent
//! now or at a time, and cancelled until it is sent. A broadcast is a flow of its own (`broadcast-<id>`:
//! one action, started by the broadcast's signal, entered once per person), so the processor's sending
//! (`processor/broadcast.rs`) goes through everything any flow's action goes through.

use serde_json::{Value, json};
use tutti_core::{Millis, ProfileId};
use tutti_flows::def::StepKind;
use tutti_flows::{Definition, Problem};
use tutti_store::Broadcast;

use crate::{DefinitionError, Engine, EngineError, connectors};

/// What a broadcast sends, and to whom, as a person writes it.
#[derive(Debug, Clone)]
pub struct BroadcastDraft {
    pub name: String,
    pub segment: String,
    /// `connector.operation`, such as `smtp.send`.
    pub action: String,
    /// The action's `with`, as YAML (a mapping whose strings may be Liquid templates over `profile`).
    pub with: String,
    /// What policies see (`promotional` unless said).
    pub category: String,
    /// When it goes; now when `None`.
    pub send_at: Option<Millis>,
}

/// A member's message as it would go, and what the policies say about it now.
#[derive(Debug, Clone)]
pub struct BroadcastSample {
    pub profile: ProfileId,
    pub rendered: Result<Value, String>,
    pub verdict: String,
}

/// What a broadcast would do.
#[derive(Debug, Clone)]
pub struct BroadcastReview {
    pub members: u64,
    pub samples: Vec<BroadcastSample>,
}

/// Why a broadcast was not reviewed or made.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The draft does not make a valid flow: each problem at its line of `with` (line 0: not in `with`).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Members a review renders the message for.
const SAMPLES: usize = 3;
/// Lines of the generated flow before `with`'s own: problems there are moved back by this much.
const HEADER_LINES: usize = 8;

fn source(id: &str, d: &BroadcastDraft) -> String {
    let with: String = d.with.lines().map(|l| format!("      {l}\n")).collect();
    let name = serde_json::to_string(&d.name).unwrap_or_default();
    let category = if d.category.trim().is_empty() { "promotional" } else { d.category.trim() };
    format!(
        "flow: broadcast-{id}\nname: {name}\ncategory: {category}\ntrigger: {{ signal: broadcast-{id} }}\nsteps:\n  - id: send\n    action: {}\n    with:\n{with}",
        d.action.trim()
    )
}

/// A problem of the generated flow, placed in the person's `with` when it is there.
fn placed(mut p: Problem) -> Problem {
    if p.pos.line > HEADER_LINES {
        p.pos.line -= HEADER_LINES;
        p.pos.column = p.pos.column.saturating_sub(6).max(1);
    } else {
        p.pos = Default::default();
    }
    p
}

impl Engine {
    fn compile_broadcast(&self, id: &str, draft: &BroadcastDraft) -> Result<Box<tutti_flows::Flow>, BroadcastError> {
        if !self.flow_definitions().segments.contains_key(draft.segment.trim()) {
            let message = format!("no segment `{}`", draft.segment.trim());
            return Err(BroadcastError::Invalid(vec![Problem {
                pos: Default::default(),
                pointer: String::new(),
                message,
                hint: None,
            }]));
        }
        match tutti_flows::compile(&source(id, draft), &connectors::all()) {
            Ok(Definition::Flow(flow)) => Ok(flow),
            Ok(_) => unreachable!("the source is a flow"),
            Err(problems) => Err(BroadcastError::Invalid(problems.into_iter().map(placed).collect())),
        }
    }

    /// What a draft would do now: how many it reaches, and for the first few members the message as rendered
    /// and what the policies say. Nothing is stored. Blocking.
    pub fn review_broadcast(&self, draft: &BroadcastDraft) -> Result<BroadcastReview, BroadcastError> {
        let flow = self.compile_broadcast("review", draft)?;
        let StepKind::Action(action) = &flow.steps[0].kind else { unreachable!("one action") };
        let segment = draft.segment.trim();
        let (members, count) = self.segment_members(segment, 0, SAMPLES)?;
        let defs = self.flow_definitions();
        let now = self.clock.now_ms();
        let mut samples = Vec::new();
        for pid in members {
            let Some(profile) = self.profile(pid)? else { continue };
            let view = profile.to_public_json();
            let signal = json!({"type": "signal", "signal": "broadcast-review", "properties": {}});
            let rendered = action.with.render(&[("profile", &view), ("event", &signal)]).map_err(|e| e.to_string());
            let state: tutti_flows::ProfileState = self
                .flow_store
                .flow_state(pid)
                .map_err(EngineError::from)?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            let subject =
                tutti_flows::policy::Subject { profile: &view, suppressions: &state.suppressions, sent: &state.sent };
            let verdict = match tutti_flows::policy::check(
                defs.policies.values().map(|p| &**p),
                &subject,
                &action.channel,
                &flow.category,
                now,
            ) {
                tutti_flows::policy::Verdict::Allow => "sent".to_owned(),
                tutti_flows::policy::Verdict::Skip(why) => format!("not sent: {why}"),
                tutti_flows::policy::Verdict::Defer { reason, .. } => format!("later: {reason}"),
            };
            samples.push(BroadcastSample { profile: pid, rendered, verdict });
        }
        Ok(BroadcastReview { members: count, samples })
    }

    /// Makes a broadcast: its flow saved, and the broadcast scheduled. Blocking.
    pub fn create_broadcast(&self, draft: &BroadcastDraft, by: &str) -> Result<Broadcast, BroadcastError> {
        let now = self.clock.now_ms();
        let id = format!("{now:x}");
        self.compile_broadcast(&id, draft)?;
        let flow = format!("broadcast-{id}");
        self.put_definition("flow", &flow, &source(&id, draft), None).map_err(|e| match e {
            DefinitionError::Invalid(problems) => BroadcastError::Invalid(problems.into_iter().map(placed).collect()),
            DefinitionError::Engine(e) => BroadcastError::Engine(e),
            other => BroadcastError::Invalid(vec![Problem {
                pos: Default::default(),
                pointer: String::new(),
                message: other.to_string(),
                hint: None,
            }]),
        })?;
        let broadcast = Broadcast {
            id,
            name: draft.name.trim().to_owned(),
            segment: draft.segment.trim().to_owned(),
            status: "scheduled".into(),
            send_at: draft.send_at.unwrap_or(now),
            created_by: by.to_owned(),
            created_at: now,
            total: 0,
            done: 0,
            next_profile: 0,
            finished_at: None,
        };
        self.flow_store.add_broadcast(&broadcast).map_err(EngineError::from)?;
        let detail = json!({"broadcast": broadcast.id, "name": broadcast.name, "segment": broadcast.segment,
                            "send_at": tutti_core::time::format_timestamp(broadcast.send_at), "change": "scheduled"});
        self.record(tutti_core::audit::AuditKind::Definition, by, Some(&flow), None, detail)?;
        Ok(broadcast)
    }

    /// Every broadcast, newest first. Blocking.
    pub fn broadcasts(&self) -> Result<Vec<Broadcast>, EngineError> {
        Ok(self.flow_store.broadcasts()?)
    }

    /// Cancels a broadcast not yet sent (the members signalled so far keep what they got); `false` when there is
    /// none such. Blocking.
    pub fn cancel_broadcast(&self, id: &str, by: &str) -> Result<bool, EngineError> {
        let cancelled = self.flow_store.cancel_broadcast(id)?;
        if cancelled {
            let detail = json!({"broadcast": id, "change": "cancelled"});
            self.record(tutti_core::audit::AuditKind::Definition, by, Some(&format!("broadcast-{id}")), None, detail)?;
        }
        Ok(cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_in_with_is_placed_on_the_persons_own_line() {
        let draft = BroadcastDraft {
            name: "Tết sale".into(),
            segment: "vip".into(),
            action: "webhook.post".into(),
            with: "url: https://x.example\ntext: 'Chào {{ profile.traits.name'".into(),
            category: String::new(),
            send_at: None,
        };
        let problems = match tutti_flows::compile(&source("b1", &draft), &connectors::all()) {
            Err(problems) => problems.into_iter().map(placed).collect::<Vec<_>>(),
            Ok(_) => panic!("an unclosed template is a problem"),
        };
        assert_eq!(problems[0].pos.line, 2, "{problems:?}");
    }
}
