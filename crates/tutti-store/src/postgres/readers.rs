//! The API's reads of profiles in Postgres ([`ProfileReader`]), on a pool of connections: the same answers as
//! `sqlite/profiles.rs`'s reader.

use tutti_core::ProfileId;
use tutti_profiles::{Identifier, Profile};

use super::pool::Pool;
use super::profiles::{ids, merges_into, owner, profile_ids_after, profile_of};
use crate::{MergeRecord, ProfileReader, Result};

pub struct PgProfileReader {
    pool: Pool,
}

impl PgProfileReader {
    pub fn new(pool: Pool) -> PgProfileReader {
        PgProfileReader { pool }
    }
}

impl ProfileReader for PgProfileReader {
    fn owner(&self, id: &Identifier) -> Result<Option<ProfileId>> {
        self.pool.with(|c| owner(c, id))
    }

    fn profile(&self, id: ProfileId) -> Result<Option<Profile>> {
        self.pool.with(|c| Ok(profile_of(c, id)?.map(|(p, _)| p)))
    }

    fn event_seqs(&self, id: ProfileId, before: Option<u64>, limit: usize) -> Result<Vec<u64>> {
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT seq FROM profile_events WHERE profile_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                &[&(id.0 as i64), &before, &(limit as i64)],
            )?;
            Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
        })
    }

    fn merges(&self, id: ProfileId) -> Result<Vec<MergeRecord>> {
        self.pool.with(|c| merges_into(c, id))
    }

    fn merges_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, ProfileId, ProfileId)>> {
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT id, into_profile, from_profile FROM merges WHERE id > $1 ORDER BY id LIMIT $2",
                &[&(after.min(i64::MAX as u64) as i64), &(limit as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let id = r.get::<_, i64>(0) as u64;
                    (id, ProfileId(r.get::<_, i64>(1) as u64), ProfileId(r.get::<_, i64>(2) as u64))
                })
                .collect())
        })
    }

    fn count_profiles(&self) -> Result<u64> {
        self.pool.with(|c| Ok(c.query_one("SELECT count(*) FROM profiles", &[])?.get::<_, i64>(0) as u64))
    }

    fn with_trait(&self, name: &str, value: &str, after: u64, upto: u64, limit: usize) -> Result<Vec<ProfileId>> {
        // As SQLite's reader: only plain names, and a trait's value as text (`1` and `0` for true and false).
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Ok(Vec::new());
        }
        self.pool.with(|c| {
            let rows = c.query(
                "SELECT id FROM (
                     SELECT id, convert_from(state, 'UTF8')::jsonb -> 'traits' -> $3 -> 'v' AS v FROM profiles
                     WHERE id > $1 AND id <= $2
                 ) t
                 WHERE CASE jsonb_typeof(v) WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
                                            ELSE v #>> '{}' END = $4
                 ORDER BY id LIMIT $5",
                &[&(after as i64), &(upto.min(i64::MAX as u64) as i64), &name, &value, &(limit as i64)],
            )?;
            Ok(rows.iter().map(|r| ProfileId(r.get::<_, i64>(0) as u64)).collect())
        })
    }

    fn last_profile_id(&self) -> Result<u64> {
        self.pool.with(|c| Ok(c.query_one("SELECT coalesce(max(id), 0) FROM profiles", &[])?.get::<_, i64>(0) as u64))
    }

    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        self.pool.with(|c| profile_ids_after(c, after, limit))
    }

    fn newest_profile_ids(&self, limit: usize) -> Result<Vec<ProfileId>> {
        self.pool.with(|c| Ok(ids(c.query("SELECT id FROM profiles ORDER BY id DESC LIMIT $1", &[&(limit as i64)])?)))
    }
}
