//! Partition leases on the machine's Postgres (127.0.0.1:5432, trust auth; `.ci/run` starts it when it is
//! down), each test in a schema of its own: workers share the partitions, a silent worker's partitions move
//! within the lease's time, a worker that comes back gets its share, and a stale owner's write is fenced off;
//! a partition with a write in flight is not taken until the write has landed.

#![cfg(feature = "postgres")]

use tutti_store::StoreError;
use tutti_store::postgres::leases::{Held, Leases, fence};
use tutti_store::postgres::migrate;

mod common;
use common::Schema;

const TTL: i64 = 3_000;

fn partitions(held: &[Held]) -> Vec<u32> {
    held.iter().map(|h| h.partition).collect()
}

#[test]
fn workers_share_partitions_and_a_silent_ones_move_within_the_lease() {
    let schema = Schema::new();
    let (mut a_db, mut b_db) = (schema.client(), schema.client());
    let last = migrate::MIGRATIONS.last().unwrap().version;
    assert_eq!(migrate::migrate(&mut a_db).unwrap(), last);
    assert_eq!(migrate::migrate(&mut b_db).unwrap(), last, "applied once");
    Leases::setup(&mut a_db, 8).unwrap();
    Leases::setup(&mut b_db, 8).unwrap();
    let refused = Leases::setup(&mut b_db, 16).unwrap_err();
    assert!(refused.to_string().contains("fixed"), "{refused}");

    let a = Leases::new("worker-a", "all", TTL);
    let b = Leases::new("worker-b", "worker", TTL);
    // A alone takes everything; B arrives and finds nothing free; A gives up its extras; B takes them.
    let first = a.balance(&mut a_db, 0).unwrap();
    assert_eq!((partitions(&first.held), first.workers), ((0..8).collect(), 1));
    assert!(first.held.iter().all(|h| h.token == 1));
    let arrived = b.balance(&mut b_db, 100).unwrap();
    assert_eq!((arrived.held.len(), arrived.workers), (0, 2));
    let gave = a.balance(&mut a_db, 200).unwrap();
    assert_eq!((partitions(&gave.held), gave.released.clone()), ((0..4).collect(), (4..8).collect()));
    let took = b.balance(&mut b_db, 300).unwrap();
    assert_eq!(took.taken, (4..8).collect::<Vec<_>>());
    assert!(took.held.iter().all(|h| h.token == 2), "a change of owner adds one to the token");

    // The fence: the old owner's token is refused, the new owner's accepted.
    let mut tx = a_db.transaction().unwrap();
    let stale = fence(&mut tx, "worker-a", Held { partition: 5, token: 1 }).unwrap_err();
    assert!(matches!(stale, StoreError::Fenced { partition: 5, token: 1, current: 2 }), "{stale}");
    drop(tx);
    let mut tx = b_db.transaction().unwrap();
    fence(&mut tx, "worker-b", took.held[1]).unwrap();
    tx.commit().unwrap();

    // A goes silent after its balance at 200. While its lease lasts, B keeps its own share.
    assert_eq!(b.balance(&mut b_db, 1_300).unwrap().held.len(), 4);
    // Once A's leases have expired (200 + TTL), B's next balance takes them: within TTL and one renewal.
    let after = b.balance(&mut b_db, 3_300).unwrap();
    assert_eq!((partitions(&after.held), after.taken.clone(), after.workers), ((0..8).collect(), (0..4).collect(), 1));
    let mut tx = a_db.transaction().unwrap();
    assert!(fence(&mut tx, "worker-a", first.held[0]).is_err(), "A's writes are fenced off");
    drop(tx);

    // A comes back: it takes nothing held; B gives up its extras at its next balance; A takes them.
    let back = a.balance(&mut a_db, 3_400).unwrap();
    assert_eq!((back.held.len(), back.workers), (0, 2));
    assert_eq!(b.balance(&mut b_db, 3_500).unwrap().released, (4..8).collect::<Vec<_>>());
    let shared = a.balance(&mut a_db, 3_600).unwrap();
    assert_eq!(partitions(&shared.held), (4..8).collect::<Vec<_>>());
    assert!(shared.held.iter().all(|h| h.token == 3), "taken a third time: {shared:?}");

    // The console's view, then a clean leave: B's partitions are free at once.
    let (leases, workers) = Leases::view(&mut a_db).unwrap();
    assert_eq!(workers.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["worker-a", "worker-b"]);
    assert_eq!(leases.iter().filter(|l| l.owner.as_deref() == Some("worker-b")).count(), 4);
    b.leave(&mut b_db).unwrap();
    let taken = a.balance(&mut a_db, 3_700).unwrap();
    assert_eq!((taken.held.len(), taken.workers), (8, 1));
}

#[test]
fn a_partition_with_a_write_in_flight_is_not_taken_until_the_write_ends_and_then_it_is_fenced_off() {
    let schema = Schema::new();
    let mut setup = schema.client();
    migrate::migrate(&mut setup).unwrap();
    Leases::setup(&mut setup, 1).unwrap();
    setup.batch_execute("CREATE TABLE writes (partition INTEGER, by_worker TEXT)").unwrap();
    let (a, b) = (Leases::new("worker-a", "worker", TTL), Leases::new("worker-b", "worker", TTL));
    let (mut a_db, mut b_db) = (schema.client(), schema.client());
    let held = a.balance(&mut a_db, 0).unwrap().held[0];

    // A writes under its lease, fenced, and has not committed when its lease runs out.
    let mut write = a_db.transaction().unwrap();
    fence(&mut write, "worker-a", held).unwrap();
    write.execute("INSERT INTO writes VALUES (0, 'worker-a')", &[]).unwrap();
    // B's balance skips the row A's write holds (it neither waits nor takes it)...
    let during = b.balance(&mut b_db, TTL + 1).unwrap();
    assert!(during.held.is_empty() && during.taken.is_empty(), "{during:?}");
    write.commit().unwrap();
    // ...and takes it at its next balance, once the write has landed.
    let after = b.balance(&mut b_db, TTL + 2).unwrap();
    assert_eq!((after.taken.clone(), after.held[0].token), (vec![0], 2));

    // A's next write is refused: the only write of A's is the one before the take.
    let mut late = a_db.transaction().unwrap();
    assert!(matches!(fence(&mut late, "worker-a", held), Err(StoreError::Fenced { current: 2, .. })));
    drop(late);
    let n: i64 = setup.query_one("SELECT count(*) FROM writes", &[]).unwrap().get(0);
    assert_eq!(n, 1);
}

#[test]
fn a_schema_made_by_a_newer_tutti_is_refused() {
    let schema = Schema::new();
    let mut db = schema.client();
    assert_eq!(migrate::migrate(&mut db).unwrap(), migrate::MIGRATIONS.len() as u32);
    db.execute("INSERT INTO tutti_migrations (version, name) VALUES (99, 'from the future')", &[]).unwrap();
    let e = migrate::migrate(&mut db).unwrap_err();
    assert!(e.to_string().contains("version 99, made by a newer Tutti"), "{e}");
}
