//! The `tutti` command: wiring only. `serve` runs the engine; the other commands talk to a running server's
//! admin API.

mod panics;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use tutti_engine::config::{Config, Overrides};
use tutti_engine::{Engine, SystemClock};

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
        /// A taxonomy file of one's own (JSON; `tutti insights taxonomy` prints the default to start from).
        #[arg(long, global = true)]
        taxonomy: Option<PathBuf>,
        /// Labelled creatives (JSON lines) to train the tagger on besides the shipped ones.
        #[arg(long, global = true)]
        examples: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InsightsCommand {
    /// Import creatives and daily performance from a CSV export (Meta Ads Manager, Google Ads or the generic
    /// layout of docs/insights.md). Re-importing the same file changes nothing. New creatives are tagged.
    Import {
        file: PathBuf,
        /// meta, google or generic (default: told from the header).
        #[arg(long)]
        layout: Option<String>,
        /// Channel for rows that do not name one.
        #[arg(long)]
        channel: Option<String>,
        /// The creatives are this competitor's, not ours.
        #[arg(long)]
        competitor: Option<String>,
    },
    /// Tag creatives with the local tagger: those missing a tag, or with --all every one (manual tags stay).
    Tag {
        #[arg(long)]
        all: bool,
    },
    /// Set a tag by hand (it wins and is kept), or with --clear hand the trait back to the tagger.
    SetTag {
        creative: String,
        #[arg(name = "TRAIT")]
        trait_name: String,
        /// The value; omitted with --clear.
        value: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Which traits win on which channel, and how sure the data lets us be.
    Creatives {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// table, json, or html (a self-contained page with charts; see --out).
        #[arg(long, default_value = "table", value_parser = ["table", "json", "html"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Comparisons whose verdict changed since the last time this was asked (the first time: every call).
    Alerts {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Expected click-through of a creative not yet launched, from its tags or its text, with an interval.
    Predict {
        #[arg(long)]
        channel: String,
        /// A tag as trait=value; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Text to tag with the local tagger (tags given with --tag win).
        #[arg(long)]
        headline: Option<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        call_to_action: Option<String>,
    },
    /// Split a budget across a channel's creatives by Thompson sampling; a proposal for a person to approve.
    Budget {
        #[arg(long)]
        channel: String,
        /// The amount to split, in the account's currency.
        #[arg(long)]
        budget: f64,
        #[arg(long)]
        campaign: Option<String>,
        /// The least share any creative keeps.
        #[arg(long, default_value_t = 0.02)]
        floor: f64,
        /// clicks or conversions.
        #[arg(long, default_value = "conversions", value_parser = ["clicks", "conversions"])]
        objective: String,
    },
    /// The share of each trait value in our creatives and each competitor's, by month of launch.
    Competitors,
    /// Accuracy of the local tagger per trait and language on a labelled file (default: the shipped
    /// evaluation set).
    EvaluateTagger { file: Option<PathBuf> },
    /// Print the taxonomy in use (the default unless --taxonomy) as JSON, with its cue phrases: a starting
    /// point for a taxonomy of one's own.
    Taxonomy,
    /// Write story S6's synthetic campaign (three channels, a planted effect) into the data directory, to try
    /// the commands on.
    Demo {
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum FlowsCommand {
    /// Check definition files (or directories of them): every problem with file, line and a hint.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Play events through the definitions on a simulated clock (event timestamps drive time) and print every
    /// decision: actions with their rendered payloads, waits, branches, skips and their reasons.
    Test {
        /// Flow, segment and policy files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Segment events, one JSON object per line, each with a `timestamp`.
        #[arg(long)]
        events: PathBuf,
        /// Profiles to start from, one JSON object per line (`userId`, `traits`, `context.timezone`).
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// `text`, or `json` for one JSON object per decision.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// How long the clock runs on after the last event, so waits play out.
        #[arg(long, default_value = "30d")]
        run_on: String,
    },
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Configuration file (default: ./tutti.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8910).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (default ./tutti-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Flow, segment and policy files loaded at start (default ./flows when present).
    #[arg(long)]
    flows_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ClientArgs {
    /// Base URL of the Tutti server.
    #[arg(long, global = true, env = "TUTTI_URL", default_value = "http://127.0.0.1:8910")]
    url: String,
    /// Admin token (default: TUTTI_ADMIN_TOKEN, else read from the data directory).
    #[arg(long, global = true)]
    token: Option<String>,
    /// Data directory to read the admin token from.
    #[arg(long, global = true, default_value = "./tutti-data")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum ConnectorsCommand {
    /// Every connector, whether it is configured, and its limits.
    List,
    /// Run a connector's health check (its real send path, with nothing a customer sees).
    Check { name: String },
}

#[derive(clap::Args)]
struct ReviewArgs {
    /// The copy to review (the message body); `-` reads it from standard input.
    text: String,
    /// A subject line, reviewed as its own field.
    #[arg(long)]
    subject: Option<String>,
    /// The channel, for length limits (email, sms, push, zalo, ...).
    #[arg(long, default_value = "email")]
    channel: String,
    /// The packs to apply, comma-separated (built in: general, finance, health).
    #[arg(long, value_delimiter = ',', default_value = "general")]
    packs: Vec<String>,
    /// A directory of pack files: each adds a pack, or replaces the built-in pack of its name.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The company's own contact details, allowed in any copy (a hotline, a support address); repeatable.
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// Also print the copy repaired as the rules say (drop the sentence, add the disclosure, ...).
    #[arg(long)]
    revise: bool,
    /// Print the review as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum HooksCommand {
    /// Check a hook file and print, one JSON object per line, the events a payload maps to (signatures are not
    /// checked, and secrets need not be set).
    Test {
        file: PathBuf,
        /// The payload (JSON) as the vendor would send it.
        #[arg(long)]
        payload: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeadLettersCommand {
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

#[derive(Subcommand)]
enum ApprovalsCommand {
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
    /// Approve a run's message as it is, or edited (--subject, --body, --edit field=text).
    Approve {
        run: String,
        /// Who approves (recorded on the message and in the audit log).
        #[arg(long)]
        by: String,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        body: Option<String>,
        /// Any other field of the message: `field=text` (repeatable).
        #[arg(long = "edit", value_name = "FIELD=TEXT")]
        edits: Vec<String>,
    },
    /// Reject a run's message with a reason: it is never sent.
    Reject {
        run: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
struct AuditArgs {
    /// `model_call` or `approval`.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    flow: Option<String>,
    #[arg(long)]
    run: Option<String>,
    /// A profile id such as p42.
    #[arg(long)]
    profile: Option<String>,
    /// RFC 3339, inclusive.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339, exclusive.
    #[arg(long)]
    until: Option<String>,
}

#[derive(Subcommand)]
enum ProfilesCommand {
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
enum EventsCommand {
    /// Print the newest events, and with --follow keep printing new ones as they arrive.
    Tail {
        #[arg(long, short = 'n', default_value_t = 10)]
        limit: usize,
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config(args) => {
            let config = load_config(&args)?;
            say!("{config:#?}");
            Ok(())
        }
        Command::Profiles { command, client } => profiles(command, &Client::new(client)?),
        Command::Flows { command } => flows(command),
        Command::Insights { command, data_dir, taxonomy, examples } => {
            let config = tutti_engine::config::InsightsConfig { taxonomy, examples };
            insights(command, &data_dir, &config)
        }
        Command::Connectors { command, client } => connectors(command, &Client::new(client)?),
        Command::DeadLetters { command, client } => dead_letters(command, &Client::new(client)?),
        Command::Approvals { command, client } => approvals(command, &Client::new(client)?),
        Command::Audit { filter, client } => audit(&filter, &Client::new(client)?),
        Command::Hooks { command: HooksCommand::Test { file, payload } } => hooks_test(&file, &payload),
        Command::Review(args) => review(args),
        Command::Events { command: EventsCommand::Tail { limit, follow }, client } => {
            tail(&Client::new(client)?, limit, follow)
        }
    }
}

fn flows(command: FlowsCommand) -> anyhow::Result<()> {
    use tutti_engine::definitions;
    let paths = match &command {
        FlowsCommand::Validate { paths } | FlowsCommand::Test { paths, .. } => paths,
    };
    let (defs, problems) = definitions::load(paths);
    for problem in &problems {
        eprintln!("{problem}");
    }
    if !problems.is_empty() {
        bail!("{} problem(s) found", problems.len());
    }
    match command {
        FlowsCommand::Validate { .. } => {
            let flows = defs.flows.len();
            say!("ok: {flows} flow(s), {} segment(s), {} policy(ies)", defs.segments.len(), defs.policies.len());
            Ok(())
        }
        FlowsCommand::Test { events, profiles, format, run_on, .. } => {
            let run_on = tutti_core::time::parse_duration(&run_on).map_err(anyhow::Error::msg).context("--run-on")?;
            let name = events.display().to_string();
            let text = std::fs::read_to_string(&events).with_context(|| format!("reading {name}"))?;
            let events = definitions::read_events(&name, &text)?;
            let first = events.iter().map(|e| e.timestamp).min().unwrap_or(0);
            let profiles = match profiles {
                Some(path) => {
                    let name = path.display().to_string();
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {name}"))?;
                    definitions::read_profiles(&name, &text, first)?
                }
                None => Vec::new(),
            };
            let decisions = definitions::dry_run(&defs, profiles, events, run_on);
            let mut out = std::io::stdout().lock();
            for decision in &decisions {
                let line = if format == "json" { decision_json(decision) } else { decision_text(decision) };
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
    }
}

/// One decision as a JSON object, with its time as RFC 3339.
fn decision_json(decision: &tutti_core::flow::Decision) -> String {
    let mut value = serde_json::to_value(decision).expect("decisions serialise");
    if let Some(object) = value.as_object_mut() {
        object.insert("time".into(), tutti_core::time::format_timestamp(decision.at).into());
        for key in ["until"] {
            if let Some(ms) = object.get(key).and_then(Value::as_i64) {
                object.insert(key.into(), tutti_core::time::format_timestamp(ms).into());
            }
        }
        object.remove("at");
    }
    value.to_string()
}

/// One decision as a line of text.
fn decision_text(decision: &tutti_core::flow::Decision) -> String {
    use tutti_core::flow::DecisionKind as K;
    use tutti_core::time::format_timestamp as ts;
    let whose = match (&decision.flow, &decision.run, &decision.step) {
        (Some(f), Some(r), Some(s)) => format!("{f} run {r} step {s}"),
        (Some(f), Some(r), None) => format!("{f} run {r}"),
        (Some(f), None, _) => f.clone(),
        _ => "-".to_owned(),
    };
    let what = match &decision.kind {
        K::Entered { trigger } => format!("entered on {trigger}"),
        K::NotEntered { reason } => format!("not entered: {reason}"),
        K::Action { connector, operation, key, channel, category, payload } => {
            format!("ACTION {connector}.{operation} [{channel}/{category}] key {key} {payload}")
        }
        K::Skipped { reason } => format!("SKIPPED {reason}"),
        K::Deferred { until, reason } => format!("DEFERRED until {}: {reason}", ts(*until)),
        K::Waiting { until, reason } => format!("waiting until {}: {reason}", ts(*until)),
        K::Resumed { reason } => format!("resumed: {reason}"),
        K::Branch { arm, reason } => format!("branch arm {arm}: {reason}"),
        K::Split { arm, holdout } => format!("split arm {arm}{}", if *holdout { " (holdout)" } else { "" }),
        K::ProfileUpdated { traits } => format!("profile updated {traits}"),
        K::Result { key } => format!("result of {key}"),
        K::Exited { reason } => format!("EXITED {reason}"),
        K::Failed { reason } => format!("FAILED {reason}"),
        K::Completed => "completed".to_owned(),
        K::Goal { event } => format!("GOAL {event}"),
        K::SegmentEntered { segment } => format!("entered segment {segment}"),
        K::SegmentLeft { segment } => format!("left segment {segment}"),
        K::Suppressed { policy, categories, until } => {
            format!("SUPPRESSED {} until {} by policy {policy}", categories.join(", "), ts(*until))
        }
        K::Error { reason } => format!("ERROR {reason}"),
        K::ApprovalRequested { reason, until, escalated_to } => match escalated_to {
            Some(to) => format!("APPROVAL escalated to {to} until {}: {reason}", ts(*until)),
            None => format!("APPROVAL needed by {}: {reason}", ts(*until)),
        },
        K::Approved { by, edited } => format!("APPROVED by {by}{}", if *edited { " (edited)" } else { "" }),
        K::Rejected { by, reason } => format!("REJECTED by {by}: {reason}"),
        K::ApprovalExpired { fallback } => format!("APPROVAL EXPIRED: {fallback}"),
    };
    format!("{}  profile {}  {whose}  {what}", ts(decision.at), decision.profile)
}

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let overrides =
        Overrides { listen: args.listen, data_dir: args.data_dir.clone(), flows_dir: args.flows_dir.clone() };
    Ok(Config::load(args.config.as_deref(), std::env::vars(), &overrides)?)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let level: tracing::Level =
        config.log.level.parse().with_context(|| format!("log.level {:?}", config.log.level))?;
    tracing_subscriber::fmt().with_max_level(level).with_target(false).init();
    panics::report_through_the_log();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listen = config.server.listen;
        let data_dir = config.storage.data_dir.clone();
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let engine =
            Arc::new(tokio::task::spawn_blocking(move || Engine::start(config, Arc::new(SystemClock))).await??);
        if !engine.secrets.generated.is_empty() {
            // Shown once, on the terminal only (never through the log); afterwards they live in the data dir.
            println!(
                "Generated new credentials, stored in {}:",
                data_dir.join(tutti_engine::secrets::SECRETS_FILE).display()
            );
            if engine.secrets.generated.contains(&"write_key") {
                println!("  write key:   {}", engine.secrets.write_key);
            }
            if engine.secrets.generated.contains(&"admin_token") {
                println!("  admin token: {}", engine.secrets.admin_token);
            }
        }
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %data_dir.display(), "tutti is listening");
        println!("Tutti listening on http://{addr} (data in {})", data_dir.display());
        tutti_server::serve(engine.clone(), listener, shutdown_signal()).await?;
        tracing::info!("shutting down: committing queued events");
        tokio::task::spawn_blocking(move || engine.shutdown()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Client {
    fn new(args: ClientArgs) -> anyhow::Result<Client> {
        let token = match args.token.or_else(|| std::env::var("TUTTI_ADMIN_TOKEN").ok()) {
            Some(t) => t,
            None => {
                let path = args.data_dir.join(tutti_engine::secrets::SECRETS_FILE);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("no --token, no TUTTI_ADMIN_TOKEN, and cannot read {}", path.display()))?;
                text.lines()
                    .find_map(|l| l.strip_prefix("admin_token = "))
                    .map(|v| v.trim().trim_matches('"').to_owned())
                    .with_context(|| format!("{} holds no admin_token", path.display()))?
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client { agent, url: args.url.trim_end_matches('/').to_owned(), token })
    }

    fn call(&self, method: &str, path: &str) -> anyhow::Result<Value> {
        self.send(method, path, None)
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let response = match (method, body) {
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", &auth).call(),
            ("POST", Some(body)) => self.agent.post(&url).header("Authorization", &auth).send_json(body),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        let mut response = response.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let body: Value =
            response.body_mut().read_json().with_context(|| format!("{url} answered {status} without JSON"))?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("unknown error");
            let code = body["error"]["code"].as_str().unwrap_or("?");
            bail!("{status} {code}: {message}");
        }
        Ok(body)
    }
}

fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' | b'+' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `?limit=N` (1 to 1,000) and the parameters that are set, encoded.
fn query(limit: usize, params: &[(&str, &Option<String>)]) -> String {
    let mut query = format!("?limit={}", limit.clamp(1, 1000));
    for (key, value) in params {
        if let Some(v) = value {
            // `+` in a query means a space; times carry it as an offset.
            query.push_str(&format!("&{key}={}", encode(v).replace('+', "%2B")));
        }
    }
    query
}

fn print(value: &Value) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn profiles(command: ProfilesCommand, client: &Client) -> anyhow::Result<()> {
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

fn connectors(command: ConnectorsCommand, client: &Client) -> anyhow::Result<()> {
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

fn hooks_test(file: &std::path::Path, payload: &std::path::Path) -> anyhow::Result<()> {
    let source = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // A dry run checks the mapping, not the signature: any secret the file names reads as a placeholder.
    let placeholder = |_: &str| Some("dry-run".to_owned());
    let hook = match tutti_connectors::inbound::compile(&file.display().to_string(), &source, &placeholder) {
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
    if events.is_empty() {
        eprintln!("no mapping matched: the payload becomes no event");
    }
    for event in events {
        say!("{}", serde_json::to_string(&event)?);
    }
    Ok(())
}

fn review(args: ReviewArgs) -> anyhow::Result<()> {
    use tutti_ai::review::{Draft, Gate, Recipient};
    let body = if args.text == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        args.text.clone()
    };
    let gate = Gate::load(args.dir.as_deref())?.allow_contacts(args.allow.iter().cloned());
    let selection = gate.select(&args.packs)?;
    let mut fields = Vec::new();
    if let Some(subject) = &args.subject {
        fields.push(("subject", subject.as_str()));
    }
    fields.push(("body", body.trim_end_matches('\n')));
    let draft = Draft::new(&args.channel, &fields);
    let review = gate.review(&draft, &Recipient::default(), selection);
    let revised = if args.revise && !review.passed { gate.revise(&draft, &review) } else { None };
    if args.json {
        let revised = revised.as_ref().map(|d| {
            d.fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<String, Value>>()
        });
        say!("{}", serde_json::json!({"passed": review.passed, "violations": review.violations, "revised": revised}));
    } else {
        for v in &review.violations {
            let severity = if v.severity == tutti_ai::review::Severity::Warn { " (warning)" } else { "" };
            let detail = if v.detail.is_empty() { String::new() } else { format!(" ({})", v.detail) };
            say!(
                "{} {}[{}..{}] \u{ab}{}\u{bb}: {}{detail}{severity}",
                v.rule,
                v.field,
                v.start,
                v.end,
                v.excerpt,
                v.says
            );
        }
        say!(
            "{} ({} violation(s); packs: {})",
            if review.passed { "passed" } else { "failed" },
            review.violations.len(),
            args.packs.join(", ")
        );
        if let Some(d) = &revised {
            let again = gate.review(d, &Recipient::default(), selection);
            say!("revised ({}):", if again.passed { "passes" } else { "still fails" });
            for (field, value) in &d.fields {
                say!("  {field}: {value}");
            }
        }
    }
    if !review.passed {
        std::process::exit(1);
    }
    Ok(())
}

fn dead_letters(command: DeadLettersCommand, client: &Client) -> anyhow::Result<()> {
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

fn approvals(command: ApprovalsCommand, client: &Client) -> anyhow::Result<()> {
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
        ApprovalsCommand::Approve { run, by, subject, body, edits } => {
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
            let request = serde_json::json!({"by": by, "edits": fields});
            let answer = client.send("POST", &format!("/api/v1/approvals/{}/approve", encode(&run)), Some(&request))?;
            let edited = if answer["approval"]["edited"] == true { " (edited)" } else { "" };
            say!("approved{edited}: run {} is {}", run, answer["status"].as_str().unwrap_or("?"));
            Ok(())
        }
        ApprovalsCommand::Reject { run, by, reason } => {
            let request = serde_json::json!({"by": by, "reason": reason});
            let answer = client.send("POST", &format!("/api/v1/approvals/{}/reject", encode(&run)), Some(&request))?;
            say!("rejected: run {} is {}", run, answer["status"].as_str().unwrap_or("?"));
            Ok(())
        }
    }
}

/// Prints every matching audit record as one JSON line, a page at a time.
fn audit(filter: &AuditArgs, client: &Client) -> anyhow::Result<()> {
    let query = query(
        1000,
        &[
            ("kind", &filter.kind),
            ("flow", &filter.flow),
            ("run", &filter.run),
            ("profile", &filter.profile),
            ("since", &filter.since),
            ("until", &filter.until),
        ],
    );
    let mut after = 0u64;
    loop {
        let page = client.call("GET", &format!("/api/v1/audit{query}&after={after}"))?;
        for r in page["records"].as_array().into_iter().flatten() {
            say!("{}", serde_json::to_string(r)?);
        }
        match page["next"].as_u64() {
            Some(n) => after = n,
            None => return Ok(()),
        }
    }
}

fn tail(client: &Client, limit: usize, follow: bool) -> anyhow::Result<()> {
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

/// The shipped evaluation set of the local tagger, for `tutti insights evaluate-tagger`.
const TAGGER_EVALUATION_SET: &str = include_str!("../../tutti-ai/data/creatives/eval.jsonl");

fn insights(
    command: InsightsCommand,
    data_dir: &std::path::Path,
    config: &tutti_engine::config::InsightsConfig,
) -> anyhow::Result<()> {
    let tagger = || tutti_engine::load_tagger(config);
    use tutti_insights::service;
    use tutti_store::CreativeStore;
    let open = || -> anyhow::Result<tutti_store::sqlite::SqliteCreativeStore> {
        tutti_store::sqlite::private_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        Ok(tutti_store::sqlite::SqliteCreativeStore::open(&data_dir.join(tutti_store::sqlite::CREATIVES_FILE))?)
    };
    match command {
        InsightsCommand::Import { file, layout, channel, competitor } => {
            let layout = layout.map(|l| l.parse()).transpose().map_err(anyhow::Error::msg)?;
            let size = std::fs::metadata(&file).with_context(|| format!("reading {}", file.display()))?.len();
            let input = std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
            let store = open()?;
            let tagger = tagger()?;
            let options = tutti_insights::import::ImportOptions { layout, channel, competitor };
            let mut bar = Progress::new(size);
            let summary = service::import(&store, Some(&tagger), input, options, &mut |read| bar.show(read))?;
            bar.finish();
            let (c, p) = (&summary.creatives, &summary.performance);
            say!(
                "{:?} layout: {} rows of performance and {} creatives read",
                summary.layout,
                p.inserted + p.updated + p.unchanged,
                c.inserted + c.updated + c.unchanged
            );
            say!(
                "  creatives: {} new, {} changed, {} unchanged; {} tagged",
                c.inserted,
                c.updated,
                c.unchanged,
                summary.tagged
            );
            say!("  performance rows: {} new, {} changed, {} unchanged", p.inserted, p.updated, p.unchanged);
            if summary.skipped > 0 {
                say!("  {} summary or blank row(s) skipped", summary.skipped);
            }
            if summary.rejected_count > 0 {
                say!("  {} row(s) rejected:", summary.rejected_count);
                for r in &summary.rejected {
                    say!("    line {}: {}", r.line, r.reason);
                }
                if summary.rejected_count > summary.rejected.len() as u64 {
                    say!("    ... and {} more", summary.rejected_count - summary.rejected.len() as u64);
                }
            }
            Ok(())
        }
        InsightsCommand::Tag { all } => {
            let store = open()?;
            let n = service::tag(&store, &tagger()?, all)?;
            say!("{n} creative(s) tagged by the local tagger");
            Ok(())
        }
        InsightsCommand::SetTag { creative, trait_name, value, clear } => {
            let store = open()?;
            match (value, clear) {
                (_, true) => {
                    if store.clear_manual_tag(&creative, &trait_name)? {
                        say!("{creative}: manual {trait_name} cleared; the tagger decides it again");
                    } else {
                        say!("{creative}: no manual {trait_name} to clear");
                    }
                }
                (Some(value), false) => {
                    service::set_manual_tag(&store, &creative, &trait_name, &value)?;
                    say!("{creative}: {trait_name} = {value} (manual)");
                }
                (None, false) => bail!("give a value, or --clear"),
            }
            Ok(())
        }
        InsightsCommand::Creatives { from, to, format, out } => {
            let options = window(from, to)?;
            let store = open()?;
            let report = service::analyze(&store, &options)?;
            let text = match format.as_str() {
                "json" => serde_json::to_string_pretty(&report)? + "\n",
                "html" => tutti_insights::render::html(&report, &service::competitors(&store)?),
                _ => tutti_insights::render::text(&report),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    say!("written to {}", path.display());
                }
                None => say!("{}", text.strip_suffix('\n').unwrap_or(&text)),
            }
            Ok(())
        }
        InsightsCommand::Alerts { from, to } => {
            let found = service::alerts(&open()?, &window(from, to)?)?;
            if found.is_empty() {
                say!("nothing changed since the last look");
            }
            for a in found {
                say!("{}", a.message);
            }
            Ok(())
        }
        InsightsCommand::Predict { channel, tags, headline, body, call_to_action } => {
            let mut given = std::collections::BTreeMap::new();
            for t in tags {
                let (k, v) = t.split_once('=').with_context(|| format!("--tag {t}: expected trait=value"))?;
                given.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            let tagger = tagger()?;
            let (h, b, c) =
                (headline.unwrap_or_default(), body.unwrap_or_default(), call_to_action.unwrap_or_default());
            let text = (!(h.is_empty() && b.is_empty() && c.is_empty())).then_some(tutti_ai::Text {
                headline: &h,
                body: &b,
                call_to_action: &c,
            });
            let p = service::predict(&open()?, &tagger, &channel, given, text, &Default::default())?;
            let pct = |x: f64| format!("{:.2}%", x * 100.0);
            say!(
                "{}: expected click-through {} (one such creative: {} to {}); the channel as a whole: {}",
                p.channel,
                pct(p.click_through.mean),
                pct(p.click_through.low),
                pct(p.click_through.high),
                pct(p.channel_click_through)
            );
            for part in &p.parts {
                say!(
                    "  {}={}: x{:.2} ({:.2} to {:.2}) from {} creatives",
                    part.name,
                    part.value,
                    part.multiplier.mean,
                    part.multiplier.low,
                    part.multiplier.high,
                    part.creatives
                );
            }
            if !p.unknown.is_empty() {
                say!("  not counted (unknown here or too few creatives): {}", p.unknown.join(", "));
            }
            Ok(())
        }
        InsightsCommand::Budget { channel, budget, campaign, floor, objective } => {
            let objective = if objective == "clicks" {
                tutti_insights::budget::Objective::Clicks
            } else {
                tutti_insights::budget::Objective::Conversions
            };
            let options = tutti_insights::budget::BudgetOptions {
                channel,
                campaign,
                budget_micros: (budget * 1e6).round() as i64,
                floor,
                objective,
                draws: 4_000,
                seed: 1,
            };
            let p = service::budget(&open()?, &options, &Default::default())?;
            say!(
                "PROPOSED, for a person to approve: {budget} on {} for {:?}, at least {:.1}% each",
                p.channel,
                p.objective,
                p.floor * 100.0
            );
            say!("  {:<32} {:>9} {:>9} {:>12} {:>9}", "creative", "now", "proposed", "amount", "P(best)");
            for a in &p.allocations {
                say!(
                    "  {:<32} {:>8.1}% {:>8.1}% {:>12.2} {:>8.1}%",
                    a.creative,
                    a.current_share * 100.0,
                    a.share * 100.0,
                    a.budget_micros as f64 / 1e6,
                    a.probability_best * 100.0
                );
            }
            Ok(())
        }
        InsightsCommand::Competitors => {
            for view in service::competitors(&open()?)? {
                say!("{}", view.name);
                for row in view.rows.iter().filter(|r| r.period == "all") {
                    let shares: Vec<String> =
                        row.shares.iter().map(|(v, s)| format!("{v} {:.0}%", s * 100.0)).collect();
                    say!("  {:<16} ({:>4} creatives) {}", row.owner, row.creatives, shares.join(", "));
                }
            }
            Ok(())
        }
        InsightsCommand::EvaluateTagger { file } => {
            let text = match &file {
                Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
                None => TAGGER_EVALUATION_SET.to_owned(),
            };
            let examples = tutti_ai::tagger::read_examples(&text)?;
            let result = tutti_ai::tagger::evaluate(&tagger()?, &examples);
            let languages: std::collections::BTreeSet<&String> =
                result.by_trait.values().flat_map(|m| m.keys()).collect();
            let mut header = format!("{:<10} {:>8}", "trait", "all");
            for l in &languages {
                header.push_str(&format!(" {l:>14}"));
            }
            say!("{header}");
            for (name, per) in &result.by_trait {
                let mut row = format!("{name:<10} {:>7.1}%", 100.0 * result.accuracy(name, None).unwrap_or(0.0));
                for l in &languages {
                    row.push_str(&match per.get(*l) {
                        Some((c, t)) => format!(" {:>6.1}% {:>7}", 100.0 * *c as f64 / *t as f64, format!("{c}/{t}")),
                        None => format!(" {:>14}", "-"),
                    });
                }
                say!("{row}");
            }
            say!("\nconfidence   tags  accuracy  (learned traits: tone, purpose, structure, offer, ...)");
            for (n, (c, t)) in result.by_confidence.iter().enumerate() {
                let range = if n == 0 {
                    "below 0.6".to_owned()
                } else if n == 4 {
                    "0.9-1.0".to_owned()
                } else {
                    format!("{:.1}-{:.1}", 0.5 + n as f64 / 10.0, 0.6 + n as f64 / 10.0)
                };
                if *t > 0 {
                    say!("{range:<10} {t:>6}  {:>7.1}%", 100.0 * *c as f64 / *t as f64);
                }
            }
            Ok(())
        }
        InsightsCommand::Taxonomy => {
            say!("{}", serde_json::to_string_pretty(tagger()?.taxonomy())?);
            Ok(())
        }
        InsightsCommand::Demo { seed } => {
            let store = open()?;
            let campaign = tutti_insights::synth::generate(&tutti_insights::synth::Spec::s6(seed));
            let c = store.put_creatives(&campaign.creatives)?;
            let p = store.put_performance(&campaign.performance)?;
            say!(
                "S6 demo campaign (seed {seed}): {} creatives ({} new), {} performance rows ({} new) in {}",
                campaign.creatives.len(),
                c.inserted,
                campaign.performance.len(),
                p.inserted,
                data_dir.display()
            );
            say!(
                "planted: on facebook, emotional creatives are clicked 30% more often than rational ones; nothing else \
                 has an effect. Expect a few other calls all the same: a value held by a handful of creatives can \
                 lean rational or emotional by chance and inherit the difference (an association, not a cause), and \
                 a 95% bar calls about one comparison in ten that has nothing behind it. Try `tutti insights creatives`."
            );
            Ok(())
        }
    }
}

/// `--from` and `--to` as analysis options.
fn window(from: Option<String>, to: Option<String>) -> anyhow::Result<tutti_insights::Options> {
    tutti_insights::Options::for_days(from.as_deref(), to.as_deref())
        .map_err(|(which, e)| anyhow::Error::msg(e).context(format!("--{which}")))
}

/// A progress bar on standard error, drawn only when it is a terminal.
struct Progress {
    total: u64,
    tty: bool,
    drawn: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        use std::io::IsTerminal;
        Progress { total: total.max(1), tty: std::io::stderr().is_terminal(), drawn: false }
    }

    fn show(&mut self, done: u64) {
        if !self.tty {
            return;
        }
        let share = (done as f64 / self.total as f64).min(1.0);
        let filled = (share * 30.0) as usize;
        eprint!(
            "\r[{}{}] {:>3.0}%  {} / {} bytes",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            share * 100.0,
            done.min(self.total),
            self.total
        );
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
