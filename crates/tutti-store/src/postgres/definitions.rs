//! Flows, segments and policies as stored through the API, in Postgres: every version of each, which are
//! deleted, and which flows are paused, as `sqlite/definitions.rs`. Versions of several definitions saved as
//! one change are stored in one transaction; writers take the table's lock in turn, so two processes saving
//! at once get consecutive versions.

use tutti_core::Millis;

use super::PgFlowReader;
use crate::{DefinitionStore, Result, StoredDefinition};

impl DefinitionStore for PgFlowReader {
    fn all(&self) -> Result<Vec<StoredDefinition>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT kind, id, version, source, created_at, deleted FROM definitions ORDER BY kind, id, version",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| StoredDefinition {
                    kind: r.get(0),
                    id: r.get(1),
                    version: r.get::<_, i32>(2) as u32,
                    source: r.get(3),
                    created_at: r.get(4),
                    deleted: r.get(5),
                })
                .collect())
        })
    }

    fn put_all(&self, definitions: &[(&str, &str, &str)], at: Millis) -> Result<Vec<u32>> {
        self.pool.with(|c| {
            let mut tx = c.transaction()?;
            tx.batch_execute("LOCK TABLE definitions IN SHARE ROW EXCLUSIVE MODE")?;
            let mut versions = Vec::with_capacity(definitions.len());
            for (kind, id, source) in definitions {
                let top: Option<i32> = tx
                    .query_one("SELECT max(version) FROM definitions WHERE kind = $1 AND id = $2", &[kind, id])?
                    .get(0);
                let version = top.unwrap_or(0) + 1;
                tx.execute(
                    "INSERT INTO definitions (kind, id, version, source, created_at) VALUES ($1, $2, $3, $4, $5)",
                    &[kind, id, &version, source, &at],
                )?;
                tx.execute("UPDATE definitions SET deleted = false WHERE kind = $1 AND id = $2", &[kind, id])?;
                versions.push(version as u32);
            }
            tx.commit()?;
            Ok(versions)
        })
    }

    fn delete(&self, kind: &str, id: &str) -> Result<bool> {
        self.pool.with(|c| {
            let n = c.execute(
                "UPDATE definitions SET deleted = true WHERE kind = $1 AND id = $2 AND NOT deleted",
                &[&kind, &id],
            )?;
            Ok(n > 0)
        })
    }

    fn paused(&self) -> Result<Vec<String>> {
        self.pool.with(|c| {
            Ok(c.query("SELECT flow FROM flow_pauses ORDER BY flow", &[])?.iter().map(|r| r.get(0)).collect())
        })
    }

    fn set_paused(&self, flow: &str, paused: bool, at: Millis) -> Result<bool> {
        self.pool.with(|c| {
            let changed = if paused {
                c.execute(
                    "INSERT INTO flow_pauses (flow, paused_at) VALUES ($1, $2) ON CONFLICT (flow) DO NOTHING",
                    &[&flow, &at],
                )?
            } else {
                c.execute("DELETE FROM flow_pauses WHERE flow = $1", &[&flow])?
            };
            Ok(changed == 1)
        })
    }
}
