//! Which worker owns which partition of the event stream: a lease per partition in Postgres, with a fencing
//! token. Everything about one profile is processed in order by the one worker that owns its partition.
//!
//! The protocol:
//! - **Balance.** Every worker calls [`Leases::balance`] every `renew_every` (a third of the lease's `ttl` is
//!   usual). In one transaction it records that it is alive, renews the leases it holds, gives up those above
//!   its share, and takes free or expired ones up to its share. The share is the partition count over the live
//!   workers (seen within `ttl`), sorted by id; the first `partitions % workers` of them take one more. It
//!   takes the partitions it held last first (an expired lease still names its last owner), so after Postgres
//!   was away each worker gets its own back as far as the shares allow.
//! - **Failure.** A worker that stops balancing keeps its leases until they expire, `ttl` after its last
//!   balance; the others take them at their next balance after that. So its partitions move within
//!   `ttl + renew_every`. A worker that comes back is given its share as the others give up their extras, in
//!   two rounds at most.
//! - **Fencing.** Taking a partition adds one to its token. Every write of a partition's state runs
//!   [`fence`] in its own transaction first: the partition's row is read `FOR SHARE` and must still name the
//!   writer and the token it holds. A balance skips rows locked so (`FOR UPDATE SKIP LOCKED`): a partition
//!   with a write in flight is taken at a later balance, after the write has landed, and from then on the old
//!   owner's check fails. So nothing a stale owner writes lands after the new owner has taken over, and no
//!   balance waits on another worker's write.
//! - **Clocks.** Times are the workers' clocks, in milliseconds, given to each call (so tests run on a manual
//!   clock). Workers' clocks must agree within `ttl - renew_every`; NTP keeps them far closer.
//!
//! The partition count is fixed when the table is first set up ([`Leases::setup`]); a different count later is
//! refused, since profiles would change partitions under running workers.

use std::sync::Mutex;

use postgres::{Client, Transaction};
use tutti_core::Millis;

use crate::{Result, StoreError};

/// A worker's view of the leases.
#[derive(Debug, Clone)]
pub struct Leases {
    worker: String,
    role: String,
    ttl: Millis,
}

pub use crate::Held;

/// What one balance did: what the worker holds now, and what it took and gave up this time (it must stop
/// working on those at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balance {
    pub held: Vec<Held>,
    pub taken: Vec<u32>,
    pub released: Vec<u32>,
    /// Live workers, this one included.
    pub workers: usize,
}

/// One partition as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub partition: u32,
    pub owner: Option<String>,
    pub token: i64,
    pub expires_at: Millis,
}

/// One worker as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Worker {
    pub id: String,
    pub role: String,
    pub started_at: Millis,
    pub seen_at: Millis,
}

