//! Developer tasks: `cargo xtask load` (the load harness for the tracking API and flows, `load/`), `cargo xtask
//! insights` (the creative analysis benchmark) and `cargo xtask ai` (the review gate's throughput).

mod ai;
mod insights;
mod load;

use clap::{Parser, Subcommand};

use ai::{AiArgs, ai};
use insights::{InsightsArgs, insights};
use load::{LoadArgs, load};

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Load(args) => load(args),
        Task::Insights(args) => insights(args),
        Task::Ai(args) => ai(args),
    }
}
