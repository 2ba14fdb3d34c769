//! `outcomes.db`: the dispatcher's journal of delivery outcomes. Its own file with its own writer, so recording
//! that a vendor answered never waits for the processor's transaction on `profiles.db`; the entries are applied
//! to the outbox soon after, in batches ([`Outbox::settle`](crate::Outbox::settle)), and forgotten once applied.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Checkpointer, Role, WalBound, open, truncate_wal};
use crate::{JournalEntry, Outcome, OutcomeJournal, Result, StoreError};

pub const OUTCOMES_FILE: &str = "outcomes.db";

// AUTOINCREMENT: an id is never handed out twice, even once every entry is forgotten, because the outbox keeps
// the highest id it applied and skips anything at or below it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    seq  INTEGER NOT NULL,
    kind TEXT    NOT NULL,
    at   INTEGER,
    text TEXT
);
";

/// Added after the first release: what a delivered action cost (JSON), for journals made before it too.
const COST_COLUMN: &str = "ALTER TABLE journal ADD COLUMN cost TEXT";

/// The journal's one writer (the dispatcher's recorder) and its reads at start.
pub struct SqliteOutcomeJournal {
    conn: Connection,
    path: PathBuf,
    wal: WalBound,
}

impl SqliteOutcomeJournal {
    pub fn open(path: &Path) -> Result<SqliteOutcomeJournal> {
        let conn = open(path, Role::Writer, 1024)?;
        // Survives the process dying, not a power cut: an outcome lost that way is an action delivered again
        // with its idempotency key, which at-least-once allows; an action lost cannot come of it.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let has_cost: bool =
            conn.query_row("SELECT count(*) > 0 FROM pragma_table_info('journal') WHERE name = 'cost'", [], |r| {
                r.get(0)
            })?;
        if !has_cost {
            conn.execute_batch(COST_COLUMN)?;
        }
        Ok(SqliteOutcomeJournal { conn, path: path.to_owned(), wal: WalBound::new() })
    }

    /// A background checkpointer for the journal, which also keeps its write-ahead log short.
    pub fn checkpointer(&self) -> Result<Checkpointer> {
        self.wal.checkpointer(&self.path)
    }
}

fn encode(outcome: &Outcome) -> (&'static str, Option<i64>, Option<&str>, Option<String>) {
    match outcome {
        Outcome::Done { result, cost } => {
            ("done", None, Some(result), cost.as_ref().map(|c| serde_json::to_string(c).expect("serialises")))
        }
        Outcome::Retry { at, error } => ("retry", Some(*at), Some(error), None),
        Outcome::Dead { error } => ("dead", None, Some(error), None),
        Outcome::Defer { at } => ("defer", Some(*at), None, None),
        Outcome::Skipped { reason } => ("skipped", None, Some(reason), None),
    }
}

fn decode(kind: &str, at: Option<i64>, text: Option<String>, cost: Option<String>) -> Result<Outcome> {
    let text = || text.clone().unwrap_or_default();
    let at = || at.ok_or_else(|| StoreError::Corrupt(format!("a journalled `{kind}` outcome has no time")));
    Ok(match kind {
        "done" => Outcome::Done {
            result: text(),
            cost: match cost {
                Some(c) => Some(
                    serde_json::from_str(&c)
                        .map_err(|e| StoreError::Corrupt(format!("a journalled cost cannot be read: {e}")))?,
                ),
                None => None,
            },
        },
        "retry" => Outcome::Retry { at: at()?, error: text() },
        "dead" => Outcome::Dead { error: text() },
        "defer" => Outcome::Defer { at: at()? },
        "skipped" => Outcome::Skipped { reason: text() },
        other => return Err(StoreError::Corrupt(format!("unknown journalled outcome `{other}`"))),
    })
}

