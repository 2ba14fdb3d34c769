//! Identities, profiles, attributions, merges and tombstones in `profiles.db`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tutti_core::ProfileId;
use tutti_profiles::{Identifier, Profile};

use super::{Checkpointer, ReadPool, Role, WalBound, audit, flows, open, truncate_wal};
use crate::{MergeRecord, ProfileBatch, ProfileReader, ProfileStore, Result, StoreError, Tombstone};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS identities (
    kind       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    profile_id INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_by_profile ON identities (profile_id);
CREATE TABLE IF NOT EXISTS profiles (
    id    INTEGER PRIMARY KEY,
    state BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_events (
    profile_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (profile_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS merges (
    id           INTEGER PRIMARY KEY,
    into_profile INTEGER NOT NULL,
    from_profile INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    message_id   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS merges_by_into ON merges (into_profile);
CREATE TABLE IF NOT EXISTS tombstones (
    hash      BLOB    PRIMARY KEY,
    erased_at INTEGER NOT NULL,
    erase_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

const PROFILE_CACHE_KIB: i64 = 64 * 1024;

fn owner(conn: &Connection, id: &Identifier) -> Result<Option<ProfileId>> {
    let mut stmt = conn.prepare_cached("SELECT profile_id FROM identities WHERE kind = ?1 AND value = ?2")?;
    let found: Option<i64> = stmt.query_row(params![id.kind.as_str(), id.value], |r| r.get(0)).optional()?;
    Ok(found.map(|p| ProfileId(p as u64)))
}

fn profile(conn: &Connection, id: ProfileId) -> Result<Option<Profile>> {
    let mut stmt = conn.prepare_cached("SELECT state FROM profiles WHERE id = ?1")?;
    let state: Option<Vec<u8>> = stmt.query_row([id.0 as i64], |r| r.get(0)).optional()?;
    state
        .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("profile {id}: {e}"))))
        .transpose()
}

/// Ids of profiles above `after`, lowest first, at most `limit`: for the processor's sweeps and the API's scans.
fn profile_ids_after(conn: &Connection, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
    let after = after.min(i64::MAX as u64) as i64;
    let mut stmt = conn.prepare_cached("SELECT id FROM profiles WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    let rows = stmt.query_map(params![after, limit as i64], |r| Ok(ProfileId(r.get::<_, i64>(0)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn meta(conn: &Connection, key: &str) -> Result<Option<u64>> {
    let v: Option<i64> = conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?;
    Ok(v.map(|v| v as u64))
}

fn count_profiles(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM profiles", [], |r| r.get::<_, i64>(0))? as u64)
}

/// The profiles merged (directly or through earlier merges) into `id`, with the merge records.
fn merges_into(conn: &Connection, id: ProfileId) -> Result<Vec<MergeRecord>> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE chain(p) AS (SELECT ?1 UNION SELECT m.from_profile FROM merges m JOIN chain ON m.into_profile = chain.p)
         SELECT into_profile, from_profile, at, seq, message_id FROM merges WHERE into_profile IN chain ORDER BY id",
    )?;
    let rows = stmt.query_map([id.0 as i64], |r| {
        Ok(MergeRecord {
            into: ProfileId(r.get::<_, i64>(0)? as u64),
            from: ProfileId(r.get::<_, i64>(1)? as u64),
            at: r.get(2)?,
            seq: r.get::<_, i64>(3)? as u64,
            message_id: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The processor's handle on `profiles.db`.
pub struct SqliteProfileStore {
    conn: Connection,
    path: std::path::PathBuf,
    wal: WalBound,
}

impl SqliteProfileStore {
    pub fn open(path: &Path) -> Result<SqliteProfileStore> {
        let conn = open(path, Role::Writer, PROFILE_CACHE_KIB)?;
        // Everything here is derived from the event log and committed together with the log position it
        // reflects. A power cut can only cost a suffix of commits (WAL commits are atomic and ordered); the
        // processor then replays from the older position and reaches the same state. So commits need no fsync.
        // Erasure is the exception and is made durable by its scrub, a checkpoint that syncs.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(flows::SCHEMA)?;
        Ok(SqliteProfileStore { conn, path: path.to_owned(), wal: WalBound::new() })
    }

    /// A background checkpointer for this store, which also tells it when its write-ahead log is long.
    pub fn checkpointer(&self) -> Result<Checkpointer> {
        self.wal.checkpointer(&self.path)
    }
}

impl ProfileStore for SqliteProfileStore {
    fn owner(&self, id: &Identifier) -> Result<Option<ProfileId>> {
        owner(&self.conn, id)
    }

    fn profile(&self, id: ProfileId) -> Result<Option<Profile>> {
        profile(&self.conn, id)
    }

    fn commit(&mut self, batch: &ProfileBatch) -> Result<Vec<Option<u64>>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut link = tx.prepare_cached(
                "INSERT INTO identities (kind, value, profile_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, value) DO UPDATE SET profile_id = excluded.profile_id",
            )?;
            for (id, pid) in &batch.links {
                link.execute(params![id.kind.as_str(), id.value, pid.0 as i64])?;
            }
            let mut attribute =
                tx.prepare_cached("INSERT OR IGNORE INTO profile_events (profile_id, seq) VALUES (?1, ?2)")?;
            for (pid, seq) in &batch.attributions {
                attribute.execute(params![pid.0 as i64, *seq as i64])?;
            }
            let mut move_ids = tx.prepare_cached("UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2")?;
            let mut move_events =
                tx.prepare_cached("UPDATE OR IGNORE profile_events SET profile_id = ?1 WHERE profile_id = ?2")?;
            let mut record = tx.prepare_cached(
                "INSERT INTO merges (into_profile, from_profile, at, seq, message_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for m in &batch.moves {
                move_ids.execute(params![m.into.0 as i64, m.from.0 as i64])?;
                move_events.execute(params![m.into.0 as i64, m.from.0 as i64])?;
                record.execute(params![m.into.0 as i64, m.from.0 as i64, m.at, m.seq as i64, m.message_id])?;
                flows::merge(&tx, m.into, m.from)?;
            }
            let mut upsert = tx.prepare_cached("INSERT OR REPLACE INTO profiles (id, state) VALUES (?1, ?2)")?;
            for p in &batch.profiles {
                let state = serde_json::to_vec(p).expect("a profile always serialises");
                upsert.execute(params![p.id.0 as i64, state])?;
            }
            let mut delete = tx.prepare_cached("DELETE FROM profiles WHERE id = ?1")?;
            for pid in &batch.deleted {
                delete.execute([pid.0 as i64])?;
            }
            let mut set_meta = tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
            set_meta.execute(params!["checkpoint", batch.checkpoint as i64])?;
            set_meta.execute(params!["next_profile_id", batch.next_profile_id as i64])?;
        }
        let queued = flows::commit(&tx, &batch.flows)?;
        tx.commit()?;
        self.wal.after_commit(&self.conn);
        Ok(queued)
    }

    fn checkpoint(&self) -> Result<u64> {
        Ok(meta(&self.conn, "checkpoint")?.unwrap_or(0))
    }

    fn next_profile_id(&self) -> Result<u64> {
        let stored = meta(&self.conn, "next_profile_id")?.unwrap_or(1);
        let max: Option<i64> = self.conn.query_row("SELECT max(id) FROM profiles", [], |r| r.get(0))?;
        Ok(stored.max(max.unwrap_or(0) as u64 + 1))
    }

    fn count_profiles(&self) -> Result<u64> {
        count_profiles(&self.conn)
    }

    fn event_seqs(&self, id: ProfileId) -> Result<Vec<u64>> {
        let mut stmt = self.conn.prepare_cached("SELECT seq FROM profile_events WHERE profile_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([id.0 as i64], |r| r.get::<_, i64>(0))?;
        Ok(rows.map(|r| r.map(|s| s as u64)).collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn erase(&mut self, id: ProfileId, tombstones: &[Tombstone]) -> Result<Vec<u64>> {
        let merged = merges_into(&self.conn, id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seqs = {
            let mut stmt = tx.prepare_cached("SELECT seq FROM profile_events WHERE profile_id = ?1")?;
            let rows = stmt.query_map([id.0 as i64], |r| r.get::<_, i64>(0))?;
            rows.map(|r| r.map(|s| s as u64)).collect::<rusqlite::Result<Vec<_>>>()?
        };
        let pid = id.0 as i64;
        tx.execute("DELETE FROM profile_events WHERE profile_id = ?1", [pid])?;
        tx.execute("DELETE FROM identities WHERE profile_id = ?1", [pid])?;
        tx.execute("DELETE FROM profiles WHERE id = ?1", [pid])?;
        flows::erase(&tx, id)?;
        for m in &merged {
            tx.execute(
                "DELETE FROM merges WHERE into_profile = ?1 AND from_profile = ?2",
                params![m.into.0 as i64, m.from.0 as i64],
            )?;
            audit::redact_audit(&tx, m.from)?;
        }
        for t in tombstones {
            tx.execute(
                "INSERT OR REPLACE INTO tombstones (hash, erased_at, erase_seq) VALUES (?1, ?2, ?3)",
                params![&t.hash[..], t.erased_at, t.erase_seq as i64],
            )?;
        }
        tx.commit()?;
        Ok(seqs)
    }

    fn merged_into(&self, id: ProfileId) -> Result<Vec<ProfileId>> {
        Ok(merges_into(&self.conn, id)?.into_iter().map(|m| m.from).collect())
    }

    fn tombstones(&self) -> Result<Vec<Tombstone>> {
        let mut stmt = self.conn.prepare("SELECT hash, erased_at, erase_seq FROM tombstones")?;
        let rows = stmt.query_map([], |r| {
            let bytes: Vec<u8> = r.get(0)?;
            Ok((bytes, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (bytes, erased_at, erase_seq) = row?;
            let hash: [u8; 32] =
                bytes.try_into().map_err(|_| StoreError::Corrupt("tombstone hash is not 32 bytes".into()))?;
            out.push(Tombstone { hash, erased_at, erase_seq: erase_seq as u64 });
        }
        Ok(out)
    }

    fn scrub(&mut self) -> Result<()> {
        truncate_wal(&self.conn)
    }

    fn flow_state(&self, id: ProfileId) -> Result<Option<Vec<u8>>> {
        flows::flow_state(&self.conn, id)
    }

    fn due_timers(&self, before: tutti_core::Millis, limit: usize) -> Result<Vec<(tutti_core::Millis, ProfileId)>> {
        flows::due_timers(&self.conn, before, limit)
    }

    fn step_counts(&self) -> Result<Vec<(tutti_flows::StepKey, u64)>> {
        flows::step_counts(&self.conn)
    }

    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        profile_ids_after(&self.conn, after, limit)
    }

    fn backfills(&self) -> Result<Vec<crate::Backfill>> {
        super::sweeps::backfills(&self.conn)
    }

    fn open_broadcasts(&self) -> Result<Vec<crate::Broadcast>> {
        super::sweeps::broadcasts(&self.conn, true)
    }

    fn members_after(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        super::sweeps::members_after(&self.conn, segment, after, limit)
    }

    fn member_count(&self, segment: &str) -> Result<u64> {
        let count: i64 =
            self.conn.query_row("SELECT count(*) FROM segment_members WHERE segment = ?1", [segment], |r| r.get(0))?;
        Ok(count as u64)
    }
}

/// Read access to `profiles.db` for the API.
pub struct SqliteProfileReader {
    pool: ReadPool,
}

impl SqliteProfileReader {
    pub fn open(path: &Path) -> Result<SqliteProfileReader> {
        let conn = open(path, Role::Writer, 1024)?;
        conn.execute_batch(SCHEMA)?;
        drop(conn);
        Ok(SqliteProfileReader { pool: ReadPool::new(path, 16 * 1024) })
    }
}

impl ProfileReader for SqliteProfileReader {
    fn with_trait(&self, name: &str, value: &str, after: u64, upto: u64, limit: usize) -> Result<Vec<ProfileId>> {
        // The name goes into a JSON path quoted, and only names of letters, digits, `_`, `-` and `.` reach here.
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Ok(Vec::new());
        }
        // A trait is kept stamped: `{"v": value, "at": ..., "by": ...}`.
        let path = format!("$.traits.\"{name}\".v");
        self.pool.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM profiles WHERE id > ?1 AND id <= ?2
                 AND CAST(json_extract(CAST(state AS TEXT), ?3) AS TEXT) = ?4 ORDER BY id LIMIT ?5",
            )?;
            let rows = stmt.query_map(params![after as i64, upto as i64, path, value, limit as i64], |r| {
                Ok(ProfileId(r.get::<_, i64>(0)? as u64))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn last_profile_id(&self) -> Result<u64> {
        self.pool
            .with(|c| Ok(c.query_row("SELECT coalesce(max(id), 0) FROM profiles", [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        self.pool.with(|c| profile_ids_after(c, after, limit))
    }

    fn newest_profile_ids(&self, limit: usize) -> Result<Vec<ProfileId>> {
        self.pool.with(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM profiles ORDER BY id DESC LIMIT ?1")?;
            let rows = stmt.query_map([limit as i64], |r| Ok(ProfileId(r.get::<_, i64>(0)? as u64)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn owner(&self, id: &Identifier) -> Result<Option<ProfileId>> {
        self.pool.with(|c| owner(c, id))
    }

    fn profile(&self, id: ProfileId) -> Result<Option<Profile>> {
        self.pool.with(|c| profile(c, id))
    }

    fn event_seqs(&self, id: ProfileId, before: Option<u64>, limit: usize) -> Result<Vec<u64>> {
        self.pool.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq FROM profile_events WHERE profile_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
            let rows = stmt.query_map(params![id.0 as i64, before, limit as i64], |r| r.get::<_, i64>(0))?;
            Ok(rows.map(|r| r.map(|s| s as u64)).collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn merges(&self, id: ProfileId) -> Result<Vec<MergeRecord>> {
        self.pool.with(|c| merges_into(c, id))
    }

    fn merges_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, ProfileId, ProfileId)>> {
        self.pool.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, into_profile, from_profile FROM merges WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after.min(i64::MAX as u64) as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    ProfileId(r.get::<_, i64>(1)? as u64),
                    ProfileId(r.get::<_, i64>(2)? as u64),
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn count_profiles(&self) -> Result<u64> {
        self.pool.with(count_profiles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_log_is_append_only_and_an_erasure_only_redacts() {
        use crate::sqlite::SqliteFlowReader;
        use crate::{AuditLog, FlowBatch};
        use tutti_core::audit::{AuditFilter, AuditKind, AuditRecord};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.db");
        let mut store = SqliteProfileStore::open(&path).unwrap();
        let flows = SqliteFlowReader::open(&path).unwrap();
        let (a, b) = (ProfileId(1), ProfileId(2));
        let record = |pid: ProfileId, body: &str| AuditRecord {
            at: 10,
            kind: AuditKind::Approval,
            flow: Some("f".into()),
            run: Some(format!("{pid}-1")),
            profile: Some(pid),
            detail: serde_json::json!({"decision": "approved", "approver": "mai", "content": {"body": body}}),
        };
        store
            .commit(&ProfileBatch {
                profiles: vec![Profile::new(a), Profile::new(b)],
                next_profile_id: 3,
                flows: FlowBatch { audit: vec![record(a, "chị Lan ơi")], ..FlowBatch::default() },
                ..ProfileBatch::default()
            })
            .unwrap();
        flows.append(&[record(b, "王先生")]).unwrap();
        let all = flows.audit(&AuditFilter::default(), 0, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, record(a, "chị Lan ơi"));
        let only_b = AuditFilter { profile: Some(b), ..AuditFilter::default() };
        assert_eq!(flows.audit(&only_b, 0, 10).unwrap()[0].0, all[1].0);

        // Nothing deletes or rewrites a record, not even SQL that goes round the API.
        let conn = Connection::open(&path).unwrap();
        let refused = |sql: &str| conn.execute(sql, []).unwrap_err().to_string();
        assert!(refused("DELETE FROM audit").contains("append-only"));
        assert!(refused("UPDATE audit SET detail = '{}'").contains("append-only"));
        assert!(refused("UPDATE audit SET redacted = 1, profile_id = 9").contains("append-only"));

        store.erase(a, &[]).unwrap();
        let after = flows.audit(&AuditFilter::default(), 0, 10).unwrap();
        assert_eq!(after.len(), 2, "the record stays");
        assert_eq!(after[0].1.detail, serde_json::json!({"decision": "approved", "approver": "mai", "redacted": true}));
        assert_eq!(after[1].1, record(b, "王先生"), "other people's records are untouched");
        assert!(refused("UPDATE audit SET redacted = 1 WHERE profile_id = 1").contains("append-only"), "once");
    }

    #[test]
    fn merges_move_identities_and_events_and_erase_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.db");
        let mut store = SqliteProfileStore::open(&path).unwrap();
        let (a, b) = (ProfileId(1), ProfileId(2));
        let anon: Identifier = "anonymous_id:x".parse().unwrap();
        let user: Identifier = "user_id:42".parse().unwrap();
        store
            .commit(&ProfileBatch {
                links: vec![(user.clone(), a), (anon.clone(), b)],
                attributions: vec![(a, 1), (b, 2)],
                profiles: vec![Profile::new(a), Profile::new(b)],
                checkpoint: 2,
                next_profile_id: 3,
                ..ProfileBatch::default()
            })
            .unwrap();
        store
            .commit(&ProfileBatch {
                attributions: vec![(b, 3)],
                moves: vec![MergeRecord { into: a, from: b, at: 7, seq: 3, message_id: "m3".into() }],
                profiles: vec![Profile::new(a)],
                deleted: vec![b],
                checkpoint: 3,
                next_profile_id: 3,
                ..ProfileBatch::default()
            })
            .unwrap();
        let reader = SqliteProfileReader::open(&path).unwrap();
        assert_eq!(reader.owner(&anon).unwrap(), Some(a));
        assert_eq!(reader.event_seqs(a, None, 10).unwrap(), [3, 2, 1]);
        assert_eq!(reader.event_seqs(a, Some(3), 1).unwrap(), [2]);
        assert_eq!(reader.merges(a).unwrap().len(), 1);
        assert_eq!(reader.count_profiles().unwrap(), 1);
        assert_eq!(store.checkpoint().unwrap(), 3);

        let tomb = Tombstone { hash: [7; 32], erased_at: 9, erase_seq: 3 };
        let mut seqs = store.erase(a, std::slice::from_ref(&tomb)).unwrap();
        seqs.sort();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(reader.owner(&user).unwrap(), None);
        assert!(reader.profile(a).unwrap().is_none());
        assert!(reader.merges(a).unwrap().is_empty());
        assert_eq!(store.tombstones().unwrap(), [tomb]);
        // Ids are never reused, even though the newest profile is gone.
        assert_eq!(store.next_profile_id().unwrap(), 3);
    }
}
