//! Flows' rows in Postgres, written inside the processor's commit (`profiles.rs`) and read back for it: flow
//! states, timers, the outbox, runs, segment members, audit records, step counts, running totals, segment
//! backfills and history, broadcasts. The same rows and meanings as `sqlite/flows.rs`.

use postgres::{Client, Transaction};
use tutti_core::ProfileId;
use tutti_core::audit::AuditRecord;
use tutti_flows::StepKey;

use crate::{Backfill, Broadcast, FlowBatch, Result};

/// What an erasure blanks in an audit record's detail (as `sqlite/audit.rs`).
const REDACTED_FIELDS: &str = "'{output}', '{context}', '{message}', '{content}', '{edits}', '{verdict,violations}'";

/// Writes a batch's flow changes inside the processor's transaction, but for the step counts (checked by the
/// caller). Returns the sequence number each outbox item was queued as (`None` for a key already queued).
/// `partition`: which partition's outbox a profile's row goes to.
pub(super) fn commit(
    tx: &mut Transaction<'_>,
    batch: &FlowBatch,
    partition: &dyn Fn(ProfileId) -> i32,
) -> Result<Vec<Option<u64>>> {
    // Each statement is prepared once per commit, and only when its rows are there: a prepare is a round trip.
    if !batch.states.is_empty() {
        let put = tx.prepare(
            "INSERT INTO flow_states (profile_id, state) VALUES ($1, $2)
             ON CONFLICT (profile_id) DO UPDATE SET state = excluded.state",
        )?;
        let drop = tx.prepare("DELETE FROM flow_states WHERE profile_id = $1")?;
        for (pid, state) in &batch.states {
            match state {
                Some(bytes) => tx.execute(&put, &[&(pid.0 as i64), bytes])?,
                None => tx.execute(&drop, &[&(pid.0 as i64)])?,
            };
        }
    }
    if !batch.timers.is_empty() {
        let put = tx.prepare(
            "INSERT INTO timers (profile_id, due) VALUES ($1, $2) ON CONFLICT (profile_id) DO UPDATE SET due = excluded.due",
        )?;
        let drop = tx.prepare("DELETE FROM timers WHERE profile_id = $1")?;
        for (pid, due) in &batch.timers {
            match due {
                Some(at) => tx.execute(&put, &[&(pid.0 as i64), at])?,
                None => tx.execute(&drop, &[&(pid.0 as i64)])?,
            };
        }
    }
    let mut queued = Vec::with_capacity(batch.outbox.len());
    if !batch.outbox.is_empty() {
        let queue = tx.prepare(
            "INSERT INTO outbox (key, profile_id, connector, body, created_at, due_at, partition)
             VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (key) DO NOTHING RETURNING seq",
        )?;
        for item in &batch.outbox {
            let values: [&(dyn postgres::types::ToSql + Sync); 6] = [
                &item.key,
                &(item.profile.0 as i64),
                &item.connector,
                &item.body,
                &item.created_at,
                &partition(item.profile),
            ];
            let row = tx.query_opt(&queue, &values)?;
            queued.push(row.map(|r| r.get::<_, i64>(0) as u64));
        }
    }
    if !batch.runs.is_empty() {
        let put = tx.prepare(
            "INSERT INTO runs (id, profile_id, flow, version, state, started_at, updated_at, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id, flow = excluded.flow,
                 version = excluded.version, state = excluded.state, started_at = excluded.started_at,
                 updated_at = excluded.updated_at, body = excluded.body",
        )?;
        for run in &batch.runs {
            let version = run.version as i32;
            let values: [&(dyn postgres::types::ToSql + Sync); 8] = [
                &run.id,
                &(run.profile.0 as i64),
                &run.flow,
                &version,
                &run.state,
                &run.started_at,
                &run.updated_at,
                &run.body,
            ];
            tx.execute(&put, &values)?;
        }
    }
    if !batch.members.is_empty() {
        let join =
            tx.prepare("INSERT INTO segment_members (segment, profile_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")?;
        let leave = tx.prepare("DELETE FROM segment_members WHERE segment = $1 AND profile_id = $2")?;
        for (segment, pid, member) in &batch.members {
            tx.execute(if *member { &join } else { &leave }, &[segment, &(pid.0 as i64)])?;
        }
    }
    append_audit(tx, &batch.audit)?;
    for b in &batch.backfills {
        tx.execute(
            "INSERT INTO segment_backfills (segment, source_hash, next_profile, done, total, started_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (segment) DO UPDATE SET source_hash = excluded.source_hash,
                 next_profile = excluded.next_profile, done = excluded.done, total = excluded.total,
                 started_at = excluded.started_at, finished_at = excluded.finished_at",
            &[
                &b.segment,
                &b.source_hash,
                &(b.next_profile as i64),
                &(b.done as i64),
                &(b.total as i64),
                &b.started_at,
                &b.finished_at,
            ],
        )?;
    }
    for (segment, day, count) in &batch.sizes {
        tx.execute(
            "INSERT INTO segment_history (segment, day, count) VALUES ($1, $2, $3)
             ON CONFLICT (segment, day) DO UPDATE SET count = excluded.count",
            &[segment, day, &(*count as i64)],
        )?;
    }
    for b in &batch.broadcasts {
        tx.execute(
            "UPDATE broadcasts SET status = $2, total = $3, done = $4, next_profile = $5, finished_at = $6
             WHERE id = $1 AND status != 'cancelled'",
            &[&b.id, &b.status, &(b.total as i64), &(b.done as i64), &(b.next_profile as i64), &b.finished_at],
        )?;
    }
    if !batch.stats.is_empty() {
        let add = tx.prepare(
            "INSERT INTO flow_stats (flow, step, measure, count) VALUES ($1, $2, $3, $4)
             ON CONFLICT (flow, step, measure) DO UPDATE SET count = flow_stats.count + excluded.count",
        )?;
        for (m, n) in &batch.stats {
            tx.execute(&add, &[&m.flow, &m.step, &m.measure, &(*n as i64)])?;
        }
    }
    Ok(queued)
}

