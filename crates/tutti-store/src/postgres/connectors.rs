//! The connectors' memory in Postgres (`connector_memory`), shared by every worker: the card a topic already
//! has is found whichever worker delivers the next report of it, and a rotated vendor token is the same for
//! all. The same answers as `sqlite/connectors.rs`: keys are `COLLATE "C"`, so they sort byte by byte there too.
//!
//! A key is held across processes ([`ConnectorMemory::try_hold`]) by a session advisory lock on a connection of
//! its own, kept for as long as it is held: closing it releases the lock, also when the process dies.

use tutti_core::Millis;

use super::pool::{Pool, outside_async};
use crate::{ConnectorMemory, Result};

/// The first key of the advisory locks that hold connector memory keys ("tmem" in ASCII); the second is a hash of
/// the connector and the key (two keys sharing a hash only wait for each other).
const HOLD_LOCK: i32 = 0x746d_656d;

/// A key held: the connection whose session holds the lock, closed (releasing it) off any async task.
struct Holding(Option<postgres::Client>);

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            outside_async(move || drop(client));
        }
    }
}

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

    fn try_hold(&self, connector: &str, key: &str) -> Result<Option<Box<dyn Send>>> {
        let url = self.pool.url().to_owned();
        let name = format!("{connector}/{key}");
        outside_async(move || {
            let mut client = super::connect(&url)?;
            let held: bool =
                client.query_one("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&HOLD_LOCK, &name])?.get(0);
            let holding = Holding(Some(client));
            Ok(held.then(|| Box::new(holding) as Box<dyn Send>))
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
