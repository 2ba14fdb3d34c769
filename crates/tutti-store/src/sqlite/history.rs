//! What happened, read back for people: the delivery history of actions, a profile's segments, a flow's
//! running totals and spend, and segments' sizes day by day. Each a read on the flow tables (`flows.rs` writes
//! them; the spend as it settles outcomes).

use rusqlite::{Connection, params};
use tutti_core::ProfileId;

use crate::{Delivery, DeliveryFilter, Result, Spend};

/// What each flow's delivered actions cost, per currency. Kept apart from the outbox, whose rows go with an
/// erased person: money spent stays spent.
pub(super) const SPEND_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spend (
    flow     TEXT    NOT NULL,
    currency TEXT    NOT NULL,
    micros   INTEGER NOT NULL,
    actions  INTEGER NOT NULL,
    PRIMARY KEY (flow, currency)
) WITHOUT ROWID;
";

/// Adds one delivered action's cost (`flow`, `currency`, `micros`) to its flow's spend.
pub(super) const CHARGE: &str = "INSERT INTO spend (flow, currency, micros, actions) VALUES (?1, ?2, ?3, 1)
     ON CONFLICT (flow, currency) DO UPDATE SET micros = micros + excluded.micros, actions = actions + 1";

/// Spend per flow and currency, one flow's or all.
pub(super) fn spend(conn: &Connection, flow: Option<&str>) -> Result<Vec<Spend>> {
    let mut stmt = conn.prepare_cached(
        "SELECT flow, currency, micros, actions FROM spend WHERE ?1 IS NULL OR flow = ?1 ORDER BY flow, currency",
    )?;
    let rows = stmt.query_map(params![flow], |r| {
        Ok(Spend { flow: r.get(0)?, currency: r.get(1)?, micros: r.get(2)?, actions: r.get::<_, i64>(3)? as u64 })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

use super::flows::outbox_row;

/// Actions queued before `before` (0: the newest), newest first, that match.
pub(super) fn deliveries(
    conn: &Connection,
    filter: &DeliveryFilter,
    before: u64,
    limit: usize,
) -> Result<Vec<Delivery>> {
    use rusqlite::types::Value as V;
    let mut sql = String::from(
        "SELECT seq, key, profile_id, connector, body, created_at, attempts, due_at, state, result, error
         FROM outbox WHERE seq < ?1",
    );
    let mut values = vec![V::Integer(if before == 0 { i64::MAX } else { before as i64 })];
    let mut and = |condition: &str, value: V| {
        values.push(value);
        sql.push_str(&format!(" AND {condition} ?{}", values.len()));
    };
    if let Some(state) = &filter.state {
        and("state =", V::Text(state.clone()));
    }
    if let Some(profile) = filter.profile {
        and("profile_id =", V::Integer(profile.0 as i64));
    }
    if let Some(connector) = &filter.connector {
        and("connector =", V::Text(connector.clone()));
    }
    if let Some(flow) = &filter.flow {
        and("json_extract(CAST(body AS TEXT), '$.flow') =", V::Text(flow.clone()));
    }
    if let Some(since) = filter.since {
        and("created_at >=", V::Integer(since));
    }
    if let Some(until) = filter.until {
        and("created_at <", V::Integer(until));
    }
    values.push(V::Integer(limit as i64));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", values.len()));
    {
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
            Ok(Delivery { row: outbox_row(r)?, state: r.get(8)?, result: r.get(9)?, error: r.get(10)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

/// A flow's running totals: (step, measure, count), by step and measure.
pub(super) fn flow_stats(conn: &Connection, flow: &str) -> Result<Vec<(String, String, u64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT step, measure, count FROM flow_stats WHERE flow = ?1 ORDER BY step, measure")?;
    let rows = stmt.query_map([flow], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Which of `segments` the profile is a member of: one primary-key probe each.
pub(super) fn segments_of(conn: &Connection, profile: ProfileId, segments: &[&str]) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM segment_members WHERE segment = ?1 AND profile_id = ?2")?;
    let mut of = Vec::new();
    for segment in segments {
        if stmt.exists(params![segment, profile.0 as i64])? {
            of.push((*segment).to_owned());
        }
    }
    Ok(of)
}

/// A segment's members day by day, the last `days` recorded, oldest first.
pub(super) fn segment_history(conn: &Connection, segment: &str, days: usize) -> Result<Vec<(String, u64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT day, count FROM segment_history WHERE segment = ?1 ORDER BY day DESC LIMIT ?2")?;
    let rows =
        stmt.query_map(params![segment, days as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}
