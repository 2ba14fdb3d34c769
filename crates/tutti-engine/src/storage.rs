//! `[storage]`: where profiles, flows, the outbox, the connectors' memory, creatives and conversations live.
//! Without `postgres` they are SQLite in the data directory (`profiles.db`, `connectors.db`, `creatives.db`,
//! `conversations.db`); with `postgres = "..."` they are Postgres tables (`tutti-store`'s `postgres/`, and
//! `tutti-conversations`' store, migrated at start), which every worker on the database shares. The
//! dispatcher's journal of outcomes stays a file of each process's own (`outcomes.db`): it only bridges the
//! moment between a vendor's answer and its settling.
//!
//! With the log on JetStream too, several workers process at once, each its partitions of the log
//! ([`crate::cluster`]). With the log in SQLite, one worker processes on a Postgres database: it holds a
//! session advisory lock (per schema) for as long as it runs, and a second one refuses to start while the lock
//! is held.

use std::sync::{Arc, Mutex};

use tutti_store::sqlite::{
    self, Checkpointer, SqliteFlowReader, SqliteOutbox, SqliteProfileReader, SqliteProfileStore,
};
use tutti_store::{ConnectorMemory, CreativeStore, FlowStore, Outbox, ProfileReader, ProfileStore};

use tutti_conversations::store::{CONVERSATIONS_FILE, ConversationStore, PgConversationTables};

use crate::EngineError;
use crate::cluster::Cluster;

/// The first key of the advisory lock the processing worker holds; the second is the hash of the schema, so
/// that Tuttis in different schemas of one database do not stand in each other's way.
const PROCESSING_LOCK: i32 = 0x7475_7474;

/// The stores, opened.
pub(crate) struct OpenedState {
    /// The processor's store.
    pub store: Box<dyn ProfileStore>,
    /// SQLite's write-ahead-log checkpointer of `profiles.db` (Postgres has none).
    pub checkpointer: Option<Checkpointer>,
    pub profiles: Arc<dyn ProfileReader>,
    pub flows: Arc<dyn FlowStore>,
    /// The stores beside the processor's: in the data directory, or on the database every process shares.
    pub beside: BesideStores,
    /// Opens an outbox handle for the dispatcher (it takes two: one to read, one to settle).
    pub outbox: Box<dyn Fn() -> Result<Box<dyn Outbox>, EngineError> + Send + Sync>,
    /// The connection that holds the processing lock, kept open for as long as the engine runs.
    pub lock: Option<Mutex<tutti_store::postgres::Client>>,
    /// This worker among others, when several share the database and the log.
    pub cluster: Option<Cluster>,
}