impl OutcomeJournal for SqliteOutcomeJournal {
    fn append(&mut self, outcomes: &[(u64, Outcome)], forget: u64) -> Result<u64> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut last = 0;
        {
            tx.prepare_cached("DELETE FROM journal WHERE id <= ?1")?.execute(params![forget as i64])?;
            let mut insert =
                tx.prepare_cached("INSERT INTO journal (seq, kind, at, text, cost) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for (seq, outcome) in outcomes {
                let (kind, at, text, cost) = encode(outcome);
                insert.execute(params![*seq as i64, kind, at, text, cost])?;
                last = tx.last_insert_rowid() as u64;
            }
        }
        tx.commit()?;
        self.wal.after_commit(&self.conn);
        Ok(last)
    }

    fn after(&self, after: u64) -> Result<Vec<JournalEntry>> {
        let mut stmt =
            self.conn.prepare("SELECT id, seq, kind, at, text, cost FROM journal WHERE id > ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![after as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, seq, kind, at, text, cost) = row?;
            entries.push(JournalEntry { id: id as u64, seq: seq as u64, outcome: decode(&kind, at, text, cost)? });
        }
        Ok(entries)
    }

    fn continue_after(&mut self, id: u64) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // `sqlite_sequence` has the table's row once an id was ever handed out.
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'journal', 0
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'journal')",
            [],
        )?;
        tx.execute("UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'journal'", params![id as i64])?;
        tx.execute("DELETE FROM journal WHERE id <= ?1", params![id as i64])?;
        tx.commit()?;
        Ok(())
    }

    fn scrub(&mut self) -> Result<()> {
        truncate_wal(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &tempfile::TempDir) -> SqliteOutcomeJournal {
        SqliteOutcomeJournal::open(&dir.path().join(OUTCOMES_FILE)).unwrap()
    }

    #[test]
    fn every_kind_of_outcome_reads_back_as_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(&dir);
        let outcomes = vec![
            (7, Outcome::Done { result: "{\"ok\":true}".into(), cost: None }),
            (
                8,
                Outcome::Done {
                    result: "{}".into(),
                    cost: Some(crate::Cost { flow: "winback".into(), micros: 850_000_000, currency: "VND".into() }),
                },
            ),
            (3, Outcome::Retry { at: 1_000, error: "503".into() }),
            (9, Outcome::Dead { error: "400 bad request".into() }),
            (4, Outcome::Defer { at: 2_000 }),
            (5, Outcome::Skipped { reason: "unsubscribed".into() }),
        ];
        let last = j.append(&outcomes, 0).unwrap();
        let back = j.after(0).unwrap();
        assert_eq!(back.last().unwrap().id, last);
        assert_eq!(back.iter().map(|e| (e.seq, e.outcome.clone())).collect::<Vec<_>>(), outcomes);
        assert_eq!(j.after(back[1].id).unwrap().len(), 4, "entries after an id only");
    }

    #[test]
    fn applied_entries_are_forgotten_and_their_ids_never_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(&dir);
        let first = j.append(&[(1, Outcome::Defer { at: 5 })], 0).unwrap();
        let second = j.append(&[(2, Outcome::Defer { at: 6 })], first).unwrap();
        assert_eq!(j.after(0).unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![second]);
        // The file lost (or replaced) while the outbox remembers id 40 as applied: new ids start past it.
        drop(j);
        std::fs::remove_file(dir.path().join(OUTCOMES_FILE)).unwrap();
        let mut j = journal(&dir);
        j.continue_after(40).unwrap();
        assert_eq!(j.after(0).unwrap(), vec![]);
        assert!(j.append(&[(3, Outcome::Defer { at: 7 })], 0).unwrap() > 40);
        // And it holds across a reopen, with entries already there.
        drop(j);
        let mut j = journal(&dir);
        j.continue_after(10).unwrap();
        let after = j.append(&[(4, Outcome::Defer { at: 8 })], 0).unwrap();
        assert!(after > 41, "{after}");
        assert_eq!(j.after(0).unwrap().len(), 2);
    }

    #[test]
    fn a_scrub_leaves_forgotten_entries_nowhere_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(&dir);
        let secret = "nguyen.van.a@example.vn";
        let id =
            j.append(&[(1, Outcome::Done { result: format!("{{\"echo\":\"{secret}\"}}"), cost: None })], 0).unwrap();
        j.append(&[(2, Outcome::Defer { at: 1 })], id).unwrap();
        let on_disk = |dir: &tempfile::TempDir| {
            std::fs::read_dir(dir.path()).unwrap().any(|f| {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
            })
        };
        assert!(on_disk(&dir), "forgotten, but its old page is still in the write-ahead log");
        j.scrub().unwrap();
        assert!(!on_disk(&dir), "scrubbed");
    }
}
