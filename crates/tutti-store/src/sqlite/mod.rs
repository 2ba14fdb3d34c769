//! The embedded backend: two SQLite databases in WAL mode inside the data directory.
//!
//! `events.db` holds the log, `profiles.db` everything derived from it. They are separate files so their
//! writers (the intake thread and the processor thread) never wait on each other's locks. Every connection runs
//! with `secure_delete`, so deleted rows are overwritten in place; [`EventLog::scrub`](crate::EventLog::scrub)
//! then empties the write-ahead log, which is what makes erasure complete.

mod events;
mod profiles;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use events::{SqliteEventLog, SqliteEventReader};
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
}

impl Paths {
    pub fn in_dir(dir: &Path) -> Paths {
        Paths { events: dir.join(EVENTS_FILE), profiles: dir.join(PROFILES_FILE) }
    }
}

/// How a connection will be used; decides its pragmas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

fn open(path: &Path, role: Role, cache_kib: i64) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged event survives power loss, not only a crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    match role {
        // Checkpoints run on a separate connection (see `checkpoint`) so that commits never pay for them.
        Role::Writer => conn.pragma_update(None, "wal_autocheckpoint", 0)?,
        Role::Reader => conn.pragma_update(None, "query_only", "ON")?,
    }
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

/// Copies committed pages from the WAL into the database file without blocking writers (`PASSIVE`).
///
/// Writers run with automatic checkpoints off, so the engine calls this periodically from a background thread.
pub struct Checkpointer {
    conn: Connection,
}

impl Checkpointer {
    pub fn open(path: &Path) -> Result<Checkpointer> {
        let conn = open(path, Role::Writer, 2048)?;
        Ok(Checkpointer { conn })
    }

    /// Runs one passive checkpoint; returns the number of WAL frames still not checkpointed.
    pub fn run(&self) -> Result<i64> {
        let (_busy, log, done): (i64, i64, i64) =
            self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok((log - done).max(0))
    }
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
