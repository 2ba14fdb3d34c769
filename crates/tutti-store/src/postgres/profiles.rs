//! The processor's store in Postgres: [`ProfileStore`] over the tables of `v2_profiles_and_flows.sql`.
//!
//! Several workers may write the same profile (one person's events can arrive on two partitions: an anonymous
//! visitor's, then the same person's once identified), so every commit is checked against what its batch was
//! worked out from:
//!
//! - **Profiles carry a version.** The store remembers the version of each profile it handed out or wrote.
//!   A commit locks the rows it writes (`FOR UPDATE`) and refuses, with [`StoreError::Conflict`], a profile
//!   whose version moved since, or one it never handed out (the processor cached it before the store's memory
//!   was cleared). New profiles must not exist yet.
//! - **Identifiers carry their owner.** The store remembers the owner each identifier had when handed out
//!   ([`ProfileStore::owner`], or its own commits and merges). Linking an identifier checks that owner still
//!   holds it; an identifier first seen must still be free, or already the batch's.
//! - **A conflict changes nothing.** The transaction rolls back, the store forgets what it remembered, and the
//!   processor drops its caches and runs the batch again from its checkpoint, on fresh reads. Profiles are a
//!   join-semilattice, so the second run reaches the state the two workers' events make together.
//!
//! A commit also checks the partition's fence ([`super::leases::fence`]) when the store was given one, so a
//! worker that lost its partition writes nothing more for it.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::Client;
use tutti_core::{Millis, ProfileId};
use tutti_flows::StepKey;
use tutti_profiles::{Identifier, Profile};

use super::leases::{Held, fence};
use crate::{Backfill, Broadcast, MergeRecord, ProfileBatch, ProfileStore, Result, StoreError, Tombstone};

/// The most profiles and identifiers remembered; past it the memory starts over (and the next write of
/// something forgotten is a conflict, which a reload mends).
const REMEMBERED: usize = 1_000_000;

/// What the store handed out, to check commits against.
struct Seen {
    /// Profile versions; 0 for a profile known not to exist.
    versions: HashMap<ProfileId, i64>,
    owners: HashMap<Identifier, Option<ProfileId>>,
    /// Profiles merged away, and where to (their identifiers' owner now).
    moved: HashMap<ProfileId, ProfileId>,
    /// The first profile id not given out before the last [`ProfileStore::next_profile_id`] or commit: ids
    /// from here on are new profiles of the batch being worked out. `u64::MAX` until known.
    fresh_from: u64,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen { versions: HashMap::new(), owners: HashMap::new(), moved: HashMap::new(), fresh_from: u64::MAX }
    }
}

impl Seen {
    fn bound(&mut self) {
        if self.versions.len() > REMEMBERED || self.owners.len() > REMEMBERED || self.moved.len() > REMEMBERED {
            *self = Seen { fresh_from: self.fresh_from, ..Seen::default() };
        }
    }

    /// The profile an identifier handed out as `owner` belongs to now, following merges recorded since.
    fn current(&self, mut owner: ProfileId) -> ProfileId {
        for _ in 0..64 {
            match self.moved.get(&owner) {
                Some(&into) => owner = into,
                None => break,
            }
        }
        owner
    }
}

/// The processor's handle on the Postgres store, for one partition of the log.
///
/// The trait reads through `&self` and Postgres's client needs `&mut`: the processor is the store's one user,
/// on one thread, so the client and the memory live in a `RefCell`.
pub struct PgProfileStore {
    inner: RefCell<Inner>,
    partition: u32,
    /// The worker and the lease its writes are fenced by; `None` when one processor has the database alone.
    fence: Option<(String, Held)>,
}

struct Inner {
    client: Client,
    seen: Seen,
}

/// What a commit wrote: where each outbox item was queued, and each profile's new version.
type Written = (Vec<Option<u64>>, Vec<(ProfileId, i64)>);

fn conflict(what: String) -> StoreError {
    StoreError::Conflict(what)
}

