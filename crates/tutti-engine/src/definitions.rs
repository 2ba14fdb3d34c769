//! Definition files on disk: loading a flows directory, `tutti flows validate` and `tutti flows test`.
//!
//! The checks and the dry run are the core's (`tutti_flows`); this module finds the files, says which file
//! each problem is in, and reads the event files a dry run plays.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use tutti_core::event::{BatchDefaults, Event};
use tutti_core::time::{Millis, parse_timestamp};
use tutti_flows::machine::{Decision, Dispatch};
use tutti_flows::simulate::Simulation;
use tutti_flows::{Definitions, Problem, compile};

use crate::connectors;

/// A problem in a file.
#[derive(Debug, Clone)]
pub struct FileProblem {
    pub file: PathBuf,
    pub problem: Problem,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.problem)
    }
}

/// The YAML files named, each directory's `*.yaml` and `*.yml` files (recursively, in name order).
pub fn expand(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> =
                std::fs::read_dir(path)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
            entries.sort();
            let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|p| p.is_dir());
            out.extend(
                files.into_iter().filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))),
            );
            out.extend(expand(&dirs)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Loads definition files: every problem in every file, and the definitions that compiled.
pub fn load(paths: &[PathBuf]) -> (Definitions, Vec<FileProblem>) {
    let connectors = connectors::all();
    let mut defs = Definitions::default();
    let mut problems = Vec::new();
    let mut origin: BTreeMap<(&'static str, String), PathBuf> = BTreeMap::new();
    let files = match expand(paths) {
        Ok(files) => files,
        Err(e) => {
            problems.push(FileProblem { file: PathBuf::new(), problem: plain(format!("cannot list the files: {e}")) });
            return (defs, problems);
        }
    };
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                problems.push(FileProblem { problem: plain(format!("cannot read the file: {e}")), file });
                continue;
            }
        };
        match compile(&source, &connectors) {
            Ok(definition) => {
                let key = (definition.kind(), definition.id().to_owned());
                if let Some(first) = origin.get(&key) {
                    problems.push(FileProblem {
                        problem: plain(format!("{} `{}` is also defined in {}", key.0, key.1, first.display())),
                        file,
                    });
                    continue;
                }
                origin.insert(key, file);
                defs.insert(definition);
            }
            Err(found) => problems.extend(found.into_iter().map(|problem| FileProblem { file: file.clone(), problem })),
        }
    }
    for (what, problem) in defs.check() {
        let file =
            what.strip_prefix("flow ").and_then(|id| origin.get(&("flow", id.to_owned()))).cloned().unwrap_or_default();
        problems.push(FileProblem { file, problem });
    }
    (defs, problems)
}

fn plain(message: String) -> Problem {
    Problem { pos: Default::default(), pointer: String::new(), message, hint: None }
}

/// Why an events or profiles file cannot be played.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct InputError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The JSON objects of a JSON-lines file with their line numbers (blank lines and lines starting with `//`
/// are skipped).
fn json_lines<'a>(name: &'a str, text: &'a str) -> impl Iterator<Item = Result<(usize, Value), InputError>> + 'a {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            return None;
        }
        Some(serde_json::from_str(line).map(|v| (i + 1, v)).map_err(|e| InputError {
            file: name.to_owned(),
            line: i + 1,
            message: format!("not JSON: {e}"),
        }))
    })
}

/// Reads a JSON-lines file of Segment events.
pub fn read_events(name: &str, text: &str) -> Result<Vec<Event>, InputError> {
    json_lines(name, text)
        .map(|item| {
            let (line, value) = item?;
            let error = |message: String| InputError { file: name.to_owned(), line, message };
            let at = value["timestamp"].as_str().and_then(parse_timestamp).ok_or_else(|| {
                error("every event in a dry run needs a `timestamp` (it is the simulated clock)".into())
            })?;
            let message_id = format!("{name}:{line}");
            Event::from_json(value, None, &BatchDefaults::default(), at, || message_id)
                .map_err(|e| error(format!("{}: {}", e.field, e.reason)))
        })
        .collect()
}

/// Reads a JSON-lines file of profiles (`userId` or `anonymousId`, `traits`, optional `context` with
/// `timezone`) as identify calls placed just before `first_event`.
pub fn read_profiles(name: &str, text: &str, first_event: Millis) -> Result<Vec<Event>, InputError> {
    json_lines(name, text)
        .map(|item| {
            let (line, mut value) = item?;
            let error = |message: String| InputError { file: name.to_owned(), line, message };
            let Some(object) = value.as_object_mut() else { return Err(error("a profile is a JSON object".into())) };
            object.insert("type".into(), "identify".into());
            let at =
                object.get("timestamp").and_then(Value::as_str).and_then(parse_timestamp).unwrap_or(first_event - 1);
            object.insert("timestamp".into(), tutti_core::time::format_timestamp(at).into());
            let message_id = format!("{name}:{line}");
            Event::from_json(value, None, &BatchDefaults::default(), at, || message_id)
                .map_err(|e| error(format!("{}: {}", e.field, e.reason)))
        })
        .collect()
}

