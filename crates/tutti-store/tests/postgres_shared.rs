//! Two workers' stores on one Postgres schema, each holding its partitions of the log: new profile ids never
//! collide and each lies in its partition; checkpoints are per partition and never move back; timers and
//! outbox rows are the holder's; a step count another worker moved is a conflict; and a worker holding nothing
//! writes nothing.

#![cfg(feature = "postgres")]

use std::collections::HashSet;
use std::sync::Arc;

use tutti_core::ProfileId;
use tutti_flows::StepKey;
use tutti_store::postgres::leases::{Held, Leases, Ownership};
use tutti_store::postgres::outbox::{PgOutbox, pending_in};
use tutti_store::postgres::profiles::PgProfileStore;
use tutti_store::{FlowBatch, Outbox, ProfileBatch, ProfileStore, StoreError};

mod common;
use common::{Schema, outbox, profile};

const PARTITIONS: u32 = 4;

/// Two workers, `a` holding partitions 0 and 1, `b` holding 2 and 3, each with its store.
fn two_workers(schema: &Schema) -> [(Arc<Ownership>, PgProfileStore); 2] {
    let mut db = schema.migrated();
    Leases::setup(&mut db, PARTITIONS).unwrap();
    let mut made = Vec::new();
    for name in ["worker-a", "worker-b"] {
        let leases = Leases::new(name, "worker", 60_000);
        leases.balance(&mut db, 0).unwrap();
        made.push(leases);
    }
    // The first balanced alone and took everything; at the next round it gives up its extras and the second
    // takes them.
    made[0].balance(&mut db, 1).unwrap();
    made[1].balance(&mut db, 2).unwrap();
    let (leases, _) = Leases::view(&mut db).unwrap();
    ["worker-a", "worker-b"].map(|name| {
        let held: Vec<Held> = leases
            .iter()
            .filter(|l| l.owner.as_deref() == Some(name))
            .map(|l| Held { partition: l.partition, token: l.token })
            .collect();
        assert_eq!(held.len(), 2, "{name} holds half");
        let ownership = Arc::new(Ownership::new(name, PARTITIONS));
        ownership.set(held.clone());
        let mut store = PgProfileStore::shared(schema.migrated(), ownership.clone());
        store.hold(&held);
        (ownership, store)
    })
}

fn partitions_of(ownership: &Ownership) -> Vec<u32> {
    ownership.held().1.iter().map(|h| h.partition).collect()
}

#[test]
fn new_profiles_of_two_workers_never_share_an_id_and_lie_in_their_partition() {
    let schema = Schema::new();
    let [(a_owns, mut a), (b_owns, mut b)] = two_workers(&schema);
    let mut ids = HashSet::new();
    for (owns, store) in [(&a_owns, &mut a), (&b_owns, &mut b)] {
        for partition in partitions_of(owns) {
            let mut block = store.reserve_profile_ids(partition).unwrap();
            let mut batch = ProfileBatch { checkpoint: 1, ..ProfileBatch::default() };
            for _ in 0..3 {
                let id = block.take().unwrap();
                assert_eq!(id % u64::from(PARTITIONS), u64::from(partition), "{id} is at home in {partition}");
                assert!(ids.insert(id), "{id} given out twice");
                batch.profiles.push(profile(id, 1));
            }
            // New ids are fresh: written without having been read.
            store.commit(&batch).unwrap();
        }
    }
    assert_eq!(ids.len(), 12);
    // A block reserved again starts past the last: ids never come round again.
    let again = a.reserve_profile_ids(0).unwrap();
    assert!(ids.iter().all(|id| *id < again.next), "{again:?} after {ids:?}");
}