/// How this process processes: not at all (an intake), alone, or as one of several workers sharing the log's
/// partitions (how many, and the role's name).
pub(crate) enum Processing {
    None,
    Alone,
    Shared { partitions: u32, role: &'static str, erasure_fingerprint: String },
}

/// Opens the stores `[storage]` names.
pub(crate) fn open_state(
    config: &crate::config::StorageConfig,
    paths: &sqlite::Paths,
    processing: Processing,
) -> Result<OpenedState, EngineError> {
    let Some(url) = &config.postgres else {
        // The flow store first: it makes the schema the others read.
        let flows: Arc<dyn FlowStore> = Arc::new(SqliteFlowReader::open(&paths.profiles)?);
        let store = SqliteProfileStore::open(&paths.profiles)?;
        let checkpointer = store.checkpointer()?;
        let path = paths.profiles.clone();
        return Ok(OpenedState {
            store: Box::new(store),
            checkpointer: Some(checkpointer),
            profiles: Arc::new(SqliteProfileReader::open(&paths.profiles)?),
            flows,
            beside: BesideStores::in_dir(&config.data_dir)?,
            outbox: Box::new(move || Ok(Box::new(SqliteOutbox::open(&path)?) as Box<dyn Outbox>)),
            lock: None,
            cluster: None,
        });
    };
    use tutti_store::postgres::pool::{Pool, Reconnecting};
    use tutti_store::postgres::{self as pg, PgFlowReader, migrate};
    let mut client = pg::connect(url)?;
    let version = migrate::migrate(&mut client)?;
    tracing::info!(database = %pg::describe(url), schema = version, "profiles, flows and the outbox are in Postgres");
    if let Processing::Shared { partitions, role, erasure_fingerprint } = processing {
        let cluster = Cluster::open(url, partitions, config.lease, role, &config.data_dir, &erasure_fingerprint)?;
        let (ownership, journal) = (cluster.ownership.clone(), cluster.journal.clone());
        let outbox_ownership = ownership.clone();
        let url_for_outbox = url.clone();
        return Ok(OpenedState {
            store: Box::new(pg::profiles::PgProfileStore::shared(Reconnecting::connect(url)?, ownership)),
            checkpointer: None,
            profiles: Arc::new(pg::readers::PgProfileReader::new(Pool::new(url, 4)?)),
            flows: Arc::new(PgFlowReader::new(Pool::new(url, 4)?)),
            beside: BesideStores::on(url)?,
            outbox: Box::new(move || {
                let client = Reconnecting::connect(&url_for_outbox)?;
                Ok(Box::new(pg::outbox::PgOutbox::shared(client, outbox_ownership.clone(), &journal))
                    as Box<dyn Outbox>)
            }),
            lock: None,
            cluster: Some(cluster),
        });
    }
    let lock = if matches!(processing, Processing::Alone) {
        let held: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", &[&PROCESSING_LOCK])
            .map_err(tutti_store::StoreError::from)?
            .get(0);
        if !held {
            return Err(EngineError::Start(
                "another Tutti worker is processing on this Postgres database; one worker processes at a time \
                 (run more processes as intakes: --role intake)"
                    .into(),
            ));
        }
        Some(Mutex::new(client))
    } else {
        None
    };
    let url_for_outbox = url.clone();
    Ok(OpenedState {
        store: Box::new(pg::profiles::PgProfileStore::new(Reconnecting::connect(url)?)),
        checkpointer: None,
        profiles: Arc::new(pg::readers::PgProfileReader::new(Pool::new(url, 4)?)),
        flows: Arc::new(PgFlowReader::new(Pool::new(url, 4)?)),
        beside: BesideStores::on(url)?,
        outbox: Box::new(move || {
            Ok(Box::new(pg::outbox::PgOutbox::new(Reconnecting::connect(&url_for_outbox)?)) as Box<dyn Outbox>)
        }),
        lock,
        cluster: None,
    })
}

/// What connectors remember between actions, creatives and conversations.
pub(crate) struct BesideStores {
    pub memory: Box<dyn ConnectorMemory>,
    pub creatives: Arc<dyn CreativeStore>,
    pub conversations: Arc<ConversationStore>,
}

impl BesideStores {
    /// `connectors.db`, `creatives.db` and `conversations.db` in the data directory.
    fn in_dir(dir: &std::path::Path) -> Result<BesideStores, EngineError> {
        Ok(BesideStores {
            memory: Box::new(sqlite::SqliteConnectorMemory::open(&dir.join(sqlite::CONNECTORS_FILE))?),
            creatives: Arc::new(sqlite::SqliteCreativeStore::open(&dir.join(sqlite::CREATIVES_FILE))?),
            conversations: Arc::new(ConversationStore::open(&dir.join(CONVERSATIONS_FILE))?),
        })
    }

    /// Their tables on a migrated Postgres database, which every process on it shares.
    fn on(url: &str) -> Result<BesideStores, EngineError> {
        use tutti_store::postgres::{connectors::PgConnectorMemory, creatives::PgCreativeStore, pool::Pool};
        let tables = PgConversationTables::new(Pool::new(url, 2)?);
        Ok(BesideStores {
            memory: Box::new(PgConnectorMemory::new(Pool::new(url, 4)?)),
            creatives: Arc::new(PgCreativeStore::new(Pool::new(url, 4)?)),
            conversations: Arc::new(ConversationStore::on(Box::new(tables))),
        })
    }
}
