//! The embedded analytics store: `analytics.db`, typed tables projected from the event log.
//!
//! - `events`: one row per event (time `ts`, person, name, an order's revenue and currency, the layer's properties);
//! - `items`: one row per line of an order's `products[]`;
//! - `active`: who did anything in each 15-minute slot, so people are counted per day in any time zone
//!   without reading every event;
//! - `profiles`: the layer's trait dimensions per person; `names`: event names by number;
//! - `meta`: how far into the log and the merges the projection has gone, and the layer it was made for.
//!
//! Only `events` is indexed by person: an erasure or a merge finds a person's items and slots through their
//! events, so the indexes a write touches at random places stay one (the others grow at their end, as events
//! arrive in time order).
//!
//! Everything here can be made again from the log (`tutti analytics rebuild`), so it is written with
//! `synchronous = NORMAL`; erasure overwrites deleted rows (`secure_delete`) and empties the write-ahead log.
//! Questions run on separate read-only connections with a deadline and a row limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde_json::{Map, Value};

use crate::compile::{Param, SLOT_MS, Sql, number_value};
use crate::project::Projected;

/// File name of the analytics store inside the data directory.
pub const ANALYTICS_FILE: &str = "analytics.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS names (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,
    profile  INTEGER NOT NULL,
    name     INTEGER NOT NULL,
    revenue  REAL,
    currency TEXT,
    props    TEXT
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, ts, profile);
CREATE INDEX IF NOT EXISTS events_by_profile ON events (profile);
CREATE TABLE IF NOT EXISTS items (
    seq        INTEGER NOT NULL,
    line       INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    profile    INTEGER NOT NULL,
    product_id TEXT,
    sku        TEXT,
    name       TEXT,
    category   TEXT,
    brand      TEXT,
    variant    TEXT,
    price      REAL,
    quantity   REAL    NOT NULL,
    amount     REAL,
    currency   TEXT,
    PRIMARY KEY (seq, line)
);
CREATE INDEX IF NOT EXISTS items_by_ts ON items (ts);
CREATE TABLE IF NOT EXISTS active (
    slot    INTEGER NOT NULL,
    profile INTEGER NOT NULL,
    PRIMARY KEY (slot, profile)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (
    profile INTEGER PRIMARY KEY,
    traits  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

const TABLES: [&str; 5] = ["events", "items", "active", "profiles", "names"];

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("analytics store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("analytics store: {0}")]
    Io(#[from] std::io::Error),
    /// The query ran past its deadline and was stopped.
    #[error("the query took longer than {0:?} and was stopped")]
    Timeout(Duration),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How far the projection has gone: the last log sequence number and the last merge projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub log: u64,
    pub merges: u64,
}

/// One profile merged into another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    pub id: u64,
    pub into: u64,
    pub from: u64,
}

/// A table of answers: column names and rows of JSON values.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// More rows were there than the limit allowed.
    pub truncated: bool,
}

/// Bounds on one query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rows: usize,
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { rows: 1000, time: Duration::from_secs(5) }
    }
}

/// Makes a database file readable and writable by its owner only (0600), creating it empty if missing.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The one writer of `analytics.db`.
pub struct SqliteAnalytics {
    conn: Connection,
    names: HashMap<String, i64>,
}

impl SqliteAnalytics {
    pub fn open(path: &Path) -> Result<SqliteAnalytics> {
        private_file(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "cache_size", -64 * 1024)?;
        conn.set_prepared_statement_cache_capacity(32);
        conn.execute_batch(SCHEMA)?;
        let mut store = SqliteAnalytics { conn, names: HashMap::new() };
        store.load_names()?;
        Ok(store)
    }

