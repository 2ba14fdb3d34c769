//! Flows, segments and policies as stored through the API, in `profiles.db`: every version of each, which are
//! deleted, and which flows are paused. Versions of several definitions saved as one change are stored in one
//! transaction.

use rusqlite::params;
use tutti_core::Millis;

use super::SqliteFlowReader;
use crate::{DefinitionStore, Result, StoredDefinition};

impl DefinitionStore for SqliteFlowReader {
    fn all(&self) -> Result<Vec<StoredDefinition>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT kind, id, version, source, created_at, deleted FROM definitions ORDER BY kind, id, version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredDefinition {
                    kind: r.get(0)?,
                    id: r.get(1)?,
                    version: r.get(2)?,
                    source: r.get(3)?,
                    created_at: r.get(4)?,
                    deleted: r.get::<_, i64>(5)? != 0,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn put_all(&self, definitions: &[(&str, &str, &str)], at: Millis) -> Result<Vec<u32>> {
        let mut conn = self.writer.lock().expect("the definitions writer is never poisoned");
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut versions = Vec::with_capacity(definitions.len());
        for (kind, id, source) in definitions {
            let top: Option<i64> =
                tx.query_row("SELECT max(version) FROM definitions WHERE kind = ?1 AND id = ?2", [kind, id], |r| {
                    r.get(0)
                })?;
            let version = top.unwrap_or(0) + 1;
            tx.execute(
                "INSERT INTO definitions (kind, id, version, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, id, version, source, at],
            )?;
            tx.execute("UPDATE definitions SET deleted = 0 WHERE kind = ?1 AND id = ?2", [kind, id])?;
            versions.push(version as u32);
        }
        tx.commit()?;
        Ok(versions)
    }

    fn paused(&self) -> Result<Vec<String>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT flow FROM flow_pauses ORDER BY flow")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn set_paused(&self, flow: &str, paused: bool, at: Millis) -> Result<bool> {
        let conn = self.writer.lock().expect("the definitions writer is never poisoned");
        let changed = if paused {
            conn.execute("INSERT OR IGNORE INTO flow_pauses (flow, paused_at) VALUES (?1, ?2)", params![flow, at])?
        } else {
            conn.execute("DELETE FROM flow_pauses WHERE flow = ?1", [flow])?
        };
        Ok(changed == 1)
    }

    fn delete(&self, kind: &str, id: &str) -> Result<bool> {
        let conn = self.writer.lock().expect("the definitions writer is never poisoned");
        let n =
            conn.execute("UPDATE definitions SET deleted = 1 WHERE kind = ?1 AND id = ?2 AND deleted = 0", [kind, id])?;
        Ok(n > 0)
    }
}
