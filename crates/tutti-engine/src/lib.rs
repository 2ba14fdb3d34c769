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

pub mod clock;
pub mod config;
pub mod connectors;
pub mod definitions;
mod delivery_policy;
mod dispatch;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod flows;
pub mod intake;
pub mod metrics;
pub mod processor;
pub mod secrets;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use tutti_bus::{LocalFeed, LogFeed};
use tutti_core::{Identifier, IdentityConfig, Profile, ProfileId};
pub use tutti_store::DeadLetterFilter;
use tutti_store::sqlite::{
    self, SqliteEventLog, SqliteEventReader, SqliteFlowReader, SqliteOutbox, SqliteProfileReader, SqliteProfileStore,
};
use tutti_store::{
    DefinitionStore, EventReader, FlowReader, MergeRecord, OutboxRow, ProfileReader, StoreError, StoredDefinition,
    StoredEvent,
};

use crate::flows::FlowDefinitions;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::Config;
pub use crate::intake::{Intake, IntakeError};
pub use crate::metrics::Metrics;
pub use crate::processor::ErasureReport;
pub use crate::secrets::Secrets;
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
    #[error("insights: {0}")]
    Insights(String),
    #[error("{0}")]
    Connectors(String),
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
    Invalid(Vec<tutti_core::flow::Problem>),
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
    hooks: std::collections::BTreeMap<String, tutti_connectors::inbound::Hook>,
    decisions: Arc<tutti_connectors::decide::Decisions>,
    ai_stats: Arc<tutti_ai::generate::Stats>,
    memory: Arc<dyn tutti_connectors::Memory>,
    flow_store: Arc<SqliteFlowReader>,
    definitions: Arc<FlowDefinitions>,
    /// Serialises definition changes (store, then rebuild).
    definitions_write: Mutex<()>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop_checkpointer: Arc<AtomicU64>,
    message_ids: AtomicU64,
    boot_id: String,
    creatives: Arc<dyn tutti_store::CreativeStore>,
    tagger: std::sync::OnceLock<tutti_ai::LocalTagger>,
}

impl Engine {
    /// Whether the engine can do its work: `Err` says why not (the processor stopped, stalled or fell
    /// behind past `[processor]` bounds). What `/healthz` answers.
    pub fn health(&self) -> Result<(), String> {
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

    /// Opens the data directory (creating it), loads or generates secrets and starts the threads. Connector
    /// secrets are read from the process environment.
    pub fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        Engine::start_with_env(config, clock, &|name| std::env::var(name).ok())
    }

