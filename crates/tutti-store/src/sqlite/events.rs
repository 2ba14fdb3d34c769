//! The event log in `events.db`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tutti_core::Millis;

use super::{Checkpointer, ReadPool, Role, WalBound, open, truncate_wal};
use crate::{Appended, EventLog, EventReader, LogSyncer, NewEvent, Result, StoredEvent};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    body        BLOB    NOT NULL
);
-- Client message ids seen within the retention window. received_at drives pruning.
CREATE TABLE IF NOT EXISTS dedup (
    message_id  TEXT    PRIMARY KEY,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The writer of `events.db`.
pub struct SqliteEventLog {
    conn: Connection,
    /// Sequence numbers are assigned here, never reused, even after the newest events are erased.
    next_seq: u64,
    path: std::path::PathBuf,
    wal: WalBound,
}

impl SqliteEventLog {
    /// Opens (creating if needed) the log.
    pub fn open(path: &Path) -> Result<SqliteEventLog> {
        let conn = open(path, Role::Writer, 16 * 1024)?;
        // Commits do not fsync; `WalSyncer` does, on another thread, before anything is acknowledged. Checkpoints
        // still sync the log before copying it (SQLite does so at NORMAL), so nothing unsynced reaches the database.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let head: Option<i64> =
            conn.query_row("SELECT value FROM meta WHERE key = 'head'", [], |r| r.get(0)).optional()?;
        let max: Option<i64> = conn.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
        let next_seq = head.unwrap_or(0).max(max.unwrap_or(0)) as u64 + 1;
        Ok(SqliteEventLog { conn, next_seq, path: path.to_owned(), wal: WalBound::new() })
    }

    /// A background checkpointer for this log, which also tells it when its write-ahead log is long.
    pub fn checkpointer(&self) -> Result<Checkpointer> {
        self.wal.checkpointer(&self.path)
    }
}

impl EventLog for SqliteEventLog {
    fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Appended>> {
        let start_seq = self.next_seq;
        let mut next = start_seq;
        let mut out = Vec::with_capacity(events.len());
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO events (seq, received_at, body) VALUES (?1, ?2, ?3)")?;
            let mut dedup =
                tx.prepare_cached("INSERT OR IGNORE INTO dedup (message_id, received_at) VALUES (?1, ?2)")?;
            for event in events {
                if event.client_message_id && dedup.execute(params![event.message_id, event.received_at])? == 0 {
                    out.push(Appended::Duplicate);
                    continue;
                }
                insert.execute(params![next as i64, event.received_at, event.body])?;
                out.push(Appended::Stored(next));
                next += 1;
            }
        }
        tx.commit()?;
        self.next_seq = next;
        self.wal.after_commit(&self.conn);
        Ok(out)
    }

    fn syncer(&self) -> Result<Box<dyn LogSyncer>> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let syncer = WalSyncer { wal: wal.into(), db: self.path.clone() };
        // The log file was created by this process; make its directory entry durable once.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(Box::new(syncer))
    }

    fn delete(&mut self, seqs: &[u64]) -> Result<usize> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        {
            // The head is the highest sequence number in the log, except once the newest events are erased:
            // record it then, so that it is never handed out again. Appends need not pay for this.
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?1)", [self.next_seq as i64 - 1])?;
            let mut stmt = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
            for seq in seqs {
                deleted += stmt.execute([*seq as i64])?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn prune_dedup(&mut self, before: Millis) -> Result<usize> {
        Ok(self.conn.execute("DELETE FROM dedup WHERE received_at < ?1", [before])?)
    }

    fn scrub(&mut self) -> Result<()> {
        truncate_wal(&self.conn)
    }
}

/// Flushes `events.db-wal`, where commits land, to disk.
///
/// The writer keeps its connection open for the engine's lifetime, so SQLite never deletes the file underneath;
/// it is opened afresh for every sync all the same, so a log that was started over is still the one flushed.
struct WalSyncer {
    wal: std::path::PathBuf,
    db: std::path::PathBuf,
}

