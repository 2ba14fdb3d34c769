//! Several workers on one Postgres database and one JetStream log: which worker processes which partitions of
//! the log, and how far the whole cluster has processed.
//!
//! - **Leases.** Each worker runs a thread that balances the partitions' leases every third of `[storage]
//!   lease` (`tutti_store::postgres::leases` has the protocol). What it holds goes into the [`Ownership`] its
//!   processor, store and outbox read: the processor folds only its partitions' events, commits fenced by their
//!   tokens, and fires the timers of profiles at home in them; the dispatcher reads only their outbox rows.
//!   When it takes a partition, the thread hands that partition's pending outbox rows to its dispatcher.
//! - **Losing touch.** A worker that cannot reach Postgres stops counting on its leases before they can
//!   expire (a lease's length less a renewal), so it stops working on them before anyone else may start.
//! - **Erasures.** The same thread follows the profiles erased anywhere (`erasures`, ids only) and erases them
//!   from what this worker keeps of its own: its analytics tables, the website decisions it holds and its
//!   outcome journal (the connectors' memory, creatives and conversations are in the shared database).
//! - **Definitions.** The same thread notices a flow, segment or policy saved, deleted, paused or resumed
//!   through another worker's API, and builds this worker's definitions again.
//! - **Progress.** Reading one's own writes (`Engine::sync`) and the analytics projection wait for every
//!   partition, whoever holds it: a thread follows the lowest checkpoint of all partitions.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tutti_core::clock::{Clock, SystemClock};
use tutti_dispatch::Incoming;
use tutti_log::{LocalFeed, LogFeed};
use tutti_store::postgres::leases::{self, Lease, Leases, Ownership, Worker};
use tutti_store::postgres::{self as pg, pool::Pool};

use crate::EngineError;

/// The most pending outbox rows handed to the dispatcher when a partition is taken; the rest are read from the
/// table as the dispatcher makes room.
const ADOPT_LIMIT: usize = 10_000;

/// The most erasures followed at once.
const ERASED_BATCH: usize = 1_000;

/// How often the progress thread looks again while the cluster is behind the log.
const PROGRESS_POLL: Duration = Duration::from_millis(10);

/// Erases profiles from what this worker keeps in its own data directory; says whether it erased them all.
pub(crate) type EraseHere = Box<dyn Fn(&[u64]) -> bool + Send>;

/// Builds the definitions again from the database.
pub(crate) type Reload = Box<dyn Fn() -> Result<(), String> + Send>;

/// This worker's place among the others.
pub(crate) struct Cluster {
    pub ownership: Arc<Ownership>,
    url: String,
    lease: Duration,
    role: &'static str,
    /// For the console: the leases and workers as the database has them.
    view: Pool,
    /// Names this worker's outcome journal in the database: the journal is a file in the data directory, so
    /// the name is the directory's, kept across restarts (a worker's id is not).
    pub journal: String,
}

/// The leases and workers, for the console.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterView {
    pub partitions: Vec<Lease>,
    pub workers: Vec<Worker>,
    /// This process's worker id.
    pub me: String,
    /// Now, on the clock the leases are kept by.
    pub now: tutti_core::Millis,
    /// How long a lease lasts without renewal: a worker not seen for this long is gone.
    pub lease_ms: i64,
}

impl Cluster {
    /// Sets the partitions up (once per database; another count is refused) and names this worker.
    pub fn open(
        url: &str,
        partitions: u32,
        lease: Duration,
        role: &'static str,
        data_dir: &std::path::Path,
        erasure_fingerprint: &str,
    ) -> Result<Cluster, EngineError> {
        let mut client = pg::connect(url)?;
        Leases::setup(&mut client, partitions)?;
        // Tombstones made by one worker must match the identifiers another one hashes.
        if leases::agree(&mut client, "erasure_key", erasure_fingerprint)? != erasure_fingerprint {
            return Err(EngineError::Start(
                "this worker's erasure key is not the one the other workers on this database use: give every \
                 worker the same [auth] erasure_key (TUTTI_AUTH__ERASURE_KEY, 64 hex digits; docs/scale.md)"
                    .into(),
            ));
        }
        let worker = format!("{}-{}", host_name(), std::process::id());
        Ok(Cluster {
            journal: directory_id(data_dir)?,
            ownership: Arc::new(Ownership::new(worker, partitions)),
            url: url.to_owned(),
            lease: lease.max(Duration::from_millis(300)),
            role,
            view: Pool::new(url, 1)?,
        })
    }

    /// The leases and workers now. Blocking.
    pub fn view(&self) -> Result<ClusterView, EngineError> {
        let (partitions, workers) = self.view.with(Leases::view)?;
        Ok(ClusterView {
            partitions,
            workers,
            me: self.ownership.worker().to_owned(),
            now: SystemClock.now_ms(),
            lease_ms: self.lease.as_millis() as i64,
        })
    }