/// Appends audit records inside a transaction.
pub(super) fn append_audit(tx: &mut Transaction<'_>, records: &[AuditRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let put = tx.prepare(
        "INSERT INTO audit (at, kind, flow, run, profile_id, detail) VALUES ($1, $2, $3, $4, $5, $6::TEXT::JSONB)",
    )?;
    for r in records {
        let detail = serde_json::to_string(&r.detail).expect("JSON always serialises");
        tx.execute(&put, &[&r.at, &r.kind.as_str(), &r.flow, &r.run, &r.profile.map(|p| p.0 as i64), &detail])?;
    }
    Ok(())
}

/// Blanks an erased person's audit records (the record of the call or decision stays).
pub(super) fn redact_audit(tx: &mut Transaction<'_>, pid: ProfileId) -> Result<()> {
    let paths: Vec<&str> = REDACTED_FIELDS.split(", ").map(|p| p.trim_matches('\'')).collect();
    let removed = paths.iter().map(|p| format!(" #- '{p}'")).collect::<String>();
    tx.execute(
        &format!(
            "UPDATE audit SET redacted = true, detail = jsonb_set(detail{removed}, '{{redacted}}', 'true'::jsonb)
             WHERE profile_id = $1 AND NOT redacted"
        ),
        &[&(pid.0 as i64)],
    )?;
    Ok(())
}

/// Moves a merged-away profile's flow rows to the profile it joined (its state was absorbed by the caller).
pub(super) fn merge(tx: &mut Transaction<'_>, into: ProfileId, from: ProfileId) -> Result<()> {
    let (into, from) = (into.0 as i64, from.0 as i64);
    tx.execute("DELETE FROM flow_states WHERE profile_id = $1", &[&from])?;
    tx.execute("DELETE FROM timers WHERE profile_id = $1", &[&from])?;
    tx.execute("UPDATE runs SET profile_id = $1 WHERE profile_id = $2", &[&into, &from])?;
    tx.execute("DELETE FROM segment_members WHERE profile_id = $1", &[&from])?;
    Ok(())
}

/// Forgets everything flows know about a profile (erasure).
pub(super) fn erase(tx: &mut Transaction<'_>, pid: ProfileId) -> Result<()> {
    let id = pid.0 as i64;
    for table in ["flow_states", "timers", "runs", "segment_members", "outbox"] {
        tx.execute(&format!("DELETE FROM {table} WHERE profile_id = $1"), &[&id])?;
    }
    redact_audit(tx, pid)
}

pub(super) fn flow_state(client: &mut Client, id: ProfileId) -> Result<Option<Vec<u8>>> {
    let row = client.query_opt("SELECT state FROM flow_states WHERE profile_id = $1", &[&(id.0 as i64)])?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) fn step_counts(client: &mut Client) -> Result<Vec<(StepKey, u64)>> {
    let rows = client.query("SELECT flow, version, step, count FROM step_counts", &[])?;
    Ok(rows
        .iter()
        .map(|r| {
            let key = StepKey { flow: r.get(0), version: r.get::<_, i32>(1) as u32, step: r.get(2) };
            (key, r.get::<_, i64>(3) as u64)
        })
        .collect())
}

/// Broadcasts, newest first; only those not sent nor cancelled when `open`.
pub(super) fn broadcasts(client: &mut Client, open: bool) -> Result<Vec<Broadcast>> {
    let filter = if open { "WHERE status IN ('scheduled', 'sending')" } else { "" };
    let rows = client.query(
        &format!(
            "SELECT id, name, segment, status, send_at, created_by, created_at, total, done, next_profile, finished_at
             FROM broadcasts {filter} ORDER BY created_at DESC, id"
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Broadcast {
            id: r.get(0),
            name: r.get(1),
            segment: r.get(2),
            status: r.get(3),
            send_at: r.get(4),
            created_by: r.get(5),
            created_at: r.get(6),
            total: r.get::<_, i64>(7) as u64,
            done: r.get::<_, i64>(8) as u64,
            next_profile: r.get::<_, i64>(9) as u64,
            finished_at: r.get(10),
        })
        .collect())
}

/// Every segment backfill.
pub(super) fn backfills(client: &mut Client) -> Result<Vec<Backfill>> {
    let rows = client.query(
        "SELECT segment, source_hash, next_profile, done, total, started_at, finished_at FROM segment_backfills
         ORDER BY segment",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Backfill {
            segment: r.get(0),
            source_hash: r.get(1),
            next_profile: r.get::<_, i64>(2) as u64,
            done: r.get::<_, i64>(3) as u64,
            total: r.get::<_, i64>(4) as u64,
            started_at: r.get(5),
            finished_at: r.get(6),
        })
        .collect())
}