impl PgProfileStore {
    /// A store for `partition`'s processor. `fence`: the worker id and lease its commits must still hold.
    pub fn new(client: Client, partition: u32, fence: Option<(String, Held)>) -> PgProfileStore {
        PgProfileStore { inner: RefCell::new(Inner { client, seen: Seen::default() }), partition, fence }
    }

    fn client(&self) -> std::cell::RefMut<'_, Client> {
        std::cell::RefMut::map(self.inner.borrow_mut(), |i| &mut i.client)
    }

    /// Runs the commit's checks and writes; the caller commits or rolls back.
    fn write(
        tx: &mut postgres::Transaction<'_>,
        seen: &Seen,
        partition: u32,
        fence_by: &Option<(String, Held)>,
        batch: &ProfileBatch,
    ) -> Result<Written> {
        if let Some((worker, held)) = fence_by {
            fence(tx, worker, *held)?;
        }
        // The profiles this batch writes or deletes, locked, at the versions they had when handed out.
        let mut touched: Vec<i64> = batch.profiles.iter().map(|p| p.id.0 as i64).collect();
        touched.extend(batch.deleted.iter().map(|p| p.0 as i64));
        touched.extend(batch.moves.iter().flat_map(|m| [m.into.0 as i64, m.from.0 as i64]));
        touched.sort_unstable();
        touched.dedup();
        let rows =
            tx.query("SELECT id, version FROM profiles WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&touched])?;
        let now: HashMap<i64, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for &id in &touched {
            let expected = seen.versions.get(&ProfileId(id as u64)).copied();
            let found = now.get(&id).copied().unwrap_or(0);
            match expected {
                Some(v) if v == found => {}
                // Made in this batch (its id is one the counter gave out since the last commit): it must not
                // exist yet. It may be merged away in the same batch and never written.
                None if id as u64 >= seen.fresh_from && found == 0 => {}
                Some(v) => return Err(conflict(format!("profile p{id} is at version {found}, not {v}"))),
                None => return Err(conflict(format!("profile p{id} was not read before this write"))),
            }
        }
        for (identifier, pid) in &batch.links {
            let (kind, value, pid) = (identifier.kind.as_str(), identifier.value.as_str(), pid.0 as i64);
            let changed = match seen.owners.get(identifier) {
                None => return Err(conflict(format!("{} was not read before it was linked", identifier.kind.as_str()))),
                Some(None) => tx.execute(
                    "INSERT INTO identities (kind, value, profile_id) VALUES ($1, $2, $3) ON CONFLICT (kind, value) DO NOTHING",
                    &[&kind, &value, &pid],
                )?,
                Some(Some(owner)) => {
                    let (was, now_owner) = (owner.0 as i64, seen.current(*owner).0 as i64);
                    tx.execute(
                        "UPDATE identities SET profile_id = $3 WHERE kind = $1 AND value = $2 AND profile_id IN ($4, $5)",
                        &[&kind, &value, &pid, &was, &now_owner],
                    )?
                }
            };
            if changed == 0 {
                let holder: Option<i64> = tx
                    .query_opt("SELECT profile_id FROM identities WHERE kind = $1 AND value = $2", &[&kind, &value])?
                    .map(|r| r.get(0));
                if holder != Some(pid) {
                    return Err(conflict(format!("an identifier of kind {kind} changed owner meanwhile")));
                }
            }
        }
        if !batch.attributions.is_empty() {
            let (pids, seqs): (Vec<i64>, Vec<i64>) =
                batch.attributions.iter().map(|(p, seq)| (p.0 as i64, *seq as i64)).unzip();
            tx.execute(
                "INSERT INTO profile_events (profile_id, seq) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[])
                 ON CONFLICT DO NOTHING",
                &[&pids, &seqs],
            )?;
        }
        for m in &batch.moves {
            let (into, from) = (m.into.0 as i64, m.from.0 as i64);
            tx.execute("UPDATE identities SET profile_id = $1 WHERE profile_id = $2", &[&into, &from])?;
            tx.execute(
                "INSERT INTO profile_events (profile_id, seq) SELECT $1, seq FROM profile_events WHERE profile_id = $2
                 ON CONFLICT DO NOTHING",
                &[&into, &from],
            )?;
            tx.execute("DELETE FROM profile_events WHERE profile_id = $1", &[&from])?;
            tx.execute(
                "INSERT INTO merges (into_profile, from_profile, at, seq, message_id) VALUES ($1, $2, $3, $4, $5)",
                &[&into, &from, &m.at, &(m.seq as i64), &m.message_id],
            )?;
            super::flows::merge(tx, m.into, m.from)?;
        }
        // Every profile in one statement: a batch of thousands is one round trip, not thousands.
        let mut latest: HashMap<i64, Vec<u8>> = HashMap::with_capacity(batch.profiles.len());
        for p in &batch.profiles {
            latest.insert(p.id.0 as i64, serde_json::to_vec(p).expect("a profile always serialises"));
        }
        let (ids, states): (Vec<i64>, Vec<Vec<u8>>) = latest.into_iter().unzip();
        let written: Vec<(ProfileId, i64)> = if ids.is_empty() {
            Vec::new()
        } else {
            tx.query(
                "INSERT INTO profiles (id, state, version) SELECT id, state, 1 FROM UNNEST($1::BIGINT[], $2::BYTEA[]) AS t(id, state)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = profiles.version + 1
                 RETURNING id, version",
                &[&ids, &states],
            )?
            .iter()
            .map(|r| (ProfileId(r.get::<_, i64>(0) as u64), r.get(1)))
            .collect()
        };
        if !batch.deleted.is_empty() {
            let deleted: Vec<i64> = batch.deleted.iter().map(|p| p.0 as i64).collect();
            tx.execute("DELETE FROM profiles WHERE id = ANY($1)", &[&deleted])?;
        }
        tx.execute(
            "INSERT INTO checkpoints (partition, seq) VALUES ($1, $2) ON CONFLICT (partition) DO UPDATE SET seq = excluded.seq",
            &[&(partition as i32), &(batch.checkpoint as i64)],
        )?;
        tx.execute(
            "INSERT INTO counters (name, value) VALUES ('next_profile_id', $1)
             ON CONFLICT (name) DO UPDATE SET value = GREATEST(counters.value, excluded.value)",
            &[&(batch.next_profile_id as i64)],
        )?;
        let queued = super::flows::commit(tx, &batch.flows)?;
        Ok((queued, written))
    }
}

