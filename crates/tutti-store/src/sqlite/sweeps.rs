//! The progress of walks over profiles, read back: segment backfills (every profile, when a segment is new
//! or changed) and broadcasts (a segment's members, when a one-off send goes). Their rows are written with the
//! processor's batches (`flows.rs`, `commit`) and, for a new or cancelled broadcast, by the API.

use rusqlite::{Connection, params};
use tutti_core::ProfileId;

use crate::{Backfill, Broadcast, Result};

pub(super) const BROADCAST_COLUMNS: &str =
    "id, name, segment, status, send_at, created_by, created_at, total, done, next_profile, finished_at";

fn broadcast_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Broadcast> {
    Ok(Broadcast {
        id: r.get(0)?,
        name: r.get(1)?,
        segment: r.get(2)?,
        status: r.get(3)?,
        send_at: r.get(4)?,
        created_by: r.get(5)?,
        created_at: r.get(6)?,
        total: r.get::<_, i64>(7)? as u64,
        done: r.get::<_, i64>(8)? as u64,
        next_profile: r.get::<_, i64>(9)? as u64,
        finished_at: r.get(10)?,
    })
}

/// Broadcasts, newest first; only those not sent nor cancelled when `open`.
pub(super) fn broadcasts(conn: &Connection, open: bool) -> Result<Vec<Broadcast>> {
    let filter = if open { "WHERE status IN ('scheduled', 'sending')" } else { "" };
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts {filter} ORDER BY created_at DESC, id"))?;
    let rows = stmt.query_map([], broadcast_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Members of a segment above `after`, in id order.
pub(super) fn members_after(conn: &Connection, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT profile_id FROM segment_members WHERE segment = ?1 AND profile_id > ?2 ORDER BY profile_id LIMIT ?3",
    )?;
    let rows =
        stmt.query_map(params![segment, after as i64, limit as i64], |r| Ok(ProfileId(r.get::<_, i64>(0)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Every segment backfill.
pub(super) fn backfills(conn: &Connection) -> Result<Vec<Backfill>> {
    let mut stmt = conn.prepare_cached(
        "SELECT segment, source_hash, next_profile, done, total, started_at, finished_at FROM segment_backfills ORDER BY segment",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Backfill {
            segment: r.get(0)?,
            source_hash: r.get(1)?,
            next_profile: r.get::<_, i64>(2)? as u64,
            done: r.get::<_, i64>(3)? as u64,
            total: r.get::<_, i64>(4)? as u64,
            started_at: r.get(5)?,
            finished_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