    fn load_names(&mut self) -> Result<()> {
        let mut stmt = self.conn.prepare("SELECT id, name FROM names")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(0)?)))?;
        self.names = rows.collect::<rusqlite::Result<_>>()?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn cursor(&self) -> Result<Cursor> {
        let read = |k: &str| -> Result<u64> { Ok(self.meta(k)?.and_then(|v| v.parse().ok()).unwrap_or(0)) };
        Ok(Cursor { log: read("log")?, merges: read("merges")? })
    }

    /// The layer the tables were projected for (its projection fingerprint), if any.
    pub fn fingerprint(&self) -> Result<Option<String>> {
        self.meta("fingerprint")
    }

    /// Empties every table and starts the projection over, for a layer with this fingerprint.
    pub fn reset(&mut self, fingerprint: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        for table in TABLES {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.execute("DELETE FROM meta", [])?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('fingerprint', ?1)", [fingerprint])?;
        tx.commit()?;
        self.names.clear();
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }

    /// Writes projected events and applies merges, then moves the cursor, in one transaction.
    pub fn apply(&mut self, events: &[Projected], merges: &[Merge], cursor: Cursor) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut new_name = tx.prepare_cached("INSERT INTO names (name) VALUES (?1)")?;
            let mut event = tx.prepare_cached(
                "INSERT OR REPLACE INTO events (seq, ts, profile, name, revenue, currency, props)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut item = tx.prepare_cached(
                "INSERT OR REPLACE INTO items (seq, line, ts, profile, product_id, sku, name, category, brand, variant,
                 price, quantity, amount, currency) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            let mut active = tx.prepare_cached("INSERT OR IGNORE INTO active (slot, profile) VALUES (?1, ?2)")?;
            let mut traits_of = tx.prepare_cached("SELECT traits FROM profiles WHERE profile = ?1")?;
            let mut set_traits =
                tx.prepare_cached("INSERT OR REPLACE INTO profiles (profile, traits) VALUES (?1, ?2)")?;
            for e in events {
                let name = match self.names.get(&e.name) {
                    Some(id) => *id,
                    None => {
                        new_name.execute([&e.name])?;
                        let id = tx.last_insert_rowid();
                        self.names.insert(e.name.clone(), id);
                        id
                    }
                };
                let (seq, profile) = (e.seq as i64, e.profile as i64);
                event.execute(params![seq, e.at, profile, name, e.revenue, e.currency, e.props])?;
                for (line, i) in e.items.iter().enumerate() {
                    item.execute(params![
                        seq,
                        line as i64,
                        e.at,
                        profile,
                        i.product_id,
                        i.sku,
                        i.name,
                        i.category,
                        i.brand,
                        i.variant,
                        i.price,
                        i.quantity,
                        i.amount(),
                        e.currency
                    ])?;
                }
                active.execute(params![e.at.div_euclid(SLOT_MS), profile])?;
                if !e.traits.is_empty() {
                    let old: Option<String> = traits_of.query_row([profile], |r| r.get(0)).optional()?;
                    let mut map: Map<String, Value> =
                        old.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
                    map.extend(e.traits.iter().map(|(k, v)| (k.clone(), v.clone())));
                    set_traits.execute(params![profile, Value::Object(map).to_string()])?;
                }
            }
            for m in merges {
                merge(&tx, m.into as i64, m.from as i64)?;
            }
            let mut set = tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
            set.execute(params!["log", cursor.log.to_string()])?;
            set.execute(params!["merges", cursor.merges.to_string()])?;
        }
        if let Err(e) = tx.commit() {
            // The names cached for rows that were not written would point at nothing.
            self.load_names()?;
            return Err(e.into());
        }
        Ok(())
    }

    /// Deletes everything about these people, overwriting it, and empties the write-ahead log. Returns the
    /// number of events deleted.
    pub fn erase(&mut self, profiles: &[u64]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut deleted = 0;
        for p in profiles {
            let p = *p as i64;
            tx.execute("DELETE FROM items WHERE seq IN (SELECT seq FROM events WHERE profile = ?1)", [p])?;
            tx.execute(&format!("DELETE FROM active WHERE profile = ?1 AND slot IN (SELECT {SLOT_OF_AT} FROM events WHERE profile = ?1)"), [p])?;
            deleted += tx.execute("DELETE FROM events WHERE profile = ?1", [p])?;
            tx.execute("DELETE FROM profiles WHERE profile = ?1", [p])?;
        }
        tx.commit()?;
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(deleted)
    }

    /// Counts of rows, for progress and tests.
    pub fn count(&self, table: &str) -> Result<u64> {
        let table = TABLES.iter().find(|t| **t == table).copied().unwrap_or("events");
        Ok(self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as u64)
    }
}

/// An event's 15-minute slot in SQL, as [`SLOT_MS`] and `div_euclid` make it in Rust (times before 1970 too).
const SLOT_OF_AT: &str = "(CASE WHEN ts >= 0 THEN ts / 900000 ELSE -((899999 - ts) / 900000) END)";

fn merge(tx: &rusqlite::Transaction<'_>, into: i64, from: i64) -> Result<()> {
    // Items and slots are found through the events, so the events move last.
    tx.execute("UPDATE items SET profile = ?1 WHERE seq IN (SELECT seq FROM events WHERE profile = ?2)", [into, from])?;
    tx.execute(
        &format!("INSERT OR IGNORE INTO active (slot, profile) SELECT DISTINCT {SLOT_OF_AT}, ?1 FROM events WHERE profile = ?2"),
        [into, from],
    )?;
    tx.execute(
        &format!(
            "DELETE FROM active WHERE profile = ?1 AND slot IN (SELECT {SLOT_OF_AT} FROM events WHERE profile = ?1)"
        ),
        [from],
    )?;
    tx.execute("UPDATE events SET profile = ?1 WHERE profile = ?2", [into, from])?;
    let traits = |p: i64| -> Result<Map<String, Value>> {
        let text: Option<String> =
            tx.query_row("SELECT traits FROM profiles WHERE profile = ?1", [p], |r| r.get(0)).optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    };
    let (mut kept, absorbed) = (traits(into)?, traits(from)?);
    if !absorbed.is_empty() {
        // The surviving profile's own values win, as they do in the profile store.
        for (k, v) in absorbed {
            kept.entry(k).or_insert(v);
        }
        tx.execute(
            "INSERT OR REPLACE INTO profiles (profile, traits) VALUES (?1, ?2)",
            params![into, Value::Object(kept).to_string()],
        )?;
        tx.execute("DELETE FROM profiles WHERE profile = ?1", [from])?;
    }
    Ok(())
}