pub(super) fn owner(client: &mut Client, id: &Identifier) -> Result<Option<ProfileId>> {
    let row = client.query_opt(
        "SELECT profile_id FROM identities WHERE kind = $1 AND value = $2",
        &[&id.kind.as_str(), &id.value],
    )?;
    Ok(row.map(|r| ProfileId(r.get::<_, i64>(0) as u64)))
}

fn ids(rows: Vec<postgres::Row>) -> Vec<ProfileId> {
    rows.iter().map(|r| ProfileId(r.get::<_, i64>(0) as u64)).collect()
}

/// The profiles merged (directly or through earlier merges) into `id`, with the merge records.
pub(super) fn merges_into(client: &mut Client, id: ProfileId) -> Result<Vec<MergeRecord>> {
    let rows = client.query(
        "WITH RECURSIVE chain(p) AS (SELECT $1::BIGINT UNION SELECT m.from_profile FROM merges m JOIN chain ON m.into_profile = chain.p)
         SELECT into_profile, from_profile, at, seq, message_id FROM merges WHERE into_profile IN (SELECT p FROM chain) ORDER BY id",
        &[&(id.0 as i64)],
    )?;
    Ok(rows
        .iter()
        .map(|r| MergeRecord {
            into: ProfileId(r.get::<_, i64>(0) as u64),
            from: ProfileId(r.get::<_, i64>(1) as u64),
            at: r.get(2),
            seq: r.get::<_, i64>(3) as u64,
            message_id: r.get(4),
        })
        .collect())
}

