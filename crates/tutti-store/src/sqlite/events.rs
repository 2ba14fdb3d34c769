//! The event log in `events.db`.
//!
//! Events are stored in chunks: one row holds the events of one group commit, up to [`CHUNK_BYTES`], each with
//! its sequence number. Per event the writer then only copies bytes (and records a client `messageId`); the
//! B-tree work of an insert is paid once per chunk. This is what Kafka calls a record batch. Reads find the
//! chunk by its first sequence number; erasure rewrites a chunk without the erased events (with
//! `secure_delete`, the old bytes are overwritten).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tutti_core::Millis;

use super::{Checkpointer, ReadPool, Role, WalBound, open, truncate_wal};
use crate::{Appended, EventLog, EventReader, LogSyncer, NewEvent, Result, StoreError, StoredEvent};

const SCHEMA: &str = "
-- Events, a chunk per row: first_seq <= every seq in body <= last_seq.
CREATE TABLE IF NOT EXISTS chunks (
    first_seq INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    body      BLOB    NOT NULL
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

/// A chunk is closed once it holds this many bytes, so that reading one event never reads much more.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Bytes before each event in a chunk: sequence number, receive time, length.
const ENTRY_HEADER: usize = 8 + 8 + 4;

fn encode_into(chunk: &mut Vec<u8>, seq: u64, received_at: Millis, body: &[u8]) {
    chunk.extend_from_slice(&seq.to_le_bytes());
    chunk.extend_from_slice(&received_at.to_le_bytes());
    chunk.extend_from_slice(&(body.len() as u32).to_le_bytes());
    chunk.extend_from_slice(body);
}

/// The `messageId` of a stored event body, if it has one.
fn message_id(body: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(rename = "messageId", borrow)]
        message_id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Id<'_>>(body).ok()?.message_id
}

/// The events of a chunk, in order: (seq, received_at, body).
fn decode(chunk: &[u8]) -> impl Iterator<Item = Result<(u64, Millis, &[u8])>> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let corrupt = || StoreError::Corrupt("an event chunk is truncated".into());
        let Some((header, tail)) = rest.split_at_checked(ENTRY_HEADER) else {
            rest = &[];
            return Some(Err(corrupt()));
        };
        let seq = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let received_at = i64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes")) as usize;
        let Some((body, tail)) = tail.split_at_checked(len) else {
            rest = &[];
            return Some(Err(corrupt()));
        };
        rest = tail;
        Some(Ok((seq, received_at, body)))
    })
}

/// The writer of `events.db`.
pub struct SqliteEventLog {
    conn: Connection,
    /// Sequence numbers are assigned here, never reused, even after the newest events are erased.
    next_seq: u64,
    path: std::path::PathBuf,
    wal: WalBound,
    /// Where the sweep that forgets old message ids stands (the last id examined).
    prune_cursor: String,
}

impl SqliteEventLog {
    /// Opens (creating if needed) the log.
    pub fn open(path: &Path) -> Result<SqliteEventLog> {
        let conn = open(path, Role::Writer, 16 * 1024)?;
        // Commits do not fsync; `WalSyncer` does, on another thread, before anything is acknowledged. Checkpoints
        // still sync the log before copying it (SQLite does so at NORMAL), so nothing unsynced reaches the database.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        migrate_row_per_event(&conn)?;
        let next_seq = head(&conn)? + 1;
        Ok(SqliteEventLog { conn, next_seq, path: path.to_owned(), wal: WalBound::new(), prune_cursor: String::new() })
    }

    /// A background checkpointer for this log, which also tells it when its write-ahead log is long.
    pub fn checkpointer(&self) -> Result<Checkpointer> {
        self.wal.checkpointer(&self.path)
    }
}

