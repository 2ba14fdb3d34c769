//! Developer tasks: `cargo xtask load` (the load harness for the tracking API and flows, `load/`), `cargo xtask
//! insights` (the creative analysis benchmark), `cargo xtask ai` (the review gate's throughput) and `cargo xtask
//! copy` (the copy the AI layer writes and checks, measured, with every message printed for a person to read),
//! `cargo xtask conversations` (the conversation miner on a million turns), `cargo xtask jetstream` (what JetStream
//! takes from one publisher, with and without syncing each write).

mod ai;
mod analytics;
mod conversations;
mod copy;
mod insights;
mod jetstream;
mod load;
mod model;
mod plans;
mod questions;

use clap::{Parser, Subcommand};

use ai::{AiArgs, ai};
use analytics::{AnalyticsArgs, analytics};
use conversations::{ConversationsArgs, conversations};
use copy::{CopyArgs, copy};
use insights::{InsightsArgs, insights};
use jetstream::{JetStreamArgs, jetstream};
use load::{LoadArgs, load};
use plans::{PlansArgs, plans};
use questions::{QuestionsArgs, questions};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Load-test the tracking API and print a report.
    Load(LoadArgs),
    /// Time the creative analysis over a synthetic campaign and print a report.
    Insights(InsightsArgs),
    /// Time the AI layer's local work (the review gate) and print a report.
    Ai(AiArgs),
    /// Time questions' queries on 10 million events and the projection in a running server.
    Analytics(AnalyticsArgs),
    /// Ask the labelled question suite of a generated shop and print the share answered exactly.
    Questions(QuestionsArgs),
    /// Plan the copilot's goal suite: the local planner's share, and a model's pass^k with `--config`.
    Plans(PlansArgs),
    /// Measure the copy: the review gate, the tagger, generation's first-pass rate, and the messages written.
    Copy(CopyArgs),
    /// Time the conversation miner on a million generated turns and print how the planted topics were found.
    Conversations(ConversationsArgs),
    /// Time JetStream's publishing with and without syncing each write, one event per message and in batches.
    Jetstream(JetStreamArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Load(args) => load(args),
        Task::Insights(args) => insights(args),
        Task::Ai(args) => ai(args),
        Task::Analytics(args) => analytics(args),
        Task::Questions(args) => questions(args),
        Task::Plans(args) => plans(args),
        Task::Copy(args) => copy(args),
        Task::Conversations(args) => conversations(args),
        Task::Jetstream(args) => jetstream(args),
    }
}
