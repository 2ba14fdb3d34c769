//! The connectors flows can call come from `tutti-connectors` (its `ALL` is the one list). This builds the
//! installation's registry from `[connectors]`.

use std::collections::BTreeMap;

use std::sync::Arc;

use tutti_connectors::{Context, Env, Memory, Registry, Shared};
use tutti_flows::ConnectorInfo;

use crate::{Config, EngineError};

/// Every connector, with its operations and the channel its messages count against (what flows compile against).
pub fn all() -> Vec<ConnectorInfo> {
    tutti_connectors::infos()
}

/// Validates `[connectors]` and builds every connector it enables (and those that need no configuration),
/// without I/O. Every problem is reported at once.
pub fn registry(config: &Config, env: Env<'_>, link_key: &[u8; 32], shared: &Shared) -> Result<Registry, EngineError> {
    let mut tables = BTreeMap::new();
    for (name, table) in &config.connectors {
        let json =
            serde_json::to_value(table).map_err(|e| EngineError::Connectors(format!("[connectors.{name}]: {e}")))?;
        tables.insert(name.clone(), json);
    }
    Registry::build(&tables, &Context { env, link_key, shared }).map_err(|errors| {
        EngineError::Connectors(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    })
}

/// Reads every hook file (`*.yaml`, `*.yml`) of the hooks directory: `[hooks] dir`, else `hooks/` in the data
/// directory when it exists (never the working directory, whose `hooks/` may be anything). Every problem in every
/// file is reported at once, each naming its file; two files may not serve one source.
pub fn hooks(config: &Config, env: Env<'_>) -> Result<BTreeMap<String, tutti_signals::Hook>, EngineError> {
    let dir = match &config.hooks.dir {
        Some(dir) => dir.clone(),
        None => {
            let default = config.storage.data_dir.join("hooks");
            if !default.is_dir() {
                return Ok(BTreeMap::new());
            }
            default
        }
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| EngineError::Connectors(format!("{}: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut hooks = BTreeMap::new();
    let mut problems = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{origin}: {e}"));
                continue;
            }
        };
        match tutti_signals::compile(&origin, &source, env) {
            Ok(hook) => {
                if hooks.contains_key(&hook.source) {
                    problems.push(format!("{origin}: another hook file already serves the source `{}`", hook.source));
                } else {
                    hooks.insert(hook.source.clone(), hook);
                }
            }
            Err(list) => problems.extend(list.iter().map(ToString::to_string)),
        }
    }
    if problems.is_empty() { Ok(hooks) } else { Err(EngineError::Connectors(problems.join("\n"))) }
}

/// The store's connector memory (`connectors.db`, or Postgres's table) as the connectors' [`Memory`], on the
/// engine's clock.
pub struct StoreMemory {
    pub store: Box<dyn tutti_store::ConnectorMemory>,
    pub clock: Arc<dyn crate::Clock>,
}

impl Memory for StoreMemory {
    fn get(&self, connector: &str, key: &str) -> Result<Option<String>, String> {
        self.store.get(connector, key).map_err(|e| e.to_string())
    }

    fn put(&self, connector: &str, key: &str, value: &str) -> Result<(), String> {
        self.store.put(connector, key, value, self.clock.now_ms()).map_err(|e| e.to_string())
    }

    fn remove(&self, connector: &str, keys: &[String]) -> Result<(), String> {
        self.store.remove(connector, keys).map_err(|e| e.to_string())
    }

    fn scan(&self, connector: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<(String, String)>, String> {
        self.store.scan(connector, prefix, after, limit).map_err(|e| e.to_string())
    }

    fn try_hold(&self, connector: &str, key: &str) -> Result<Option<Box<dyn Send>>, String> {
        self.store.try_hold(connector, key).map_err(|e| e.to_string())
    }
}

/// The audit log connectors append to: the `audit` table beside the runs.
pub struct StoreAudit(pub Arc<dyn tutti_store::FlowStore>);

impl tutti_connectors::Audit for StoreAudit {
    fn append(&self, records: Vec<tutti_core::audit::AuditRecord>) -> Result<(), String> {
        self.0.append(&records).map_err(|e| format!("the audit log: {e}"))
    }
}

/// The log as the connectors' [`History`](tutti_connectors::History): a profile's newest events.
pub struct StoreHistory {
    pub profiles: Arc<dyn tutti_store::ProfileReader>,
    pub events: Arc<dyn tutti_store::EventReader>,
}

impl tutti_connectors::History for StoreHistory {
    fn recent(&self, profile: &str, limit: usize) -> Result<Vec<serde_json::Value>, String> {
        let Ok(id) = profile.parse::<tutti_core::profile_id::ProfileId>() else { return Ok(Vec::new()) };
        let seqs = self.profiles.event_seqs(id, None, limit).map_err(|e| e.to_string())?;
        let events = self.events.read_seqs(&seqs).map_err(|e| e.to_string())?;
        Ok(events.iter().rev().filter_map(|e| serde_json::from_slice(&e.body).ok()).collect())
    }
}

/// Sends actions through a connector from blocking code (an approval, a plan's dry run, a flow's dry run) and
/// waits for each answer: on a current-thread runtime of its own, kept for many sends, each driven from a
/// thread of its own since the caller may be on a runtime already.
pub(crate) struct BlockingSender {
    runtime: tokio::runtime::Runtime,
}

impl BlockingSender {
    /// `None` when no runtime can be made.
    pub(crate) fn new() -> Option<BlockingSender> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()
            .map(|runtime| BlockingSender { runtime })
    }

    /// The connector's answer, or its failure (a `timeout` passed is a transient one, "no answer within ...");
    /// `None` when the thread sending it failed.
    pub(crate) fn send(
        &self,
        sender: &dyn tutti_connectors::Sender,
        action: tutti_connectors::Action<'_>,
        timeout: Option<std::time::Duration>,
    ) -> Option<Result<serde_json::Value, tutti_connectors::Failure>> {
        let run = || {
            self.runtime.block_on(async {
                match timeout {
                    Some(t) => tokio::time::timeout(t, sender.send(action)).await.unwrap_or_else(|_| {
                        Err(tutti_connectors::Failure::transient(format!("no answer within {t:?}")))
                    }),
                    None => sender.send(action).await,
                }
            })
        };
        std::thread::scope(|s| s.spawn(run).join().ok())
    }
}