/// A query's result, with a query stopped by its deadline said as such.
fn stopped_at_deadline<T>(outcome: rusqlite::Result<T>, limits: Limits) -> Result<T> {
    match outcome {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::OperationInterrupted => {
            Err(StoreError::Timeout(limits.time))
        }
        other => Ok(other?),
    }
}

/// Read-only connections to `analytics.db` for queries.
pub struct SqliteAnalyticsReader {
    path: PathBuf,
}

impl SqliteAnalyticsReader {
    pub fn new(path: &Path) -> SqliteAnalyticsReader {
        SqliteAnalyticsReader { path: path.to_owned() }
    }

    fn connect(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.pragma_update(None, "query_only", "ON")?;
        conn.pragma_update(None, "cache_size", -64 * 1024)?;
        Ok(conn)
    }

    /// Runs compiled SQL: read-only, stopped at the deadline, at most `limits.rows` rows kept.
    pub fn run(&self, sql: &Sql, limits: Limits) -> Result<Rows> {
        let conn = self.connect()?;
        let deadline = Instant::now() + limits.time;
        conn.progress_handler(10_000, Some(move || Instant::now() > deadline));
        let outcome = (|| -> rusqlite::Result<Rows> {
            let mut stmt = conn.prepare(&sql.text)?;
            let columns: Vec<String> = stmt.column_names().iter().map(|c| (*c).to_owned()).collect();
            let n = columns.len();
            let params = params_from_iter(sql.params.iter().map(|p| match p {
                Param::Int(i) => rusqlite::types::Value::Integer(*i),
                Param::Text(t) => rusqlite::types::Value::Text(t.clone()),
            }));
            let mut rows = stmt.query(params)?;
            let mut out = Rows { columns, ..Rows::default() };
            while let Some(row) = rows.next()? {
                if out.rows.len() == limits.rows {
                    out.truncated = true;
                    break;
                }
                let mut cells = Vec::with_capacity(n);
                for i in 0..n {
                    cells.push(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                        rusqlite::types::ValueRef::Real(v) => number_value(v),
                        rusqlite::types::ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                        rusqlite::types::ValueRef::Blob(_) => Value::Null,
                    });
                }
                out.rows.push(cells);
            }
            Ok(out)
        })();
        stopped_at_deadline(outcome, limits)
    }

    /// Order revenue per currency of each (person, from, to) window, in the order given: what a flow's runs
    /// brought in within its attribution window. One connection and one prepared statement for all of them.
    pub fn revenue_within(
        &self,
        order_events: &[String],
        windows: &[(u64, i64, i64)],
        limits: Limits,
    ) -> Result<Vec<Vec<(String, f64)>>> {
        let conn = self.connect()?;
        let deadline = Instant::now() + limits.time;
        conn.progress_handler(10_000, Some(move || Instant::now() > deadline));
        let names = vec!["?"; order_events.len().max(1)].join(", ");
        let sql = format!(
            "SELECT coalesce(currency, ''), SUM(revenue) FROM events WHERE profile = ? AND ts >= ? AND ts < ?
             AND name IN (SELECT id FROM names WHERE name IN ({names})) AND revenue IS NOT NULL GROUP BY 1 ORDER BY 1"
        );
        let outcome = (|| -> rusqlite::Result<Vec<Vec<(String, f64)>>> {
            let mut stmt = conn.prepare(&sql)?;
            let mut out = Vec::with_capacity(windows.len());
            for (profile, from, to) in windows {
                let mut values: Vec<rusqlite::types::Value> = vec![
                    rusqlite::types::Value::Integer(*profile as i64),
                    rusqlite::types::Value::Integer(*from),
                    rusqlite::types::Value::Integer(*to),
                ];
                values.extend(order_events.iter().map(|n| rusqlite::types::Value::Text(n.clone())));
                if order_events.is_empty() {
                    values.push(rusqlite::types::Value::Null);
                }
                let rows =
                    stmt.query_map(params_from_iter(values), |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?;
                out.push(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            }
            Ok(out)
        })();
        stopped_at_deadline(outcome, limits)
    }

    /// The event names seen, in the order they first appeared (at most `limit`).
    pub fn event_names(&self, limit: usize) -> Result<Vec<String>> {
        let conn = self.connect()?;
        let mut stmt = conn.prepare("SELECT name FROM names ORDER BY id LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How far the projection has gone.
    pub fn cursor(&self) -> Result<Cursor> {
        let conn = self.connect()?;
        let read = |k: &str| -> Result<u64> {
            let v: Option<String> =
                conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0)).optional()?;
            Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        Ok(Cursor { log: read("log")?, merges: read("merges")? })
    }
}
