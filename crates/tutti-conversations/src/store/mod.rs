//! The conversations store: conversations apart from the event log (a one-hour transcript is far over an
//! event's size), each with the customer's identifiers so it is found and erased with the person; the edits
//! people make to topics; and the last mining's results, which the API and the console read.
//!
//! Two backends behind [`Tables`]: `conversations.db` in the data directory ([`sqlite`], the default), or the
//! Postgres database several workers share ([`postgres`], with `[storage] postgres`), so a conversation imported
//! through one worker is mined, shown and erased by any. What a conversation is (its JSON, its hash, how an
//! identifier is matched) is worked out here, the same for both.

mod postgres;
mod sqlite;

use std::path::Path;

use crate::model::Conversation;

pub use postgres::PgConversationTables;

pub const CONVERSATIONS_FILE: &str = "conversations.db";

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
    #[error("the conversations in Postgres: {0}")]
    Postgres(#[from] tutti_store::StoreError),
    #[error("the store holds a conversation that cannot be read: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What an import changed: conversations inserted, updated, and already stored exactly so.
pub use tutti_store::Changes;

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

/// A conversation as its tables keep it.
pub struct Row<'a> {
    pub id: &'a str,
    pub started_at: Option<i64>,
    pub outcome: &'a str,
    pub turns: i64,
    /// The conversation as JSON.
    pub body: String,
    /// FNV-1a of `body`: importing a conversation again unchanged writes nothing.
    pub hash: i64,
    /// The customer's identifiers, as matched ([`identifier`]): (kind, value).
    pub people: Vec<(&'a str, String)>,
}

/// What a backend keeps. Every call is one transaction. A change of conversations or of edits empties the saved
/// results and counts one more generation, in the same transaction.
pub trait Tables: Send + Sync {
    /// Inserts or replaces by id (the people linked anew); a row stored with the same hash is left alone.
    fn put(&self, rows: &[Row<'_>]) -> Result<Changes>;
    /// Every conversation's JSON, oldest first (by start, then id).
    fn bodies(&self) -> Result<Vec<String>>;
    /// [`Tables::bodies`], [`Tables::edits`] and [`Tables::generation`], read at one moment.
    fn for_mining(&self) -> Result<(Vec<String>, Vec<TopicEdit>, u64)>;
    fn body(&self, id: &str) -> Result<Option<String>>;
    /// Conversations and turns stored.
    fn count(&self) -> Result<(u64, u64)>;
    /// The ids of conversations linked to any of these (kind, matched value), sorted, once each.
    fn of_person(&self, identifiers: &[(String, String)]) -> Result<Vec<String>>;
    /// Deletes conversations and their links, leaving as little of them behind as the backend can.
    fn erase(&self, ids: &[String]) -> Result<()>;
    /// A person's change to a topic, layered over the ones before.
    fn put_edit(&self, edit: &TopicEdit) -> Result<()>;
    fn edits(&self) -> Result<Vec<TopicEdit>>;
    fn snapshot(&self, name: &str) -> Result<Option<String>>;
    /// Saves unless the generation moved past `generation`; says whether it saved.
    fn put_snapshot(&self, name: &str, body: &str, generation: u64) -> Result<bool>;
    fn generation(&self) -> Result<u64>;
}

pub struct ConversationStore {
    tables: Box<dyn Tables>,
}

fn read(body: &str) -> Result<Conversation> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl ConversationStore {
    /// `conversations.db` at `path`.
    pub fn open(path: &Path) -> Result<ConversationStore> {
        Ok(ConversationStore { tables: Box::new(sqlite::SqliteConversationTables::open(path)?) })
    }

    /// On other tables, such as Postgres's ([`PgConversationTables`]).
    pub fn on(tables: Box<dyn Tables>) -> ConversationStore {
        ConversationStore { tables }
    }

    /// Inserts or replaces conversations by id, in one transaction.
    pub fn put(&self, conversations: &[Conversation]) -> Result<Changes> {
        let mut rows = Vec::with_capacity(conversations.len());
        for c in conversations {
            let body = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rows.push(Row {
                id: &c.id,
                started_at: c.started_at,
                outcome: c.outcome.as_str(),
                turns: c.turns.len() as i64,
                hash: tutti_core::hash::fnv1a(body.as_bytes()) as i64,
                body,
                people: c.customer.iter().map(|(kind, value)| (kind.as_str(), identifier(kind, value))).collect(),
            });
        }
        self.tables.put(&rows)
    }

    /// Every conversation, oldest first, people's edits and the generation, read together: nothing changes the
    /// store in between.
    pub fn for_mining(&self) -> Result<ForMining> {
        let (bodies, edits, generation) = self.tables.for_mining()?;
        let conversations = bodies.iter().map(|b| read(b)).collect::<Result<_>>()?;
        Ok(ForMining { conversations, edits, generation })
    }

    /// Every conversation, oldest first (by start, then id).
    pub fn all(&self) -> Result<Vec<Conversation>> {
        self.tables.bodies()?.iter().map(|b| read(b)).collect()
    }

    pub fn get(&self, id: &str) -> Result<Option<Conversation>> {
        self.tables.body(id)?.map(|b| read(&b)).transpose()
    }

    /// Conversations and turns stored.
    pub fn count(&self) -> Result<(u64, u64)> {
        self.tables.count()
    }

    /// The ids of conversations with any of these identifiers (`("email", "an@example.vn")`).
    pub fn of_person(&self, identifiers: &[(String, String)]) -> Result<Vec<String>> {
        let matched: Vec<(String, String)> =
            identifiers.iter().map(|(kind, value)| (kind.clone(), identifier(kind, value))).collect();
        self.tables.of_person(&matched)
    }

    /// Deletes the conversations of a person known by any of these identifiers (overwriting them in SQLite).
    /// Returns how many were deleted.
    pub fn erase_person(&self, identifiers: &[(String, String)]) -> Result<usize> {
        let ids = self.of_person(identifiers)?;
        if !ids.is_empty() {
            self.tables.erase(&ids)?;
        }
        Ok(ids.len())
    }

    /// Keeps a person's change to a topic; the last mining is made again with it.
    pub fn put_edit(&self, edit: &TopicEdit) -> Result<()> {
        self.tables.put_edit(edit)
    }

    pub fn edits(&self) -> Result<Vec<TopicEdit>> {
        self.tables.edits()
    }

    /// A saved result (JSON), such as the last mining's topics and scripts.
    pub fn snapshot(&self, name: &str) -> Result<Option<String>> {
        self.tables.snapshot(name)
    }

    /// Saves a result made from the store as it was at `generation` ([`ConversationStore::for_mining`]); when
    /// the store has changed since, nothing is saved (the result is already out of date) and the answer is false.
    pub fn put_snapshot(&self, name: &str, body: &str, generation: u64) -> Result<bool> {
        self.tables.put_snapshot(name, body, generation)
    }

    /// The store's count of changes that invalidate a mining.
    pub fn generation(&self) -> Result<u64> {
        self.tables.generation()
    }
}

/// An identifier as it is matched: emails in lower case, phones with only their digits and a leading `+`.
pub fn identifier(kind: &str, value: &str) -> String {
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