impl LogSyncer for WalSyncer {
    fn sync(&self) -> Result<()> {
        match std::fs::File::open(&self.wal) {
            Ok(file) => file.sync_data()?,
            // No log file: everything is in the database file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::File::open(&self.db)?.sync_data()?,
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

/// Read access to `events.db`.
pub struct SqliteEventReader {
    pool: ReadPool,
}

impl SqliteEventReader {
    pub fn open(path: &Path) -> Result<SqliteEventReader> {
        // The writer creates the schema; opening a reader first must not fail on an empty file.
        let conn = open(path, Role::Writer, 1024)?;
        conn.execute_batch(SCHEMA)?;
        drop(conn);
        Ok(SqliteEventReader { pool: ReadPool::new(path, 16 * 1024) })
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent { seq: r.get::<_, i64>(0)? as u64, received_at: r.get(1)?, body: r.get(2)? })
}

impl EventReader for SqliteEventReader {
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.pool.with(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq, received_at, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
            let rows = stmt.query_map(params![after as i64, limit as i64], row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT seq, received_at, body FROM events WHERE seq = ?1")?;
            let mut out = Vec::with_capacity(seqs.len());
            for seq in seqs {
                if let Some(e) = stmt.query_row([*seq as i64], row).optional()? {
                    out.push(e);
                }
            }
            Ok(out)
        })
    }

    fn head(&self) -> Result<u64> {
        self.pool.with(|conn| {
            let head: i64 = conn.query_row(
                "SELECT max(coalesce((SELECT max(seq) FROM events), 0),
                            coalesce((SELECT value FROM meta WHERE key = 'head'), 0))",
                [],
                |r| r.get(0),
            )?;
            Ok(head as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(mid: &str, client: bool) -> NewEvent {
        NewEvent { message_id: mid.into(), client_message_id: client, received_at: 1, body: b"{}".to_vec() }
    }

    #[test]
    fn duplicates_are_stored_once_and_sequence_numbers_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut log = SqliteEventLog::open(&path).unwrap();
        let out = log.append(&[ev("a", true), ev("a", true), ev("b", true), ev("x", false), ev("x", false)]).unwrap();
        assert_eq!(
            out,
            [Appended::Stored(1), Appended::Duplicate, Appended::Stored(2), Appended::Stored(3), Appended::Stored(4)]
        );
        assert_eq!(log.append(&[ev("b", true)]).unwrap(), [Appended::Duplicate]);
        assert_eq!(log.delete(&[4]).unwrap(), 1);
        drop(log);
        let mut log = SqliteEventLog::open(&path).unwrap();
        assert_eq!(log.append(&[ev("c", true)]).unwrap(), [Appended::Stored(5)]);
        let reader = SqliteEventReader::open(&path).unwrap();
        assert_eq!(reader.head().unwrap(), 5);
        let seqs: Vec<u64> = reader.read_after(0, 10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 5]);
        // Once pruned from the window, the same message id is accepted again.
        assert_eq!(log.prune_dedup(2).unwrap(), 3);
        assert_eq!(log.append(&[ev("a", true)]).unwrap(), [Appended::Stored(6)]);
    }

    #[test]
    fn a_long_write_ahead_log_is_started_over_by_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut log = SqliteEventLog::open(&path).unwrap();
        log.wal = super::super::WalBound::with_limit(100);
        let checkpointer = log.checkpointer().unwrap();
        let events = |n: usize| -> Vec<NewEvent> {
            (0..n)
                .map(|i| NewEvent {
                    message_id: format!("m{i}"),
                    client_message_id: false,
                    received_at: 1,
                    body: vec![b'x'; 2000],
                })
                .collect()
        };
        // A reader holds a snapshot across a commit and a checkpoint, as the processor and API readers do under
        // load: the passive checkpoint cannot finish, so SQLite by itself would keep appending to the log.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM events;").unwrap();
        log.append(&events(200)).unwrap();
        let first = checkpointer.run().unwrap();
        assert!(first.log_frames >= 100 && first.remaining > 0, "{first:?}");
        assert_eq!(checkpointer.run().unwrap().log_frames, -1, "the checkpointer stands aside for the restart");
        reader.execute_batch("COMMIT").unwrap();
        // The next commit finds the restart due and performs it; the commit after that starts the log over.
        log.append(&events(1)).unwrap();
        log.append(&events(1)).unwrap();
        let after = checkpointer.run().unwrap();
        assert!(after.log_frames >= 0 && after.log_frames < 10, "the log started over: {after:?}");
    }
}
