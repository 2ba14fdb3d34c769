//! The conversations store in Postgres, for workers sharing a database (`[storage] postgres`): tables
//! `conversations`, `conversation_people`, `topic_edits`, `conversation_snapshots` and `conversation_meta`
//! (tutti-store's migration 7). The same answers as `sqlite.rs`.
//!
//! Mining's reads are one repeatable-read transaction. The generation row is the lock that orders saving a
//! result against changes: a change takes it before emptying the saved results, a save takes it before
//! comparing, so a result worked out before a change is never saved after it. An erased conversation's rows are
//! deleted at once; Postgres reclaims their space at its next vacuum (autovacuum), not by overwriting them then.

use postgres::{GenericClient, IsolationLevel};
use tutti_store::postgres::pool::Pool;

use super::{Changes, Result, Row, Tables, TopicEdit};

pub struct PgConversationTables {
    pool: Pool,
}

impl PgConversationTables {
    /// On a migrated database.
    pub fn new(pool: Pool) -> PgConversationTables {
        PgConversationTables { pool }
    }
}

/// Counts one more change and empties the saved results, the generation row first (see the module's note).
fn invalidate(client: &mut impl GenericClient) -> tutti_store::Result<()> {
    client.execute("UPDATE conversation_meta SET value = value + 1 WHERE key = 'generation'", &[])?;
    client.execute("DELETE FROM conversation_snapshots", &[])?;
    Ok(())
}

fn generation(client: &mut impl GenericClient, lock: bool) -> tutti_store::Result<u64> {
    let sql = if lock {
        "SELECT value FROM conversation_meta WHERE key = 'generation' FOR UPDATE"
    } else {
        "SELECT value FROM conversation_meta WHERE key = 'generation'"
    };
    Ok(client.query_opt(sql, &[])?.map_or(0, |r| r.get::<_, i64>(0) as u64))
}

