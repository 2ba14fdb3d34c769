//! `plans.db`: the copilot's plans, every version kept (a change makes the next one), each with its status
//! (`proposed`, `approved`, `rejected`, `superseded`). Its own file: written when a person asks, never on the
//! event path.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tutti_core::Millis;

use super::open_side;
use crate::Result;

pub const PLANS_FILE: &str = "plans.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plans (
    id         TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plans_newest ON plans (number DESC, version DESC);
";

/// A stored plan version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    pub id: String,
    pub version: u32,
    pub status: String,
    /// The plan and what its dry run found, as JSON.
    pub body: String,
    pub created_at: Millis,
    pub created_by: String,
}

pub struct SqlitePlans {
    conn: Mutex<Connection>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPlan> {
    Ok(StoredPlan {
        id: r.get(0)?,
        version: r.get::<_, i64>(1)? as u32,
        status: r.get(2)?,
        body: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
    })
}

impl SqlitePlans {
    pub fn open(path: &Path) -> Result<SqlitePlans> {
        Ok(SqlitePlans { conn: Mutex::new(open_side(path, 1024, SCHEMA)?) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next plan's id (`p1`, `p2`, ...): never one handed out before.
    pub fn next_id(&self) -> Result<String> {
        let n: Option<i64> = self.conn().query_row("SELECT max(number) FROM plans", [], |r| r.get(0))?;
        Ok(format!("p{}", n.unwrap_or(0) + 1))
    }

    /// Keeps a version; earlier versions still proposed become `superseded`, in the same transaction.
    pub fn put(&self, plan: &StoredPlan) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let number: i64 = plan.id.trim_start_matches('p').parse().unwrap_or(0);
        tx.execute(
            "UPDATE plans SET status = 'superseded' WHERE id = ?1 AND version < ?2 AND status = 'proposed'",
            params![plan.id, plan.version],
        )?;
        tx.execute(
            "INSERT INTO plans (id, number, version, status, body, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![plan.id, number, plan.version, plan.status, plan.body, plan.created_at, plan.created_by],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Sets a version's status, only from `from`; whether it changed.
    pub fn set_status(&self, id: &str, version: u32, from: &str, to: &str, body: &str) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE plans SET status = ?4, body = ?5 WHERE id = ?1 AND version = ?2 AND status = ?3",
            params![id, version, from, to, body],
        )?;
        Ok(changed == 1)
    }

    /// A plan's versions, newest first.
    pub fn versions(&self, id: &str) -> Result<Vec<StoredPlan>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, version, status, body, created_at, created_by FROM plans WHERE id = ?1 ORDER BY version DESC",
        )?;
        Ok(stmt.query_map(params![id], row)?.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The newest version of each plan, newest plan first, at most `limit`.
    pub fn latest(&self, limit: usize) -> Result<Vec<StoredPlan>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, version, status, body, created_at, created_by FROM plans p
             WHERE version = (SELECT max(version) FROM plans q WHERE q.id = p.id)
             ORDER BY number DESC LIMIT ?1",
        )?;
        Ok(stmt.query_map(params![limit as i64], row)?.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One version.
    pub fn get(&self, id: &str, version: u32) -> Result<Option<StoredPlan>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, version, status, body, created_at, created_by FROM plans WHERE id = ?1 AND version = ?2",
        )?;
        Ok(stmt.query_row(params![id, version], row).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_kept_and_an_older_proposal_is_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let plans = SqlitePlans::open(&dir.path().join(PLANS_FILE)).unwrap();
        assert_eq!(plans.next_id().unwrap(), "p1");
        let v = |version: u32| StoredPlan {
            id: "p1".into(),
            version,
            status: "proposed".into(),
            body: format!("{{\"v\":{version}}}"),
            created_at: 1,
            created_by: "mai@shop.vn".into(),
        };
        plans.put(&v(1)).unwrap();
        plans.put(&v(2)).unwrap();
        assert_eq!(plans.next_id().unwrap(), "p2");
        let all = plans.versions("p1").unwrap();
        assert_eq!(
            all.iter().map(|p| (p.version, p.status.as_str())).collect::<Vec<_>>(),
            [(2, "proposed"), (1, "superseded")]
        );
        assert!(plans.set_status("p1", 2, "proposed", "approved", "{}").unwrap());
        assert!(!plans.set_status("p1", 2, "proposed", "rejected", "{}").unwrap(), "decided once");
        assert_eq!(plans.latest(10).unwrap()[0].status, "approved");
    }
}
