//! Flow state in `profiles.db`: each profile's machine state, its one timer, the outbox, runs for inspection,
//! segment memberships, and definitions managed through the API.
//!
//! They live beside the profiles because they change together: the processor commits the profiles, the flow
//! states, the timers and the outbox of one batch in one transaction with the log position, so a crash replays
//! the batch and queues each action once (the outbox key is unique as well, as a second guard).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tutti_core::{Millis, ProfileId};

use super::{ReadPool, Role, open};

use tutti_flows::StepKey;

use crate::{
    Backfill, Broadcast, DeadLetterFilter, Delivery, DeliveryFilter, FlowBatch, FlowReader, Outbox, OutboxRow, Outcome,
    Result, Spend,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS flow_states (
    profile_id INTEGER PRIMARY KEY,
    state      BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS timers (
    profile_id INTEGER PRIMARY KEY,
    due        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due, profile_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT    NOT NULL UNIQUE,
    profile_id INTEGER NOT NULL,
    connector  TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending',
    result     TEXT,
    error      TEXT
);
-- The dispatcher keeps pending actions in memory and reads them back from here at start (in queue order).
DROP INDEX IF EXISTS outbox_pending;
CREATE INDEX IF NOT EXISTS outbox_pending_seq ON outbox (seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_by_profile ON outbox (profile_id);
-- Dead letters, for the overview's count and the dead-letter list, without reading every delivered row.
CREATE INDEX IF NOT EXISTS outbox_dead_seq ON outbox (seq) WHERE state = 'dead';
-- A rowid table: run records are a kilobyte or more, too large for a WITHOUT ROWID table to keep well.
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT    NOT NULL UNIQUE,
    profile_id INTEGER NOT NULL,
    flow       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_profile ON runs (profile_id, started_at);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs (flow, started_at);
-- The approvals inbox: runs waiting for a person, oldest request first.
CREATE INDEX IF NOT EXISTS runs_awaiting_approval ON runs (updated_at, id) WHERE state = 'approval';
CREATE TABLE IF NOT EXISTS segment_members (
    segment    TEXT    NOT NULL,
    profile_id INTEGER NOT NULL,
    PRIMARY KEY (segment, profile_id)
) WITHOUT ROWID;
-- Runs that reached a counted step (an approve step's `first_sends`), per flow version, across profiles.
CREATE TABLE IF NOT EXISTS step_counts (
    flow       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    step       TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (flow, version, step)
) WITHOUT ROWID;
-- What runs did, per flow and step, summed as batches commit (see `FlowMeasure`).
CREATE TABLE IF NOT EXISTS flow_stats (
    flow    TEXT    NOT NULL,
    step    TEXT    NOT NULL,
    measure TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (flow, step, measure)
) WITHOUT ROWID;
-- Segments worked out over the profiles that existed before them (see `Backfill`).
CREATE TABLE IF NOT EXISTS segment_backfills (
    segment      TEXT    PRIMARY KEY,
    source_hash  TEXT    NOT NULL,
    next_profile INTEGER NOT NULL,
    done         INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER
) WITHOUT ROWID;
-- Each segment's members, day by day (the processor records them hourly and when a backfill ends).
CREATE TABLE IF NOT EXISTS segment_history (
    segment TEXT    NOT NULL,
    day     TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (segment, day)
) WITHOUT ROWID;
-- Flows paused by a person: they start no runs until resumed.
CREATE TABLE IF NOT EXISTS flow_pauses (
    flow      TEXT    PRIMARY KEY,
    paused_at INTEGER NOT NULL
) WITHOUT ROWID;
-- One-off sends to a segment (see `Broadcast`).
CREATE TABLE IF NOT EXISTS broadcasts (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    segment      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    send_at      INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    done         INTEGER NOT NULL,
    next_profile INTEGER NOT NULL,
    finished_at  INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS definitions (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id, version)
) WITHOUT ROWID;
-- The audit trail: append-only. Nothing deletes a record; the one change allowed is an erasure's redaction,
-- which blanks what a record says about the person and keeps the rest.
CREATE TABLE IF NOT EXISTS audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    flow       TEXT,
    run        TEXT,
    profile_id INTEGER,
    detail     TEXT    NOT NULL,
    redacted   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS audit_by_flow ON audit (flow, seq);
CREATE INDEX IF NOT EXISTS audit_by_run ON audit (run, seq);
CREATE INDEX IF NOT EXISTS audit_by_profile ON audit (profile_id, seq);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_redact_only BEFORE UPDATE ON audit
WHEN NOT (OLD.redacted = 0 AND NEW.redacted = 1 AND NEW.seq = OLD.seq AND NEW.at = OLD.at
          AND NEW.kind = OLD.kind AND NEW.flow IS OLD.flow AND NEW.run IS OLD.run
          AND NEW.profile_id IS OLD.profile_id)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only; only an erasure may redact a record'); END;
";

/// Writes a batch's flow changes inside the processor's transaction. Returns the sequence number each outbox
/// item was queued as (`None` for a key already queued).
pub(super) fn commit(tx: &Transaction<'_>, batch: &FlowBatch) -> Result<Vec<Option<u64>>> {
    let mut put_state = tx.prepare_cached("INSERT OR REPLACE INTO flow_states (profile_id, state) VALUES (?1, ?2)")?;
    let mut drop_state = tx.prepare_cached("DELETE FROM flow_states WHERE profile_id = ?1")?;
    for (pid, state) in &batch.states {
        match state {
            Some(bytes) => put_state.execute(params![pid.0 as i64, bytes])?,
            None => drop_state.execute([pid.0 as i64])?,
        };
    }
    let mut put_timer = tx.prepare_cached("INSERT OR REPLACE INTO timers (profile_id, due) VALUES (?1, ?2)")?;
    let mut drop_timer = tx.prepare_cached("DELETE FROM timers WHERE profile_id = ?1")?;
    for (pid, due) in &batch.timers {
        match due {
            Some(at) => put_timer.execute(params![pid.0 as i64, at])?,
            None => drop_timer.execute([pid.0 as i64])?,
        };
    }
    let mut queue = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (key, profile_id, connector, body, created_at, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    let mut queued = Vec::with_capacity(batch.outbox.len());
    for item in &batch.outbox {
        let inserted =
            queue.execute(params![item.key, item.profile.0 as i64, item.connector, item.body, item.created_at])?;
        queued.push((inserted == 1).then(|| tx.last_insert_rowid() as u64));
    }
    let mut put_run = tx.prepare_cached(
        "INSERT OR REPLACE INTO runs (id, profile_id, flow, version, state, started_at, updated_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for run in &batch.runs {
        put_run.execute(params![
            run.id,
            run.profile.0 as i64,
            run.flow,
            run.version,
            run.state,
            run.started_at,
            run.updated_at,
            run.body
        ])?;
    }
    let mut join = tx.prepare_cached("INSERT OR IGNORE INTO segment_members (segment, profile_id) VALUES (?1, ?2)")?;
    let mut leave = tx.prepare_cached("DELETE FROM segment_members WHERE segment = ?1 AND profile_id = ?2")?;
    for (segment, pid, member) in &batch.members {
        if *member {
            join.execute(params![segment, pid.0 as i64])?;
        } else {
            leave.execute(params![segment, pid.0 as i64])?;
        }
    }
    super::audit::append_audit(tx, &batch.audit)?;
    let mut count = tx.prepare_cached(
        "INSERT INTO step_counts (flow, version, step, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (flow, version, step) DO UPDATE SET count = excluded.count",
    )?;
    for (key, n) in &batch.counts {
        count.execute(params![key.flow, key.version, key.step, *n as i64])?;
    }
    let mut put_backfill = tx.prepare_cached(
        "INSERT OR REPLACE INTO segment_backfills (segment, source_hash, next_profile, done, total, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for b in &batch.backfills {
        put_backfill.execute(params![
            b.segment,
            b.source_hash,
            b.next_profile as i64,
            b.done as i64,
            b.total as i64,
            b.started_at,
            b.finished_at
        ])?;
    }
    let mut size =
        tx.prepare_cached("INSERT OR REPLACE INTO segment_history (segment, day, count) VALUES (?1, ?2, ?3)")?;
    for (segment, day, count) in &batch.sizes {
        size.execute(params![segment, day, *count as i64])?;
    }
    let mut sending = tx.prepare_cached(
        "UPDATE broadcasts SET status = ?2, total = ?3, done = ?4, next_profile = ?5, finished_at = ?6
         WHERE id = ?1 AND status != 'cancelled'",
    )?;
    for b in &batch.broadcasts {
        sending.execute(params![
            b.id,
            b.status,
            b.total as i64,
            b.done as i64,
            b.next_profile as i64,
            b.finished_at
        ])?;
    }
    let mut add = tx.prepare_cached(
        "INSERT INTO flow_stats (flow, step, measure, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (flow, step, measure) DO UPDATE SET count = count + excluded.count",
    )?;
    for (m, n) in &batch.stats {
        add.execute(params![m.flow, m.step, m.measure, *n as i64])?;
    }
    Ok(queued)
}

/// Moves a merged-away profile's flow rows to the profile it joined (its state was absorbed by the caller).
pub(super) fn merge(tx: &Transaction<'_>, into: ProfileId, from: ProfileId) -> Result<()> {
    let (into, from) = (into.0 as i64, from.0 as i64);
    tx.execute("DELETE FROM flow_states WHERE profile_id = ?1", [from])?;
    tx.execute("DELETE FROM timers WHERE profile_id = ?1", [from])?;
    tx.execute("UPDATE runs SET profile_id = ?1 WHERE profile_id = ?2", [into, from])?;
    tx.execute("DELETE FROM segment_members WHERE profile_id = ?1", [from])?;
    Ok(())
}

/// Forgets everything flows know about a profile (erasure).
pub(super) fn erase(tx: &Transaction<'_>, pid: ProfileId) -> Result<()> {
    let pid = pid.0 as i64;
    for table in ["flow_states", "timers", "runs", "segment_members", "outbox"] {
        tx.execute(&format!("DELETE FROM {table} WHERE profile_id = ?1"), [pid])?;
    }
    super::audit::redact_audit(tx, ProfileId(pid as u64))
}

pub(super) fn flow_state(conn: &Connection, id: ProfileId) -> Result<Option<Vec<u8>>> {
    let mut stmt = conn.prepare_cached("SELECT state FROM flow_states WHERE profile_id = ?1")?;
    Ok(stmt.query_row([id.0 as i64], |r| r.get(0)).optional()?)
}

pub(super) fn due_timers(conn: &Connection, before: Millis, limit: usize) -> Result<Vec<(Millis, ProfileId)>> {
    let mut stmt =
        conn.prepare_cached("SELECT due, profile_id FROM timers WHERE due < ?1 ORDER BY due, profile_id LIMIT ?2")?;
    let rows = stmt.query_map(params![before, limit as i64], |r| {
        Ok((r.get::<_, i64>(0)?, ProfileId(r.get::<_, i64>(1)? as u64)))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn step_counts(conn: &Connection) -> Result<Vec<(StepKey, u64)>> {
    let mut stmt = conn.prepare_cached("SELECT flow, version, step, count FROM step_counts")?;
    let rows = stmt.query_map([], |r| {
        Ok((StepKey { flow: r.get(0)?, version: r.get(1)?, step: r.get(2)? }, r.get::<_, i64>(3)? as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.get::<_, i64>(0)? as u64,
        key: r.get(1)?,
        profile: ProfileId(r.get::<_, i64>(2)? as u64),
        connector: r.get(3)?,
        body: r.get(4)?,
        created_at: r.get(5)?,
        attempts: r.get::<_, i64>(6)? as u32,
        due_at: r.get(7)?,
        partition: 0,
    })
}

/// The `meta` key of the highest outcome journal id settled into the outbox.
const JOURNAL_SETTLED: &str = "outcome_journal";

/// The dispatcher's connection to the outbox.
pub struct SqliteOutbox {
    conn: Connection,
}

impl SqliteOutbox {
    pub fn open(path: &Path) -> Result<SqliteOutbox> {
        let conn = open(path, Role::Writer, 4 * 1024)?;
        // A delivery marked done and lost in a power cut is delivered again, which at-least-once allows and the
        // idempotency key makes harmless; what is never allowed (an action lost) cannot come of it.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The outbox lives in profiles.db, whose `meta` table keeps the settled journal id.
        conn.execute_batch(super::profiles::SCHEMA)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(super::history::SPEND_SCHEMA)?;
        Ok(SqliteOutbox { conn })
    }
}

impl Outbox for SqliteOutbox {
    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, key, profile_id, connector, body, created_at, attempts, due_at FROM outbox
             INDEXED BY outbox_pending_seq WHERE seq > ?1 AND state = 'pending' ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], outbox_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn journal_settled(&self) -> Result<u64> {
        Ok(super::profiles::meta(&self.conn, JOURNAL_SETTLED)?.unwrap_or(0))
    }

    fn settle(&mut self, outcomes: &[(u64, Outcome)], journal: u64) -> Result<Vec<bool>> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut kept = Vec::with_capacity(outcomes.len());
        {
            let mut done = tx.prepare_cached(
                "UPDATE outbox SET state = 'done', attempts = attempts + 1, result = ?2, error = NULL WHERE seq = ?1 AND state = 'pending'",
            )?;
            let mut retry =
                tx.prepare_cached("UPDATE outbox SET attempts = attempts + 1, due_at = ?2, error = ?3 WHERE seq = ?1 AND state = 'pending'")?;
            let mut dead = tx.prepare_cached(
                "UPDATE outbox SET state = 'dead', attempts = attempts + 1, error = ?2 WHERE seq = ?1 AND state = 'pending'",
            )?;
            let mut defer = tx.prepare_cached("UPDATE outbox SET due_at = ?2 WHERE seq = ?1 AND state = 'pending'")?;
            let mut skip = tx.prepare_cached(
                "UPDATE outbox SET state = 'skipped', error = ?2 WHERE seq = ?1 AND state = 'pending'",
            )?;
            let mut charge = tx.prepare_cached(super::history::CHARGE)?;
            for (seq, outcome) in outcomes {
                let seq = *seq as i64;
                let changed = match outcome {
                    Outcome::Done { result, cost } => {
                        let changed = done.execute(params![seq, result])?;
                        // Charged once: only when this settles the row (a repeat finds it done).
                        if let (1, Some(c)) = (changed, cost) {
                            charge.execute(params![c.flow, c.currency, c.micros])?;
                        }
                        changed
                    }
                    Outcome::Retry { at, error } => retry.execute(params![seq, at, error])?,
                    Outcome::Dead { error } => dead.execute(params![seq, error])?,
                    Outcome::Defer { at } => defer.execute(params![seq, at])?,
                    Outcome::Skipped { reason } => skip.execute(params![seq, reason])?,
                };
                kept.push(changed == 1);
            }
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            )?
            .execute(params![JOURNAL_SETTLED, journal as i64])?;
        }
        tx.commit()?;
        Ok(kept)
    }
}

/// A query over dead letters: `select` and the filter's conditions, after a sequence number, in order.
fn dead_letter_query(
    select: &str,
    filter: &DeadLetterFilter,
    after: u64,
    limit: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = format!("{select} WHERE state = 'dead' AND seq > ?1");
    let mut values = vec![V::Integer(after as i64)];
    if !filter.seqs.is_empty() {
        let marks: Vec<String> = filter
            .seqs
            .iter()
            .map(|seq| {
                values.push(V::Integer(*seq as i64));
                format!("?{}", values.len())
            })
            .collect();
        sql.push_str(&format!(" AND seq IN ({})", marks.join(", ")));
    }
    if let Some(connector) = &filter.connector {
        values.push(V::Text(connector.clone()));
        sql.push_str(&format!(" AND connector = ?{}", values.len()));
    }
    if let Some(flow) = &filter.flow {
        values.push(V::Text(flow.clone()));
        sql.push_str(&format!(" AND json_extract(CAST(body AS TEXT), '$.flow') = ?{}", values.len()));
    }
    values.push(V::Integer(limit as i64));
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", values.len()));
    (sql, values)
}

/// Flow queries for the API, and the definitions table (`definitions.rs`).
pub struct SqliteFlowReader {
    pub(super) pool: ReadPool,
    pub(super) writer: Mutex<Connection>,
}

impl SqliteFlowReader {
    pub fn open(path: &Path) -> Result<SqliteFlowReader> {
        let conn = open(path, Role::Writer, 1024)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteFlowReader { pool: ReadPool::new(path, 8 * 1024), writer: Mutex::new(conn) })
    }
}

impl FlowReader for SqliteFlowReader {
    fn runs(&self, profile: Option<ProfileId>, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>> {
        self.pool.with(|conn| {
            let limit = limit as i64;
            let rows: Vec<Vec<u8>> = match (profile, flow) {
                (Some(p), Some(f)) => {
                    let mut stmt = conn.prepare_cached(
                        "SELECT body FROM runs WHERE profile_id = ?1 AND flow = ?2 ORDER BY started_at DESC, id DESC LIMIT ?3",
                    )?;
                    stmt.query_map(params![p.0 as i64, f, limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
                }
                (Some(p), None) => {
                    let mut stmt = conn.prepare_cached(
                        "SELECT body FROM runs WHERE profile_id = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
                    )?;
                    stmt.query_map(params![p.0 as i64, limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
                }
                (None, Some(f)) => {
                    let mut stmt = conn.prepare_cached(
                        "SELECT body FROM runs WHERE flow = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
                    )?;
                    stmt.query_map(params![f, limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
                }
                (None, None) => {
                    let mut stmt =
                        conn.prepare_cached("SELECT body FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1")?;
                    stmt.query_map(params![limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
                }
            };
            Ok(rows)
        })
    }

    fn segment_members(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT profile_id FROM segment_members WHERE segment = ?1 AND profile_id > ?2 ORDER BY profile_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![segment, after as i64, limit as i64], |r| {
                Ok(ProfileId(r.get::<_, i64>(0)? as u64))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn segment_count(&self, segment: &str) -> Result<u64> {
        self.pool.with(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM segment_members WHERE segment = ?1", [segment], |r| {
                r.get::<_, i64>(0)
            })? as u64)
        })
    }

    fn outbox(&self, state: &str, limit: usize) -> Result<Vec<(OutboxRow, Option<String>)>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, key, profile_id, connector, body, created_at, attempts, due_at, error FROM outbox
                 WHERE state = ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![state, limit as i64], |r| Ok((outbox_row(r)?, r.get(8)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn dead_letters(&self, filter: &DeadLetterFilter, after: u64, limit: usize) -> Result<Vec<(OutboxRow, String)>> {
        self.pool.with(|conn| {
            let (sql, values) = dead_letter_query(
                "SELECT seq, key, profile_id, connector, body, created_at, attempts, due_at, error FROM outbox",
                filter,
                after,
                limit,
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
                Ok((outbox_row(r)?, r.get::<_, Option<String>>(8)?.unwrap_or_default()))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn replay(&self, filter: &DeadLetterFilter, now: Millis, limit: usize) -> Result<Vec<OutboxRow>> {
        let mut conn = self.writer.lock().expect("the definitions writer is never poisoned");
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (sql, values) = dead_letter_query("SELECT seq FROM outbox", filter, 0, limit);
        let seqs: Vec<i64> = {
            let mut stmt = tx.prepare(&sql)?;
            stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut rows = Vec::with_capacity(seqs.len());
        {
            let mut update = tx.prepare_cached(
                "UPDATE outbox SET state = 'pending', attempts = 0, due_at = ?2, error = NULL WHERE seq = ?1 AND state = 'dead'
                 RETURNING seq, key, profile_id, connector, body, created_at, attempts, due_at",
            )?;
            for seq in seqs {
                rows.extend(update.query_map(params![seq, now], outbox_row)?.collect::<rusqlite::Result<Vec<_>>>()?);
            }
        }
        tx.commit()?;
        Ok(rows)
    }

    fn deliveries(&self, filter: &DeliveryFilter, before: u64, limit: usize) -> Result<Vec<Delivery>> {
        self.pool.with(|conn| super::history::deliveries(conn, filter, before, limit))
    }

    fn backfills(&self) -> Result<Vec<Backfill>> {
        self.pool.with(super::sweeps::backfills)
    }

    fn segment_history(&self, segment: &str, days: usize) -> Result<Vec<(String, u64)>> {
        self.pool.with(|conn| super::history::segment_history(conn, segment, days))
    }

    fn broadcasts(&self) -> Result<Vec<Broadcast>> {
        self.pool.with(|conn| super::sweeps::broadcasts(conn, false))
    }

    fn add_broadcast(&self, b: &Broadcast) -> Result<bool> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let added = conn
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO broadcasts ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                super::sweeps::BROADCAST_COLUMNS
            ))?
            .execute(params![
                b.id,
                b.name,
                b.segment,
                b.status,
                b.send_at,
                b.created_by,
                b.created_at,
                b.total as i64,
                b.done as i64,
                b.next_profile as i64,
                b.finished_at
            ])?;
        Ok(added == 1)
    }

    fn cancel_broadcast(&self, id: &str) -> Result<bool> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let changed = conn
            .prepare_cached(
                "UPDATE broadcasts SET status = 'cancelled' WHERE id = ?1 AND status IN ('scheduled', 'sending')",
            )?
            .execute([id])?;
        Ok(changed == 1)
    }

    fn spend(&self, flow: Option<&str>) -> Result<Vec<Spend>> {
        self.pool.with(|conn| super::history::spend(conn, flow))
    }

    fn flow_stats(&self, flow: &str) -> Result<Vec<(String, String, u64)>> {
        self.pool.with(|conn| super::history::flow_stats(conn, flow))
    }

    fn segments_of(&self, profile: ProfileId, segments: &[&str]) -> Result<Vec<String>> {
        self.pool.with(|conn| super::history::segments_of(conn, profile, segments))
    }

    fn pending_timers(&self) -> Result<u64> {
        self.pool.with(|conn| Ok(conn.query_row("SELECT count(*) FROM timers", [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn approvals(&self, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM runs WHERE state = 'approval' AND (?1 IS NULL OR flow = ?1)
                 ORDER BY updated_at, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![flow, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn flow_state(&self, id: ProfileId) -> Result<Option<Vec<u8>>> {
        self.pool.with(|conn| flow_state(conn, id))
    }

    fn run(&self, id: &str) -> Result<Option<(ProfileId, Vec<u8>)>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT profile_id, body FROM runs WHERE id = ?1")?;
            Ok(stmt
                .query_row([id], |r| Ok((ProfileId(r.get::<_, i64>(0)? as u64), r.get::<_, Vec<u8>>(1)?)))
                .optional()?)
        })
    }
}
