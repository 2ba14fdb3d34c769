//! `conversations.db`: conversations apart from the event log (a one-hour transcript is far over an event's
//! size), each with the customer's identifiers so it is found and erased with the person; the edits people make
//! to topics; and the last mining's results, which the API and the console read.
//!
//! One writer behind a mutex; `synchronous = NORMAL` (an import can be run again); `secure_delete` so an erased
//! conversation's words are overwritten, and the write-ahead log emptied after an erasure.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::Conversation;

pub const CONVERSATIONS_FILE: &str = "conversations.db";

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
/// what it found ([`ConversationStore::put_snapshot`]).
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

/// What a mining reads, at one moment: the conversations, people's edits, and the store's generation.
pub struct ForMining {
    pub conversations: Vec<Conversation>,
    pub edits: Vec<TopicEdit>,
    pub generation: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversations.db: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("conversations.db: {0}")]
    Io(#[from] std::io::Error),
    #[error("conversations.db holds a conversation that cannot be read: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub inserted: u64,
    pub updated: u64,
    /// Already stored exactly so: importing a file again lands here.
    pub unchanged: u64,
}

impl Changes {
    pub fn add(&mut self, other: Changes) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// A change a person made to a topic, kept across mining runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopicEdit {
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The topic's sentences holding this word become a topic of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_on: Option<String>,
    pub by: String,
    pub at: i64,
}

pub struct ConversationStore {
    conn: Mutex<Connection>,
}

