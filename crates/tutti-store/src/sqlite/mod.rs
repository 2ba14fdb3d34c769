//! The embedded backend: two SQLite databases in WAL mode inside the data directory.
//!
//! `events.db` holds the log, `profiles.db` everything derived from it. They are separate files so their
//! writers (the intake thread and the processor thread) never wait on each other's locks. Every connection runs
//! with `secure_delete`, so deleted rows are overwritten in place; [`EventLog::scrub`](crate::EventLog::scrub)
//! then empties the write-ahead log, which is what makes erasure complete.

mod audit;
mod connectors;
pub(crate) mod creatives;
mod definitions;
mod events;
mod flows;
mod history;
mod outcomes;
mod people;
mod plans;
mod profiles;
mod sweeps;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

pub use connectors::{CONNECTORS_FILE, SqliteConnectorMemory};
pub use creatives::{CREATIVES_FILE, SqliteCreativeStore};
pub use events::{SqliteEventLog, SqliteEventReader};
pub use flows::{SqliteFlowReader, SqliteOutbox};
pub use outcomes::{OUTCOMES_FILE, SqliteOutcomeJournal};
pub use people::{PEOPLE_FILE, SqlitePeople, StoredPerson, StoredSession, StoredToken};
pub use plans::{PLANS_FILE, SqlitePlans, StoredPlan};
pub use profiles::{SqliteProfileReader, SqliteProfileStore};

use crate::Result;

/// File name of the event log inside the data directory.
pub const EVENTS_FILE: &str = "events.db";
/// File name of the profile store inside the data directory.
pub const PROFILES_FILE: &str = "profiles.db";

/// The paths of the embedded databases.
#[derive(Debug, Clone)]
pub struct Paths {
    pub events: PathBuf,
    pub profiles: PathBuf,
    /// The dispatcher's journal of delivery outcomes.
    pub outcomes: PathBuf,
}

impl Paths {
    pub fn in_dir(dir: &Path) -> Paths {
        Paths { events: dir.join(EVENTS_FILE), profiles: dir.join(PROFILES_FILE), outcomes: dir.join(OUTCOMES_FILE) }
    }
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// How long a connection waits for a lock held by another: 10 s, in [`wait_for_lock`]'s steps.
const BUSY_ATTEMPTS: i32 = SHORT_WAITS + 10_000;

/// The first waits for a lock are this many steps of 100 µs: locks are held for about a millisecond here (a
/// commit), and SQLite's own handler sleeps 1, 2, 5, 10 ms and on, so two writers of one database (the
/// processor and the delivery recorder) would hold each other up for far longer than either holds the lock.
const SHORT_WAITS: i32 = 20;

/// How a connection waits for a lock: short steps first, then steps of a millisecond, for about 10 s in all.
fn wait_for_lock(attempt: i32) -> bool {
    if attempt >= BUSY_ATTEMPTS {
        return false;
    }
    std::thread::sleep(if attempt < SHORT_WAITS { Duration::from_micros(100) } else { Duration::from_millis(1) });
    true
}

/// How a connection will be used; decides its pragmas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

/// Creates `dir` if missing and makes it readable by its owner only (0700): it holds every profile.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes a database file readable and writable by its owner only (0600), creating it empty if missing (SQLite
/// takes an empty file as a new database). SQLite gives its `-wal` and `-shm` files the same mode.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn open(path: &Path, role: Role, cache_kib: i64) -> Result<Connection> {
    if role == Role::Writer {
        private_file(path)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(wait_for_lock))?;
    // rusqlite keeps 16 prepared statements by default; one processor commit uses more than that, so the least
    // recently used were prepared again at every batch.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged event survives power loss, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // After a restart the log file is cut back to this size, so a burst does not leave a huge file behind.
    conn.pragma_update(None, "journal_size_limit", WAL_RESTART_FRAMES * 4096)?;
    match role {
        // Checkpoints run on a separate connection (see `checkpoint`) so that commits never pay for them.
        Role::Writer => conn.pragma_update(None, "wal_autocheckpoint", 0)?,
        Role::Reader => conn.pragma_update(None, "query_only", "ON")?,
    }
    Ok(conn)
}