/// Plays profiles and events through the definitions on a simulated clock, then lets time run on for
/// `run_on` after the last event. Returns every decision in order.
///
/// Nothing is sent. A `generate` step's copy is written as a server with no model configured writes it (the
/// local provider, reviewed by the built-in packs), so the steps after it (a branch on `passed`, an approval,
/// the send with the subject and body) play as they would; every other action's result is `{"dry_run": true}`.
pub fn dry_run(defs: &Definitions, profiles: Vec<Event>, mut events: Vec<Event>, run_on: Millis) -> Vec<Decision> {
    events.sort_by_key(|e| e.timestamp);
    let mut sim = Simulation::new(defs).with_answers(local_answers());
    let mut all: Vec<Event> = profiles;
    all.sort_by_key(|e| e.timestamp);
    let last = events.last().map(|e| e.timestamp);
    for event in all.iter().chain(events.iter()) {
        sim.event(event);
    }
    if let Some(last) = last {
        sim.run_until(last + run_on);
    }
    sim.decisions
}

/// What a dry run answers: `ai` actions through the `ai` connector with no configuration (the local model, on
/// a runtime of its own driven from a thread of its own, since the caller may be on a runtime already),
/// anything else `{"dry_run": true}`.
fn local_answers() -> Box<dyn FnMut(&Dispatch) -> Value> {
    let shared = tutti_connectors::Shared::in_memory();
    let none = |_: &str| None;
    let cx = tutti_connectors::Context { env: &none, link_key: &[0; 32], shared: &shared };
    let ai = tutti_connectors::Registry::build(&BTreeMap::new(), &cx)
        .ok()
        .and_then(|registry| registry.get("ai").map(|built| built.sender.clone()));
    let blocking = connectors::BlockingSender::new();
    Box::new(move |dispatch| {
        let dry = json!({"dry_run": true});
        let (Some(ai), Some(blocking)) = (ai.as_ref().filter(|_| dispatch.connector == "ai"), blocking.as_ref()) else {
            return dry;
        };
        // The dry run's clock is the triggering event's time: days since an order or a visit count from it.
        let now =
            dispatch.payload["event"]["timestamp"].as_str().and_then(tutti_core::time::parse_timestamp).unwrap_or(0);
        let action = tutti_connectors::Action::of(dispatch, 0, now);
        match blocking.send(&**ai, action, None) {
            Some(Ok(mut answer)) => {
                answer["dry_run"] = json!(true);
                answer
            }
            Some(Err(failure)) => json!({"dry_run": true, "error": failure.message()}),
            None => dry,
        }
    })
}

/// Builds the definitions in force from every stored version: all versions of each flow (runs keep theirs;
/// a deleted flow is retired), the latest version of each segment and policy not deleted. A stored version
/// that no longer compiles (a connector removed since) is skipped with a warning. The latest version of a flow
/// in `paused` is retired while paused.
pub fn build(stored: &[tutti_store::StoredDefinition], paused: &[String]) -> Definitions {
    let connectors = connectors::all();
    let mut defs = Definitions::default();
    let mut latest: BTreeMap<(&str, &str), &tutti_store::StoredDefinition> = BTreeMap::new();
    for d in stored {
        latest.insert((d.kind.as_str(), d.id.as_str()), d);
    }
    for d in stored {
        let is_latest = latest.get(&(d.kind.as_str(), d.id.as_str())).is_some_and(|l| l.version == d.version);
        if d.kind != "flow" && (!is_latest || d.deleted) {
            continue;
        }
        match compile(&d.source, &connectors) {
            Ok(tutti_flows::Definition::Flow(mut flow)) => {
                flow.version = d.version;
                if d.deleted {
                    flow.retired = true;
                }
                if is_latest && paused.contains(&d.id) {
                    flow.retired = true;
                    flow.paused = true;
                }
                defs.insert(tutti_flows::Definition::Flow(flow));
            }
            Ok(other) => defs.insert(other),
            Err(problems) => tracing::warn!(kind = %d.kind, id = %d.id, version = d.version,
                problem = %problems.first().map(ToString::to_string).unwrap_or_default(), "a stored definition no longer compiles; skipped"),
        }
    }
    defs
}

/// Stores each file's definition as a new version when it differs from the latest stored one, so that runs
/// started on an earlier file keep the version they started on.
pub fn store_files(
    store: &dyn tutti_store::DefinitionStore,
    dir: &std::path::Path,
    now: Millis,
) -> Result<Vec<FileProblem>, tutti_store::StoreError> {
    let (defs, problems) = load(&[dir.to_owned()]);
    if !problems.is_empty() {
        return Ok(problems);
    }
    let stored = store.all()?;
    // Each compiled definition keeps its source, so the files are read once.
    let flows = defs.flows.values().flat_map(|v| v.values()).map(|f| ("flow", f.id.as_str(), f.source.as_str()));
    let segments = defs.segments.values().map(|s| ("segment", s.id.as_str(), s.source.as_str()));
    let policies = defs.policies.values().map(|p| ("policy", p.id.as_str(), p.source.as_str()));
    for (kind, id, source) in flows.chain(segments).chain(policies) {
        let current = stored.iter().filter(|d| d.kind == kind && d.id == id).max_by_key(|d| d.version);
        if current.is_none_or(|d| d.source != source || d.deleted) {
            store.put(kind, id, source, now)?;
        }
    }
    Ok(Vec::new())
}
