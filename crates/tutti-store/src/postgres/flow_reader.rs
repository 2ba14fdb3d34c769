//! Flow queries for the API in Postgres ([`FlowReader`]), on a pool of connections: runs, segment members and
//! history, the outbox and its dead letters (listed and replayed), the delivery history, backfills,
//! broadcasts, running totals and spend. The same answers as `sqlite/flows.rs`'s `SqliteFlowReader`.

use postgres::types::ToSql;
use tutti_core::{Millis, ProfileId};

use super::outbox::{AFTER, COLUMNS, row};
use super::pool::Pool;
use crate::{Backfill, Broadcast, DeadLetterFilter, Delivery, DeliveryFilter, FlowReader, OutboxRow, Result, Spend};

/// Flow queries, definitions and the audit log (`definitions.rs`, `audit.rs`) on one pool.
pub struct PgFlowReader {
    pub(super) pool: Pool,
}

impl PgFlowReader {
    pub fn new(pool: Pool) -> PgFlowReader {
        PgFlowReader { pool }
    }
}

/// Conditions and their values, numbered as they are added.
#[derive(Default)]
pub(super) struct Query {
    pub(super) sql: String,
    values: Vec<Box<dyn ToSql + Sync>>,
}

impl Query {
    pub(super) fn new(sql: &str) -> Query {
        Query { sql: sql.to_owned(), values: Vec::new() }
    }

    /// Appends `clause` with `$?` standing for the next value.
    pub(super) fn and(&mut self, clause: &str, value: impl ToSql + Sync + 'static) {
        self.values.push(Box::new(value));
        self.sql.push_str(&clause.replace("$?", &format!("${}", self.values.len())));
    }

    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref()).collect()
    }
}

/// The flow an action belongs to, read from its stored JSON.
const FLOW_OF_BODY: &str = "convert_from(body, 'UTF8')::jsonb ->> 'flow'";

fn dead_letters_query(select: &str, filter: &DeadLetterFilter, after: u64, limit: usize) -> Query {
    let mut q = Query::new(&format!("{select} WHERE state = 'dead'"));
    q.and(" AND seq > $?", after.min(i64::MAX as u64) as i64);
    if !filter.seqs.is_empty() {
        let seqs: Vec<i64> = filter.seqs.iter().map(|s| (*s).min(i64::MAX as u64) as i64).collect();
        q.and(" AND seq = ANY($?)", seqs);
    }
    if let Some(connector) = &filter.connector {
        q.and(" AND connector = $?", connector.clone());
    }
    if let Some(flow) = &filter.flow {
        q.and(&format!(" AND {FLOW_OF_BODY} = $?"), flow.clone());
    }
    q.and(" ORDER BY seq LIMIT $?", limit as i64);
    q
}

fn broadcast_values(b: &Broadcast) -> [Box<dyn ToSql + Sync>; 11] {
    [
        Box::new(b.id.clone()),
        Box::new(b.name.clone()),
        Box::new(b.segment.clone()),
        Box::new(b.status.clone()),
        Box::new(b.send_at),
        Box::new(b.created_by.clone()),
        Box::new(b.created_at),
        Box::new(b.total as i64),
        Box::new(b.done as i64),
        Box::new(b.next_profile as i64),
        Box::new(b.finished_at),
    ]
}

impl FlowReader for PgFlowReader {
    fn runs(&self, profile: Option<ProfileId>, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut q = Query::new("SELECT body FROM runs WHERE true");
        if let Some(p) = profile {
            q.and(" AND profile_id = $?", p.0 as i64);
        }
        if let Some(f) = flow {
            q.and(" AND flow = $?", f.to_owned());
        }
        q.and(" ORDER BY started_at DESC, id DESC LIMIT $?", limit as i64);
        self.pool.with(|c| Ok(c.query(&q.sql, &q.params())?.iter().map(|r| r.get(0)).collect()))
    }

