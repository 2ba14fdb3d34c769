//! The audit trail in SQLite: records appended inside the processor's transactions or on their own, read
//! either way, and redacted (never deleted) when a person is erased. The table is created with the flow
//! tables (`flows.rs`).

use rusqlite::{Transaction, params};
use tutti_core::ProfileId;
use tutti_core::audit::{AuditFilter, AuditKind, AuditRecord};

use super::flows::SqliteFlowReader;
use crate::{AuditLog, Result};

/// What an erasure blanks in an audit record: whatever could name or describe the person.
const REDACTED_FIELDS: &str = "'$.output', '$.context', '$.message', '$.content', '$.edits', '$.verdict.violations'";

/// Appends audit records inside a transaction.
pub(super) fn append_audit(tx: &Transaction<'_>, records: &[AuditRecord]) -> Result<()> {
    let mut put = tx.prepare_cached(
        "INSERT INTO audit (at, kind, flow, run, profile_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in records {
        put.execute(params![
            r.at,
            r.kind.as_str(),
            r.flow,
            r.run,
            r.profile.map(|p| p.0 as i64),
            serde_json::to_string(&r.detail).expect("JSON always serialises")
        ])?;
    }
    Ok(())
}

/// Blanks an erased person's audit records (the record of the call or decision stays).
pub(super) fn redact_audit(tx: &Transaction<'_>, pid: ProfileId) -> Result<()> {
    tx.execute(
        &format!(
            "UPDATE audit SET redacted = 1, detail = json_set(json_remove(detail, {REDACTED_FIELDS}), '$.redacted', json('true'))
             WHERE profile_id = ?1 AND redacted = 0"
        ),
        [pid.0 as i64],
    )?;
    Ok(())
}

impl AuditLog for SqliteFlowReader {
    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        append_audit(&tx, records)?;
        tx.commit()?;
        Ok(())
    }

    fn audit(&self, filter: &AuditFilter, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        self.read_audit(filter, AuditCursor::After(after), limit)
    }

    fn audit_newest(&self, filter: &AuditFilter, before: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        self.read_audit(filter, AuditCursor::Before(before), limit)
    }
}

/// Where a read of the audit log starts, and which way it goes.
enum AuditCursor {
    /// After this sequence number, oldest first.
    After(u64),
    /// Before this one (0: the newest), newest first.
    Before(u64),
}

impl SqliteFlowReader {
    fn read_audit(&self, filter: &AuditFilter, cursor: AuditCursor, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        use rusqlite::types::Value as V;
        let (condition, from, order) = match cursor {
            AuditCursor::After(after) => ("seq >", after as i64, "seq"),
            AuditCursor::Before(0) => ("seq <", i64::MAX, "seq DESC"),
            AuditCursor::Before(before) => ("seq <", before as i64, "seq DESC"),
        };
        let mut sql = format!("SELECT seq, at, kind, flow, run, profile_id, detail FROM audit WHERE {condition} ?1");
        let mut values = vec![V::Integer(from)];
        let mut and = |column: &str, op: &str, v: V| {
            values.push(v);
            sql.push_str(&format!(" AND {column} {op} ?{}", values.len()));
        };
        if let Some(k) = filter.kind {
            and("kind", "=", V::Text(k.as_str().into()));
        }
        if let Some(f) = &filter.flow {
            and("flow", "=", V::Text(f.clone()));
        }
        if let Some(r) = &filter.run {
            and("run", "=", V::Text(r.clone()));
        }
        if let Some(p) = filter.profile {
            and("profile_id", "=", V::Integer(p.0 as i64));
        }
        if let Some(t) = filter.since {
            and("at", ">=", V::Integer(t));
        }
        if let Some(t) = filter.until {
            and("at", "<", V::Integer(t));
        }
        values.push(V::Integer(limit as i64));
        sql.push_str(&format!(" ORDER BY {order} LIMIT ?{}", values.len()));
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                let kind: String = r.get(2)?;
                let detail: String = r.get(6)?;
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)?, kind, r.get(3)?, r.get(4)?, r.get(5)?, detail))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at, kind, flow, run, profile, detail): (u64, i64, String, _, _, Option<i64>, String) = row?;
                let Some(kind) = AuditKind::from_name(&kind) else { continue };
                out.push((
                    seq,
                    AuditRecord {
                        at,
                        kind,
                        flow,
                        run,
                        profile: profile.map(|p| ProfileId(p as u64)),
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    },
                ));
            }
            Ok(out)
        })
    }
}
