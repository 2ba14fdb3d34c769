//! The outbox as the dispatcher sees it, in Postgres ([`Outbox`]): pending actions read back in queue order,
//! and attempts' outcomes settled with the journal id they come up to, as `sqlite/flows.rs`'s `SqliteOutbox`.
//!
//! With several workers, each dispatcher reads only the rows of the partitions its worker holds, and each
//! worker's outcome journal (a file of its own) has its own settled mark.

use std::cell::RefCell;
use std::sync::Arc;

use super::leases::Ownership;
use super::pool::Reconnecting;

use postgres::Client;
use tutti_core::ProfileId;

use crate::{Outbox, OutboxRow, Outcome, Result};

/// The `counters` row of the highest outcome journal id settled into the outbox.
const JOURNAL_SETTLED: &str = "outcome_journal";

/// The outbox columns [`row`] reads, in its order.
pub(super) const COLUMNS: &str = "seq, key, profile_id, connector, body, created_at, attempts, due_at, partition";

/// The index of the first column a query selects after [`COLUMNS`].
pub(super) const AFTER: usize = 9;

pub(super) fn row(r: &postgres::Row) -> OutboxRow {
    OutboxRow {
        seq: r.get::<_, i64>(0) as u64,
        key: r.get(1),
        profile: ProfileId(r.get::<_, i64>(2) as u64),
        connector: r.get(3),
        body: r.get(4),
        created_at: r.get(5),
        attempts: r.get::<_, i32>(6) as u32,
        due_at: r.get(7),
        partition: r.get::<_, i32>(8) as u32,
    }
}

/// The dispatcher's handle. `Outbox` reads through `&self` and the client needs `&mut`; the dispatcher is its
/// one user, on one thread, so the client lives in a `RefCell`.
pub struct PgOutbox {
    client: RefCell<Reconnecting>,
    ownership: Option<Arc<Ownership>>,
    /// The `counters` row of this dispatcher's journal.
    journal: String,
}

impl PgOutbox {
    /// The outbox of the one dispatcher on this database.
    /// Given a [`Reconnecting`] that knows where to connect, it connects again after losing the connection.
    pub fn new(client: impl Into<Reconnecting>) -> PgOutbox {
        PgOutbox { client: RefCell::new(client.into()), ownership: None, journal: JOURNAL_SETTLED.into() }
    }

    /// One of several workers' outboxes: rows of the partitions `ownership` holds; `journal` names this
    /// worker's outcome journal (stable across its restarts: the journal is a file in its data directory).
    pub fn shared(client: impl Into<Reconnecting>, ownership: Arc<Ownership>, journal: &str) -> PgOutbox {
        PgOutbox {
            client: RefCell::new(client.into()),
            ownership: Some(ownership),
            journal: format!("{JOURNAL_SETTLED}:{journal}"),
        }
    }
}

/// The pending rows of `partitions`, in queue order, at most `limit` (what a partition's new owner adopts).
pub fn pending_in(client: &mut Client, partitions: &[u32], limit: usize) -> Result<Vec<OutboxRow>> {
    let partitions: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
    let rows = client.query(
        &format!("SELECT {COLUMNS} FROM outbox WHERE partition = ANY($1) AND state = 'pending' ORDER BY seq LIMIT $2"),
        &[&partitions, &(limit as i64)],
    )?;
    Ok(rows.iter().map(row).collect())
}

impl Outbox for PgOutbox {
    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>> {
        let after = after.min(i64::MAX as u64) as i64;
        let rows = match &self.ownership {
            None => self.client.borrow_mut().get()?.query(
                &format!("SELECT {COLUMNS} FROM outbox WHERE seq > $1 AND state = 'pending' ORDER BY seq LIMIT $2"),
                &[&after, &(limit as i64)],
            )?,
            Some(ownership) => {
                let held: Vec<i32> = ownership.held().1.iter().map(|h| h.partition as i32).collect();
                self.client.borrow_mut().get()?.query(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox WHERE seq > $1 AND state = 'pending' AND partition = ANY($3)
                         ORDER BY seq LIMIT $2"
                    ),
                    &[&after, &(limit as i64), &held],
                )?
            }
        };
        Ok(rows.iter().map(row).collect())
    }

    fn journal_settled(&self) -> Result<u64> {
        let found = self
            .client
            .borrow_mut()
            .get()?
            .query_opt("SELECT value FROM counters WHERE name = $1", &[&self.journal])?;
        Ok(found.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn settle(&mut self, outcomes: &[(u64, Outcome)], journal: u64) -> Result<Vec<bool>> {
        let client = self.client.get_mut().get()?;
        let mut tx = client.transaction()?;
        let mut kept = Vec::with_capacity(outcomes.len());
        for (seq, outcome) in outcomes {
            let seq = *seq as i64;
            let changed = match outcome {
                Outcome::Done { result, cost } => {
                    let changed = tx.execute(
                        "UPDATE outbox SET state = 'done', attempts = attempts + 1, result = $2, error = NULL
                         WHERE seq = $1 AND state = 'pending'",
                        &[&seq, result],
                    )?;
                    // Charged once: only when this settles the row (a repeat finds it done).
                    if let (1, Some(c)) = (changed, cost) {
                        tx.execute(
                            "INSERT INTO spend (flow, currency, micros, actions) VALUES ($1, $2, $3, 1)
                             ON CONFLICT (flow, currency) DO UPDATE
                             SET micros = spend.micros + excluded.micros, actions = spend.actions + 1",
                            &[&c.flow, &c.currency, &c.micros],
                        )?;
                    }
                    changed
                }
                Outcome::Retry { at, error } => tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, due_at = $2, error = $3 WHERE seq = $1 AND state = 'pending'",
                    &[&seq, at, error],
                )?,
                Outcome::Dead { error } => tx.execute(
                    "UPDATE outbox SET state = 'dead', attempts = attempts + 1, error = $2 WHERE seq = $1 AND state = 'pending'",
                    &[&seq, error],
                )?,
                Outcome::Defer { at } => {
                    tx.execute("UPDATE outbox SET due_at = $2 WHERE seq = $1 AND state = 'pending'", &[&seq, at])?
                }
                Outcome::Skipped { reason } => tx.execute(
                    "UPDATE outbox SET state = 'skipped', error = $2 WHERE seq = $1 AND state = 'pending'",
                    &[&seq, reason],
                )?,
            };
            kept.push(changed == 1);
        }
        tx.execute(
            "INSERT INTO counters (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = GREATEST(counters.value, excluded.value)",
            &[&self.journal, &(journal as i64)],
        )?;
        tx.commit()?;
        Ok(kept)
    }
}