/// The writer of a side database (creatives.db, connectors.db): it checkpoints itself every 1,000 pages and syncs
/// at checkpoints only (`synchronous = NORMAL`), so a power cut may lose its last few commits but never corrupts
/// the file; the schema is created if missing. What a side database holds can be written again (an import
/// re-run, a vendor's id looked up again), unlike the event log, which keeps `FULL`.
fn open_side(path: &Path, cache_kib: i64, schema: &str) -> Result<Connection> {
    let conn = open(path, Role::Writer, cache_kib)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// A small pool of read connections; SQLite connections are not `Sync`.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    cache_kib: i64,
}

impl ReadPool {
    fn new(path: &Path, cache_kib: i64) -> ReadPool {
        ReadPool { path: path.to_owned(), idle: Mutex::new(Vec::new()), cache_kib }
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open(&self.path, Role::Reader, self.cache_kib)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
        out
    }
}

/// Frames the write-ahead log may hold before it is started over: 64 MiB of 4 KiB pages.
const WAL_RESTART_FRAMES: i64 = 64 * 1024;

/// A catch-up pass that copied fewer frames than this (4 MiB) leaves little enough for the writer's restart.
const CATCH_UP_FRAMES: i64 = 1024;

/// How long a checkpointer that asked for a restart waits for the writer to do it before it goes on to the next
/// database (a writer that is idle restarts at its next commit, whenever that is).
const RESTART_WAIT: Duration = Duration::from_millis(100);

/// After a restart attempt that readers held up, how long the writer waits before the next one.
const RESTART_RETRY: Duration = Duration::from_millis(250);

