//! A flow's preview before it is saved: its YAML checked as a save would check it, then played on a
//! simulated clock for one profile (its traits, and its recent events or events given) with nothing sent.
//! The console's flow editor shows the decisions and the messages as they would be rendered.

use serde_json::{Value, json};
use tutti_core::ProfileId;
use tutti_core::time::{Millis, format_timestamp};
use tutti_flows::machine::Decision;
use tutti_flows::{Definition, Definitions, Problem};

use crate::definitions::{dry_run, read_events, read_profiles};
use crate::{Engine, EngineError, connectors};

/// How long a preview lets time run on after the last event: long enough for waits of weeks.
const RUN_ON: Millis = 30 * 86_400_000;
/// The profile's own events a preview plays when none are given: the most recent.
const RECENT_EVENTS: usize = 50;

/// Why a preview could not be played.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The YAML does not compile or names what does not exist: every problem, located.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The events given are not events, or there are none to play.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Plays `source` (a flow's YAML, unsaved) for a profile and events, with every other definition as it is
    /// in force (segments and policies apply; other flows do not run). `events` is JSON lines of Segment calls,
    /// each with its `timestamp`; without it, the profile's most recent events are played again. Returns the
    /// flow's decisions, oldest first. Blocking, and slow-ish: the local model writes any `generate` copy.
    pub fn preview_flow(
        &self,
        source: &str,
        profile: Option<ProfileId>,
        events: Option<&str>,
    ) -> Result<Vec<Decision>, PreviewError> {
        let flow = match tutti_flows::compile(source, &connectors::all()).map_err(PreviewError::Invalid)? {
            Definition::Flow(flow) => flow,
            other => {
                return Err(PreviewError::Input(format!("this is a {}, not a flow", other.kind())));
            }
        };
        let flow_id = flow.id.clone();
        let current = self.flow_definitions();
        let mut trial = Definitions {
            flows: Default::default(),
            segments: current.segments.clone(),
            policies: current.policies.clone(),
        };
        trial.insert(Definition::Flow(flow));
        let problems: Vec<Problem> = trial.check().into_iter().map(|(_, p)| p).collect();
        if !problems.is_empty() {
            return Err(PreviewError::Invalid(problems));
        }
        let mut played = match events.map(str::trim).filter(|e| !e.is_empty()) {
            Some(text) => read_events("events", text).map_err(|e| PreviewError::Input(e.to_string()))?,
            None => Vec::new(),
        };
        let mut profiles = Vec::new();
        if let Some(id) = profile {
            let found = self.profile(id)?.ok_or_else(|| PreviewError::Input(format!("no profile {id}")))?;
            if played.is_empty() {
                let mut recent = self.profile_events(id, None, RECENT_EVENTS)?;
                recent.reverse();
                let lines: Vec<String> = recent
                    .iter()
                    .filter_map(|e| serde_json::from_slice::<Value>(&e.body).ok())
                    .map(|mut body| {
                        if body.get("timestamp").is_none_or(Value::is_null) {
                            body["timestamp"] = json!(format_timestamp(0));
                        }
                        body.to_string()
                    })
                    .collect();
                played = read_events("recent", &lines.join("\n")).map_err(|e| PreviewError::Input(e.to_string()))?;
            }
            let first = played.iter().map(|e| e.timestamp).min().unwrap_or_else(|| self.clock.now_ms());
            profiles = read_profiles("profile", &as_identify(&found.to_public_json()).to_string(), first)
                .map_err(|e| PreviewError::Input(e.to_string()))?;
        }
        if played.is_empty() {
            return Err(PreviewError::Input(
                "nothing to play: pick a profile that has events, or give events (one JSON object a line, each with a timestamp)".into(),
            ));
        }
        let decisions = dry_run(&trial, profiles, played, RUN_ON);
        Ok(decisions.into_iter().filter(|d| d.flow.as_deref() == Some(flow_id.as_str())).collect())
    }
}

/// A profile as the identify call a dry run starts from: its user id (else anonymous id), traits and time zone.
fn as_identify(profile: &Value) -> Value {
    let identities = profile["identities"].as_array().cloned().unwrap_or_default();
    let of = |kind: &str| identities.iter().find(|i| i["type"] == kind).map(|i| i["value"].clone());
    let mut call = json!({"traits": profile["traits"]});
    match (of("user_id"), of("anonymous_id")) {
        (Some(user), _) => call["userId"] = user,
        (None, Some(anonymous)) => call["anonymousId"] = anonymous,
        (None, None) => call["anonymousId"] = profile["id"].clone(),
    }
    if let Some(zone) = profile["timezone"].as_str() {
        call["context"] = json!({"timezone": zone});
    }
    call
}