/// Logs written before chunks existed kept one row per event in an `events` table; move them into chunks once,
/// in one transaction, so that no acknowledged event is left behind by an upgrade.
fn migrate_row_per_event(conn: &Connection) -> Result<()> {
    let legacy: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'", [], |r| {
            r.get(0)
        })?;
    if legacy == 0 {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut rows = tx.prepare("SELECT seq, received_at, body FROM events ORDER BY seq")?;
        let mut insert = tx.prepare("INSERT INTO chunks (first_seq, last_seq, body) VALUES (?1, ?2, ?3)")?;
        let mut rows = rows.query([])?;
        let (mut chunk, mut first, mut last) = (Vec::new(), 0u64, 0u64);
        while let Some(row) = rows.next()? {
            let seq = row.get::<_, i64>(0)? as u64;
            if chunk.is_empty() {
                first = seq;
            }
            last = seq;
            encode_into(&mut chunk, seq, row.get(1)?, row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?);
            if chunk.len() >= CHUNK_BYTES {
                insert.execute(params![first as i64, last as i64, chunk])?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            insert.execute(params![first as i64, last as i64, chunk])?;
        }
    }
    tx.execute_batch("DROP TABLE events")?;
    tx.commit()?;
    Ok(())
}

/// The highest sequence number ever handed out: the last chunk's, or the recorded one if the newest events
/// were erased.
fn head(conn: &Connection) -> Result<u64> {
    let head: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(last_seq) FROM chunks), 0),
                    coalesce((SELECT value FROM meta WHERE key = 'head'), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(head as u64)
}

/// The chunk that may hold `seq`: the one with the greatest first_seq not above it.
fn chunk_of(conn: &Connection, seq: u64) -> Result<Option<(u64, u64, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, last_seq, body FROM chunks WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1",
    )?;
    let row = stmt
        .query_row([seq as i64], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get(2)?)))
        .optional()?;
    Ok(row.filter(|(_, last, _)| *last >= seq))
}

