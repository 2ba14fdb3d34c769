//! `tutti dead-letters`: actions given up on, with why; replays.

use clap::Subcommand;

use crate::cli::client::{Client, print, query};

#[derive(Subcommand)]
pub(crate) enum DeadLettersCommand {
    /// Dead letters, oldest first, with why each was given up.
    List {
        #[arg(long)]
        connector: Option<String>,
        #[arg(long)]
        flow: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make dead letters pending again: those named by SEQ, or all of a --connector or --flow, or --all.
    Replay {
        seqs: Vec<u64>,
        #[arg(long)]
        connector: Option<String>,
        #[arg(long)]
        flow: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

pub(crate) fn dead_letters(command: DeadLettersCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List { connector, flow, limit, json } => {
            let query = query(limit, &[("connector", &connector), ("flow", &flow)]);
            let page = client.call("GET", &format!("/api/v1/dead-letters{query}"))?;
            if json {
                return print(&page);
            }
            let letters = page["dead_letters"].as_array().cloned().unwrap_or_default();
            if letters.is_empty() {
                say!("no dead letters");
            }
            for d in &letters {
                say!(
                    "{:>8}  {}  {:<8} {:<36} {}",
                    d["seq"],
                    d["queued_at"].as_str().unwrap_or(""),
                    d["connector"].as_str().unwrap_or(""),
                    d["key"].as_str().unwrap_or(""),
                    d["error"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        DeadLettersCommand::Replay { seqs, connector, flow, all } => {
            let body = serde_json::json!({"seqs": seqs, "connector": connector, "flow": flow, "all": all});
            let answer = client.send("POST", "/api/v1/dead-letters/replay", Some(&body))?;
            say!("replayed {}", answer["replayed"]);
            Ok(())
        }
    }
}
