//! `tutti approvals`: the approvals inbox.

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use crate::cli::client::{Client, encode, print, query};

#[derive(Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// Runs waiting for approval, oldest request first, with the message to decide on.
    List {
        #[arg(long)]
        flow: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve a run's message as it is, or edited (--subject, --body, --edit field=text). Decided as the person
    /// whose personal token the CLI uses (TUTTI_TOKEN), recorded on the message and in the audit log.
    Approve {
        run: String,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        body: Option<String>,
        /// Any other field of the message: `field=text` (repeatable).
        #[arg(long = "edit", value_name = "FIELD=TEXT")]
        edits: Vec<String>,
    },
    /// Reject a run's message with a reason: it is never sent. Decided as the token's person.
    Reject {
        run: String,
        #[arg(long)]
        reason: String,
    },
}

pub(crate) fn approvals(command: ApprovalsCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        ApprovalsCommand::List { flow, limit, json } => {
            let query = query(limit, &[("flow", &flow)]);
            let page = client.call("GET", &format!("/api/v1/approvals{query}"))?;
            if json {
                return print(&page);
            }
            let items = page["approvals"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                say!("nothing waits for approval");
            }
            for a in &items {
                let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
                say!(
                    "{}  {} v{} step {}  profile {}  expires {}",
                    text(&a["run"]),
                    text(&a["flow"]),
                    a["version"],
                    text(&a["step"]),
                    text(&a["profile"]),
                    text(&a["expires_at"])
                );
                say!("    why: {}", text(&a["reason"]));
                if let Some(content) = a["content"].as_object() {
                    for key in ["subject", "body"] {
                        if let Some(v) = content.get(key).and_then(Value::as_str) {
                            say!("    {key}: {}", v.replace('\n', "\n    "));
                        }
                    }
                }
            }
            Ok(())
        }
        ApprovalsCommand::Approve { run, subject, body, edits } => {
            let mut fields = serde_json::Map::new();
            for e in edits {
                let (k, v) = e.split_once('=').with_context(|| format!("--edit {e:?} is not FIELD=TEXT"))?;
                fields.insert(k.trim().to_owned(), Value::String(v.to_owned()));
            }
            for (k, v) in [("subject", subject), ("body", body)] {
                if let Some(v) = v {
                    fields.insert(k.to_owned(), Value::String(v));
                }
            }
            let request = serde_json::json!({"edits": fields});
            let answer = client.send("POST", &format!("/api/v1/approvals/{}/approve", encode(&run)), Some(&request))?;
            let edited = if answer["approval"]["edited"] == true { ", with your edits" } else { "" };
            say!("approved{edited}; run {run} {}", after_decision(&answer, &run));
            Ok(())
        }
        ApprovalsCommand::Reject { run, reason } => {
            let request = serde_json::json!({"reason": reason});
            let answer = client.send("POST", &format!("/api/v1/approvals/{}/reject", encode(&run)), Some(&request))?;
            say!("rejected; run {run} {}", after_decision(&answer, &run));
            Ok(())
        }
    }
}

/// Where a run stands after a decision, in words.
fn after_decision(answer: &Value, run: &str) -> String {
    match answer["status"].as_str().unwrap_or("") {
        "completed" | "exited" => "went on to the end of its flow".to_owned(),
        "waiting" => "went on and now waits at a later step".to_owned(),
        "awaiting_result" => "went on and waits for a connector's answer".to_owned(),
        "failed" => format!("failed after the decision (`GET /api/v1/runs/{run}` says why)"),
        other => format!("is {other}"),
    }
}
