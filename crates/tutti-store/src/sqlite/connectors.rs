//! `connectors.db`: what connectors remember between actions (the task a topic already has, the content a
//! website slot shows a profile, the audience members waiting for the next batch). Its own file, so a
//! connector's write never waits for the processor's transaction.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tutti_core::Millis;

use super::open_side;
use crate::{ConnectorMemory, Result};

pub const CONNECTORS_FILE: &str = "connectors.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS memory (
    connector  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (connector, key)
) WITHOUT ROWID;
";

/// Durable key-value memory per connector. One connection: every call is a point read or write.
pub struct SqliteConnectorMemory {
    conn: Mutex<Connection>,
}

impl SqliteConnectorMemory {
    pub fn open(path: &Path) -> Result<SqliteConnectorMemory> {
        // A memory entry is written after the vendor confirmed; a power cut may lose the last few (the next
        // action for the same key then creates rather than updates).
        let conn = open_side(path, 4 * 1024, SCHEMA)?;
        Ok(SqliteConnectorMemory { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConnectorMemory for SqliteConnectorMemory {
    fn get(&self, connector: &str, key: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT value FROM memory WHERE connector = ?1 AND key = ?2")?;
        Ok(stmt.query_row(params![connector, key], |r| r.get(0)).optional()?)
    }

    fn put(&self, connector: &str, key: &str, value: &str, at: Millis) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO memory (connector, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (connector, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )?;
        stmt.execute(params![connector, key, value, at])?;
        Ok(())
    }

    fn remove(&self, connector: &str, keys: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM memory WHERE connector = ?1 AND key = ?2")?;
            for key in keys {
                stmt.execute(params![connector, key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Entries whose key starts with `prefix` and sorts after `after`, in key order, at most `limit`.
    fn scan(&self, connector: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, value FROM memory WHERE connector = ?1 AND key > ?2 AND substr(key, 1, length(?3)) = ?3
             ORDER BY key LIMIT ?4",
        )?;
        let from = if after.is_empty() { prefix } else { after };
        let rows = stmt.query_map(params![connector, from, prefix, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out: Vec<(String, String)> = rows.collect::<rusqlite::Result<_>>()?;
        // `key > prefix` skips an entry whose key is the prefix itself; nothing stores one.
        out.retain(|(k, _)| k.as_str() > after);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_scans_by_prefix_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let m = SqliteConnectorMemory::open(&dir.path().join(CONNECTORS_FILE)).unwrap();
        assert_eq!(m.get("trello", "topic/bảo mật").unwrap(), None);
        m.put("trello", "topic/bảo mật", "card-1", 1).unwrap();
        m.put("trello", "topic/bảo mật", "card-2", 2).unwrap();
        m.put("trello", "topic/giá", "card-3", 3).unwrap();
        m.put("audience", "topic/x", "other connector", 3).unwrap();
        assert_eq!(m.get("trello", "topic/bảo mật").unwrap().as_deref(), Some("card-2"));
        let all = m.scan("trello", "topic/", "", 10).unwrap();
        assert_eq!(all.len(), 2);
        let page = m.scan("trello", "topic/", &all[0].0, 10).unwrap();
        assert_eq!(page, vec![all[1].clone()]);
        m.remove("trello", &[all[0].0.clone()]).unwrap();
        assert_eq!(m.scan("trello", "topic/", "", 10).unwrap().len(), 1);
        drop(m);
        let again = SqliteConnectorMemory::open(&dir.path().join(CONNECTORS_FILE)).unwrap();
        assert_eq!(again.get("trello", "topic/giá").unwrap().as_deref(), Some("card-3"), "durable");
    }
}