impl EventLog for SqliteEventLog {
    fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Appended>> {
        let mut next = self.next_seq;
        let mut out = Vec::with_capacity(events.len());
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO chunks (first_seq, last_seq, body) VALUES (?1, ?2, ?3)")?;
            let mut dedup =
                tx.prepare_cached("INSERT OR IGNORE INTO dedup (message_id, received_at) VALUES (?1, ?2)")?;
            let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
            let mut first = next;
            for event in events {
                if event.client_message_id && dedup.execute(params![event.message_id, event.received_at])? == 0 {
                    out.push(Appended::Duplicate);
                    continue;
                }
                encode_into(&mut chunk, next, event.received_at, &event.body);
                out.push(Appended::Stored(next));
                next += 1;
                if chunk.len() >= CHUNK_BYTES {
                    insert.execute(params![first as i64, (next - 1) as i64, chunk])?;
                    chunk.clear();
                    first = next;
                }
            }
            if !chunk.is_empty() {
                insert.execute(params![first as i64, (next - 1) as i64, chunk])?;
            }
        }
        tx.commit()?;
        self.next_seq = next;
        self.wal.after_commit(&self.conn);
        Ok(out)
    }

    fn syncer(&self) -> Result<Box<dyn LogSyncer>> {
        let syncer = WalSyncer { wal: super::wal_path(&self.path), db: self.path.clone() };
        // The log file was created by this process; make its directory entry durable once.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(Box::new(syncer))
    }

    fn delete(&mut self, seqs: &[u64]) -> Result<usize> {
        let mut seqs = seqs.to_vec();
        seqs.sort_unstable();
        seqs.dedup();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        {
            // The head is the highest sequence number in the log, except once the newest events are erased:
            // record it then, so that it is never handed out again. Appends need not pay for this.
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?1)", [self.next_seq as i64 - 1])?;
            let mut rewrite = tx.prepare_cached("UPDATE chunks SET body = ?2 WHERE first_seq = ?1")?;
            let mut remove = tx.prepare_cached("DELETE FROM chunks WHERE first_seq = ?1")?;
            // A client's message id can carry personal data (an email, an order number): it goes with the event.
            // A retry of the erased event is then not a duplicate, and the erasure's tombstone drops it.
            let mut forget = tx.prepare_cached("DELETE FROM dedup WHERE message_id = ?1")?;
            let mut i = 0;
            while i < seqs.len() {
                let Some((first, last, body)) = chunk_of(&tx, seqs[i])? else {
                    i += 1;
                    continue;
                };
                // Every requested seq that falls in this chunk.
                let end = i + seqs[i..].partition_point(|s| *s <= last);
                let doomed = &seqs[i..end];
                let mut kept = Vec::with_capacity(body.len());
                let mut any = false;
                for entry in decode(&body) {
                    let (seq, received_at, event) = entry?;
                    if doomed.binary_search(&seq).is_ok() {
                        deleted += 1;
                        if let Some(id) = message_id(event) {
                            forget.execute([id.as_ref()])?;
                        }
                    } else {
                        encode_into(&mut kept, seq, received_at, event);
                        any = true;
                    }
                }
                if !any {
                    remove.execute([first as i64])?;
                } else if kept.len() != body.len() {
                    rewrite.execute(params![first as i64, kept])?;
                }
                i = end;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn prune_dedup(&mut self, before: Millis, limit: usize) -> Result<(usize, usize)> {
        // A sweep in key order, a slice per call: no index on receive time (one would cost every append a
        // second B-tree insert, 15-20% of batch throughput when measured), and no call runs long.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seen, forgotten, last) = {
            let mut slice = tx.prepare_cached(
                "SELECT message_id, received_at FROM dedup WHERE message_id > ?1 ORDER BY message_id LIMIT ?2",
            )?;
            let mut forget = tx.prepare_cached("DELETE FROM dedup WHERE message_id = ?1")?;
            let rows: Vec<(String, Millis)> = slice
                .query_map(params![self.prune_cursor, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut forgotten = 0;
            for (id, at) in &rows {
                if *at < before {
                    forgotten += forget.execute([id])?;
                }
            }
            (rows.len(), forgotten, rows.last().map(|(id, _)| id.clone()))
        };
        tx.commit()?;
        self.prune_cursor = if seen < limit { String::new() } else { last.unwrap_or_default() };
        Ok((seen, forgotten))
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

impl EventReader for SqliteEventReader {
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        // Sequence numbers are SQLite integers: nothing lies past i64::MAX.
        let Some(first) = after.checked_add(1).and_then(|n| i64::try_from(n).ok()) else {
            return Ok(Vec::new());
        };
        self.pool.with(|conn| {
            // Start at the chunk holding after + 1 (or the first one after it).
            let start: Option<i64> = conn
                .prepare_cached("SELECT first_seq FROM chunks WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1")?
                .query_row([first], |r| r.get(0))
                .optional()?;
            let mut stmt = conn.prepare_cached("SELECT body FROM chunks WHERE first_seq >= ?1 ORDER BY first_seq")?;
            let mut rows = stmt.query([start.unwrap_or(0)])?;
            let mut out = Vec::with_capacity(limit.min(4096));
            while out.len() < limit {
                let Some(row) = rows.next()? else { break };
                let body = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                for entry in decode(body) {
                    let (seq, received_at, event) = entry?;
                    if seq > after && out.len() < limit {
                        out.push(StoredEvent { seq, received_at, body: event.to_vec(), partition: None });
                    }
                }
            }
            Ok(out)
        })
    }

    fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>> {
        self.pool.with(|conn| {
            let mut out = Vec::with_capacity(seqs.len());
            // Consecutive requests often fall in the same chunk: keep the last one read.
            let mut cached: Option<(u64, u64, Vec<u8>)> = None;
            for &seq in seqs {
                if !cached.as_ref().is_some_and(|(first, last, _)| (*first..=*last).contains(&seq)) {
                    cached = chunk_of(conn, seq)?;
                }
                let Some((_, _, body)) = &cached else { continue };
                for entry in decode(body) {
                    let (s, received_at, event) = entry?;
                    if s == seq {
                        out.push(StoredEvent { seq, received_at, body: event.to_vec(), partition: None });
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    fn head(&self) -> Result<u64> {
        self.pool.with(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(mid: &str, client: bool) -> NewEvent {
        NewEvent {
            message_id: mid.into(),
            client_message_id: client,
            received_at: 1,
            body: b"{}".to_vec(),
            routing_key: String::new(),
        }
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
        // A sweep in slices: ids a, b, c (received at 1) go; the sweep then wraps around.
        assert_eq!(log.prune_dedup(2, 2).unwrap(), (2, 2), "a slice of at most the limit");
        assert_eq!(log.prune_dedup(2, 2).unwrap(), (1, 1), "the rest, and the sweep is complete");
        assert_eq!(log.prune_dedup(2, 2).unwrap(), (0, 0));
        assert_eq!(log.append(&[ev("a", true)]).unwrap(), [Appended::Stored(6)]);
    }

    #[test]
    fn erasing_an_event_forgets_its_message_id_and_leaves_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut log = SqliteEventLog::open(&path).unwrap();
        let with_id = |mid: &str| NewEvent {
            message_id: mid.into(),
            client_message_id: true,
            received_at: 1,
            body: format!(r#"{{"messageId":"{mid}","event":"Order"}}"#).into_bytes(),
            routing_key: String::new(),
        };
        let out = log.append(&[with_id("order-lan@example.vn"), with_id("order-2")]).unwrap();
        assert_eq!(out, [Appended::Stored(1), Appended::Stored(2)]);
        assert_eq!(log.delete(&[1]).unwrap(), 1);
        let ids: Vec<String> = log
            .conn
            .prepare("SELECT message_id FROM dedup ORDER BY message_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(ids, ["order-2"], "the erased event's id is gone, the other stays");
        assert_eq!(log.append(&[with_id("order-2")]).unwrap(), [Appended::Duplicate]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "events.db is {mode:o}");
        }
    }

    #[test]
    fn a_log_with_a_row_per_event_is_moved_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, body BLOB NOT NULL);",
            )
            .unwrap();
            for seq in 1..=300i64 {
                let body = format!("{{\"n\":{seq},\"pad\":\"{}\"}}", "x".repeat(400));
                old.execute("INSERT INTO events VALUES (?1, ?2, ?3)", params![seq, seq * 10, body.into_bytes()])
                    .unwrap();
            }
        }
        let mut log = SqliteEventLog::open(&path).unwrap();
        let reader = SqliteEventReader::open(&path).unwrap();
        let events = reader.read_after(0, 1000).unwrap();
        assert_eq!(events.len(), 300);
        assert_eq!((events[299].seq, events[299].received_at), (300, 3000));
        assert!(String::from_utf8_lossy(&events[41].body).starts_with(r#"{"n":42,"#));
        assert_eq!(log.append(&[ev("next", true)]).unwrap(), [Appended::Stored(301)]);
        drop(log);
        // Opening again finds nothing left to move.
        SqliteEventLog::open(&path).unwrap();
        assert_eq!(reader.read_after(0, 1000).unwrap().len(), 301);
    }

    #[test]
    fn events_read_back_across_chunks_and_erase_from_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut log = SqliteEventLog::open(&path).unwrap();
        // 1 KB events: several chunks per append, and a chunk boundary inside each.
        let body = |i: u64| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "Phở".repeat(250)).into_bytes();
        for round in 0..3u64 {
            let batch: Vec<NewEvent> = (0..150u64)
                .map(|i| NewEvent {
                    message_id: format!("m{round}-{i}"),
                    client_message_id: true,
                    received_at: round as i64,
                    body: body(round * 150 + i + 1),
                    routing_key: String::new(),
                })
                .collect();
            log.append(&batch).unwrap();
        }
        let reader = SqliteEventReader::open(&path).unwrap();
        assert_eq!(reader.head().unwrap(), 450);
        let page = reader.read_after(100, 120).unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), (101..=220).collect::<Vec<_>>());
        assert!(page.iter().all(|e| e.body == body(e.seq)), "bodies come back byte for byte");
        assert_eq!(page[60].received_at, 1);

        let doomed: Vec<u64> = (1..=450).filter(|s| s % 7 == 0 || (200..=330).contains(s)).collect();
        assert_eq!(log.delete(&doomed).unwrap(), doomed.len());
        let left: Vec<u64> = reader.read_after(0, 1000).unwrap().iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (1..=450).filter(|s| !doomed.contains(s)).collect();
        assert_eq!(left, expected);
        let picked: Vec<u64> = reader.read_seqs(&[449, 7, 8, 331, 250]).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(picked, [449, 8, 331], "erased ones are gone, the order asked for is kept");
        // Erasing the newest events does not let their sequence numbers be handed out again.
        log.delete(&[450, 449]).unwrap();
        drop(log);
        let mut log = SqliteEventLog::open(&path).unwrap();
        let again = NewEvent {
            message_id: "new".into(),
            client_message_id: true,
            received_at: 9,
            body: body(0),
            routing_key: String::new(),
        };
        assert_eq!(log.append(&[again]).unwrap(), [Appended::Stored(451)]);
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
                    routing_key: String::new(),
                })
                .collect()
        };
        // A reader holds a snapshot across a commit and a checkpoint, as the processor and API readers do under
        // load: the passive checkpoint cannot finish, so SQLite by itself would keep appending to the log.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM chunks;").unwrap();
        log.append(&events(300)).unwrap();
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