#[test]
fn checkpoints_timers_and_outbox_rows_are_the_holders() {
    let schema = Schema::new();
    let [(a_owns, mut a), (b_owns, mut b)] = two_workers(&schema);
    let a_ids: Vec<u64> = partitions_of(&a_owns).iter().map(|p| a.reserve_profile_ids(*p).unwrap().next).collect();
    let b_ids: Vec<u64> = partitions_of(&b_owns).iter().map(|p| b.reserve_profile_ids(*p).unwrap().next).collect();

    // A's batch sets timers and queues actions for its own profiles and for one of B's (an event of
    // partition 0 for a profile at home in partition 2, after a merge across partitions).
    let mut flows = FlowBatch::default();
    for id in a_ids.iter().chain(&b_ids[..1]) {
        flows.timers.push((ProfileId(*id), Some(100)));
        flows.outbox.push(outbox(&format!("run-{id}:call:1"), *id));
    }
    let mut profiles: Vec<_> = a_ids.iter().map(|id| profile(*id, 1)).collect();
    b.profile(ProfileId(b_ids[0])).unwrap();
    b.commit(&ProfileBatch { profiles: vec![profile(b_ids[0], 1)], checkpoint: 50, ..ProfileBatch::default() })
        .unwrap();
    a.profile(ProfileId(b_ids[0])).unwrap();
    profiles.push(profile(b_ids[0], 2));
    a.commit(&ProfileBatch { profiles, checkpoint: 40, flows, ..ProfileBatch::default() }).unwrap();

    // Checkpoints: each worker's partitions, each at its own batch's end.
    assert_eq!(a.checkpoints().unwrap(), partitions_of(&a_owns).iter().map(|p| (*p, 40)).collect::<Vec<_>>());
    assert_eq!(b.checkpoints().unwrap(), partitions_of(&b_owns).iter().map(|p| (*p, 50)).collect::<Vec<_>>());
    // A checkpoint never moves back: B commits an earlier end (a full batch read from further back).
    b.commit(&ProfileBatch { checkpoint: 30, ..ProfileBatch::default() }).unwrap();
    assert_eq!(b.checkpoint().unwrap(), 50);

    // Timers: each worker fires those of the profiles at home in its partitions, whoever set them.
    let due = |store: &PgProfileStore| -> Vec<u64> {
        store.due_timers(1_000, 100).unwrap().into_iter().map(|(_, p)| p.0).collect()
    };
    assert_eq!(due(&a), a_ids);
    assert_eq!(due(&b), b_ids[..1]);

    // Outbox rows: the batch's rows are all the committing worker's (the one at home in B's partition goes to
    // A's first partition), and each worker's dispatcher reads only its own.
    let mut a_outbox = PgOutbox::shared(schema.migrated(), a_owns.clone(), "a");
    let b_outbox = PgOutbox::shared(schema.migrated(), b_owns.clone(), "b");
    assert_eq!(a_outbox.pending_after(0, 100).unwrap().len(), 3);
    assert!(b_outbox.pending_after(0, 100).unwrap().is_empty());
    let mut db = schema.client();
    let first_of_a = partitions_of(&a_owns)[0];
    let adopted = pending_in(&mut db, &[first_of_a], 100).unwrap();
    let keys: Vec<u64> = adopted.iter().map(|r| r.profile.0).collect();
    assert_eq!(keys, [a_ids[0], b_ids[0]], "what a new owner of partition {first_of_a} adopts");

    // Each worker's outcome journal has its own settled mark.
    let first = a_outbox.pending_after(0, 1).unwrap()[0].seq;
    a_outbox.settle(&[(first, tutti_store::Outcome::Skipped { reason: "test".into() })], 7).unwrap();
    assert_eq!((a_outbox.journal_settled().unwrap(), b_outbox.journal_settled().unwrap()), (7, 0));
}

#[test]
fn a_step_count_moved_by_another_worker_is_a_conflict() {
    let schema = Schema::new();
    let [(_, mut a), (_, mut b)] = two_workers(&schema);
    let key = StepKey { flow: "welcome".into(), version: 1, step: "approve".into() };
    let counted = |n: u64| ProfileBatch {
        checkpoint: 1,
        flows: FlowBatch { counts: vec![(key.clone(), n)], ..FlowBatch::default() },
        ..ProfileBatch::default()
    };
    assert!(a.step_counts().unwrap().is_empty());
    assert!(b.step_counts().unwrap().is_empty());
    a.commit(&counted(1)).unwrap();
    // B counted from the same zero: its total would lose A's.
    assert!(matches!(b.commit(&counted(1)), Err(StoreError::Conflict(_))));
    assert_eq!(b.step_counts().unwrap(), [(key.clone(), 1)]);
    b.commit(&counted(2)).unwrap();
    assert!(matches!(a.commit(&counted(2)), Err(StoreError::Conflict(_))));
}

#[test]
fn a_worker_holding_nothing_writes_nothing() {
    let schema = Schema::new();
    let [(_, mut a), _] = two_workers(&schema);
    a.hold(&[]);
    let refused = a.commit(&ProfileBatch { checkpoint: 9, ..ProfileBatch::default() }).unwrap_err();
    assert!(refused.to_string().contains("holds no partition"), "{refused}");
}
