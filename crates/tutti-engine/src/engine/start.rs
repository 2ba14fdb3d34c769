//! Starting the engine: the data directory, secrets, stores, and the threads (intake, processor, dispatcher,
//! checkpointer and the delivery summary it writes), wired together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tutti_log::LocalFeed;
use tutti_store::sqlite;
use tutti_store::{EventReader, ProfileReader};

use crate::delivery_summary::DeliverySummary;
use crate::{
    CHECKPOINT_EVERY, Clock, Config, Engine, EngineError, Intake, Metrics, Secrets, clock, connectors, definitions,
    delivery_policy, dispatch, intake, load_tagger, processor,
};
use tutti_flows::FlowDefinitions;

impl Engine {
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
        crate::bus::check_role(&config)?;
        // An intake only writes the log: no processing, no deliveries, no analytics.
        let processes = config.server.role.processes();
        let dir = config.storage.data_dir.clone();
        sqlite::private_dir(&dir)?;
        let secrets = Secrets::load_or_generate(&dir, &config.auth)?;
        let link_key = secrets.link_key();
        let paths = sqlite::Paths::in_dir(&dir);
        // The writers first: they make the schemas the readers (and the connectors' history) read.
        let processing = match (processes, &config.storage.postgres, &config.bus.nats) {
            (false, _, _) => crate::storage::Processing::None,
            (true, Some(_), Some(_)) => crate::storage::Processing::Shared {
                partitions: config.bus.partitions,
                role: if config.server.role == crate::config::Role::Worker { "worker" } else { "all" },
                erasure_fingerprint: secrets.erasure_key_fingerprint(),
            },
            (true, _, _) => crate::storage::Processing::Alone,
        };
        let state = crate::storage::open_state(&config.storage, &paths, processing)?;
        let cluster = state.cluster;
        let flow_store = state.flows.clone();
        let log = crate::bus::open_log(&config.bus, &paths.events, config.intake.dedup_retention)?;
        let store = state.store;
        let store_checkpointer = state.checkpointer;
        let events: Arc<dyn EventReader> = log.reader.clone();
        let profiles: Arc<dyn ProfileReader> = state.profiles.clone();
        let memory: Arc<dyn tutti_connectors::Memory> =
            Arc::new(connectors::StoreMemory { store: state.beside.memory, clock: clock.clone() });
        // Workers sharing a database each deliver their own partitions' decisions: the website's asks read them
        // from the database.
        let decisions = match config.storage.postgres {
            Some(_) => tutti_connectors::decide::Decisions::read_through(memory.clone()),
            None => tutti_connectors::decide::Decisions::default(),
        };
        let shared = tutti_connectors::Shared {
            memory,
            decisions: Arc::new(decisions),
            ai: Arc::default(),
            audit: Arc::new(connectors::StoreAudit(flow_store.clone())),
            history: Arc::new(connectors::StoreHistory { profiles: profiles.clone(), events: events.clone() }),
        };
        shared.decisions.load(&*shared.memory).map_err(EngineError::Connectors)?;
        let registry = connectors::registry(&config, env, &link_key, &shared)?;
        // A second set of clients for health checks, which run on the caller's runtime, not the delivery thread's.
        let checks = connectors::registry(&config, env, &link_key, &shared)?;
        let hooks = connectors::hooks(&config, env)?;
        let metrics = Arc::new(Metrics::default());
        let identity = config.identity.to_core();

        let people = sqlite::SqlitePeople::open(&dir.join(sqlite::PEOPLE_FILE))?;
        let plans = sqlite::SqlitePlans::open(&dir.join(sqlite::PLANS_FILE))?;
        let creatives = state.beside.creatives.clone();
        config.conversations.check().map_err(EngineError::ConversationSettings)?;
        let conversation_settings = config.conversations.clone();
        let conversations = state.beside.conversations.clone();
        // A configured taxonomy is read and trained now, so that a mistake in it stops the start.
        let tagger = std::sync::OnceLock::new();
        if config.insights.taxonomy.is_some() || config.insights.examples.is_some() {
            let _ = tagger.set(load_tagger(&config.insights)?);
        }
        let metrics_layer = Arc::new(load_metrics_layer(&config)?);
        let analytics_path = dir.join(tutti_analytics::sqlite::ANALYTICS_FILE);
        let analytics_writer: crate::analytics::SharedWriter = Arc::new(Mutex::new(
            tutti_analytics::sqlite::SqliteAnalytics::open(&analytics_path)
                .map_err(crate::analytics::AnalyticsError::from)?,
        ));
        if crate::analytics::ensure_layer(&analytics_writer, &metrics_layer)? {
            tracing::info!("the analytics tables are being made from the log for the metrics layer in force");
        }
        let head = events.head()?;
        metrics.log_head.store(head, Ordering::Relaxed);

