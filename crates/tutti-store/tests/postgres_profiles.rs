//! The processor's store on Postgres beside SQLite's: the same batches give the same answers to every read.
//! Then what only several workers meet: a profile or an identifier changed by another worker since it was
//! read is a conflict that writes nothing, and a worker that lost its partition is fenced off.

#![cfg(feature = "postgres")]

mod common;

use common::{Schema, batches, email, outbox, profile};
use serde_json::json;
use tutti_core::ProfileId;
use tutti_profiles::Identifier;
use tutti_store::postgres::leases::Leases;
use tutti_store::postgres::pool::Pool;
use tutti_store::postgres::profiles::PgProfileStore;
use tutti_store::postgres::readers::PgProfileReader;
use tutti_store::sqlite::{SqliteProfileReader, SqliteProfileStore};
use tutti_store::{FlowBatch, ProfileBatch, ProfileReader, ProfileStore, StoreError, Tombstone};

fn pg_store(schema: &Schema) -> PgProfileStore {
    PgProfileStore::new(schema.migrated())
}

/// Everything a store answers, as JSON, for comparing two stores.
fn reads(store: &dyn ProfileStore, ids: &[u64], identifiers: &[Identifier]) -> serde_json::Value {
    let owners: Vec<_> = identifiers.iter().map(|i| store.owner(i).unwrap().map(|p| p.0)).collect();
    let profiles: Vec<_> =
        ids.iter().map(|&i| store.profile(ProfileId(i)).unwrap().map(|p| serde_json::to_value(p).unwrap())).collect();
    let seqs: Vec<_> = ids.iter().map(|&i| store.event_seqs(ProfileId(i)).unwrap()).collect();
    let states: Vec<_> = ids.iter().map(|&i| store.flow_state(ProfileId(i)).unwrap()).collect();
    let merged: Vec<Vec<u64>> =
        ids.iter().map(|&i| store.merged_into(ProfileId(i)).unwrap().iter().map(|p| p.0).collect()).collect();
    let mut counts: Vec<_> =
        store.step_counts().unwrap().into_iter().map(|(k, n)| (k.flow, k.version, k.step, n)).collect();
    counts.sort();
    let backfills: Vec<_> = store
        .backfills()
        .unwrap()
        .into_iter()
        .map(|b| (b.segment, b.source_hash, b.next_profile, b.done, b.total, b.started_at, b.finished_at))
        .collect();
    let mut tombstones: Vec<_> =
        store.tombstones().unwrap().into_iter().map(|t| (t.hash.to_vec(), t.erased_at, t.erase_seq)).collect();
    tombstones.sort();
    json!({
        "owners": owners, "profiles": profiles, "seqs": seqs, "states": states, "merged": merged,
        "checkpoint": store.checkpoint().unwrap(), "next_profile_id": store.next_profile_id().unwrap(),
        "count": store.count_profiles().unwrap(), "counts": counts, "backfills": backfills,
        "timers": store.due_timers(i64::MAX, 100).unwrap().iter().map(|(at, p)| (*at, p.0)).collect::<Vec<_>>(),
        "members": store.members_after("vip", 0, 100).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
        "member_count": store.member_count("vip").unwrap(),
        "ids_after": store.profile_ids_after(1, 100).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
        "tombstones": tombstones,
    })
}

#[test]
fn postgres_answers_as_sqlite_does() {
    let schema = Schema::new();
    let mut pg = pg_store(&schema);
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteProfileStore::open(&dir.path().join("profiles.db")).unwrap();
    let ids = [1, 2, 3];
    let identifiers = [email("p1@example.vn"), email("p2@example.vn"), email("new@example.vn")];
    assert_eq!(reads(&pg, &ids, &identifiers), reads(&sqlite, &ids, &identifiers));
    for batch in batches() {
        // What the processor reads before it writes.
        for store in [&pg as &dyn ProfileStore, &sqlite] {
            for id in &ids {
                store.profile(ProfileId(*id)).unwrap();
            }
            for identifier in &identifiers {
                store.owner(identifier).unwrap();
            }
        }
        let queued_pg = pg.commit(&batch).unwrap();
        let queued_sqlite = sqlite.commit(&batch).unwrap();
        assert_eq!(queued_pg, queued_sqlite);
        assert_eq!(reads(&pg, &ids, &identifiers), reads(&sqlite, &ids, &identifiers));
    }
    // The outbox key queued twice was queued once; the merge moved identifier, events and run.
    let after = reads(&pg, &ids, &identifiers);
    assert_eq!(after["owners"], json!([1, 1, 1]));
    assert_eq!(after["seqs"], json!([[1, 2, 3, 4], [], []]));
    assert_eq!(after["merged"], json!([[2], [], []]));

    // Erasure: the same events to delete, the same tombstones, the same nothing left.
    let tombstone = Tombstone { hash: [7; 32], erased_at: 99, erase_seq: 4 };
    let erased_pg = pg.erase(ProfileId(1), std::slice::from_ref(&tombstone)).unwrap();
    let erased_sqlite = sqlite.erase(ProfileId(1), std::slice::from_ref(&tombstone)).unwrap();
    assert_eq!(erased_pg, [1, 2, 3, 4]);
    assert_eq!(erased_pg, erased_sqlite);
    assert_eq!(reads(&pg, &ids, &identifiers), reads(&sqlite, &ids, &identifiers));
    // The audit record about profile 2 (merged into 1) lost what it said about the person.
    let mut admin = schema.client();
    let detail: serde_json::Value =
        admin.query_one("SELECT detail::text FROM audit", &[]).unwrap().get::<_, String>(0).parse().unwrap();
    assert_eq!(detail, json!({"decision": "approved", "redacted": true}));
    assert!(admin.execute("DELETE FROM audit", &[]).is_err(), "the audit log is append-only");
}