    fn segment_members(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT profile_id FROM segment_members WHERE segment = $1 AND profile_id > $2 ORDER BY profile_id LIMIT $3",
                &[&segment, &(after.min(i64::MAX as u64) as i64), &(limit as i64)],
            )?;
            Ok(rows.iter().map(|r| ProfileId(r.get::<_, i64>(0) as u64)).collect())
        })
    }

    fn segment_count(&self, segment: &str) -> Result<u64> {
        self.pool.with(|c| {
            Ok(c.query_one("SELECT count(*) FROM segment_members WHERE segment = $1", &[&segment])?.get::<_, i64>(0)
                as u64)
        })
    }

    fn outbox(&self, state: &str, limit: usize) -> Result<Vec<(OutboxRow, Option<String>)>> {
        self.pool.with(|c| {
            let rows = c.query(
                &format!("SELECT {COLUMNS}, error FROM outbox WHERE state = $1 ORDER BY seq LIMIT $2"),
                &[&state, &(limit as i64)],
            )?;
            Ok(rows.iter().map(|r| (row(r), r.get(AFTER))).collect())
        })
    }

    fn dead_letters(&self, filter: &DeadLetterFilter, after: u64, limit: usize) -> Result<Vec<(OutboxRow, String)>> {
        let q = dead_letters_query(&format!("SELECT {COLUMNS}, error FROM outbox"), filter, after, limit);
        self.pool.with(|c| {
            let rows = c.query(&q.sql, &q.params())?;
            Ok(rows.iter().map(|r| (row(r), r.get::<_, Option<String>>(AFTER).unwrap_or_default())).collect())
        })
    }

    fn replay(&self, filter: &DeadLetterFilter, now: Millis, limit: usize) -> Result<Vec<OutboxRow>> {
        let q = dead_letters_query("SELECT seq FROM outbox", filter, 0, limit);
        self.pool.with(|c| {
            let mut tx = c.transaction()?;
            let seqs: Vec<i64> = tx.query(&q.sql, &q.params())?.iter().map(|r| r.get(0)).collect();
            let rows = tx.query(
                &format!(
                    "UPDATE outbox SET state = 'pending', attempts = 0, due_at = $2, error = NULL
                     WHERE seq = ANY($1) AND state = 'dead' RETURNING {COLUMNS}"
                ),
                &[&seqs, &now],
            )?;
            tx.commit()?;
            let mut replayed: Vec<OutboxRow> = rows.iter().map(row).collect();
            replayed.sort_by_key(|r| r.seq);
            Ok(replayed)
        })
    }

    fn deliveries(&self, filter: &DeliveryFilter, before: u64, limit: usize) -> Result<Vec<Delivery>> {
        let mut q = Query::new(&format!("SELECT {COLUMNS}, state, result, error FROM outbox WHERE true"));
        q.and(" AND seq < $?", if before == 0 { i64::MAX } else { before.min(i64::MAX as u64) as i64 });
        if let Some(state) = &filter.state {
            q.and(" AND state = $?", state.clone());
        }
        if let Some(profile) = filter.profile {
            q.and(" AND profile_id = $?", profile.0 as i64);
        }
        if let Some(connector) = &filter.connector {
            q.and(" AND connector = $?", connector.clone());
        }
        if let Some(flow) = &filter.flow {
            q.and(&format!(" AND {FLOW_OF_BODY} = $?"), flow.clone());
        }
        if let Some(since) = filter.since {
            q.and(" AND created_at >= $?", since);
        }
        if let Some(until) = filter.until {
            q.and(" AND created_at < $?", until);
        }
        q.and(" ORDER BY seq DESC LIMIT $?", limit as i64);
        self.pool.with(|c| {
            let rows = c.query(&q.sql, &q.params())?;
            Ok(rows
                .iter()
                .map(|r| Delivery {
                    row: row(r),
                    state: r.get(AFTER),
                    result: r.get(AFTER + 1),
                    error: r.get(AFTER + 2),
                })
                .collect())
        })
    }

    fn backfills(&self) -> Result<Vec<Backfill>> {
        self.pool.with(super::flows::backfills)
    }

    fn broadcasts(&self) -> Result<Vec<Broadcast>> {
        self.pool.with(|c| super::flows::broadcasts(c, false))
    }

    fn segment_history(&self, segment: &str, days: usize) -> Result<Vec<(String, u64)>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT day, count FROM segment_history WHERE segment = $1 ORDER BY day DESC LIMIT $2",
                &[&segment, &(days as i64)],
            )?;
            let mut out: Vec<(String, u64)> = rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect();
            out.reverse();
            Ok(out)
        })
    }

    fn add_broadcast(&self, broadcast: &Broadcast) -> Result<bool> {
        let values = broadcast_values(broadcast);
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        self.pool.with(|c| {
            let added = c.execute(
                "INSERT INTO broadcasts (id, name, segment, status, send_at, created_by, created_at, total, done,
                     next_profile, finished_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
                &params,
            )?;
            Ok(added == 1)
        })
    }

    fn cancel_broadcast(&self, id: &str) -> Result<bool> {
        self.pool.with(|c| {
            let changed = c.execute(
                "UPDATE broadcasts SET status = 'cancelled' WHERE id = $1 AND status IN ('scheduled', 'sending')",
                &[&id],
            )?;
            Ok(changed == 1)
        })
    }

    fn flow_stats(&self, flow: &str) -> Result<Vec<(String, String, u64)>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT step, measure, count FROM flow_stats WHERE flow = $1 ORDER BY step, measure",
                &[&flow],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64)).collect())
        })
    }

    fn segments_of(&self, profile: ProfileId, segments: &[&str]) -> Result<Vec<String>> {
        let wanted: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT segment FROM segment_members WHERE profile_id = $1 AND segment = ANY($2)",
                &[&(profile.0 as i64), &wanted],
            )?;
            let member: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
            // In the order asked, as SQLite's reader answers.
            Ok(wanted.into_iter().filter(|s| member.contains(s)).collect())
        })
    }

    fn pending_timers(&self) -> Result<u64> {
        self.pool.with(|c| Ok(c.query_one("SELECT count(*) FROM timers", &[])?.get::<_, i64>(0) as u64))
    }

    fn approvals(&self, flow: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT body FROM runs WHERE state = 'approval' AND ($1::TEXT IS NULL OR flow = $1)
                 ORDER BY updated_at, id LIMIT $2",
                &[&flow, &(limit as i64)],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn run(&self, id: &str) -> Result<Option<(ProfileId, Vec<u8>)>> {
        self.pool.with(|c| {
            let found = c.query_opt("SELECT profile_id, body FROM runs WHERE id = $1", &[&id])?;
            Ok(found.map(|r| (ProfileId(r.get::<_, i64>(0) as u64), r.get(1))))
        })
    }

    fn flow_state(&self, id: ProfileId) -> Result<Option<Vec<u8>>> {
        self.pool.with(|c| super::flows::flow_state(c, id))
    }

    fn spend(&self, flow: Option<&str>) -> Result<Vec<Spend>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT flow, currency, micros, actions FROM spend WHERE $1::TEXT IS NULL OR flow = $1
                 ORDER BY flow, currency",
                &[&flow],
            )?;
            Ok(rows
                .iter()
                .map(|r| Spend {
                    flow: r.get(0),
                    currency: r.get(1),
                    micros: r.get(2),
                    actions: r.get::<_, i64>(3) as u64,
                })
                .collect())
        })
    }
}
