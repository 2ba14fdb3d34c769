//! The `ai` connector a `tutti.toml` configures, for the harnesses that measure a model (`--config`): built as
//! the engine builds it (secrets from the environment), and asked one operation at a time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;

pub(crate) struct ModelConnector {
    sender: Arc<dyn tutti_connectors::Sender>,
    runtime: tokio::runtime::Runtime,
}

impl ModelConnector {
    /// The `ai` connector of the file's `[connectors.ai]`.
    pub(crate) fn from_config(config: &Path) -> anyhow::Result<ModelConnector> {
        let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
        let toml: toml::Table = text.parse().context("tutti.toml")?;
        let ai =
            toml.get("connectors").and_then(|c| c.get("ai")).cloned().context("no [connectors.ai] in the config")?;
        let tables = BTreeMap::from([("ai".to_owned(), serde_json::to_value(ai)?)]);
        let shared = tutti_connectors::Shared::in_memory();
        let env = |name: &str| std::env::var(name).ok();
        let registry = tutti_connectors::Registry::build(
            &tables,
            &tutti_connectors::Context { env: &env, link_key: &[0; 32], shared: &shared },
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let sender = registry.get("ai").context("the ai connector")?.sender.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(ModelConnector { sender, runtime })
    }

    /// The connector's answer to one `operation` (an internal call: no profile, no tracking).
    pub(crate) fn ask(
        &self,
        flow: &str,
        operation: &str,
        key: &str,
        payload: &Value,
        now: i64,
    ) -> anyhow::Result<Value> {
        let action = tutti_connectors::Action {
            key,
            profile: 0,
            flow,
            step: operation,
            operation,
            category: "internal",
            channel: "ai",
            payload,
            now,
            tracking: false,
        };
        self.runtime.block_on(self.sender.send(action)).map_err(|e| anyhow::anyhow!("{e}"))
    }
}