pub(super) fn profile_of(client: &mut Client, id: ProfileId) -> Result<Option<(Profile, i64)>> {
    let row = client.query_opt("SELECT state, version FROM profiles WHERE id = $1", &[&(id.0 as i64)])?;
    row.map(|r| {
        let bytes: Vec<u8> = r.get(0);
        serde_json::from_slice(&bytes)
            .map(|p| (p, r.get::<_, i64>(1)))
            .map_err(|e| StoreError::Corrupt(format!("profile {id}: {e}")))
    })
    .transpose()
}

impl ProfileStore for PgProfileStore {
    fn owner(&self, id: &Identifier) -> Result<Option<ProfileId>> {
        let mut inner = self.inner.borrow_mut();
        let found = owner(&mut inner.client, id)?;
        inner.seen.bound();
        inner.seen.owners.insert(id.clone(), found);
        Ok(found)
    }

    fn profile(&self, id: ProfileId) -> Result<Option<Profile>> {
        let mut inner = self.inner.borrow_mut();
        let found = profile_of(&mut inner.client, id)?;
        inner.seen.bound();
        inner.seen.versions.insert(id, found.as_ref().map_or(0, |(_, v)| *v));
        Ok(found.map(|(p, _)| p))
    }

    fn commit(&mut self, batch: &ProfileBatch) -> Result<Vec<Option<u64>>> {
        let inner = self.inner.get_mut();
        let mut tx = inner.client.transaction()?;
        let outcome = PgProfileStore::write(&mut tx, &inner.seen, self.partition, &self.fence, batch);
        let (queued, written) = match outcome {
            Ok(done) => {
                tx.commit()?;
                done
            }
            Err(e) => {
                drop(tx);
                if matches!(e, StoreError::Conflict(_) | StoreError::Fenced { .. }) {
                    inner.seen = Seen::default();
                }
                return Err(e);
            }
        };
        let seen = &mut inner.seen;
        seen.bound();
        for (pid, version) in written {
            seen.versions.insert(pid, version);
        }
        for pid in &batch.deleted {
            seen.versions.insert(*pid, 0);
        }
        for (identifier, pid) in &batch.links {
            seen.owners.insert(identifier.clone(), Some(*pid));
        }
        for m in &batch.moves {
            seen.moved.insert(m.from, m.into);
        }
        seen.fresh_from = batch.next_profile_id;
        Ok(queued)
    }