    /// Starts the thread that balances the leases until `processed` (the processor's own feed) closes, then
    /// gives them up. `dispatcher` gets the pending rows of partitions taken; `erase` is given the profiles
    /// erased by any worker (those erased before this one started too: erasing again changes nothing), and
    /// says whether it erased them all (if not, they are given again at the next round).
    /// `reload` builds the definitions again from the database.
    pub fn start_leases(
        &self,
        dispatcher: mpsc::Sender<Incoming>,
        processed: Arc<LocalFeed>,
        erase: EraseHere,
        reload: Reload,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let ttl = self.lease.as_millis() as i64;
        let leases = Leases::new(self.ownership.worker(), self.role, ttl);
        let ownership = self.ownership.clone();
        let url = self.url.clone();
        let every = self.lease / 3;
        std::thread::Builder::new().name("tutti-leases".into()).spawn(move || {
            let mut client: Option<pg::Client> = None;
            let mut last_balanced = Instant::now();
            let mut failing = false;
            let mut erased_upto: i64 = 0;
            let mut definitions: Option<String> = None;
            while !processed.is_closed() {
                let balanced = client
                    .take()
                    .map_or_else(|| pg::connect(&url), Ok)
                    .and_then(|mut c| leases.balance(&mut c, SystemClock.now_ms()).map(|b| (c, b)));
                match balanced {
                    Ok((mut c, balance)) => {
                        if failing {
                            tracing::info!("the leases are renewed again");
                            failing = false;
                        }
                        last_balanced = Instant::now();
                        let partitions: Vec<u32> = balance.held.iter().map(|h| h.partition).collect();
                        if ownership.set(balance.held.clone()) {
                            tracing::info!(?partitions, taken = ?balance.taken, released = ?balance.released,
                                workers = balance.workers, "this worker's partitions of the log changed");
                        }
                        if !balance.taken.is_empty() {
                            match pg::outbox::pending_in(&mut c, &balance.taken, ADOPT_LIMIT) {
                                Ok(rows) if !rows.is_empty() => {
                                    let _ = dispatcher.send(Incoming::Replayed(rows));
                                }
                                Ok(_) => {}
                                Err(e) => tracing::warn!(error = %e, "cannot read the outbox of the partitions taken; they are read as room allows"),
                            }
                        }
                        loop {
                            match leases::erased_after(&mut c, erased_upto, ERASED_BATCH) {
                                Ok(erased) if !erased.is_empty() => {
                                    let ids: Vec<u64> = erased.iter().map(|(_, id)| *id).collect();
                                    if !erase(&ids) {
                                        break;
                                    }
                                    // The dispatcher forgets their retries and scrubs its journal of what
                                    // vendors answered about them.
                                    for id in &ids {
                                        let _ = dispatcher.send(Incoming::Erased(tutti_core::ProfileId(*id)));
                                    }
                                    erased_upto = erased.last().map_or(erased_upto, |(seq, _)| *seq);
                                }
                                Ok(_) => break,
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot read the erasures; trying again");
                                    break;
                                }
                            }
                        }
                        match leases::definitions_version(&mut c) {
                            // The first look builds them too: a change may have landed since the start's build.
                            Ok(version) if definitions.as_ref() != Some(&version) => match reload() {
                                Ok(()) => definitions = Some(version),
                                Err(e) => tracing::warn!(error = %e, "cannot build the definitions changed by another worker; trying again"),
                            },
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "cannot read whether the definitions changed"),
                        }
                        client = Some(c);
                    }
                    Err(e) => {
                        if !failing {
                            tracing::error!(error = %e, "cannot renew the leases; retrying");
                            failing = true;
                        }
                        // Before the leases can run out, as far as this worker can tell: stop working on them.
                        if last_balanced.elapsed() + every >= Duration::from_millis(ttl as u64)
                            && ownership.set(Vec::new())
                        {
                            tracing::warn!("this worker gives up its partitions until it reaches Postgres again");
                        }
                    }
                }
                processed.wait_beyond(u64::MAX, every);
            }
            ownership.set(Vec::new());
            if let Some(mut c) = client
                && let Err(e) = leases.leave(&mut c)
            {
                tracing::warn!(error = %e, "cannot give up the leases; they run out on their own");
            }
        })
    }

    /// Starts the thread that keeps `cluster` (what `Engine::sync` and the projector wait on) at the lowest
    /// checkpoint of all partitions, looking again while it is below `head`'s head, until `processed` (the
    /// processor's own feed) closes.
    pub fn start_progress(
        &self,
        head: Arc<LocalFeed>,
        processed: Arc<LocalFeed>,
        cluster: Arc<LocalFeed>,
        metrics: Arc<tutti_metrics::Metrics>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let url = self.url.clone();
        std::thread::Builder::new().name("tutti-progress".into()).spawn(move || {
            let mut client: Option<pg::Client> = None;
            while !processed.is_closed() {
                if cluster.head() >= head.head() {
                    head.wait_beyond(cluster.head(), Duration::from_secs(1));
                    continue;
                }
                let lowest = client.take().map_or_else(|| pg::connect(&url), Ok).and_then(|mut c| {
                    let row = c.query_one(
                        "SELECT coalesce(min(coalesce(c.seq, 0)), 0) FROM partition_leases l
                         LEFT JOIN checkpoints c ON c.partition = l.partition",
                        &[],
                    )?;
                    Ok((c, row.get::<_, i64>(0) as u64))
                });
                match lowest {
                    Ok((c, seq)) => {
                        cluster.publish(seq);
                        // What this worker reports as processed is the cluster's: everything up to it is folded.
                        metrics.processed_seq.fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
                        client = Some(c);
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read the partitions' checkpoints"),
                }
                processed.wait_beyond(u64::MAX, PROGRESS_POLL);
            }
            cluster.close();
        })
    }
}

/// This machine's name, for worker ids.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tutti".into())
}

/// The data directory's id, made once (random) and kept in it.
fn directory_id(dir: &std::path::Path) -> Result<String, EngineError> {
    let path = dir.join("directory-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_owned());
        }
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &id)?;
    Ok(id)
}

impl crate::Engine {
    /// The workers sharing this Tutti's log and their partitions; `None` when this process has the log alone.
    /// Blocking.
    pub fn cluster(&self) -> Result<Option<ClusterView>, EngineError> {
        self.cluster.as_ref().map(Cluster::view).transpose()
    }
}