impl ConversationStore {
    pub fn open(path: &Path) -> Result<ConversationStore> {
        // Readable and writable by its owner only, as every file of the data directory.
        tutti_analytics::sqlite::private_file(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(ConversationStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts or replaces conversations by id, in one transaction.
    pub fn put(&self, conversations: &[Conversation]) -> Result<Changes> {
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
            for c in conversations {
                let body = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let hash = tutti_core::hash::fnv1a(body.as_bytes()) as i64;
                let stored: Option<i64> = find.query_row([&c.id], |r| r.get(0)).optional()?;
                match stored {
                    Some(h) if h == hash => {
                        changes.unchanged += 1;
                        continue;
                    }
                    Some(_) => changes.updated += 1,
                    None => changes.inserted += 1,
                }
                upsert.execute(params![c.id, c.started_at, c.outcome.as_str(), c.turns.len() as i64, body, hash])?;
                forget.execute([&c.id])?;
                for (kind, value) in &c.customer {
                    link.execute(params![kind, identifier(kind, value), c.id])?;
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

    /// Every conversation, oldest first, people's edits and the generation, read together: nothing changes the
    /// store in between.
    pub fn for_mining(&self) -> Result<ForMining> {
        let conn = self.conn();
        Ok(ForMining { conversations: all(&conn)?, edits: edits(&conn)?, generation: generation(&conn)? })
    }

    /// Every conversation, oldest first (by start, then id).
    pub fn all(&self) -> Result<Vec<Conversation>> {
        all(&self.conn())
    }

    pub fn get(&self, id: &str) -> Result<Option<Conversation>> {
        let conn = self.conn();
        let body: Option<String> =
            conn.query_row("SELECT body FROM conversations WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
    }

    /// Conversations and turns stored.
    pub fn count(&self) -> Result<(u64, u64)> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT count(*), coalesce(sum(turns), 0) FROM conversations", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?)
    }

    /// The ids of conversations with any of these identifiers (`("email", "an@example.vn")`).
    pub fn of_person(&self, identifiers: &[(String, String)]) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT conversation FROM conversation_people WHERE kind = ?1 AND value = ?2")?;
        let mut ids = Vec::new();
        for (kind, value) in identifiers {
            let rows = stmt.query_map(params![kind, identifier(kind, value)], |r| r.get::<_, String>(0))?;
            for id in rows {
                ids.push(id?);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Deletes, overwriting them, the conversations of a person known by any of these identifiers, and empties
    /// the write-ahead log. Returns how many were deleted.
    pub fn erase_person(&self, identifiers: &[(String, String)]) -> Result<usize> {
        let ids = self.of_person(identifiers)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in &ids {
            tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM conversation_people WHERE conversation = ?1", [id])?;
        }
        tx.commit()?;
        if !ids.is_empty() {
            // The last mining's examples may quote them: it is mined again on the next run.
            invalidate(&conn)?;
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        }
        Ok(ids.len())
    }

    /// Keeps a person's change to a topic; the last mining is made again with it.
    pub fn put_edit(&self, edit: &TopicEdit) -> Result<()> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
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

    pub fn edits(&self) -> Result<Vec<TopicEdit>> {
        edits(&self.conn())
    }

    /// A saved result (JSON), such as the last mining's topics and scripts.
    pub fn snapshot(&self, name: &str) -> Result<Option<String>> {
        Ok(self.conn().query_row("SELECT body FROM snapshots WHERE name = ?1", [name], |r| r.get(0)).optional()?)
    }

    /// Saves a result made from the store as it was at `generation` ([`ConversationStore::for_mining`]); when
    /// the store has changed since, nothing is saved (the result is already out of date) and the answer is false.
    pub fn put_snapshot(&self, name: &str, body: &str, generation: u64) -> Result<bool> {
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

    /// The store's count of changes that invalidate a mining.
    pub fn generation(&self) -> Result<u64> {
        Ok(generation(&self.conn())?)
    }
}

fn all(conn: &Connection) -> Result<Vec<Conversation>> {
    let mut stmt = conn.prepare("SELECT body FROM conversations ORDER BY started_at, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|body| {
        let body = body?;
        serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))
    })
    .collect()
}

fn edits(conn: &Connection) -> Result<Vec<TopicEdit>> {
    let mut stmt =
        conn.prepare("SELECT topic, label, label_en, merged_into, split_on, by, at FROM topic_edits ORDER BY topic")?;
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

/// An identifier as it is matched: emails in lower case, phones with only their digits and a leading `+`.
fn identifier(kind: &str, value: &str) -> String {
    match kind {
        "email" => value.trim().to_lowercase(),
        "phone" => value.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect(),
        _ => value.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, Shape};

    #[test]
    fn imports_are_idempotent_and_a_person_is_erased_with_their_conversations() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::open(&dir.path().join(CONVERSATIONS_FILE)).unwrap();
        let (mut conversations, _) = synth::generate(&Shape {
            conversations: 20,
            turns: 6,
            seed: 1,
            start: 1_790_000_000_000,
            weeks: 2,
            noise: 0,
        });
        assert_eq!(store.put(&conversations).unwrap(), Changes { inserted: 20, updated: 0, unchanged: 0 });
        assert_eq!(store.put(&conversations).unwrap(), Changes { inserted: 0, updated: 0, unchanged: 20 });
        conversations[3].turns[0].text.push_str(" (edited)");
        assert_eq!(store.put(&conversations[..5]).unwrap(), Changes { inserted: 0, updated: 1, unchanged: 4 });
        assert_eq!(store.all().unwrap().len(), 20);
        let turns: usize = conversations.iter().map(|c| c.turns.len()).sum();
        assert_eq!(store.count().unwrap(), (20, turns as u64));

        let person = [("email".to_owned(), "BUYER3@example.com".to_owned())];
        assert_eq!(store.of_person(&person).unwrap(), [conversations[3].id.clone()]);
        store.put_snapshot("mined", "{}", store.generation().unwrap()).unwrap();
        assert_eq!(store.erase_person(&person).unwrap(), 1);
        assert!(store.get(&conversations[3].id).unwrap().is_none());
        assert_eq!(store.count().unwrap().0, 19);
        assert!(store.snapshot("mined").unwrap().is_none(), "the mined examples may have quoted them");
        store.put_snapshot("mined", "{}", store.generation().unwrap()).unwrap();
        assert_eq!(store.put(&conversations[..2]).unwrap().unchanged, 2);
        assert!(store.snapshot("mined").unwrap().is_some(), "an import that changed nothing keeps the mining");
        conversations[1].turns[0].text.push_str(" (again)");
        store.put(&conversations[1..2]).unwrap();
        assert!(store.snapshot("mined").unwrap().is_none(), "a changed conversation is mined again");
        // A mining that read the store before a change is not kept: it would hide the change.
        let read = store.for_mining().unwrap();
        conversations[2].turns[0].text.push_str(" (meanwhile)");
        store.put(&conversations[2..3]).unwrap();
        assert!(!store.put_snapshot("mined", "{}", read.generation).unwrap());
        assert!(store.snapshot("mined").unwrap().is_none());
        assert!(store.put_snapshot("mined", "{}", store.for_mining().unwrap().generation).unwrap());
        drop(store);
        let bytes = std::fs::read(dir.path().join(CONVERSATIONS_FILE)).unwrap();
        let needle = b"buyer3@example.com";
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "overwritten, not only unlinked");
    }

    #[test]
    fn topic_edits_are_kept_and_layered() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::open(&dir.path().join(CONVERSATIONS_FILE)).unwrap();
        let edit = |label: Option<&str>, merged: Option<&str>| TopicEdit {
            topic: "t1".into(),
            label: label.map(str::to_owned),
            label_en: None,
            merged_into: merged.map(str::to_owned),
            split_on: None,
            by: "mai@shop.vn".into(),
            at: 1,
        };
        store.put_edit(&edit(Some("Giá"), None)).unwrap();
        store.put_edit(&edit(None, Some("t2"))).unwrap();
        let edits = store.edits().unwrap();
        assert_eq!((edits[0].label.as_deref(), edits[0].merged_into.as_deref()), (Some("Giá"), Some("t2")));
    }
}