        let feed = Arc::new(LocalFeed::new(head));
        let processed = Arc::new(LocalFeed::new(0));
        let intake_feed = log.intake_feed(feed.clone());
        let head_watcher = if processes { log.watch(feed.clone())? } else { None };
        let (intake, writer) = Intake::start(
            log.writer,
            intake_feed,
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
        let definitions_write = Arc::new(Mutex::new(()));
        let built = definitions::build(&flow_store.all()?, &flow_store.paused()?);
        // One line per definition in force, so an operator sees at start what the engine will do.
        for flow in built.current_flows() {
            tracing::info!(flow = %flow.id, version = flow.version, retired = flow.retired, "flow loaded");
            // An action on a connector with no configuration would only ever become a dead letter: say so now,
            // not at the first delivery.
            let unconfigured = flow.steps.iter().filter_map(|step| match &step.kind {
                tutti_flows::StepKind::Action(a) if !registry.connectors.contains_key(a.connector.as_str()) => {
                    Some((step.id.as_str(), a.connector.as_str()))
                }
                _ => None,
            });
            for (step, connector) in unconfigured {
                tracing::warn!(flow = %flow.id, step, connector,
                    "this step's connector is not configured (add [connectors.{connector}] to tutti.toml); its actions will be dead letters");
            }
        }
        for id in built.segments.keys() {
            tracing::info!(segment = %id, "segment loaded");
        }
        for id in built.policies.keys() {
            tracing::info!(policy = %id, "policy loaded");
        }
        definitions.set(built);
        let (to_dispatcher, incoming) = mpsc::channel();
        let recording: std::collections::HashSet<String> = registry
            .connectors
            .iter()
            .filter(|(_, built)| built.settings.record_outcomes)
            .map(|(name, _)| (*name).to_owned())
            .collect();
        let policy =
            Arc::new(delivery_policy::DeliveryPolicy::new(definitions.clone(), profiles.clone(), flow_store.clone()));
        let budgets = Arc::new(dispatch::budgets::Budgets::new(
            definitions.clone(),
            Some(flow_store.clone() as Arc<dyn tutti_store::FlowReader>),
        ));
        let (journal_checkpointer, processing, commands_tx) = if processes {
            // One of several workers folds only its partitions: what callers wait on is the whole cluster's
            // progress, which a thread of its own follows.
            let own_processed = if cluster.is_some() { Arc::new(LocalFeed::new(0)) } else { processed.clone() };
            let lanes = dispatch::start_delivery(
                registry,
                clock.clone(),
                metrics.clone(),
                policy.clone(),
                budgets.clone(),
                to_dispatcher.clone(),
            )?;
            let journal = sqlite::SqliteOutcomeJournal::open(&paths.outcomes)?;
            let journal_checkpointer = journal.checkpointer()?;
            let dispatcher = dispatch::Dispatcher {
                outbox: (state.outbox)()?,
                recorder: Some((Box::new(journal), (state.outbox)()?)),
                clock: clock.clone(),
                metrics: metrics.clone(),
                incoming,
                answers: to_dispatcher.clone(),
                lanes,
                outcomes: Some((intake.clone(), recording)),
                policy: policy.clone(),
                budgets: budgets.clone(),
                holds: cluster.as_ref().map(|c| {
                    let ownership = c.ownership.clone();
                    Arc::new(move |partition| ownership.held().1.iter().any(|h| h.partition == partition))
                        as Arc<dyn Fn(u32) -> bool + Send + Sync>
                }),
            };
            let dispatcher =
                std::thread::Builder::new().name("tutti-dispatch".into()).spawn(move || dispatcher.run())?;
            let (commands_tx, commands) = mpsc::channel();
            let worker = processor::Processor {
                store,
                events: events.clone(),
                intake: intake.clone(),
                feed: feed.clone(),
                processed: own_processed.clone(),
                commands,
                identity: identity.clone(),
                erasure_key: secrets.erasure_key,
                metrics: metrics.clone(),
                clock: clock.clone(),
                settings: processor::ProcessorSettings::default(),
                definitions: definitions.clone(),
                dispatcher: dispatch::ToDispatcher(to_dispatcher.clone()),
                policy,
                analytics: Some(analytics_writer.clone()),
                conversations: Some(conversations.clone()),
                partitions: cluster.as_ref().map(|c| processor::Partitions {
                    ownership: c.ownership.clone(),
                    partitioner: tutti_log::HashPartitioner::new(config.bus.partitions),
                    reload_definitions: reload_definitions(
                        definitions.clone(),
                        flow_store.clone(),
                        definitions_write.clone(),
                    ),
                }),
            };
            // Up from here: the thread marks itself down when it ends.
            metrics.processor_up.store(true, Ordering::Relaxed);
            metrics.processor_beat.store(clock::SystemClock.now_ms(), Ordering::Relaxed);
            let processor = std::thread::Builder::new().name("tutti-processor".into()).spawn(move || worker.run())?;
            let projector = crate::analytics::Projector {
                writer: analytics_writer.clone(),
                events: events.clone(),
                profiles: profiles.clone(),
                processed: processed.clone(),
                identity: identity.clone(),
                layer: metrics_layer.clone(),
                metrics: metrics.clone(),
            };
            let projector =
                std::thread::Builder::new().name("tutti-analytics".into()).spawn(move || projector.run())?;
            let mut threads = vec![dispatcher, processor, projector];
            if let Some(cluster) = &cluster {
                let (writer, decisions, memory) =
                    (analytics_writer.clone(), shared.decisions.clone(), shared.memory.clone());
                let erase = Box::new(move |profiles: &[u64]| {
                    let analytics = writer.lock().unwrap_or_else(|e| e.into_inner()).erase(profiles);
                    let memory = profiles.iter().try_for_each(|p| decisions.forget(*p, &*memory).map(drop));
                    match (analytics, memory) {
                        (Ok(_), Ok(())) => true,
                        (a, m) => {
                            let error = a.err().map(|e| e.to_string()).or(m.err()).unwrap_or_default();
                            tracing::warn!(error, "cannot erase here what another worker erased; trying again");
                            false
                        }
                    }
                });
                let reload = reload_definitions(definitions.clone(), flow_store.clone(), definitions_write.clone());
                threads.push(cluster.start_leases(to_dispatcher.clone(), own_processed.clone(), erase, reload)?);
                threads.push(cluster.start_progress(
                    feed.clone(),
                    own_processed,
                    processed.clone(),
                    metrics.clone(),
                )?);
            }
            (Some(journal_checkpointer), threads, Some(commands_tx))
        } else {
            (None, Vec::new(), None)
        };

        let stop_checkpointer = Arc::new(AtomicU64::new(0));
        let checkpointer = {
            let stop = stop_checkpointer.clone();
            let targets: Vec<_> = log
                .checkpointer
                .into_iter()
                .chain([store_checkpointer, journal_checkpointer].into_iter().flatten())
                .collect();
            let (clock, metrics) = (clock.clone(), metrics.clone());
            let every = config.log.delivery_summary.as_millis() as i64;
            let mut summary = DeliverySummary::new(every, clock.now_ms(), &metrics);
            std::thread::Builder::new().name("tutti-checkpoint".into()).spawn(move || {
                while stop.load(Ordering::Relaxed) == 0 {
                    for target in &targets {
                        if let Err(e) = target.run() {
                            tracing::warn!(error = %e, "checkpoint failed");
                        }
                    }
                    if let Some(line) = summary.due(clock.now_ms(), &metrics) {
                        tracing::info!(target: "tutti::deliveries", "{line}");
                    }
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                }
            })?
        };

        let mut boot = [0u8; 6];
        getrandom::fill(&mut boot).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Engine {
            budgets,
            config,
            secrets,
            metrics,
            clock,
            identity,
            intake,
            events,
            profiles,
            processed,
            processor: Mutex::new(commands_tx),
            replays: Mutex::new(to_dispatcher),
            checks,
            hooks,
            decisions: shared.decisions.clone(),
            ai_stats: shared.ai.clone(),
            memory: shared.memory.clone(),
            flow_store,
            _processing_lock: state.lock,
            cluster,
            definitions,
            definitions_write,
            threads: Mutex::new([writer, checkpointer].into_iter().chain(processing).chain(head_watcher).collect()),
            stop_checkpointer,
            message_ids: AtomicU64::new(0),
            boot_id: boot.iter().map(|b| format!("{b:02x}")).collect(),
            creatives,
            conversations,
            mining: Mutex::new(()),
            conversation_settings,
            mining_scheduled: Default::default(),
            people,
            plans,
            sign_in_failures: Default::default(),
            tagger,
            metrics_layer,
            analytics_reader: tutti_analytics::sqlite::SqliteAnalyticsReader::new(&analytics_path),
            analytics_writer,
        })
    }
}

