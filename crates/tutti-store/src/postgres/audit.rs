//! The audit trail in Postgres ([`AuditLog`]): appended in one transaction, read either way with a filter, as
//! `sqlite/audit.rs`. The table refuses deletes and any change but an erasure's redaction (a trigger, in the
//! schema).

use tutti_core::ProfileId;
use tutti_core::audit::{AuditFilter, AuditKind, AuditRecord};

use super::PgFlowReader;
use super::flow_reader::Query;
use crate::{AuditLog, Result};

impl AuditLog for PgFlowReader {
    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        self.pool.with(|c| {
            let mut tx = c.transaction()?;
            super::flows::append_audit(&mut tx, records)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn audit(&self, filter: &AuditFilter, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        self.read_audit(filter, Some(after), None, limit)
    }

    fn audit_newest(&self, filter: &AuditFilter, before: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        self.read_audit(filter, None, Some(before), limit)
    }
}

impl PgFlowReader {
    /// Records after `after` oldest first, or before `before` (0: the newest) newest first.
    fn read_audit(
        &self,
        filter: &AuditFilter,
        after: Option<u64>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>> {
        let mut q = Query::new("SELECT seq, at, kind, flow, run, profile_id, detail::TEXT FROM audit WHERE true");
        let order = match (after, before) {
            (Some(after), _) => {
                q.and(" AND seq > $?", after.min(i64::MAX as u64) as i64);
                "seq"
            }
            (None, Some(before)) => {
                let before = if before == 0 { i64::MAX } else { before.min(i64::MAX as u64) as i64 };
                q.and(" AND seq < $?", before);
                "seq DESC"
            }
            (None, None) => "seq",
        };
        if let Some(k) = filter.kind {
            q.and(" AND kind = $?", k.as_str().to_owned());
        }
        if let Some(f) = &filter.flow {
            q.and(" AND flow = $?", f.clone());
        }
        if let Some(r) = &filter.run {
            q.and(" AND run = $?", r.clone());
        }
        if let Some(p) = filter.profile {
            q.and(" AND profile_id = $?", p.0 as i64);
        }
        if let Some(t) = filter.since {
            q.and(" AND at >= $?", t);
        }
        if let Some(t) = filter.until {
            q.and(" AND at < $?", t);
        }
        q.and(&format!(" ORDER BY {order} LIMIT $?"), limit as i64);
        self.pool.with(|c| {
            let rows = c.query(&q.sql, &q.params())?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let kind = AuditKind::from_name(&r.get::<_, String>(2))?;
                    let detail: String = r.get(6);
                    Some((
                        r.get::<_, i64>(0) as u64,
                        AuditRecord {
                            at: r.get(1),
                            kind,
                            flow: r.get(3),
                            run: r.get(4),
                            profile: r.get::<_, Option<i64>>(5).map(|p| ProfileId(p as u64)),
                            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                        },
                    ))
                })
                .collect())
        })
    }
}
