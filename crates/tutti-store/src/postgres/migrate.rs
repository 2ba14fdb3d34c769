//! Versioned schema migrations, applied at start: each once, in order, each in its own transaction, recorded in
//! `tutti_migrations`. Workers starting together take a session advisory lock first, so one applies them and the
//! others find them applied. A database migrated by a newer Tutti (a version above the last one known here) is
//! refused: this version does not know what the schema means.

use postgres::Client;

use crate::{Result, StoreError};

/// One change of the schema.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only: a released migration is never edited.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "partition leases and workers",
        sql: "
CREATE TABLE partition_leases (
    partition  INTEGER PRIMARY KEY,
    owner      TEXT,                      -- the worker holding it; NULL when free
    token      BIGINT  NOT NULL DEFAULT 0, -- the fencing token: one more at every change of owner
    expires_at BIGINT  NOT NULL DEFAULT 0  -- milliseconds since the epoch
);
CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    role       TEXT   NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);
",
    },
    Migration { version: 2, name: "profiles and flows", sql: include_str!("v2_profiles_and_flows.sql") },
    Migration {
        version: 3,
        name: "outbox partitions",
        sql: "
-- The partition whose owner delivers the row (profiles.rs says which): a worker reads only its partitions' rows.
ALTER TABLE outbox ADD COLUMN partition INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_pending_partition ON outbox (partition, seq) WHERE state = 'pending';
",
    },
    Migration {
        version: 4,
        name: "erasures and cluster settings",
        sql: "
-- The profiles erased, in order, so that every worker also erases them from what it keeps in its own data
-- directory (its analytics tables, its connectors' memory). Ids only: nothing that names the person.
CREATE TABLE erasures (
    seq        BIGSERIAL PRIMARY KEY,
    profile_id BIGINT NOT NULL,
    at         BIGINT NOT NULL
);
-- What the workers sharing the database must agree on (the erasure key's fingerprint), as the first one set it.
CREATE TABLE cluster_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
",
    },
    Migration {
        version: 5,
        name: "connectors' memory",
        sql: "
-- What connectors remember between actions (postgres/connectors.rs), shared by every worker. Keys sort byte by
-- byte, as SQLite's do, whatever the database's collation.
CREATE TABLE connector_memory (
    connector  TEXT   NOT NULL,
    key        TEXT   COLLATE \"C\" NOT NULL,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connector, key)
);
",
    },
    Migration {
        version: 6,
        name: "creatives",
        sql: "
-- Creatives, their tags and their daily performance (postgres/creatives.rs), as sqlite/creatives.rs has them.
CREATE TABLE creatives (
    id             TEXT PRIMARY KEY,
    campaign       TEXT NOT NULL,
    channel        TEXT NOT NULL,
    language       TEXT NOT NULL,
    headline       TEXT NOT NULL,
    body           TEXT NOT NULL,
    call_to_action TEXT NOT NULL,
    landing_url    TEXT NOT NULL,
    owner          TEXT NOT NULL, -- `ours`, or `competitor:` and the competitor's name
    launched       TEXT           -- YYYY-MM-DD
);
CREATE TABLE creative_tags (
    creative   TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    source     TEXT NOT NULL,
    why        TEXT,
    PRIMARY KEY (creative, name)
);
-- Days as YYYY-MM-DD text: they sort as dates do.
CREATE TABLE creative_performance (
    creative       TEXT   NOT NULL,
    day            TEXT   COLLATE \"C\" NOT NULL,
    impressions    BIGINT NOT NULL,
    clicks         BIGINT NOT NULL,
    conversions    BIGINT NOT NULL,
    spend_micros   BIGINT NOT NULL,
    revenue_micros BIGINT,
    PRIMARY KEY (creative, day)
);
CREATE TABLE insight_snapshots (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
",
    },
    Migration {
        version: 7,
        name: "conversations",
        sql: "
-- The conversations store (tutti-conversations' store/postgres.rs), as conversations.db has it.
CREATE TABLE conversations (
    id         TEXT   COLLATE \"C\" PRIMARY KEY,
    started_at BIGINT,
    outcome    TEXT   NOT NULL,
    turns      BIGINT NOT NULL,
    body       TEXT   NOT NULL, -- the conversation as JSON
    hash       BIGINT NOT NULL  -- FNV-1a of body
);
CREATE TABLE conversation_people (
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    conversation TEXT NOT NULL,
    PRIMARY KEY (kind, value, conversation)
);
CREATE INDEX conversation_people_by_conversation ON conversation_people (conversation);
CREATE TABLE topic_edits (
    topic       TEXT COLLATE \"C\" PRIMARY KEY,
    label       TEXT,
    label_en    TEXT,
    merged_into TEXT,
    split_on    TEXT,
    by          TEXT   NOT NULL,
    at          BIGINT NOT NULL
);
CREATE TABLE conversation_snapshots (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
-- One row, `generation`: the count of changes that make a mining out of date, and the lock that orders them.
CREATE TABLE conversation_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO conversation_meta (key, value) VALUES ('generation', 0);
",
    },
];

/// The key of the advisory lock migrations run under ("tutti" in ASCII).
const LOCK: i64 = 0x0074_7574_7469;

/// Applies the migrations not applied yet. Returns the schema's version after.
pub fn migrate(client: &mut Client) -> Result<u32> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
    let applied = apply(client);
    // Unlocked whatever happened; the session's end would release it too.
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]);
    let version = applied?;
    unlocked?;
    Ok(version)
}

fn apply(client: &mut Client) -> Result<u32> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS tutti_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let row = client.query_one("SELECT coalesce(max(version), 0) FROM tutti_migrations", &[])?;
    let mut current = row.get::<_, i32>(0) as u32;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is at version {current}, made by a newer Tutti; this one knows up to {known}"
        )));
    }
    let applied = current;
    for m in MIGRATIONS.iter().filter(|m| m.version > applied) {
        let mut tx = client.transaction()?;
        tx.batch_execute(m.sql)?;
        tx.execute("INSERT INTO tutti_migrations (version, name) VALUES ($1, $2)", &[&(m.version as i32), &m.name])?;
        tx.commit()?;
        current = m.version;
    }
    Ok(current)
}
