//! `tutti connectors` and `tutti hooks`: the connectors of a running server; inbound webhook files tried on a
//! sample payload.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;

use crate::cli::client::{Client, encode};

#[derive(Subcommand)]
pub(crate) enum ConnectorsCommand {
    /// Every connector, whether it is configured, and its limits.
    List,
    /// Run a connector's health check (its real send path, with nothing a customer sees).
    Check { name: String },
}

#[derive(Subcommand)]
pub(crate) enum HooksCommand {
    /// Check a hook file and print, one JSON object per line, the events a payload maps to (signatures are not
    /// checked, and secrets need not be set).
    Test {
        file: PathBuf,
        /// The payload (JSON) as the vendor would send it.
        #[arg(long)]
        payload: PathBuf,
    },
}

pub(crate) fn connectors(command: ConnectorsCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        ConnectorsCommand::List => {
            let list = client.call("GET", "/api/v1/connectors")?;
            for c in list["connectors"].as_array().into_iter().flatten() {
                let ops: Vec<&str> =
                    c["operations"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let state = if c["configured"] == true { "configured" } else { "-" };
                say!(
                    "{:<10} {:<11} {:<8} {}",
                    c["name"].as_str().unwrap_or("?"),
                    state,
                    c["channel"].as_str().unwrap_or(""),
                    ops.join(", ")
                );
            }
            Ok(())
        }
        ConnectorsCommand::Check { name } => {
            let answer = client.call("GET", &format!("/api/v1/connectors/{}/health", encode(&name)))?;
            if answer["ok"] == true {
                say!("{name}: ok");
                Ok(())
            } else {
                bail!("{name}: {}", answer["error"].as_str().unwrap_or("failed"))
            }
        }
    }
}

pub(crate) fn hooks_test(file: &std::path::Path, payload: &std::path::Path) -> anyhow::Result<()> {
    let source = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // A dry run checks the mapping, not the signature: any secret the file names reads as a placeholder.
    let placeholder = |_: &str| Some("dry-run".to_owned());
    let hook = match tutti_signals::compile(&file.display().to_string(), &source, &placeholder) {
        Ok(hook) => hook,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            bail!("{} problem(s) found", problems.len());
        }
    };
    let text = std::fs::read_to_string(payload).with_context(|| format!("cannot read {}", payload.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", payload.display()))?;
    let events = hook.apply(&value).map_err(|e| anyhow::anyhow!("{}: {e}", payload.display()))?;
    let conversations = hook.conversations(&value).map_err(|e| anyhow::anyhow!("{}: {e}", payload.display()))?;
    if events.is_empty() && conversations.is_empty() {
        eprintln!("no mapping matched: the payload becomes no event and no conversation");
    }
    for event in events {
        say!("{}", serde_json::to_string(&event)?);
    }
    // Conversations as the server would store them, checked the same way.
    for (i, mapped) in conversations.iter().enumerate() {
        let conversation = tutti_conversations::import::hook::conversation(mapped)
            .map_err(|e| anyhow::anyhow!("{}: mapped conversation {i}: {e}", payload.display()))?;
        say!("{}", serde_json::to_string(&serde_json::json!({ "conversation": conversation }))?);
    }
    Ok(())
}