#[test]
fn the_apis_reads_answer_as_sqlites_do() {
    let schema = Schema::new();
    let mut pg = pg_store(&schema);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.db");
    let mut sqlite = SqliteProfileStore::open(&path).unwrap();
    let first = batches().remove(0);
    for store in [&pg as &dyn ProfileStore, &sqlite] {
        for id in [1, 2] {
            store.profile(ProfileId(id)).unwrap();
        }
        for id in ["p1@example.vn", "p2@example.vn"] {
            store.owner(&email(id)).unwrap();
        }
    }
    pg.commit(&first).unwrap();
    sqlite.commit(&first).unwrap();
    for batch in batches().into_iter().skip(1) {
        for store in [&pg as &dyn ProfileStore, &sqlite] {
            store.owner(&email("new@example.vn")).unwrap();
        }
        pg.commit(&batch).unwrap();
        sqlite.commit(&batch).unwrap();
    }
    let on_pg = PgProfileReader::new(Pool::new(&schema.url(), 2).unwrap());
    let on_sqlite = SqliteProfileReader::open(&path).unwrap();
    let answers = |reader: &dyn ProfileReader| {
        json!({
            "owner": reader.owner(&email("p2@example.vn")).unwrap().map(|p| p.0),
            "profile": serde_json::to_value(reader.profile(ProfileId(1)).unwrap()).unwrap(),
            "seqs": reader.event_seqs(ProfileId(1), None, 10).unwrap(),
            "seqs_before": reader.event_seqs(ProfileId(1), Some(3), 1).unwrap(),
            "merges": reader.merges(ProfileId(1)).unwrap().iter().map(|m| (m.into.0, m.from.0, m.at, m.seq)).collect::<Vec<_>>(),
            "merges_after": reader.merges_after(0, 10).unwrap().iter().map(|(n, a, b)| (*n, a.0, b.0)).collect::<Vec<_>>(),
            "count": reader.count_profiles().unwrap(),
            "last": reader.last_profile_id().unwrap(),
            "ids": reader.profile_ids_after(0, 10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
            "ids_after": reader.profile_ids_after(1, 10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
            "newest": reader.newest_profile_ids(10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
            "pro": reader.with_trait("plan", "pro", 0, 10, 10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
            "vip": reader.with_trait("vip", "1", 0, 10, 10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
            "spend": reader.with_trait("spend", "1000", 0, 10, 10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
            "hostile": reader.with_trait("plan'; DROP TABLE profiles; --", "pro", 0, 10, 10).unwrap().len(),
        })
    };
    let from_pg = answers(&on_pg);
    assert_eq!(from_pg, answers(&on_sqlite));
    assert_eq!(
        (from_pg["pro"].clone(), from_pg["vip"].clone(), from_pg["count"].clone()),
        (json!([1]), json!([1]), json!(1))
    );
    assert_eq!((&from_pg["ids"], &from_pg["ids_after"], &from_pg["newest"]), (&json!([1]), &json!([]), &json!([1])));
}

#[test]
fn a_profile_changed_by_another_worker_is_a_conflict_that_writes_nothing() {
    let schema = Schema::new();
    let (mut a, mut b) = (pg_store(&schema), pg_store(&schema));
    let first = batches().remove(0);
    for identifier in [email("p1@example.vn"), email("p2@example.vn")] {
        a.owner(&identifier).unwrap();
    }
    a.profile(ProfileId(1)).unwrap();
    a.profile(ProfileId(2)).unwrap();
    a.commit(&first).unwrap();
    // Both workers read profile 1 at version 1; b writes it first.
    assert!(a.profile(ProfileId(1)).unwrap().is_some());
    b.profile(ProfileId(1)).unwrap();
    let by_b =
        ProfileBatch { profiles: vec![profile(1, 5)], checkpoint: 3, next_profile_id: 3, ..ProfileBatch::default() };
    b.commit(&by_b).unwrap();
    let by_a = ProfileBatch {
        profiles: vec![profile(1, 9)],
        checkpoint: 8,
        next_profile_id: 3,
        flows: FlowBatch { outbox: vec![outbox("lost:0", 1)], ..FlowBatch::default() },
        ..ProfileBatch::default()
    };
    let refused = a.commit(&by_a).unwrap_err();
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused}");
    assert_eq!(a.checkpoint().unwrap(), 3, "nothing of the refused batch was written");
    assert_eq!(a.profile(ProfileId(1)).unwrap().unwrap().event_counts["Đặt hàng"], 5);
    // Read again, the same batch goes through.
    a.commit(&by_a).unwrap();
    assert_eq!(a.checkpoint().unwrap(), 8);

    // An identifier both workers saw free: the second to link it conflicts, the first keeps it.
    let free = email("moi@example.vn");
    assert_eq!(a.owner(&free).unwrap(), None);
    assert_eq!(b.owner(&free).unwrap(), None);
    b.profile(ProfileId(2)).unwrap();
    a.profile(ProfileId(7)).unwrap();
    b.commit(&ProfileBatch {
        links: vec![(free.clone(), ProfileId(2))],
        profiles: vec![profile(2, 1)],
        checkpoint: 8,
        next_profile_id: 3,
        ..ProfileBatch::default()
    })
    .unwrap();
    let taken = a.commit(&ProfileBatch {
        links: vec![(free.clone(), ProfileId(7))],
        profiles: vec![profile(7, 1)],
        checkpoint: 9,
        next_profile_id: 8,
        ..ProfileBatch::default()
    });
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(a.owner(&free).unwrap(), Some(ProfileId(2)));
    assert!(a.profile(ProfileId(7)).unwrap().is_none());
    // A profile written without being read first is refused too: the worker's picture of it is unknown.
    let unread =
        ProfileBatch { profiles: vec![profile(2, 4)], checkpoint: 9, next_profile_id: 8, ..ProfileBatch::default() };
    assert!(matches!(a.commit(&unread), Err(StoreError::Conflict(_))));
}

#[test]
fn a_worker_that_lost_its_partition_writes_nothing_more() {
    let schema = Schema::new();
    let mut setup = schema.migrated();
    Leases::setup(&mut setup, 1).unwrap();
    let old = Leases::new("worker-a", "worker", 1_000);
    let held = old.balance(&mut setup, 0).unwrap().held[0];
    let ownership = std::sync::Arc::new(tutti_store::postgres::leases::Ownership::new("worker-a", 1));
    let mut store = PgProfileStore::shared(schema.migrated(), ownership);
    store.hold(&[held]);
    store.profile(ProfileId(1)).unwrap();
    let batch =
        ProfileBatch { profiles: vec![profile(1, 1)], checkpoint: 1, next_profile_id: 2, ..ProfileBatch::default() };
    store.commit(&batch).unwrap();
    // worker-a goes silent; worker-b takes the partition once the lease has run out.
    let new = Leases::new("worker-b", "worker", 1_000);
    assert_eq!(new.balance(&mut setup, 5_000).unwrap().taken, [0]);
    store.profile(ProfileId(1)).unwrap();
    let late =
        ProfileBatch { profiles: vec![profile(1, 2)], checkpoint: 2, next_profile_id: 2, ..ProfileBatch::default() };
    assert!(matches!(store.commit(&late), Err(StoreError::Fenced { .. })));
    assert_eq!(store.checkpoint().unwrap(), 1);
}

#[test]
fn a_profile_made_and_merged_away_in_one_batch_is_new_not_unread() {
    let schema = Schema::new();
    let mut store = pg_store(&schema);
    // The processor asks where new ids start, then works out a batch in which an anonymous visitor's new
    // profile (2) is merged into the new profile of the person (1) before either was ever written.
    assert_eq!(store.next_profile_id().unwrap(), 1);
    let batch = ProfileBatch {
        links: vec![(email("p1@example.vn"), ProfileId(1))],
        moves: vec![tutti_store::MergeRecord {
            into: ProfileId(1),
            from: ProfileId(2),
            at: 1,
            seq: 2,
            message_id: "alias".into(),
        }],
        profiles: vec![profile(1, 2)],
        deleted: vec![ProfileId(2)],
        checkpoint: 2,
        next_profile_id: 3,
        ..ProfileBatch::default()
    };
    store.owner(&email("p1@example.vn")).unwrap();
    store.commit(&batch).unwrap();
    assert_eq!(store.count_profiles().unwrap(), 1);
    // An id from before the batch that the store never handed out is still refused.
    let old =
        ProfileBatch { profiles: vec![profile(1, 3)], checkpoint: 3, next_profile_id: 3, ..ProfileBatch::default() };
    let mut other = pg_store(&schema);
    assert_eq!(other.next_profile_id().unwrap(), 3);
    assert!(matches!(other.commit(&old), Err(StoreError::Conflict(_))));
}

#[test]
fn readers_may_be_called_from_async_tasks() {
    // The `postgres` client blocks on a runtime of its own; called straight from an async task it would abort
    // the process. Both kinds of runtime, as an HTTP handler would call.
    let schema = Schema::new();
    drop(schema.migrated());
    let reader = std::sync::Arc::new(PgProfileReader::new(Pool::new(&schema.url(), 1).unwrap()));
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let r = reader.clone();
    assert_eq!(multi.block_on(async move { r.count_profiles().unwrap() }), 0);
    let r = reader.clone();
    assert_eq!(multi.block_on(multi.spawn(async move { r.last_profile_id().unwrap() })).unwrap(), 0);
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(single.block_on(async move { reader.count_profiles().unwrap() }), 0);
}
