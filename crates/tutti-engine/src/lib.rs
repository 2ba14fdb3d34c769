//! Tutti's runtime: it owns the threads and the storage, and offers the server a small set of operations.
//!
//! ```text
//! HTTP handlers ──append──> intake (writer thread, group commit) ──> events.db
//!                                   │ publishes the durable head
//!                                   ▼
//!                           processor (one thread) ──> profiles.db
//!                           identity resolution, profiles, erasure
//! ```
//! The engine knows nothing of HTTP; the server knows nothing of SQLite.

pub use tutti_core::clock;
pub mod analytics;
pub mod bus;
mod cluster;
pub mod config;
pub mod connectors;
pub mod definitions;
mod delivery_summary;
mod engine;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod flows;
pub use tutti_intake as intake;
pub use tutti_metrics as metrics;
pub mod people;
pub mod processor;
pub mod secrets;
mod storage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tutti_core::ProfileId;
use tutti_log::LocalFeed;
use tutti_profiles::{Identifier, IdentityConfig};
pub use tutti_store::{Broadcast, DeadLetterFilter, Delivery, DeliveryFilter};
use tutti_store::{EventReader, ProfileReader, StoreError};

use tutti_dispatch::{self as dispatch, delivery_policy};
use tutti_flows::FlowDefinitions;

pub use crate::cluster::ClusterView;
pub use crate::config::Config;
pub use crate::engine::{
    ArmReport, AskError, BroadcastDraft, BroadcastError, BroadcastReview, BroadcastSample, BudgetError, ChannelDay,
    ConnectorsHandle, DEFAULT_TOKEN_DAYS, FlowReport, InsightsHandle, MAX_TOKEN_DAYS, MessageDay, MessageReport,
    PeopleHandle, Person, PlanError, PreviewError, Session, SignedIn, SplitReport, TOKEN_PREFIX, TokenInfo,
    VersionReport,
};
pub use crate::processor::ErasureReport;
pub use crate::secrets::Secrets;
pub use tutti_core::clock::{Clock, ManualClock, SystemClock};
pub use tutti_intake::{Intake, IntakeError};
pub use tutti_metrics::Metrics;
pub use tutti_store::{Appended, NewEvent};

/// How often the background checkpointer copies the write-ahead logs into the databases. Each copy ends with an
/// fsync of the database file, which on one disk holds up the intake's flushes and the processor's commits for
/// as long as it takes. Copying once a second made that a burst: under the flows load, 110-240 ms of copying
/// profiles.db's log every second, with every commit and acknowledgement in that window late (ack → action p99
/// 100-210 ms). Every 50 ms each copy is small and the tail went to 20-43 ms, with the same batch and single-event
/// throughput and a lower acknowledgement p99.9 (9-14 ms against 46-64 ms; docs/benchmarks.md). The bound on each
/// log (see `tutti_store::sqlite`) has the writer start it over when it grows long.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// Engine failures.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the processor is not running")]
    ProcessorGone,
    #[error("processing: {0}")]
    Processing(String),
    #[error("definitions: {0}")]
    Definitions(String),
    /// This process cannot start as configured, and the message says why.
    #[error("{0}")]
    Start(String),
    #[error("insights: {0}")]
    Insights(String),
    #[error("conversations: {0}")]
    ConversationSettings(String),
    #[error("{0}")]
    Connectors(String),
    #[error("analytics: {0}")]
    Analytics(#[from] analytics::AnalyticsError),
    #[error(transparent)]
    Conversations(#[from] tutti_conversations::store::StoreError),
}

/// The local tagger for a configured taxonomy and examples (`[insights]`).
pub fn load_tagger(config: &config::InsightsConfig) -> Result<tutti_ai::LocalTagger, EngineError> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| EngineError::Insights(format!("{}: {e}", path.display())))
    };
    let taxonomy = match &config.taxonomy {
        Some(path) => tutti_ai::Taxonomy::from_json(&read(path)?)
            .map_err(|e| EngineError::Insights(format!("{}: {e}", path.display())))?,
        None => tutti_ai::Taxonomy::default(),
    };
    let examples = match &config.examples {
        Some(path) => tutti_ai::tagger::read_examples(&read(path)?)
            .map_err(|e| EngineError::Insights(format!("{}: {e}", path.display())))?,
        None => Vec::new(),
    };
    let origin = config.taxonomy.as_ref().map_or("the default taxonomy".to_owned(), |p| p.display().to_string());
    tutti_ai::LocalTagger::with_taxonomy(taxonomy, &examples)
        .map_err(|e| EngineError::Insights(format!("{origin}: {e}")))
}

/// Why a definition was refused.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// It does not compile, or names what does not exist: every problem, located.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<tutti_flows::Problem>),
    /// The id in the body is not the id in the path.
    #[error("the definition's id is `{found}`, but the path names `{expected}`")]
    IdMismatch { expected: String, found: String },
    /// A flow where a segment was expected, and so on.
    #[error("this is a {found}, not a {expected}")]
    KindMismatch { expected: String, found: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// An inbound webhook request, as the server received it.
pub struct HookRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
}