/// How a restart waits for readers: in steps of a millisecond (SQLite's own handler sleeps in growing steps of
/// up to 100 ms, which would hold up commits for nothing), giving up after about 50 ms until the next attempt.
fn restart_busy(attempt: i32) -> bool {
    if attempt >= 50 {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

/// Keeps a write-ahead log bounded; shared by a writer and its [`Checkpointer`].
///
/// SQLite rewinds the WAL to its start only when a write begins after every frame was checkpointed and no
/// reader still needs one. Under a constant stream of commits a background `PASSIVE` checkpoint never gets
/// there, so the log grows without bound (700 MB in ten seconds of full intake was measured), and every new
/// block costs the file system an allocation and zeroing. So the work is split: the checkpointer does the bulk
/// copying off the commit path, and when it finds the log longer than the limit it raises `restart_due` and
/// stands aside; the writer, between two of its own transactions, runs a `RESTART` checkpoint that only has
/// the last few frames to copy and never waits on the checkpointer, and the next commit starts the log over.
struct WalShared {
    /// [`WAL_RESTART_FRAMES`], smaller in tests.
    limit: i64,
    restart_due: AtomicBool,
}

/// The writer's side of [`WalShared`].
struct WalBound {
    shared: Arc<WalShared>,
    retry_after: Option<Instant>,
}

impl WalBound {
    fn new() -> WalBound {
        WalBound::with_limit(WAL_RESTART_FRAMES)
    }

    fn with_limit(limit: i64) -> WalBound {
        WalBound { shared: Arc::new(WalShared { limit, restart_due: AtomicBool::new(false) }), retry_after: None }
    }

    /// Call right after a commit, on the writer's own connection, outside any transaction. Never fails the
    /// commit it follows: if the restart cannot happen now, the log stays long and it is tried again later.
    fn after_commit(&mut self, conn: &Connection) {
        if !self.shared.restart_due.load(Ordering::Acquire) || self.retry_after.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let restarted = conn.busy_handler(Some(restart_busy)).and_then(|()| {
            let busy = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
            conn.busy_handler(Some(wait_for_lock))?;
            busy
        });
        // Done or not, the checkpointer goes back to copying. If readers held old snapshots, the writer waits a
        // little before it tries again.
        self.shared.restart_due.store(false, Ordering::Release);
        self.retry_after = (!matches!(restarted, Ok(0))).then(|| Instant::now() + RESTART_RETRY);
    }

    fn checkpointer(&self, path: &Path) -> Result<Checkpointer> {
        Ok(Checkpointer { conn: open(path, Role::Writer, 2048)?, path: path.to_owned(), shared: self.shared.clone() })
    }
}

/// What one checkpoint found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointOutcome {
    /// Frames in the write-ahead log.
    pub log_frames: i64,
    /// Frames not yet copied into the database file.
    pub remaining: i64,
}

/// Copies committed pages from the WAL into the database file without blocking writers (`PASSIVE`).
///
/// Writers run with automatic checkpoints off, so the engine calls this periodically from a background thread.
/// Made by the writer it serves ([`SqliteEventLog::checkpointer`], [`SqliteProfileStore::checkpointer`]).
pub struct Checkpointer {
    conn: Connection,
    /// The database file; its write-ahead log is beside it.
    path: PathBuf,
    shared: Arc<WalShared>,
}

impl Checkpointer {
    /// Runs one passive checkpoint, unless the writer is about to start the log over.
    pub fn run(&self) -> Result<CheckpointOutcome> {
        if self.shared.restart_due.load(Ordering::Acquire) {
            return Ok(CheckpointOutcome { log_frames: -1, remaining: -1 });
        }
        let passive = || -> Result<(i64, i64)> {
            let (_busy, log, done): (i64, i64, i64) =
                self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok((log, done))
        };
        let (mut log, mut done) = passive()?;
        if log >= self.shared.limit / 16 && done == log {
            // Caught up with a log of some size: restarting it now costs the writer next to nothing, and keeps
            // the file small and rewritten in place (growing it makes every flush also commit file-system
            // metadata).
            self.restart_soon();
        } else if log >= self.shared.limit {
            // Each pass copies what arrived during the one before; a few passes leave the writer's restart
            // (during which commits wait) only the frames of the last few milliseconds to copy.
            for _ in 0..4 {
                let before = done;
                (log, done) = passive()?;
                if done - before < CATCH_UP_FRAMES {
                    break;
                }
            }
            self.restart_soon();
        }
        Ok(CheckpointOutcome { log_frames: log, remaining: (log - done).max(0) })
    }

    /// Asks the writer to start the log over at its next commit, once the files are flushed here.
    ///
    /// The restart's checkpoint begins and ends with a full `fsync` of the log and of the database, which
    /// commits the file system's journal: with everything written since the last one still to go, that took 15
    /// to 120 ms under load (measured on ext4), and the writer's commits wait for it. Flushed here first, the
    /// writer's own syncs find next to nothing left to do.
    fn restart_soon(&self) {
        for file in [wal_path(&self.path), self.path.clone()] {
            // A flush that fails here only leaves the restart its usual work.
            let _ = std::fs::File::open(&file).and_then(|f| f.sync_all());
        }
        self.shared.restart_due.store(true, Ordering::Release);
        // The restart's own syncs are short unless another database's checkpoint is flushing at the same time,
        // when they wait for that too (80 ms was measured): the next checkpoint waits for this restart instead.
        let until = Instant::now() + RESTART_WAIT;
        while self.shared.restart_due.load(Ordering::Acquire) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The write-ahead log beside a database file.
fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

/// Checkpoints everything and truncates the WAL to zero bytes, retrying while readers hold old snapshots.
fn truncate_wal(conn: &Connection) -> Result<()> {
    for _ in 0..200 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(crate::StoreError::Corrupt("the write-ahead log could not be truncated: readers kept it busy".into()))
}