/// Oldest first, as SQLite orders them (a conversation without a start first).
fn bodies(client: &mut impl GenericClient) -> tutti_store::Result<Vec<String>> {
    let rows = client.query("SELECT body FROM conversations ORDER BY started_at NULLS FIRST, id", &[])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn edits(client: &mut impl GenericClient) -> tutti_store::Result<Vec<TopicEdit>> {
    let rows = client
        .query("SELECT topic, label, label_en, merged_into, split_on, by, at FROM topic_edits ORDER BY topic", &[])?;
    Ok(rows
        .iter()
        .map(|r| TopicEdit {
            topic: r.get(0),
            label: r.get(1),
            label_en: r.get(2),
            merged_into: r.get(3),
            split_on: r.get(4),
            by: r.get(5),
            at: r.get(6),
        })
        .collect())
}

impl Tables for PgConversationTables {
    fn put(&self, rows: &[Row<'_>]) -> Result<Changes> {
        Ok(self.pool.with(|client| {
            let mut tx = client.transaction()?;
            let find = tx.prepare("SELECT hash FROM conversations WHERE id = $1 FOR UPDATE")?;
            let upsert = tx.prepare(
                "INSERT INTO conversations (id, started_at, outcome, turns, body, hash) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, outcome = excluded.outcome,
                 turns = excluded.turns, body = excluded.body, hash = excluded.hash",
            )?;
            let forget = tx.prepare("DELETE FROM conversation_people WHERE conversation = $1")?;
            let link = tx.prepare(
                "INSERT INTO conversation_people (kind, value, conversation) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )?;
            let mut changes = Changes::default();
            for row in rows {
                let stored: Option<i64> = tx.query_opt(&find, &[&row.id])?.map(|r| r.get(0));
                match stored {
                    Some(h) if h == row.hash => {
                        changes.unchanged += 1;
                        continue;
                    }
                    Some(_) => changes.updated += 1,
                    None => changes.inserted += 1,
                }
                tx.execute(&upsert, &[&row.id, &row.started_at, &row.outcome, &row.turns, &row.body, &row.hash])?;
                tx.execute(&forget, &[&row.id])?;
                for (kind, value) in &row.people {
                    tx.execute(&link, &[kind, value, &row.id])?;
                }
            }
            if changes.inserted + changes.updated > 0 {
                // The last mining no longer holds every conversation.
                invalidate(&mut tx)?;
            }
            tx.commit()?;
            Ok(changes)
        })?)
    }

    fn bodies(&self) -> Result<Vec<String>> {
        Ok(self.pool.with(bodies)?)
    }

    fn for_mining(&self) -> Result<(Vec<String>, Vec<TopicEdit>, u64)> {
        Ok(self.pool.with(|client| {
            let mut tx =
                client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let read = (bodies(&mut tx)?, edits(&mut tx)?, generation(&mut tx, false)?);
            tx.commit()?;
            Ok(read)
        })?)
    }

    fn body(&self, id: &str) -> Result<Option<String>> {
        Ok(self.pool.with(|client| {
            Ok(client.query_opt("SELECT body FROM conversations WHERE id = $1", &[&id])?.map(|r| r.get(0)))
        })?)
    }

    fn count(&self) -> Result<(u64, u64)> {
        Ok(self.pool.with(|client| {
            let row = client.query_one("SELECT count(*), coalesce(sum(turns), 0)::BIGINT FROM conversations", &[])?;
            Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
        })?)
    }

    fn of_person(&self, identifiers: &[(String, String)]) -> Result<Vec<String>> {
        Ok(self.pool.with(|client| {
            let stmt = client.prepare("SELECT conversation FROM conversation_people WHERE kind = $1 AND value = $2")?;
            let mut ids = Vec::new();
            for (kind, value) in identifiers {
                ids.extend(client.query(&stmt, &[kind, value])?.iter().map(|r| r.get::<_, String>(0)));
            }
            ids.sort();
            ids.dedup();
            Ok(ids)
        })?)
    }

    fn erase(&self, ids: &[String]) -> Result<()> {
        Ok(self.pool.with(|client| {
            let mut tx = client.transaction()?;
            tx.execute("DELETE FROM conversations WHERE id = ANY($1)", &[&ids])?;
            tx.execute("DELETE FROM conversation_people WHERE conversation = ANY($1)", &[&ids])?;
            // The last mining's examples may quote them: it is mined again on the next run.
            invalidate(&mut tx)?;
            tx.commit()?;
            Ok(())
        })?)
    }

    fn put_edit(&self, edit: &TopicEdit) -> Result<()> {
        Ok(self.pool.with(|client| {
            let mut tx = client.transaction()?;
            invalidate(&mut tx)?;
            tx.execute(
                "INSERT INTO topic_edits (topic, label, label_en, merged_into, split_on, by, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (topic) DO UPDATE SET label = coalesce(excluded.label, topic_edits.label),
                 label_en = coalesce(excluded.label_en, topic_edits.label_en),
                 merged_into = coalesce(excluded.merged_into, topic_edits.merged_into),
                 split_on = coalesce(excluded.split_on, topic_edits.split_on), by = excluded.by, at = excluded.at",
                &[&edit.topic, &edit.label, &edit.label_en, &edit.merged_into, &edit.split_on, &edit.by, &edit.at],
            )?;
            tx.commit()?;
            Ok(())
        })?)
    }

    fn edits(&self) -> Result<Vec<TopicEdit>> {
        Ok(self.pool.with(edits)?)
    }

    fn snapshot(&self, name: &str) -> Result<Option<String>> {
        Ok(self.pool.with(|client| {
            Ok(client.query_opt("SELECT body FROM conversation_snapshots WHERE name = $1", &[&name])?.map(|r| r.get(0)))
        })?)
    }

    fn put_snapshot(&self, name: &str, body: &str, generation: u64) -> Result<bool> {
        Ok(self.pool.with(|client| {
            let mut tx = client.transaction()?;
            if self::generation(&mut tx, true)? != generation {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO conversation_snapshots (name, body) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body",
                &[&name, &body],
            )?;
            tx.commit()?;
            Ok(true)
        })?)
    }

    fn generation(&self) -> Result<u64> {
        Ok(self.pool.with(|client| generation(client, false))?)
    }
}