impl Leases {
    /// `worker`: this process's id, unique among the workers (host and process id, say). `ttl`: how long a lease
    /// lasts after its last renewal.
    pub fn new(worker: impl Into<String>, role: impl Into<String>, ttl: Millis) -> Leases {
        Leases { worker: worker.into(), role: role.into(), ttl: ttl.max(1) }
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Makes the partitions `0..partitions` once. Refused when the table already holds another count.
    pub fn setup(client: &mut Client, partitions: u32) -> Result<()> {
        if partitions == 0 {
            return Err(StoreError::Corrupt("the partition count is at least 1".into()));
        }
        let mut tx = client.transaction()?;
        tx.execute("LOCK TABLE partition_leases IN EXCLUSIVE MODE", &[])?;
        let existing: i64 = tx.query_one("SELECT count(*) FROM partition_leases", &[])?.get(0);
        match existing {
            0 => {
                tx.execute(
                    "INSERT INTO partition_leases (partition) SELECT generate_series(0, $1 - 1)",
                    &[&(partitions as i32)],
                )?;
            }
            n if n == i64::from(partitions) => {}
            n => {
                return Err(StoreError::Corrupt(format!(
                    "the stream has {n} partitions, not {partitions}: the count is fixed when it is set up"
                )));
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records that this worker is alive, renews what it holds, gives up what is above its share and takes free
    /// or expired partitions up to its share, in one transaction.
    pub fn balance(&self, client: &mut Client, now: Millis) -> Result<Balance> {
        let mut tx = client.transaction()?;
        tx.execute(
            "INSERT INTO workers (id, role, started_at, seen_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, role = excluded.role",
            &[&self.worker, &self.role, &now],
        )?;
        let partitions: i64 = tx.query_one("SELECT count(*) FROM partition_leases", &[])?.get(0);
        let live: Vec<String> = tx
            .query("SELECT id FROM workers WHERE seen_at > $1 ORDER BY id", &[&(now - self.ttl)])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let index = live.iter().position(|w| *w == self.worker).unwrap_or(0) as i64;
        let n = live.len().max(1) as i64;
        let share = (partitions / n + i64::from(index < partitions % n)) as usize;
        let expires = now + self.ttl;

        let mut held: Vec<Held> = tx
            .query(
                "UPDATE partition_leases SET expires_at = $2 WHERE owner = $1 AND expires_at > $3
                 RETURNING partition, token",
                &[&self.worker, &expires, &now],
            )?
            .iter()
            .map(|r| Held { partition: r.get::<_, i32>(0) as u32, token: r.get(1) })
            .collect();
        held.sort();
        let mut balance = Balance { workers: live.len(), ..Balance::default() };
        if held.len() > share {
            let extra: Vec<i32> = held[share..].iter().map(|h| h.partition as i32).collect();
            tx.execute(
                "UPDATE partition_leases SET owner = NULL, expires_at = 0 WHERE owner = $1 AND partition = ANY($2)",
                &[&self.worker, &extra],
            )?;
            balance.released = extra.iter().map(|p| *p as u32).collect();
            held.truncate(share);
        } else if held.len() < share {
            let wanted = (share - held.len()) as i64;
            let taken = tx.query(
                "UPDATE partition_leases SET owner = $1, token = token + 1, expires_at = $2
                 WHERE partition IN (
                     SELECT partition FROM partition_leases
                     WHERE (owner IS NULL OR expires_at <= $3)
                     ORDER BY owner IS DISTINCT FROM $1, partition LIMIT $4 FOR UPDATE SKIP LOCKED)
                 RETURNING partition, token",
                &[&self.worker, &expires, &now, &wanted],
            )?;
            for r in taken {
                let h = Held { partition: r.get::<_, i32>(0) as u32, token: r.get(1) };
                balance.taken.push(h.partition);
                held.push(h);
            }
            held.sort();
            balance.taken.sort();
        }
        tx.commit()?;
        balance.held = held;
        Ok(balance)
    }

    /// Gives up every lease at once and leaves the live workers (a clean shutdown), so the others need not wait
    /// for the leases to expire.
    pub fn leave(&self, client: &mut Client) -> Result<()> {
        let mut tx = client.transaction()?;
        tx.execute("UPDATE partition_leases SET owner = NULL, expires_at = 0 WHERE owner = $1", &[&self.worker])?;
        tx.execute("DELETE FROM workers WHERE id = $1", &[&self.worker])?;
        tx.commit()?;
        Ok(())
    }

    /// Every partition with its owner, and every worker seen, for the console.
    pub fn view(client: &mut Client) -> Result<(Vec<Lease>, Vec<Worker>)> {
        let leases = client
            .query("SELECT partition, owner, token, expires_at FROM partition_leases ORDER BY partition", &[])?
            .iter()
            .map(|r| Lease {
                partition: r.get::<_, i32>(0) as u32,
                owner: r.get(1),
                token: r.get(2),
                expires_at: r.get(3),
            })
            .collect();
        let workers = client
            .query("SELECT id, role, started_at, seen_at FROM workers ORDER BY id", &[])?
            .iter()
            .map(|r| Worker { id: r.get(0), role: r.get(1), started_at: r.get(2), seen_at: r.get(3) })
            .collect();
        Ok((leases, workers))
    }
}

/// Checks, inside the transaction of a write of `held`'s partition, that `worker` still holds it under the
/// same token, and keeps the row locked `FOR SHARE` until the transaction ends, so no one takes the partition
/// before the write commits. A stale owner gets [`StoreError::Fenced`] and must stop working on the partition.
pub fn fence(tx: &mut Transaction<'_>, worker: &str, held: Held) -> Result<()> {
    let row = tx.query_opt(
        "SELECT owner, token FROM partition_leases WHERE partition = $1 FOR SHARE",
        &[&(held.partition as i32)],
    )?;
    let (owner, token): (Option<String>, i64) = match &row {
        Some(r) => (r.get(0), r.get(1)),
        None => (None, -1),
    };
    if owner.as_deref() == Some(worker) && token == held.token {
        Ok(())
    } else {
        Err(StoreError::Fenced { partition: held.partition, token: held.token, current: token })
    }
}

/// What one worker holds now, shared by the thread that balances the leases and the threads that act on them
/// (the processor's store fences its commits with it; the outbox reads only its partitions' rows).
#[derive(Debug)]
pub struct Ownership {
    worker: String,
    partitions: u32,
    held: Mutex<(u64, Vec<Held>)>,
}

impl Ownership {
    pub fn new(worker: impl Into<String>, partitions: u32) -> Ownership {
        Ownership { worker: worker.into(), partitions: partitions.max(1), held: Mutex::new((0, Vec::new())) }
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The partition count of the log.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// What is held now, with a generation that changes whenever it does.
    pub fn held(&self) -> (u64, Vec<Held>) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records what a balance left held. Returns whether it changed.
    pub fn set(&self, mut held: Vec<Held>) -> bool {
        held.sort();
        let mut slot = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if slot.1 == held {
            return false;
        }
        slot.0 += 1;
        slot.1 = held;
        true
    }

    /// A profile's home partition: its id modulo the partition count (see [`crate::IdBlock`]).
    pub fn home(&self, profile: u64) -> u32 {
        (profile % u64::from(self.partitions)) as u32
    }
}

/// Profiles erased after `after` (an erasure's position), oldest first, at most `limit`: what each worker also
/// erases from what it keeps in its own data directory.
pub fn erased_after(client: &mut Client, after: i64, limit: usize) -> Result<Vec<(i64, u64)>> {
    let rows = client.query(
        "SELECT seq, profile_id FROM erasures WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after, &(limit as i64)],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect())
}

/// The value every worker sharing the database must have for `name`: the first one's, which a later worker's
/// `value` is checked against. Returns the agreed value.
pub fn agree(client: &mut Client, name: &str, value: &str) -> Result<String> {
    client.execute(
        "INSERT INTO cluster_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&name, &value],
    )?;
    Ok(client.query_one("SELECT value FROM cluster_settings WHERE name = $1", &[&name])?.get(0))
}

/// What changes whenever a definition is saved or deleted, or a flow paused or resumed: a worker that sees it
/// change builds its definitions again (another worker's API took the change).
pub fn definitions_version(client: &mut Client) -> Result<String> {
    let row = client.query_one(
        "SELECT (SELECT count(*) FROM definitions)::TEXT || '/' ||
                (SELECT coalesce(max(created_at), 0) FROM definitions)::TEXT || '/' ||
                (SELECT coalesce(string_agg(flow || ':' || paused_at::TEXT, ',' ORDER BY flow), '') FROM flow_pauses)",
        &[],
    )?;
    Ok(row.get(0))
}