/// Builds `definitions` again from the store: for a worker among several, whose peers' APIs change them too.
fn reload_definitions(
    definitions: Arc<FlowDefinitions>,
    flow_store: Arc<dyn tutti_store::FlowStore>,
    definitions_write: Arc<Mutex<()>>,
) -> crate::cluster::Reload {
    Box::new(move || {
        // Under the lock this worker's own changes take: a build read before one of them would otherwise be
        // installed after it, and hide it until the next change.
        let _guard = definitions_write.lock().unwrap_or_else(|e| e.into_inner());
        let all = flow_store.all().map_err(|e| e.to_string())?;
        let paused = flow_store.paused().map_err(|e| e.to_string())?;
        definitions.set(definitions::build(&all, &paused));
        tracing::debug!("the definitions are built again from the database");
        Ok(())
    })
}

/// The metrics layer: the shipped one, with `[analytics] metrics` laid over it.
pub fn load_metrics_layer(config: &Config) -> Result<tutti_analytics::MetricsLayer, EngineError> {
    let own = match &config.analytics.metrics {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            EngineError::Definitions(format!("the metrics file {} cannot be read: {e}", path.display()))
        })?),
        None => None,
    };
    tutti_analytics::metrics::load(tutti_analytics::metrics::DEFAULTS, own.as_deref()).map_err(|e| {
        let file = config.analytics.metrics.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        EngineError::Definitions(format!("{file} is not valid:\n{e}"))
    })
}