    fn checkpoint(&self) -> Result<u64> {
        let row =
            self.client().query_opt("SELECT seq FROM checkpoints WHERE partition = $1", &[&(self.partition as i32)])?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn next_profile_id(&self) -> Result<u64> {
        let mut inner = self.inner.borrow_mut();
        let row = inner.client.query_one(
            "SELECT GREATEST((SELECT value FROM counters WHERE name = 'next_profile_id'), (SELECT max(id) + 1 FROM profiles), 1)",
            &[],
        )?;
        let next = row.get::<_, i64>(0) as u64;
        inner.seen.fresh_from = next;
        Ok(next)
    }

    fn count_profiles(&self) -> Result<u64> {
        Ok(self.client().query_one("SELECT count(*) FROM profiles", &[])?.get::<_, i64>(0) as u64)
    }

    fn event_seqs(&self, id: ProfileId) -> Result<Vec<u64>> {
        let rows = self
            .client()
            .query("SELECT seq FROM profile_events WHERE profile_id = $1 ORDER BY seq", &[&(id.0 as i64)])?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    fn erase(&mut self, id: ProfileId, tombstones: &[Tombstone]) -> Result<Vec<u64>> {
        let inner = self.inner.get_mut();
        let merged = merges_into(&mut inner.client, id)?;
        let mut tx = inner.client.transaction()?;
        let pid = id.0 as i64;
        // Locked first, so a batch writing this profile meanwhile waits, then finds it gone (a conflict).
        tx.query("SELECT id FROM profiles WHERE id = $1 FOR UPDATE", &[&pid])?;
        let seqs: Vec<u64> = tx
            .query("DELETE FROM profile_events WHERE profile_id = $1 RETURNING seq", &[&pid])?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u64)
            .collect();
        tx.execute("DELETE FROM identities WHERE profile_id = $1", &[&pid])?;
        tx.execute("DELETE FROM profiles WHERE id = $1", &[&pid])?;
        super::flows::erase(&mut tx, id)?;
        for m in &merged {
            tx.execute(
                "DELETE FROM merges WHERE into_profile = $1 AND from_profile = $2",
                &[&(m.into.0 as i64), &(m.from.0 as i64)],
            )?;
            super::flows::redact_audit(&mut tx, m.from)?;
        }
        for t in tombstones {
            tx.execute(
                "INSERT INTO tombstones (hash, erased_at, erase_seq) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at, erase_seq = excluded.erase_seq",
                &[&&t.hash[..], &t.erased_at, &(t.erase_seq as i64)],
            )?;
        }
        tx.commit()?;
        inner.seen = Seen::default();
        let mut sorted = seqs;
        sorted.sort_unstable();
        Ok(sorted)
    }

    fn merged_into(&self, id: ProfileId) -> Result<Vec<ProfileId>> {
        Ok(merges_into(&mut self.client(), id)?.into_iter().map(|m| m.from).collect())
    }

    fn tombstones(&self) -> Result<Vec<Tombstone>> {
        let rows = self.client().query("SELECT hash, erased_at, erase_seq FROM tombstones", &[])?;
        rows.iter()
            .map(|r| {
                let bytes: Vec<u8> = r.get(0);
                let hash: [u8; 32] =
                    bytes.try_into().map_err(|_| StoreError::Corrupt("tombstone hash is not 32 bytes".into()))?;
                Ok(Tombstone { hash, erased_at: r.get(1), erase_seq: r.get::<_, i64>(2) as u64 })
            })
            .collect()
    }

    /// Postgres reuses a deleted row's space in place; what `VACUUM` leaves is the database's to manage.
    fn scrub(&mut self) -> Result<()> {
        Ok(())
    }

    fn flow_state(&self, id: ProfileId) -> Result<Option<Vec<u8>>> {
        super::flows::flow_state(&mut self.client(), id)
    }

    fn due_timers(&self, before: Millis, limit: usize) -> Result<Vec<(Millis, ProfileId)>> {
        let rows = self.client().query(
            "SELECT due, profile_id FROM timers WHERE due < $1 ORDER BY due, profile_id LIMIT $2",
            &[&before, &(limit as i64)],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), ProfileId(r.get::<_, i64>(1) as u64))).collect())
    }

    fn step_counts(&self) -> Result<Vec<(StepKey, u64)>> {
        super::flows::step_counts(&mut self.client())
    }

    fn open_broadcasts(&self) -> Result<Vec<Broadcast>> {
        super::flows::broadcasts(&mut self.client(), true)
    }

    fn members_after(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        let rows = self.client().query(
            "SELECT profile_id FROM segment_members WHERE segment = $1 AND profile_id > $2 ORDER BY profile_id LIMIT $3",
            &[&segment, &(after as i64), &(limit as i64)],
        )?;
        Ok(ids(rows))
    }

    fn member_count(&self, segment: &str) -> Result<u64> {
        let row = self.client().query_one("SELECT count(*) FROM segment_members WHERE segment = $1", &[&segment])?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        let rows = self
            .client()
            .query("SELECT id FROM profiles WHERE id > $1 ORDER BY id LIMIT $2", &[&(after as i64), &(limit as i64)])?;
        Ok(ids(rows))
    }

    fn backfills(&self) -> Result<Vec<Backfill>> {
        super::flows::backfills(&mut self.client())
    }
}
