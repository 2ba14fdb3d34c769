//! `tutti profiles` and `tutti events`: look up, list and erase profiles; read the event log.

use std::time::Duration;

use clap::Subcommand;

use crate::cli::client::{Client, encode, print};

#[derive(Subcommand)]
pub(crate) enum ProfilesCommand {
    /// Print a profile. KEY is a profile id (p42) or type:value (user_id:42, email:a@b.c).
    Get {
        key: String,
        /// Wait until every event already received is reflected.
        #[arg(long)]
        consistent: bool,
    },
    /// Print a profile's events, newest first.
    Events {
        key: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Print the merges that built a profile.
    Merges { key: String },
    /// Erase a profile completely: identities, events and state.
    Delete { key: String },
}

#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// Print the newest events, and with --follow keep printing new ones as they arrive.
    Tail {
        #[arg(long, short = 'n', default_value_t = 10)]
        limit: usize,
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

pub(crate) fn profiles(command: ProfilesCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        ProfilesCommand::Get { key, consistent } => {
            let query = if consistent { "?consistent=true" } else { "" };
            print(&client.call("GET", &format!("/api/v1/profiles/{}{query}", encode(&key)))?)
        }
        ProfilesCommand::Events { key, limit } => {
            print(&client.call("GET", &format!("/api/v1/profiles/{}/events?limit={limit}", encode(&key)))?)
        }
        ProfilesCommand::Merges { key } => {
            print(&client.call("GET", &format!("/api/v1/profiles/{}/merges", encode(&key)))?)
        }
        ProfilesCommand::Delete { key } => {
            print(&client.call("DELETE", &format!("/api/v1/profiles/{}", encode(&key)))?)
        }
    }
}

pub(crate) fn tail(client: &Client, limit: usize, follow: bool) -> anyhow::Result<()> {
    let mut page = client.call("GET", &format!("/api/v1/events?limit={}", limit.clamp(1, 1000)))?;
    loop {
        for e in page["events"].as_array().into_iter().flatten() {
            let event = &e["event"];
            let who = event["userId"].as_str().or(event["anonymousId"].as_str()).unwrap_or("-");
            let what = event["event"].as_str().or(event["name"].as_str()).unwrap_or("");
            say!(
                "{:>8}  {}  {:<8} {:<24} {}",
                e["seq"],
                e["received_at"].as_str().unwrap_or(""),
                event["type"].as_str().unwrap_or("?"),
                who,
                what
            );
        }
        if !follow {
            return Ok(());
        }
        let after = page["next_after"].as_u64().unwrap_or(0);
        if page["events"].as_array().is_none_or(Vec::is_empty) {
            // Polling an HTTP API from a terminal: a pause between empty polls is the point, not synchronisation.
            std::thread::sleep(Duration::from_millis(500));
        }
        page = client.call("GET", &format!("/api/v1/events?after={after}&limit=1000"))?;
    }
}
