//! `conversations.db`, in the data directory: the default backend of the conversations store.
//!
//! One writer behind a mutex; `synchronous = NORMAL` (an import can be run again); `secure_delete` so an erased
//! conversation's words are overwritten, and the write-ahead log emptied after an erasure.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Changes, Result, Row, Tables, TopicEdit};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT PRIMARY KEY,
    started_at INTEGER,
    outcome    TEXT NOT NULL,
    turns      INTEGER NOT NULL,
    -- the conversation as JSON, and its FNV-1a hash, so importing it again unchanged writes nothing
    body       TEXT NOT NULL,
    hash       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conversation_people (
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    conversation TEXT NOT NULL,
    PRIMARY KEY (kind, value, conversation)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_people_by_conversation ON conversation_people (conversation);
-- What people changed about topics: a new label, the topic merged into another, or the sentences holding a
-- word split off into a topic of their own.
CREATE TABLE IF NOT EXISTS topic_edits (
    topic       TEXT PRIMARY KEY,
    label       TEXT,
    label_en    TEXT,
    merged_into TEXT,
    split_on    TEXT,
    by          TEXT NOT NULL,
    at          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Empties the saved results and counts a change, so that a mining that read the store before it does not save
/// what it found ([`Tables::put_snapshot`]).
fn invalidate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM snapshots", [])?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )?;
    Ok(())
}

fn generation(conn: &Connection) -> rusqlite::Result<u64> {
    let g: Option<i64> =
        conn.query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| r.get(0)).optional()?;
    Ok(g.unwrap_or(0) as u64)
}

pub(super) struct SqliteConversationTables {
    conn: Mutex<Connection>,
}

impl SqliteConversationTables {
    pub(super) fn open(path: &Path) -> Result<SqliteConversationTables> {
        // Readable and writable by its owner only, as every file of the data directory.
        tutti_analytics::sqlite::private_file(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteConversationTables { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Tables for SqliteConversationTables {
    fn put(&self, rows: &[Row<'_>]) -> Result<Changes> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut changes = Changes::default();
        {
            let mut find = tx.prepare_cached("SELECT hash FROM conversations WHERE id = ?1")?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO conversations (id, started_at, outcome, turns, body, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, outcome = excluded.outcome,
                 turns = excluded.turns, body = excluded.body, hash = excluded.hash",
            )?;
            let mut forget = tx.prepare_cached("DELETE FROM conversation_people WHERE conversation = ?1")?;
            let mut link = tx.prepare_cached(
                "INSERT OR IGNORE INTO conversation_people (kind, value, conversation) VALUES (?1, ?2, ?3)",
            )?;
            for row in rows {
                let stored: Option<i64> = find.query_row([row.id], |r| r.get(0)).optional()?;
                match stored {
                    Some(h) if h == row.hash => {
                        changes.unchanged += 1;
                        continue;
                    }
                    Some(_) => changes.updated += 1,
                    None => changes.inserted += 1,
                }
                upsert.execute(params![row.id, row.started_at, row.outcome, row.turns, row.body, row.hash])?;
                forget.execute([row.id])?;
                for (kind, value) in &row.people {
                    link.execute(params![kind, value, row.id])?;
                }
            }
        }
        if changes.inserted + changes.updated > 0 {
            // The last mining no longer holds every conversation.
            invalidate(&tx)?;
        }
        tx.commit()?;
        Ok(changes)
    }

    fn bodies(&self) -> Result<Vec<String>> {
        bodies(&self.conn())
    }

    fn for_mining(&self) -> Result<(Vec<String>, Vec<TopicEdit>, u64)> {
        // One connection behind the mutex: nothing writes between the three reads.
        let conn = self.conn();
        Ok((bodies(&conn)?, edits(&conn)?, generation(&conn)?))
    }

    fn body(&self, id: &str) -> Result<Option<String>> {
        Ok(self.conn().query_row("SELECT body FROM conversations WHERE id = ?1", [id], |r| r.get(0)).optional()?)
    }

    fn count(&self) -> Result<(u64, u64)> {
        Ok(self.conn().query_row("SELECT count(*), coalesce(sum(turns), 0) FROM conversations", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?)
    }

    fn of_person(&self, identifiers: &[(String, String)]) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT conversation FROM conversation_people WHERE kind = ?1 AND value = ?2")?;
        let mut ids = Vec::new();
        for (kind, value) in identifiers {
            let rows = stmt.query_map(params![kind, value], |r| r.get::<_, String>(0))?;
            for id in rows {
                ids.push(id?);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn erase(&self, ids: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM conversation_people WHERE conversation = ?1", [id])?;
        }
        // The last mining's examples may quote them: it is mined again on the next run.
        invalidate(&tx)?;
        tx.commit()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }

    fn put_edit(&self, edit: &TopicEdit) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        invalidate(&tx)?;
        tx.execute(
            "INSERT INTO topic_edits (topic, label, label_en, merged_into, split_on, by, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (topic) DO UPDATE SET label = coalesce(excluded.label, label),
             label_en = coalesce(excluded.label_en, label_en), merged_into = coalesce(excluded.merged_into, merged_into),
             split_on = coalesce(excluded.split_on, split_on), by = excluded.by, at = excluded.at",
            params![edit.topic, edit.label, edit.label_en, edit.merged_into, edit.split_on, edit.by, edit.at],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn edits(&self) -> Result<Vec<TopicEdit>> {
        edits(&self.conn())
    }

    fn snapshot(&self, name: &str) -> Result<Option<String>> {
        Ok(self.conn().query_row("SELECT body FROM snapshots WHERE name = ?1", [name], |r| r.get(0)).optional()?)
    }

    fn put_snapshot(&self, name: &str, body: &str, generation: u64) -> Result<bool> {
        let conn = self.conn();
        if self::generation(&conn)? != generation {
            return Ok(false);
        }
        conn.execute(
            "INSERT INTO snapshots (name, body) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            params![name, body],
        )?;
        Ok(true)
    }

    fn generation(&self) -> Result<u64> {
        Ok(generation(&self.conn())?)
    }
}

fn bodies(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT body FROM conversations ORDER BY started_at, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn edits(conn: &Connection) -> Result<Vec<TopicEdit>> {
    let mut stmt = conn.prepare_cached(
        "SELECT topic, label, label_en, merged_into, split_on, by, at FROM topic_edits ORDER BY topic",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TopicEdit {
            topic: r.get(0)?,
            label: r.get(1)?,
            label_en: r.get(2)?,
            merged_into: r.get(3)?,
            split_on: r.get(4)?,
            by: r.get(5)?,
            at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
