//! The `tutti` command: wiring only. `serve` runs the engine; the other commands talk to a running server's
//! admin API.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use cli::analytics::{AnalyticsCommand, AskArgs, analytics, ask};
use cli::approvals::{ApprovalsCommand, approvals};
use cli::audit::{AuditArgs, audit};
use cli::client::{Client, ClientArgs};
use cli::connectors::{ConnectorsCommand, HooksCommand, connectors, hooks_test};
use cli::conversations::{ConversationsCommand, conversations};
use cli::dead_letters::{DeadLettersCommand, dead_letters};
use cli::flows::{FlowsCommand, flows};
use cli::insights::{InsightsCommand, insights};
use cli::plan::{PlanArgs, plan};
use cli::profiles::{EventsCommand, ProfilesCommand, profiles, tail};
use cli::review::{ReviewArgs, review};
use cli::serve::{ServeArgs, load_config, serve};
use cli::users::{UsersCommand, users};

/// A line to standard output; a closed pipe (`| head`) ends the command quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }};
}

/// mimalloc instead of the C library's allocator: every thread on the path of an action allocates and frees
/// many small, short-lived values (JSON members, run records, HTTP requests). Measured end to end on the flows
/// load scenario, the two built in turns: 9,029 runs/s with it, 7,575 without.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod demo;
mod panics;

#[derive(Parser)]
#[command(name = "tutti", version, about = "Tutti: the marketing orchestration engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine and its HTTP API (embedded storage; no configuration needed).
    Serve(ServeArgs),
    /// A tour: the stories played through a day of customers against local vendor stand-ins, with the console.
    Demo(demo::DemoArgs),
    /// Look up, list the events of, or erase a profile.
    Profiles {
        #[command(subcommand)]
        command: ProfilesCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read the event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the effective configuration, with secrets redacted.
    Config(ServeArgs),
    /// Check flow, segment and policy files, or dry-run them over events.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// The connectors of a running server: what is configured, and a health check of one.
    Connectors {
        #[command(subcommand)]
        command: ConnectorsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check copy against the review gate's rule packs, without a server; exits with 1 when it fails.
    Review(ReviewArgs),
    /// Inbound webhook files: map a sample payload to the events it would become, without a server.
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// Ask a question about your data, in English, Vietnamese or Chinese; answered from Tutti's own events.
    Ask {
        #[command(flatten)]
        args: AskArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The copilot: a goal made into a plan shown for approval, changed, approved or rejected.
    Plan {
        #[command(flatten)]
        args: PlanArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reports' and questions' tables: the metrics layer, their progress, rebuilding them from the log.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Actions given up on: list them with why, and replay them (same idempotency key, attempts from zero).
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The approvals inbox: messages waiting for a person; approve (with edits) or reject them.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The people who sign in to the console: add (the first admin too), list, remove, reset a password.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Export the audit log (every model call and every approval) as JSON Lines.
    Audit {
        #[command(flatten)]
        filter: AuditArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Creatives and their performance: import exports, tag, and see which traits win where.
    Insights {
        #[command(subcommand)]
        command: InsightsCommand,
        /// Data directory holding creatives.db.
        #[arg(long, global = true, default_value = "./tutti-data")]
        data_dir: PathBuf,
        /// The Postgres database the workers share (`[storage] postgres`): creatives are kept there, not in the
        /// data directory.
        #[arg(long, global = true, env = "TUTTI_STORAGE__POSTGRES", hide_env_values = true)]
        postgres: Option<String>,
        /// A taxonomy file of one's own (JSON; `tutti insights taxonomy` prints the default to start from).
        #[arg(long, global = true)]
        taxonomy: Option<PathBuf>,
        /// Labelled creatives (JSON lines) to train the tagger on besides the shipped ones.
        #[arg(long, global = true)]
        examples: Option<PathBuf>,
    },
    /// Sales and support conversations: import calls and chats, the topics customers raise, the replies that win.
    Conversations {
        #[command(subcommand)]
        command: ConversationsCommand,
        /// Data directory holding conversations.db.
        #[arg(long, global = true, default_value = "./tutti-data")]
        data_dir: PathBuf,
        /// The Postgres database the workers share (`[storage] postgres`): conversations are kept there, not in
        /// the data directory.
        #[arg(long, global = true, env = "TUTTI_STORAGE__POSTGRES", hide_env_values = true)]
        postgres: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo(args) => demo::demo(args),
        Command::Config(args) => {
            let config = load_config(&args)?;
            // TOML, as tutti.toml is written; secrets are shown as configured or not, never their values.
            say!("{}", toml::to_string(&config)?.trim_end());
            Ok(())
        }
        Command::Profiles { command, client } => profiles(command, &Client::new(client)?),
        Command::Flows { command } => flows(command),
        Command::Insights { command, data_dir, postgres, taxonomy, examples } => {
            let config = tutti_engine::config::InsightsConfig { taxonomy, examples };
            insights(command, &data_dir, postgres.as_deref(), &config)
        }
        Command::Conversations { command, data_dir, postgres } => {
            conversations(command, &data_dir, postgres.as_deref())
        }
        Command::Connectors { command, client } => connectors(command, &Client::new(client)?),
        Command::DeadLetters { command, client } => dead_letters(command, &Client::new(client)?),
        Command::Ask { args, client } => ask(args, &Client::new(client)?),
        Command::Analytics { command, client } => analytics(command, &Client::new(client)?),
        Command::Plan { args, client } => plan(args, &Client::new(client)?),
        Command::Approvals { command, client } => approvals(command, &Client::new(client)?),
        Command::Audit { filter, client } => audit(&filter, &Client::new(client)?),
        Command::Users { command, client } => users(command, &Client::new(client)?),
        Command::Hooks { command: HooksCommand::Test { file, payload } } => hooks_test(&file, &payload),
        Command::Review(args) => review(args),
        Command::Events { command: EventsCommand::Tail { limit, follow }, client } => {
            tail(&Client::new(client)?, limit, follow)
        }
    }
}
