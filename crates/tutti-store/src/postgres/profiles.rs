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
//! - **Step counts are checked too.** An approve step's count of first sends is written as a total, only if
//!   the row still holds the total the store handed out.
//!
//! When several workers share the database ([`PgProfileStore::shared`]), a commit also checks the fence of
//! every partition the worker holds ([`super::leases::fence`]), so a worker that lost a partition writes
//! nothing more; its checkpoints, timers and outbox rows are those partitions', and new profile ids come in
//! blocks per partition ([`crate::IdBlock`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use postgres::Client;
use tutti_core::{Millis, ProfileId};
use tutti_flows::StepKey;
use tutti_profiles::{Identifier, Profile};

use super::leases::{Held, Ownership, fence};
use super::pool::Reconnecting;
use crate::{Backfill, Broadcast, IdBlock, MergeRecord, ProfileBatch, ProfileStore, Result, StoreError, Tombstone};

/// How many ids of one partition a shared store reserves at a time.
const ID_BLOCK: i64 = 1024;

/// The most profiles and identifiers remembered; past it the memory starts over (and the next write of
/// something forgotten is a conflict, which a reload mends).
const REMEMBERED: usize = 1_000_000;

/// What the store handed out, to check commits against.
#[derive(Default)]
struct Seen {
    /// Profile versions; 0 for a profile known not to exist.
    versions: HashMap<ProfileId, i64>,
    owners: HashMap<Identifier, Option<ProfileId>>,
    /// Profiles merged away, and where to (their identifiers' owner now).
    moved: HashMap<ProfileId, ProfileId>,
    /// Ids the processor may give new profiles: since the last [`ProfileStore::next_profile_id`] or commit
    /// (one processor), or reserved ([`ProfileStore::reserve_profile_ids`]). New profiles must have one.
    fresh: Vec<IdBlock>,
    /// Step counts as handed out or written.
    counts: HashMap<StepKey, u64>,
}

impl Seen {
    fn bound(&mut self) {
        if self.versions.len() > REMEMBERED || self.owners.len() > REMEMBERED || self.moved.len() > REMEMBERED {
            self.forget_reads();
        }
    }

    /// Forgets what was read, keeping the ids the processor holds (its blocks stay its own).
    fn forget_reads(&mut self) {
        *self = Seen { fresh: std::mem::take(&mut self.fresh), ..Seen::default() };
    }

    fn is_fresh(&self, id: u64) -> bool {
        self.fresh.iter().any(|b| b.contains(id))
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

/// The processor's handle on the Postgres store.
///
/// The trait reads through `&self` and Postgres's client needs `&mut`: the processor is the store's one user,
/// on one thread, so the client and the memory live in a `RefCell`.
pub struct PgProfileStore {
    inner: RefCell<Inner>,
    /// The worker's leases, when several workers share the database; `None` when one processor has it alone.
    ownership: Option<Arc<Ownership>>,
    /// The partitions held as of the last [`ProfileStore::hold`].
    held: Vec<Held>,
}

/// Where a commit writes: partition 0 alone, or the partitions a worker holds.
struct Scope<'a> {
    ownership: Option<&'a Ownership>,
    held: &'a [Held],
}

impl Scope<'_> {
    /// The partition an outbox row of `profile` belongs to: its home when held, else the first held (the rows
    /// of a batch are all handed to this worker's dispatcher, and a partition's next owner adopts its rows).
    fn outbox_partition(&self, profile: ProfileId) -> i32 {
        let Some(ownership) = self.ownership else { return 0 };
        let home = ownership.home(profile.0);
        let first = self.held.first().map_or(home, |h| h.partition);
        (if self.held.iter().any(|h| h.partition == home) { home } else { first }) as i32
    }
}

struct Inner {
    conn: Reconnecting,
    seen: Seen,
}

/// What a commit wrote: where each outbox item was queued, and each profile's new version.
type Written = (Vec<Option<u64>>, Vec<(ProfileId, i64)>);

fn conflict(what: String) -> StoreError {
    StoreError::Conflict(what)
}

impl PgProfileStore {
    /// The store of the one processor on this database. Given a [`Reconnecting`] that knows where to connect,
    /// it connects again after losing the connection.
    pub fn new(conn: impl Into<Reconnecting>) -> PgProfileStore {
        PgProfileStore {
            inner: RefCell::new(Inner { conn: conn.into(), seen: Seen::default() }),
            ownership: None,
            held: Vec::new(),
        }
    }

