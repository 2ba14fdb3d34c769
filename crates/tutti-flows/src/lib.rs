//! Flows, segments and policies: their definitions (YAML files, one object each), the checks `tutti flows
//! validate` runs, and the pure machine that runs them (`apply(state, input, now) -> effects`).
//!
//! - [`def`]: a flow's trigger, entry rules, steps and exits, compiled from YAML with every problem located.
//! - [`segment`]: segment definitions and their incremental membership (traits and behaviour windows).
//! - [`policy`]: consent, suppression, frequency caps and quiet hours, checked when an action is dispatched.
//! - [`machine`]: one profile's runs, segments and policy state, advanced by events and by time.

pub mod def;
mod in_force;
pub mod machine;
pub mod policy;
pub mod simulate;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use def::{Flow, Step, StepKind};
pub use in_force::FlowDefinitions;
pub use machine::{
    ApprovalDecision, Decision, DecisionKind, Dispatch, Effect, Input, ProfileState, Run, RunStatus, StepCounts,
    StepKey, WaitOn,
};
pub use policy::Policy;
pub use tutti_core::decode::Problem;
pub use tutti_segments as segment;
pub use tutti_segments::Segment;

use tutti_core::decode;
use tutti_core::yaml;

/// A connector as flows see it: its name, the operations its actions may call and the channel its messages
/// count against for policies. The engine passes the one list of connectors in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    pub name: String,
    pub operations: Vec<OperationInfo>,
    /// The channel policies see when an action does not name one (`email` for SMTP, `webhook` for webhooks).
    pub channel: String,
}

/// One operation of a connector, and the members an action's `with` may give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationInfo {
    pub name: String,
    /// The members `with` may have, checked when the flow is compiled; `None` when `with` is open (a webhook's
    /// body, a log line).
    pub fields: Option<Vec<String>>,
}

/// An operation whose `with` is open.
impl From<&str> for OperationInfo {
    fn from(name: &str) -> Self {
        OperationInfo { name: name.into(), fields: None }
    }
}

/// Any one definition.
#[derive(Debug)]
pub enum Definition {
    Flow(Box<Flow>),
    Segment(Arc<Segment>),
    Policy(Arc<Policy>),
}

impl Definition {
    pub fn kind(&self) -> &'static str {
        match self {
            Definition::Flow(_) => "flow",
            Definition::Segment(_) => "segment",
            Definition::Policy(_) => "policy",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Definition::Flow(f) => &f.id,
            Definition::Segment(s) => &s.id,
            Definition::Policy(p) => &p.id,
        }
    }
}

/// Parses and compiles one definition file; which kind it is follows from its first key (`flow:`,
/// `segment:` or `policy:`). Cross-references (segments a flow names) are checked by [`Definitions::check`].
pub fn compile(source: &str, connectors: &[ConnectorInfo]) -> Result<Definition, Vec<Problem>> {
    let (value, positions) = yaml::load(source)
        .map_err(|e| vec![Problem { pos: e.pos, pointer: String::new(), message: e.message, hint: None }])?;
    let Some(map) = value.as_object() else {
        return Err(vec![Problem {
            pos: positions.of(""),
            pointer: String::new(),
            message: "a definition is a mapping that starts with `flow:`, `segment:` or `policy:`".into(),
            hint: None,
        }]);
    };
    if map.contains_key("flow") {
        let mut flow = def::compile(&value, &positions, connectors)?;
        flow.source = source.to_owned();
        Ok(Definition::Flow(Box::new(flow)))
    } else if map.contains_key("segment") {
        let mut segment = segment::compile(&value, &positions)?;
        segment.source = source.to_owned();
        Ok(Definition::Segment(Arc::new(segment)))
    } else if map.contains_key("policy") {
        let mut policy = policy::compile(&value, &positions)?;
        policy.source = source.to_owned();
        Ok(Definition::Policy(Arc::new(policy)))
    } else {
        Err(vec![Problem {
            pos: positions.of(""),
            pointer: String::new(),
            message: "a definition starts with `flow: <id>`, `segment: <id>` or `policy: <id>`".into(),
            hint: None,
        }])
    }
}

/// Every definition in force, with the versions of flows that runs still use.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    /// Each flow's versions; the highest is current.
    pub flows: BTreeMap<String, BTreeMap<u32, Arc<Flow>>>,
    pub segments: BTreeMap<String, Arc<Segment>>,
    pub policies: BTreeMap<String, Arc<Policy>>,
}

impl Definitions {
    /// Adds a definition; a flow becomes a new version (one above its highest) unless it already has one.
    pub fn insert(&mut self, definition: Definition) {
        match definition {
            Definition::Flow(mut flow) => {
                let versions = self.flows.entry(flow.id.clone()).or_default();
                if flow.version == 0 {
                    flow.version = versions.keys().next_back().copied().unwrap_or(0) + 1;
                }
                versions.insert(flow.version, Arc::from(flow));
            }
            Definition::Segment(s) => {
                self.segments.insert(s.id.clone(), s);
            }
            Definition::Policy(p) => {
                self.policies.insert(p.id.clone(), p);
            }
        }
    }

    /// The current version of each flow that is not retired.
    pub fn current_flows(&self) -> impl Iterator<Item = &Arc<Flow>> {
        self.flows.values().filter_map(|v| v.values().next_back()).filter(|f| !f.retired)
    }

    /// A specific version of a flow.
    pub fn flow(&self, id: &str, version: u32) -> Option<&Arc<Flow>> {
        self.flows.get(id).and_then(|v| v.get(&version))
    }

    /// Problems that cross definitions: segments named by flows that do not exist. Each problem names the
    /// definition it is in.
    pub fn check(&self) -> Vec<(String, Problem)> {
        let mut problems = Vec::new();
        for flow in self.current_flows() {
            for (segment, pointer, pos) in flow.segments_named() {
                if !self.segments.contains_key(segment) {
                    let known: Vec<&str> = self.segments.keys().map(String::as_str).collect();
                    let hint = match decode::closest(segment, &known) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None if known.is_empty() => "no segments are defined".into(),
                        None => format!("defined segments: {}", known.join(", ")),
                    };
                    problems.push((
                        format!("flow {}", flow.id),
                        Problem {
                            pos,
                            pointer: pointer.to_owned(),
                            message: format!("unknown segment `{segment}`"),
                            hint: Some(hint),
                        },
                    ));
                }
            }
        }
        problems
    }
}
