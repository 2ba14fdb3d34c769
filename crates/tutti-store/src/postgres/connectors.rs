//! The connectors' memory in Postgres (`connector_memory`), shared by every worker: the card a topic already
//! has is found whichever worker delivers the next report of it, and a rotated vendor token is the same for
//! all. The same answers as `sqlite/connectors.rs`: keys are `COLLATE "C"`, so they sort byte by byte there too.

use tutti_core::Millis;

use super::pool::Pool;
use crate::{ConnectorMemory, Result};

pub struct PgConnectorMemory {
    pool: Pool,
}

impl PgConnectorMemory {
    /// On a migrated database.
    pub fn new(pool: Pool) -> PgConnectorMemory {
        PgConnectorMemory { pool }
    }
}

impl ConnectorMemory for PgConnectorMemory {
    fn get(&self, connector: &str, key: &str) -> Result<Option<String>> {
        self.pool.with(|c| {
            let row = c.query_opt(
                "SELECT value FROM connector_memory WHERE connector = $1 AND key = $2",
                &[&connector, &key],
            )?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn put(&self, connector: &str, key: &str, value: &str, at: Millis) -> Result<()> {
        self.pool.with(|c| {
            c.execute(
                "INSERT INTO connector_memory (connector, key, value, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (connector, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                &[&connector, &key, &value, &at],
            )?;
            Ok(())
        })
    }

    fn remove(&self, connector: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.pool.with(|c| {
            c.execute("DELETE FROM connector_memory WHERE connector = $1 AND key = ANY($2)", &[&connector, &keys])?;
            Ok(())
        })
    }

    fn scan(&self, connector: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let from = if after.is_empty() { prefix } else { after };
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT key, value FROM connector_memory
                 WHERE connector = $1 AND key > $2 AND starts_with(key, $3)
                 ORDER BY key LIMIT $4",
                &[&connector, &from, &prefix, &(limit.min(i64::MAX as usize) as i64)],
            )?;
            // `key > prefix` skips an entry whose key is the prefix itself; nothing stores one.
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .filter(|(k, _): &(String, String)| k.as_str() > after)
                .collect())
        })
    }
}