/// What an inbound webhook stored: its events, and the conversations its hook maps (`None` when it maps none).
#[derive(Debug)]
pub struct HookDelivery {
    pub appended: Vec<Appended>,
    pub conversations: Option<tutti_conversations::store::Changes>,
}

/// Why an inbound webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no hook serves this source")]
    UnknownSource,
    #[error("signature: {0}")]
    Signature(String),
    #[error("{0}")]
    Payload(String),
    #[error(transparent)]
    Engine(EngineError),
}

/// How an admin names a profile: by id (`p42`) or by one of its identifiers (`email:a@b.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKey {
    Id(ProfileId),
    Identity(Identifier),
}

/// A running engine.
pub struct Engine {
    pub config: Config,
    pub secrets: Secrets,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    identity: IdentityConfig,
    intake: Intake,
    events: Arc<dyn EventReader>,
    profiles: Arc<dyn ProfileReader>,
    processed: Arc<LocalFeed>,
    processor: Mutex<Option<mpsc::Sender<processor::Command>>>,
    /// Where replayed dead letters go (the dispatcher).
    replays: Mutex<mpsc::Sender<dispatch::Incoming>>,
    checks: tutti_connectors::Registry,
    hooks: std::collections::BTreeMap<String, tutti_signals::Hook>,
    decisions: Arc<tutti_connectors::decide::Decisions>,
    ai_stats: Arc<tutti_ai::generate::Stats>,
    memory: Arc<dyn tutti_connectors::Memory>,
    flow_store: Arc<dyn tutti_store::FlowStore>,
    /// On Postgres, the connection holding the lock that makes this the one processing worker.
    _processing_lock: Option<Mutex<tutti_store::postgres::Client>>,
    /// This worker among others, when several share Postgres and the log.
    cluster: Option<cluster::Cluster>,
    definitions: Arc<FlowDefinitions>,
    /// Serialises definition changes (store, then rebuild) with the rebuilds of what other workers changed, so a
    /// rebuild read before a change is never installed after it.
    definitions_write: Arc<Mutex<()>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop_checkpointer: Arc<AtomicU64>,
    message_ids: AtomicU64,
    boot_id: String,
    creatives: Arc<dyn tutti_store::CreativeStore>,
    tagger: std::sync::OnceLock<tutti_ai::LocalTagger>,
    /// Imported calls and chats (`conversations.db`), and one mining at a time over them.
    conversations: Arc<tutti_conversations::store::ConversationStore>,
    mining: Mutex<()>,
    /// A mining of conversations is due (`Engine::mine_conversations_soon`).
    mining_scheduled: std::sync::atomic::AtomicBool,
    conversation_settings: tutti_conversations::settings::Settings,
    people: tutti_store::sqlite::SqlitePeople,
    /// The copilot's plans, every version (`plans.db`).
    plans: tutti_store::sqlite::SqlitePlans,
    sign_in_failures: engine::SignInFailures,
    /// The metrics layer in force, and the analytics store's readers and writer.
    metrics_layer: Arc<tutti_analytics::MetricsLayer>,
    analytics_reader: tutti_analytics::sqlite::SqliteAnalyticsReader,
    analytics_writer: analytics::SharedWriter,
    /// Flows' spend against their budgets, as the dispatcher charges it.
    budgets: Arc<dispatch::budgets::Budgets>,
}

impl Engine {
    /// Whether the engine can do its work: `Err` says why not (the processor stopped, stalled or fell
    /// behind past `[processor]` bounds). What `/healthz` answers.
    pub fn health(&self) -> Result<(), String> {
        if !self.config.server.role.processes() {
            // An intake has no processor; its requests fail on their own when the log cannot take them.
            return Ok(());
        }
        let m = &self.metrics;
        if !m.processor_up.load(Ordering::Relaxed) {
            return Err("the processor is not running; events are kept but no profile or flow moves".into());
        }
        let age = clock::SystemClock.now_ms() - m.processor_beat.load(Ordering::Relaxed);
        let stall = self.config.processor.stall_after;
        if age > stall.as_millis() as i64 {
            return Err(format!("the processor has not come round its loop for {} s", age / 1000));
        }
        let lag = m.log_head.load(Ordering::Relaxed).saturating_sub(m.processed_seq.load(Ordering::Relaxed));
        if lag > self.config.processor.max_lag {
            return Err(format!(
                "the processor is {lag} events behind the log (the bound is {})",
                self.config.processor.max_lag
            ));
        }
        Ok(())
    }

    /// Stops: commits what is queued, lets the processor catch up, stops the threads and waits for them.
    /// Blocking; later requests fail with [`IntakeError::Closed`].
    pub fn shutdown(&self) {
        self.intake.shutdown_blocking();
        self.processor.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.stop_checkpointer.store(1, Ordering::Relaxed);
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            t.thread().unpark();
            if t.join().is_err() {
                tracing::error!("an engine thread panicked");
            }
        }
    }
}