    /// The store of one of several workers' processors, which holds what `ownership` says at each
    /// [`ProfileStore::hold`].
    pub fn shared(conn: impl Into<Reconnecting>, ownership: Arc<Ownership>) -> PgProfileStore {
        PgProfileStore {
            inner: RefCell::new(Inner { conn: conn.into(), seen: Seen::default() }),
            ownership: Some(ownership),
            held: Vec::new(),
        }
    }

    fn held_partitions(&self) -> Vec<i32> {
        self.held.iter().map(|h| h.partition as i32).collect()
    }

    /// The connection, made again first if it was lost.
    fn client(&self) -> Result<std::cell::RefMut<'_, Client>> {
        let mut inner = self.inner.borrow_mut();
        inner.conn.get()?;
        Ok(std::cell::RefMut::map(inner, |i| i.conn.current()))
    }

    /// Runs the commit's checks and writes; the caller commits or rolls back.
    fn write(
        tx: &mut postgres::Transaction<'_>,
        seen: &Seen,
        scope: &Scope<'_>,
        batch: &ProfileBatch,
    ) -> Result<Written> {
        if let Some(ownership) = scope.ownership {
            if scope.held.is_empty() {
                return Err(conflict("this worker holds no partition of the log now".into()));
            }
            for held in scope.held {
                fence(tx, ownership.worker(), *held)?;
            }
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
                None if seen.is_fresh(id as u64) && found == 0 => {}
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
        if scope.ownership.is_none() {
            tx.execute(
                "INSERT INTO checkpoints (partition, seq) VALUES (0, $1) ON CONFLICT (partition) DO UPDATE SET seq = excluded.seq",
                &[&(batch.checkpoint as i64)],
            )?;
            tx.execute(
                "INSERT INTO counters (name, value) VALUES ('next_profile_id', $1)
                 ON CONFLICT (name) DO UPDATE SET value = GREATEST(counters.value, excluded.value)",
                &[&(batch.next_profile_id as i64)],
            )?;
        } else {
            // Each partition's checkpoint only moves forward: a partition taken over may be ahead of the batch.
            let partitions: Vec<i32> = scope.held.iter().map(|h| h.partition as i32).collect();
            tx.execute(
                "INSERT INTO checkpoints (partition, seq) SELECT p, $2 FROM UNNEST($1::INTEGER[]) AS t(p)
                 ON CONFLICT (partition) DO UPDATE SET seq = GREATEST(checkpoints.seq, excluded.seq)",
                &[&partitions, &(batch.checkpoint as i64)],
            )?;
        }
        for (key, n) in &batch.flows.counts {
            // Written only over the total this store saw: another worker's count in between is a conflict.
            let expected = seen.counts.get(key).copied().unwrap_or(0) as i64;
            let changed = tx.execute(
                "INSERT INTO step_counts (flow, version, step, count) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (flow, version, step) DO UPDATE SET count = excluded.count WHERE step_counts.count = $5",
                &[&key.flow, &(key.version as i32), &key.step, &(*n as i64), &expected],
            )?;
            if changed == 0 {
                return Err(conflict(format!("the count of step {} in flow {} moved meanwhile", key.step, key.flow)));
            }
        }
        let queued = super::flows::commit(tx, &batch.flows, &|p| scope.outbox_partition(p))?;
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

pub(super) fn ids(rows: Vec<postgres::Row>) -> Vec<ProfileId> {
    rows.iter().map(|r| ProfileId(r.get::<_, i64>(0) as u64)).collect()
}

/// Ids of profiles above `after`, lowest first, at most `limit`: for the processor's sweeps and the API's scans.
pub(super) fn profile_ids_after(client: &mut Client, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
    let after = after.min(i64::MAX as u64) as i64;
    Ok(ids(client.query("SELECT id FROM profiles WHERE id > $1 ORDER BY id LIMIT $2", &[&after, &(limit as i64)])?))
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
        let found = owner(inner.conn.get()?, id)?;
        inner.seen.bound();
        inner.seen.owners.insert(id.clone(), found);
        Ok(found)
    }

    fn profile(&self, id: ProfileId) -> Result<Option<Profile>> {
        let mut inner = self.inner.borrow_mut();
        let found = profile_of(inner.conn.get()?, id)?;
        inner.seen.bound();
        inner.seen.versions.insert(id, found.as_ref().map_or(0, |(_, v)| *v));
        Ok(found.map(|(p, _)| p))
    }

    fn commit(&mut self, batch: &ProfileBatch) -> Result<Vec<Option<u64>>> {
        let inner = self.inner.get_mut();
        let mut tx = inner.conn.get()?.transaction()?;
        let scope = Scope { ownership: self.ownership.as_deref(), held: &self.held };
        let outcome = PgProfileStore::write(&mut tx, &inner.seen, &scope, batch);
        let (queued, written) = match outcome {
            Ok(done) => {
                tx.commit()?;
                done
            }
            Err(e) => {
                drop(tx);
                if matches!(e, StoreError::Conflict(_) | StoreError::Fenced { .. }) {
                    inner.seen.forget_reads();
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
        for (key, n) in &batch.flows.counts {
            seen.counts.insert(key.clone(), *n);
        }
        if self.ownership.is_none() {
            seen.fresh = vec![IdBlock::from(batch.next_profile_id)];
        }
        Ok(queued)
    }

    fn checkpoint(&self) -> Result<u64> {
        Ok(self.checkpoints()?.into_iter().map(|(_, seq)| seq).min().unwrap_or(0))
    }

    fn hold(&mut self, held: &[Held]) {
        self.held = held.to_vec();
    }

    fn checkpoints(&self) -> Result<Vec<(u32, u64)>> {
        let partitions = if self.ownership.is_some() { self.held_partitions() } else { vec![0] };
        let rows = self.client()?.query(
            "SELECT p, coalesce(c.seq, 0) FROM UNNEST($1::INTEGER[]) AS t(p) LEFT JOIN checkpoints c ON c.partition = t.p ORDER BY p",
            &[&partitions],
        )?;
        Ok(rows.iter().map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1) as u64)).collect())
    }

    fn reserve_profile_ids(&self, partition: u32) -> Result<IdBlock> {
        let Some(ownership) = &self.ownership else {
            return Ok(IdBlock::from(self.next_profile_id()?));
        };
        // Rows of ids: row r gives partition p the id r * partitions + p. Rows start above every id a processor
        // alone may have given out before.
        let n = i64::from(ownership.partitions());
        let mut inner = self.inner.borrow_mut();
        let end: i64 = inner
            .conn
            .get()?
            .query_one(
                "INSERT INTO counters (name, value)
                 VALUES ('profile_id_rows', GREATEST(1, (SELECT coalesce(max(id), 0) FROM profiles) / $1 + 1,
                     (SELECT coalesce(max(value), 0) FROM counters WHERE name = 'next_profile_id') / $1 + 1) + $2)
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + $2 RETURNING value",
                &[&n, &ID_BLOCK],
            )?
            .get(0);
        let (n, p) = (n as u64, u64::from(partition));
        let first_row = (end - ID_BLOCK) as u64;
        let block = IdBlock { start: first_row * n + p, next: first_row * n + p, end: end as u64 * n + p, stride: n };
        inner.seen.fresh.push(block);
        Ok(block)
    }

    fn outbox_partition(&self, profile: ProfileId) -> u32 {
        Scope { ownership: self.ownership.as_deref(), held: &self.held }.outbox_partition(profile) as u32
    }

    fn definitions_version(&self) -> Result<Option<String>> {
        match self.ownership {
            None => Ok(None),
            Some(_) => Ok(Some(super::leases::definitions_version(&mut *self.client()?)?)),
        }
    }

    fn tombstone_count(&self) -> Result<usize> {
        Ok(self.client()?.query_one("SELECT count(*) FROM tombstones", &[])?.get::<_, i64>(0) as usize)
    }

    fn next_profile_id(&self) -> Result<u64> {
        let mut inner = self.inner.borrow_mut();
        let row = inner.conn.get()?.query_one(
            "SELECT GREATEST((SELECT value FROM counters WHERE name = 'next_profile_id'), (SELECT max(id) + 1 FROM profiles), 1)",
            &[],
        )?;
        let next = row.get::<_, i64>(0) as u64;
        inner.seen.fresh = vec![IdBlock::from(next)];
        Ok(next)
    }

    fn count_profiles(&self) -> Result<u64> {
        Ok(self.client()?.query_one("SELECT count(*) FROM profiles", &[])?.get::<_, i64>(0) as u64)
    }

    fn event_seqs(&self, id: ProfileId) -> Result<Vec<u64>> {
        let rows = self
            .client()?
            .query("SELECT seq FROM profile_events WHERE profile_id = $1 ORDER BY seq", &[&(id.0 as i64)])?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    fn erase(&mut self, id: ProfileId, tombstones: &[Tombstone]) -> Result<Vec<u64>> {
        let inner = self.inner.get_mut();
        let merged = merges_into(inner.conn.get()?, id)?;
        let mut tx = inner.conn.get()?.transaction()?;
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
        let erased: Vec<i64> = merged.iter().map(|m| m.from.0 as i64).chain([pid]).collect();
        let at = tombstones.first().map_or(0, |t| t.erased_at);
        tx.execute(
            "INSERT INTO erasures (profile_id, at) SELECT p, $2 FROM UNNEST($1::BIGINT[]) AS t(p)",
            &[&erased, &at],
        )?;
        for t in tombstones {
            tx.execute(
                "INSERT INTO tombstones (hash, erased_at, erase_seq) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at, erase_seq = excluded.erase_seq",
                &[&&t.hash[..], &t.erased_at, &(t.erase_seq as i64)],
            )?;
        }
        tx.commit()?;
        inner.seen.forget_reads();
        let mut sorted = seqs;
        sorted.sort_unstable();
        Ok(sorted)
    }

    fn merged_into(&self, id: ProfileId) -> Result<Vec<ProfileId>> {
        Ok(merges_into(&mut *self.client()?, id)?.into_iter().map(|m| m.from).collect())
    }

    fn tombstones(&self) -> Result<Vec<Tombstone>> {
        let rows = self.client()?.query("SELECT hash, erased_at, erase_seq FROM tombstones", &[])?;
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
        super::flows::flow_state(&mut *self.client()?, id)
    }

    /// With several workers, only the timers of profiles whose home partition is held.
    fn due_timers(&self, before: Millis, limit: usize) -> Result<Vec<(Millis, ProfileId)>> {
        let rows = match &self.ownership {
            None => self.client()?.query(
                "SELECT due, profile_id FROM timers WHERE due < $1 ORDER BY due, profile_id LIMIT $2",
                &[&before, &(limit as i64)],
            )?,
            Some(ownership) => self.client()?.query(
                "SELECT due, profile_id FROM timers WHERE due < $1 AND (profile_id % $3)::INTEGER = ANY($4)
                 ORDER BY due, profile_id LIMIT $2",
                &[&before, &(limit as i64), &i64::from(ownership.partitions()), &self.held_partitions()],
            )?,
        };
        Ok(rows.iter().map(|r| (r.get(0), ProfileId(r.get::<_, i64>(1) as u64))).collect())
    }

    fn step_counts(&self) -> Result<Vec<(StepKey, u64)>> {
        let mut inner = self.inner.borrow_mut();
        let counts = super::flows::step_counts(inner.conn.get()?)?;
        inner.seen.counts = counts.iter().cloned().collect();
        Ok(counts)
    }

    fn open_broadcasts(&self) -> Result<Vec<Broadcast>> {
        super::flows::broadcasts(&mut *self.client()?, true)
    }

    fn members_after(&self, segment: &str, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        let rows = self.client()?.query(
            "SELECT profile_id FROM segment_members WHERE segment = $1 AND profile_id > $2 ORDER BY profile_id LIMIT $3",
            &[&segment, &(after as i64), &(limit as i64)],
        )?;
        Ok(ids(rows))
    }

    fn member_count(&self, segment: &str) -> Result<u64> {
        let row = self.client()?.query_one("SELECT count(*) FROM segment_members WHERE segment = $1", &[&segment])?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn profile_ids_after(&self, after: u64, limit: usize) -> Result<Vec<ProfileId>> {
        profile_ids_after(&mut *self.client()?, after, limit)
    }

    fn backfills(&self) -> Result<Vec<Backfill>> {
        super::flows::backfills(&mut *self.client()?)
    }
}