    /// [`Engine::start`], with connector secrets read through `env` (tests).
    pub fn start_with_env(
        config: Config,
        clock: Arc<dyn Clock>,
        env: tutti_connectors::Env<'_>,
    ) -> Result<Engine, EngineError> {
        let dir = config.storage.data_dir.clone();
        sqlite::private_dir(&dir)?;
        let secrets = Secrets::load_or_generate(&dir, &config.auth)?;
        let link_key = secrets.link_key();
        let memory = connectors::StoreMemory {
            store: sqlite::SqliteConnectorMemory::open(&dir.join(sqlite::CONNECTORS_FILE))?,
            clock: clock.clone(),
        };
        let paths = sqlite::Paths::in_dir(&dir);
        let flow_store = Arc::new(SqliteFlowReader::open(&paths.profiles)?);
        let shared = tutti_connectors::Shared {
            memory: Arc::new(memory),
            decisions: Arc::new(tutti_connectors::decide::Decisions::default()),
            ai: Arc::default(),
            audit: Arc::new(connectors::StoreAudit(flow_store.clone())),
        };
        shared.decisions.load(&*shared.memory).map_err(EngineError::Connectors)?;
        let registry = connectors::registry(&config, env, &link_key, &shared)?;
        // A second set of clients for health checks, which run on the caller's runtime, not the delivery thread's.
        let checks = connectors::registry(&config, env, &link_key, &shared)?;
        let hooks = connectors::hooks(&config, env)?;
        let metrics = Arc::new(Metrics::default());
        let identity = config.identity.to_core();

        let creatives: Arc<dyn tutti_store::CreativeStore> =
            Arc::new(sqlite::SqliteCreativeStore::open(&dir.join(sqlite::CREATIVES_FILE))?);
        // A configured taxonomy is read and trained now, so that a mistake in it stops the start.
        let tagger = std::sync::OnceLock::new();
        if config.insights.taxonomy.is_some() || config.insights.examples.is_some() {
            let _ = tagger.set(load_tagger(&config.insights)?);
        }
        let log = SqliteEventLog::open(&paths.events)?;
        let log_checkpointer = log.checkpointer()?;
        let events: Arc<dyn EventReader> = Arc::new(SqliteEventReader::open(&paths.events)?);
        let profiles: Arc<dyn ProfileReader> = Arc::new(SqliteProfileReader::open(&paths.profiles)?);
        let store = SqliteProfileStore::open(&paths.profiles)?;
        let store_checkpointer = store.checkpointer()?;
        let head = events.head()?;
        metrics.log_head.store(head, Ordering::Relaxed);

        let feed = Arc::new(LocalFeed::new(head));
        let processed = Arc::new(LocalFeed::new(0));
        let (intake, writer) = Intake::start(
            Box::new(log),
            feed.clone(),
            metrics.clone(),
            clock.clone(),
            intake::WriterSettings {
                max_commit_events: config.intake.max_commit_events.max(1),
                dedup_retention_ms: config.intake.dedup_retention.as_millis() as i64,
            },
        )?;
        let flows_dir = config.flows.dir.clone().or_else(|| {
            let default = std::path::PathBuf::from("./flows");
            default.is_dir().then_some(default)
        });
        if let Some(dir) = &flows_dir {
            let problems = definitions::store_files(&*flow_store, dir, clock.now_ms())?;
            if !problems.is_empty() {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                return Err(EngineError::Definitions(format!("{} is not valid:\n{}", dir.display(), text.join("\n"))));
            }
        }
        let definitions = Arc::new(FlowDefinitions::default());
        definitions.set(definitions::build(&flow_store.all()?));
        let (to_dispatcher, incoming) = mpsc::channel();
        let recording: std::collections::HashSet<String> = registry
            .connectors
            .iter()
            .filter(|(_, built)| built.settings.record_outcomes)
            .map(|(name, _)| (*name).to_owned())
            .collect();
        let policy =
            Arc::new(delivery_policy::DeliveryPolicy::new(definitions.clone(), profiles.clone(), flow_store.clone()));
        let lanes =
            dispatch::start_delivery(registry, clock.clone(), metrics.clone(), policy.clone(), to_dispatcher.clone())?;
        let journal = sqlite::SqliteOutcomeJournal::open(&paths.outcomes)?;
        let journal_checkpointer = journal.checkpointer()?;
        let dispatcher = dispatch::Dispatcher {
            outbox: Box::new(SqliteOutbox::open(&paths.profiles)?),
            recorder: Some((Box::new(journal), Box::new(SqliteOutbox::open(&paths.profiles)?))),
            clock: clock.clone(),
            metrics: metrics.clone(),
            incoming,
            answers: to_dispatcher.clone(),
            lanes,
            outcomes: Some((intake.clone(), recording)),
            policy: policy.clone(),
        };
        let dispatcher = std::thread::Builder::new().name("tutti-dispatch".into()).spawn(move || dispatcher.run())?;
        let (commands_tx, commands) = mpsc::channel();
        let worker = processor::Processor {
            store: Box::new(store),
            events: events.clone(),
            intake: intake.clone(),
            feed: feed.clone(),
            processed: processed.clone(),
            commands,
            identity: identity.clone(),
            erasure_key: secrets.erasure_key,
            metrics: metrics.clone(),
            clock: clock.clone(),
            settings: processor::ProcessorSettings::default(),
            definitions: definitions.clone(),
            dispatcher: dispatch::ToDispatcher(to_dispatcher.clone()),
            policy,
        };
        // Up from here: the thread marks itself down when it ends.
        metrics.processor_up.store(true, Ordering::Relaxed);
        metrics.processor_beat.store(clock::SystemClock.now_ms(), Ordering::Relaxed);
        let processor = std::thread::Builder::new().name("tutti-processor".into()).spawn(move || worker.run())?;

        let stop_checkpointer = Arc::new(AtomicU64::new(0));
        let checkpointer = {
            let stop = stop_checkpointer.clone();
            let targets = [log_checkpointer, store_checkpointer, journal_checkpointer];
            std::thread::Builder::new().name("tutti-checkpoint".into()).spawn(move || {
                while stop.load(Ordering::Relaxed) == 0 {
                    for target in &targets {
                        if let Err(e) = target.run() {
                            tracing::warn!(error = %e, "checkpoint failed");
                        }
                    }
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                }
            })?
        };

        let mut boot = [0u8; 6];
        getrandom::fill(&mut boot).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Engine {
            config,
            secrets,
            metrics,
            clock,
            identity,
            intake,
            events,
            profiles,
            processed,
            processor: Mutex::new(Some(commands_tx)),
            replays: Mutex::new(to_dispatcher),
            checks,
            hooks,
            decisions: shared.decisions.clone(),
            ai_stats: shared.ai.clone(),
            memory: shared.memory.clone(),
            flow_store,
            definitions,
            definitions_write: Mutex::new(()),
            threads: Mutex::new(vec![writer, processor, dispatcher, checkpointer]),
            stop_checkpointer,
            message_ids: AtomicU64::new(0),
            boot_id: boot.iter().map(|b| format!("{b:02x}")).collect(),
            creatives,
            tagger,
        })
    }

    /// A message id for an event that came without one: unique per process start and counter.
    pub fn new_message_id(&self) -> String {
        let n = self.message_ids.fetch_add(1, Ordering::Relaxed);
        format!("tutti-{}-{n}", self.boot_id)
    }

    /// Durably appends events; see [`Intake::append`].
    pub async fn ingest(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, EngineError> {
        Ok(self.intake.append(events).await?)
    }

    /// Parses a profile key: `p42`, or `type:value` with the value normalised as identifiers are.
    pub fn parse_key(&self, key: &str) -> Option<ProfileKey> {
        if !key.contains(':') {
            return key.parse().ok().map(ProfileKey::Id);
        }
        self.identity.parse_key(key).ok().map(ProfileKey::Identity)
    }

    /// Resolves a key to a profile id. Blocking (SQLite): call from a blocking context.
    pub fn resolve_key(&self, key: &ProfileKey) -> Result<Option<ProfileId>, EngineError> {
        match key {
            ProfileKey::Id(id) => Ok(self.profiles.profile(*id)?.map(|_| *id)),
            ProfileKey::Identity(identifier) => Ok(self.profiles.owner(identifier)?),
        }
    }

    /// A profile's state. Blocking.
    pub fn profile(&self, id: ProfileId) -> Result<Option<Profile>, EngineError> {
        Ok(self.profiles.profile(id)?)
    }

    /// A page of a profile's events, newest first. Blocking.
    pub fn profile_events(
        &self,
        id: ProfileId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EngineError> {
        let seqs = self.profiles.event_seqs(id, before, limit)?;
        Ok(self.events.read_seqs(&seqs)?)
    }

    /// The merges that built a profile. Blocking.
    pub fn merges(&self, id: ProfileId) -> Result<Vec<MergeRecord>, EngineError> {
        Ok(self.profiles.merges(id)?)
    }

    /// Events of the log after `after`, oldest first. Blocking.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, EngineError> {
        Ok(self.events.read_after(after, limit)?)
    }

    /// The highest durable sequence number.
    pub fn log_head(&self) -> u64 {
        self.metrics.log_head.load(Ordering::Relaxed)
    }

    /// Waits until every event durable at the time of the call is folded into profiles, or `timeout` passes.
    /// Returns whether it caught up. Blocking.
    pub fn sync(&self, timeout: Duration) -> bool {
        let target = self.log_head();
        // Caught up already, or nothing was ever written: answer at once rather than wait for a change.
        if self.processed.head() >= target {
            return true;
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = self
                .processed
                .wait_beyond(target.saturating_sub(1), deadline.saturating_duration_since(std::time::Instant::now()));
            if seen >= target {
                return true;
            }
            if std::time::Instant::now() >= deadline || self.processed.is_closed() {
                return false;
            }
        }
    }

    /// Erases a profile completely: identities, events, merges, state; in-flight events for it are dropped.
    /// `Ok(None)` when no such profile exists.
    pub async fn erase(&self, id: ProfileId) -> Result<Option<ErasureReport>, EngineError> {
        let (reply, answer) = oneshot::channel();
        {
            let guard = self.processor.lock().unwrap_or_else(|e| e.into_inner());
            let tx = guard.as_ref().ok_or(EngineError::ProcessorGone)?;
            tx.send(processor::Command::Erase { profile: id, reply }).map_err(|_| EngineError::ProcessorGone)?;
        }
        let report = answer.await.map_err(|_| EngineError::ProcessorGone)?.map_err(EngineError::Processing)?;
        if report.is_some() {
            // What website slots showed this person goes with them.
            self.decisions.forget(id.0, &*self.memory).map_err(EngineError::Connectors)?;
        }
        Ok(report)
    }

    /// Stores a new version of a flow, segment or policy from its YAML, after checking it against everything
    /// else in force. `kind` and `id` are what the API path names. Returns the version. Blocking.
    pub fn put_definition(&self, kind: &str, id: &str, source: &str) -> Result<u32, DefinitionError> {
        let definition = tutti_core::flow::compile(source, &connectors::all()).map_err(DefinitionError::Invalid)?;
        if definition.kind() != kind {
            return Err(DefinitionError::KindMismatch { expected: kind.into(), found: definition.kind().into() });
        }
        if definition.id() != id {
            return Err(DefinitionError::IdMismatch { expected: id.into(), found: definition.id().into() });
        }
        let _guard = self.definitions_write.lock().unwrap_or_else(|e| e.into_inner());
        let mut trial = (*self.definitions.get()).clone();
        trial.insert(definition);
        let problems: Vec<tutti_core::flow::Problem> = trial.check().into_iter().map(|(_, p)| p).collect();
        if !problems.is_empty() {
            return Err(DefinitionError::Invalid(problems));
        }
        let version = self.flow_store.put(kind, id, source, self.clock.now_ms()).map_err(EngineError::from)?;
        self.reload_definitions()?;
        Ok(version)
    }

    /// Deletes a definition: a flow starts no new runs (runs going finish on their version); a segment or
    /// policy stops applying. Refused while a flow names a segment being deleted. Blocking.
    pub fn delete_definition(&self, kind: &str, id: &str) -> Result<bool, DefinitionError> {
        let _guard = self.definitions_write.lock().unwrap_or_else(|e| e.into_inner());
        if kind == "segment" {
            let mut trial = (*self.definitions.get()).clone();
            trial.segments.remove(id);
            let problems: Vec<tutti_core::flow::Problem> = trial.check().into_iter().map(|(_, p)| p).collect();
            if !problems.is_empty() {
                return Err(DefinitionError::Invalid(problems));
            }
        }
        let existed = self.flow_store.delete(kind, id).map_err(EngineError::from)?;
        self.reload_definitions()?;
        Ok(existed)
    }

    fn reload_definitions(&self) -> Result<(), EngineError> {
        self.definitions.set(definitions::build(&self.flow_store.all()?));
        Ok(())
    }

    /// Stored definitions of a kind: the latest version of each, deleted ones left out. Blocking.
    pub fn definitions(&self, kind: &str) -> Result<Vec<StoredDefinition>, EngineError> {
        let mut latest: std::collections::BTreeMap<String, StoredDefinition> = std::collections::BTreeMap::new();
        for d in self.flow_store.all()?.into_iter().filter(|d| d.kind == kind) {
            latest.insert(d.id.clone(), d);
        }
        Ok(latest.into_values().filter(|d| !d.deleted).collect())
    }

    /// Runs, newest first. Blocking.
    pub fn runs(
        &self,
        profile: Option<ProfileId>,
        flow: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        Ok(self.flow_store.runs(profile, flow, limit)?)
    }

    /// Runs waiting for a person's approval, oldest request first. Blocking.
    pub fn approvals(&self, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        Ok(self.flow_store.approvals(flow, limit)?)
    }

    /// One run (as JSON) and the profile it belongs to. Blocking.
    pub fn run(&self, id: &str) -> Result<Option<(ProfileId, Vec<u8>)>, EngineError> {
        Ok(self.flow_store.run(id)?)
    }

    /// Records a person's decision on a run waiting at the approve step `step`, and continues the run: an
    /// approved message goes out (once), a rejected one does not. Returns the run as it is after the
    /// decision, or `None` when the run did not change (it no longer waits there).
    pub async fn decide_approval(
        &self,
        profile: ProfileId,
        run: &str,
        step: &str,
        decision: tutti_core::flow::machine::ApprovalDecision,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let (reply, answer) = oneshot::channel();
        {
            let guard = self.processor.lock().unwrap_or_else(|e| e.into_inner());
            let tx = guard.as_ref().ok_or(EngineError::ProcessorGone)?;
            let command =
                processor::Command::Approve { profile, run: run.to_owned(), step: step.to_owned(), decision, reply };
            tx.send(command).map_err(|_| EngineError::ProcessorGone)?;
        }
        answer.await.map_err(|_| EngineError::ProcessorGone)?.map_err(EngineError::Processing)
    }

    /// Audit records after `after` that match the filter, oldest first. Blocking.
    pub fn audit(
        &self,
        filter: &tutti_core::audit::AuditFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, tutti_core::audit::AuditRecord)>, EngineError> {
        Ok(tutti_store::AuditLog::audit(&*self.flow_store, filter, after, limit)?)
    }

    /// A page of a segment's members and the total. Blocking.
    pub fn segment_members(
        &self,
        segment: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<ProfileId>, u64), EngineError> {
        Ok((self.flow_store.segment_members(segment, after, limit)?, self.flow_store.segment_count(segment)?))
    }

    /// Outbox rows in a state (`pending`, `done` or `dead`) with their last error. Blocking.
    pub fn outbox(&self, state: &str, limit: usize) -> Result<Vec<(OutboxRow, Option<String>)>, EngineError> {
        Ok(self.flow_store.outbox(state, limit)?)
    }

    /// Dead letters after `after`, oldest first, with why each was given up. Blocking.
    pub fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(OutboxRow, String)>, EngineError> {
        Ok(self.flow_store.dead_letters(filter, after, limit)?)
    }

    /// Makes dead letters pending again (attempts from zero, the same idempotency key) and hands them to the
    /// dispatcher. Returns the rows replayed. Blocking.
    pub fn replay(&self, filter: &DeadLetterFilter, limit: usize) -> Result<Vec<OutboxRow>, EngineError> {
        let rows = self.flow_store.replay(filter, self.clock.now_ms(), limit)?;
        if !rows.is_empty() {
            // If the dispatcher has stopped, the rows are pending in the table for the next start.
            let _ = self.replays.lock().expect("never poisoned").send(dispatch::Incoming::Replayed(rows.clone()));
        }
        Ok(rows)
    }

    /// One-click unsubscribe (RFC 8058): checks the signed token of a `List-Unsubscribe` link and durably records
    /// `email_subscribe: "unsubscribed"` on the profile that owns the address (an `identify` through the log,
    /// like any other event, so it survives a crash and every later email that is not transactional is
    /// stopped by the consent check). Returns the address, or `None` for a token that is not genuine.
    pub async fn unsubscribe(&self, token: &str) -> Result<Option<String>, EngineError> {
        let Some(address) = tutti_connectors::smtp::verify_unsubscribe(&self.secrets.link_key(), token) else {
            return Ok(None);
        };
        // The event names the profile by the id it already has, so it attaches rather than starting a new one.
        let owner = match self.identity.parse_key(&format!("email:{address}")) {
            Ok(id) => self.resolve_key(&ProfileKey::Identity(id))?.and_then(|pid| self.profile(pid).ok().flatten()),
            Err(_) => None,
        };
        let (field, value) = match owner {
            Some(profile) => {
                let first = |kind: tutti_core::IdKind| {
                    profile.identities.iter().find(|i| i.kind == kind).map(|i| i.value.clone())
                };
                match first(tutti_core::IdKind::UserId) {
                    Some(user) => ("userId", user),
                    None => (
                        "anonymousId",
                        first(tutti_core::IdKind::AnonymousId).unwrap_or_else(|| format!("email:{address}")),
                    ),
                }
            }
            None => ("anonymousId", format!("email:{address}")),
        };
        let now = self.clock.now_ms();
        let body = serde_json::json!({
            "type": "identify",
            field: value,
            "traits": {"email": address, "email_subscribe": "unsubscribed"},
            "context": {"source": "tutti.unsubscribe", "channel": "email"},
        });
        let event = tutti_core::Event::from_json(body, None, &tutti_core::BatchDefaults::default(), now, || {
            self.new_message_id()
        })
        .map_err(|e| EngineError::Processing(format!("the unsubscribe event: {e}")))?;
        let new =
            NewEvent { message_id: event.message_id, client_message_id: false, received_at: now, body: event.body };
        self.ingest(vec![new]).await?;
        Ok(Some(address))
    }

    /// An inbound webhook: checks the source's signature, maps the payload to events and stores them durably
    /// (each with a message id stable across the vendor's retries, so a retried delivery changes nothing).
    pub async fn hook(&self, source: &str, request: &HookRequest<'_>) -> Result<Vec<Appended>, HookError> {
        self.verify_hook(source, request)?;
        let hook = &self.hooks[source];
        let now = self.clock.now_ms();
        let payload: serde_json::Value = serde_json::from_slice(request.body)
            .map_err(|e| HookError::Payload(format!("the body is not JSON: {e}")))?;
        let events = hook.apply(&payload).map_err(|e| HookError::Payload(e.0))?;
        let mut new = Vec::with_capacity(events.len());
        for (i, value) in events.into_iter().enumerate() {
            let event = tutti_core::Event::from_json(value, None, &tutti_core::BatchDefaults::default(), now, || {
                self.new_message_id()
            })
            .map_err(|e| HookError::Payload(format!("mapped event {i}: {e}")))?;
            if let Some(field) = event.reserved_identifier() {
                return Err(HookError::Payload(format!(
                    "mapped event {i}: `{field}` uses Tutti's reserved prefix `tutti:`"
                )));
            }
            new.push(NewEvent {
                message_id: event.message_id,
                client_message_id: true,
                received_at: now,
                body: event.body,
            });
        }
        if new.is_empty() {
            return Ok(Vec::new());
        }
        self.ingest(new).await.map_err(HookError::Engine)
    }

    /// Only the signature check of [`Engine::hook`] (Slack's `url_verification` handshake stores nothing).
    pub fn verify_hook(&self, source: &str, request: &HookRequest<'_>) -> Result<(), HookError> {
        let hook = self.hooks.get(source).ok_or(HookError::UnknownSource)?;
        let check = tutti_connectors::inbound::verify::Request {
            method: request.method,
            path_and_query: request.path_and_query,
            headers: request.headers,
            body: request.body,
            now_ms: self.clock.now_ms(),
        };
        hook.verify.check(&check).map_err(HookError::Signature)
    }

    /// What a website slot shows a profile now (set by `decide.set` steps), from memory.
    pub fn decision(&self, profile: ProfileId, slot: &str) -> Option<tutti_connectors::decide::Decision> {
        self.decisions.get(profile.0, slot, self.clock.now_ms())
    }

    /// The sources served under `/hooks/{source}`.
    pub fn hook_sources(&self) -> Vec<&str> {
        self.hooks.keys().map(String::as_str).collect()
    }

    /// The connectors this installation delivers through, with the limits the dispatcher applies.
    /// Generated messages per flow, and how many passed review first time and in the end.
    pub fn ai_stats(&self) -> std::collections::BTreeMap<String, tutti_ai::generate::Counts> {
        self.ai_stats.snapshot()
    }

    pub fn connectors(&self) -> &tutti_connectors::Registry {
        &self.checks
    }

    /// Runs a connector's health check (the real send path, with nothing a customer sees), within its timeout.
    /// `None`: no such connector is configured.
    pub async fn check_connector(&self, name: &str) -> Option<Result<serde_json::Value, tutti_connectors::Failure>> {
        let built = self.checks.get(name)?;
        let timeout = built.settings.timeout;
        Some(match tokio::time::timeout(timeout, built.sender.health()).await {
            Ok(result) => result,
            Err(_) => Err(tutti_connectors::Failure::transient(format!("no answer within {timeout:?}"))),
        })
    }

    /// Profiles waiting on a timer. Blocking.
    pub fn pending_timers(&self) -> Result<u64, EngineError> {
        Ok(self.flow_store.pending_timers()?)
    }

    /// The definitions in force.
    pub fn flow_definitions(&self) -> Arc<tutti_core::flow::Definitions> {
        self.definitions.get()
    }

    /// Stops: commits what is queued, lets the processor catch up, stops the threads and waits for them.
    /// Blocking; later requests fail with [`IntakeError::Closed`].
    /// Creatives and their performance (`creatives.db`).
    pub fn creatives(&self) -> Arc<dyn tutti_store::CreativeStore> {
        self.creatives.clone()
    }

    /// The local creative tagger, trained on first use (a few milliseconds).
    pub fn tagger(&self) -> &tutti_ai::LocalTagger {
        self.tagger.get_or_init(tutti_ai::LocalTagger::new_default)
    }

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
