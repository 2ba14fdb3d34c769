//! The API's flow reads and the dispatcher's outbox on Postgres beside SQLite's: the same batches committed,
//! the same broadcasts added, the same outcomes settled and dead letters replayed give the same answers.

#![cfg(feature = "postgres")]

mod common;

use common::{Schema, batches, email};
use serde_json::{Value, json};
use tutti_core::ProfileId;
use tutti_store::postgres::PgFlowReader;
use tutti_store::postgres::outbox::PgOutbox;
use tutti_store::postgres::pool::Pool;
use tutti_store::postgres::profiles::PgProfileStore;
use tutti_store::sqlite::{SqliteFlowReader, SqliteOutbox, SqliteProfileStore};
use tutti_store::{
    Broadcast, Cost, DeadLetterFilter, DeliveryFilter, FlowReader, Outbox, OutboxRow, Outcome, ProfileStore,
};

fn commit_all(store: &mut dyn ProfileStore) {
    for batch in batches() {
        for id in [1, 2, 3] {
            store.profile(ProfileId(id)).unwrap();
        }
        for id in ["p1@example.vn", "p2@example.vn", "new@example.vn"] {
            store.owner(&email(id)).unwrap();
        }
        store.commit(&batch).unwrap();
    }
}

fn rows(rows: Vec<OutboxRow>) -> Value {
    rows.iter()
        .map(|r| json!([r.seq, r.key, r.profile.0, r.connector, r.body, r.created_at, r.due_at, r.attempts]))
        .collect()
}

fn answers(reader: &dyn FlowReader) -> Value {
    let strings = |bodies: Vec<Vec<u8>>| bodies.into_iter().map(|b| String::from_utf8(b).unwrap()).collect::<Vec<_>>();
    let deliveries = |filter: &DeliveryFilter| -> Value {
        reader
            .deliveries(filter, 0, 10)
            .unwrap()
            .into_iter()
            .map(|d| json!([d.row.seq, d.row.key, d.state, d.result, d.error]))
            .collect()
    };
    json!({
        "runs": strings(reader.runs(None, None, 10).unwrap()),
        "runs_of_1": strings(reader.runs(Some(ProfileId(1)), None, 10).unwrap()),
        "runs_of_flow": strings(reader.runs(None, Some("chao-mung"), 1).unwrap()),
        "runs_of_both": strings(reader.runs(Some(ProfileId(2)), Some("chao-mung"), 10).unwrap()),
        "members": reader.segment_members("vip", 0, 10).unwrap().iter().map(|p| p.0).collect::<Vec<_>>(),
        "member_count": reader.segment_count("vip").unwrap(),
        "pending": reader.outbox("pending", 10).unwrap().into_iter().map(|(r, e)| json!([r.key, e])).collect::<Vec<_>>(),
        "dead": reader.dead_letters(&DeadLetterFilter::default(), 0, 10).unwrap().into_iter().map(|(r, e)| json!([r.seq, r.key, e])).collect::<Vec<_>>(),
        "dead_of_flow": reader.dead_letters(&DeadLetterFilter { flow: Some("chao-mung".into()), ..DeadLetterFilter::default() }, 0, 10).unwrap().len(),
        "dead_of_other": reader.dead_letters(&DeadLetterFilter { connector: Some("slack".into()), ..DeadLetterFilter::default() }, 0, 10).unwrap().len(),
        "deliveries": deliveries(&DeliveryFilter::default()),
        "done": deliveries(&DeliveryFilter { state: Some("done".into()), ..DeliveryFilter::default() }),
        "of_profile": deliveries(&DeliveryFilter { profile: Some(ProfileId(1)), since: Some(5), until: Some(6), ..DeliveryFilter::default() }),
        "of_flow": deliveries(&DeliveryFilter { flow: Some("chao-mung".into()), ..DeliveryFilter::default() }),
        "backfills": reader.backfills().unwrap().len(),
        "history": reader.segment_history("vip", 7).unwrap(),
        "broadcasts": reader.broadcasts().unwrap().into_iter().map(|b| json!([b.id, b.status])).collect::<Vec<_>>(),
        "stats": reader.flow_stats("chao-mung").unwrap(),
        "segments_of": reader.segments_of(ProfileId(1), &["vip", "khac"]).unwrap(),
        "timers": reader.pending_timers().unwrap(),
        "approvals": strings(reader.approvals(None, 10).unwrap()),
        "approvals_of_flow": strings(reader.approvals(Some("khac"), 10).unwrap()),
        "run": reader.run("r2").unwrap().map(|(p, b)| (p.0, String::from_utf8(b).unwrap())),
        "state": reader.flow_state(ProfileId(1)).unwrap(),
        "spend": reader.spend(None).unwrap().into_iter().map(|s| json!([s.flow, s.currency, s.micros, s.actions])).collect::<Vec<_>>(),
    })
}

fn broadcast(id: &str) -> Broadcast {
    Broadcast {
        id: id.into(),
        name: "Khuyến mãi Tết 春节".into(),
        segment: "vip".into(),
        status: "scheduled".into(),
        send_at: 100,
        created_by: "lan@example.vn".into(),
        created_at: 50,
        total: 0,
        done: 0,
        next_profile: 0,
        finished_at: None,
    }
}

#[test]
fn flow_reads_and_the_outbox_answer_as_sqlites_do() {
    let schema = Schema::new();
    let mut pg = PgProfileStore::new(schema.migrated());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.db");
    let mut sqlite = SqliteProfileStore::open(&path).unwrap();
    commit_all(&mut pg);
    commit_all(&mut sqlite);
    let pg_reader = PgFlowReader::new(Pool::new(&schema.url(), 2).unwrap());
    let sqlite_reader = SqliteFlowReader::open(&path).unwrap();
    let mut pg_outbox = PgOutbox::new(schema.client());
    let mut sqlite_outbox = SqliteOutbox::open(&path).unwrap();

    let before = answers(&pg_reader);
    assert_eq!(before, answers(&sqlite_reader));
    assert_eq!(before["pending"].as_array().unwrap().len(), 3);
    assert_eq!(rows(pg_outbox.pending_after(0, 10).unwrap()), rows(sqlite_outbox.pending_after(0, 10).unwrap()));
    assert_eq!(rows(pg_outbox.pending_after(1, 1).unwrap()), rows(sqlite_outbox.pending_after(1, 1).unwrap()));

    for reader in [&pg_reader as &dyn FlowReader, &sqlite_reader] {
        assert!(reader.add_broadcast(&broadcast("tet")).unwrap());
        assert!(!reader.add_broadcast(&broadcast("tet")).unwrap(), "an id is taken once");
        assert!(reader.add_broadcast(&broadcast("he")).unwrap());
        assert!(reader.cancel_broadcast("he").unwrap());
        assert!(!reader.cancel_broadcast("he").unwrap());
    }
    // Outcomes of every kind, one settled twice (charged once), one for a row that is not there.
    let cost = Cost { flow: "chao-mung".into(), micros: 1_500_000, currency: "VND".into() };
    let outcomes = vec![
        (1, Outcome::Done { result: "{\"id\":\"ok\"}".into(), cost: Some(cost.clone()) }),
        (1, Outcome::Done { result: "{\"id\":\"again\"}".into(), cost: Some(cost) }),
        (2, Outcome::Dead { error: "HTTP 422".into() }),
        (3, Outcome::Retry { at: 900, error: "HTTP 503".into() }),
        (99, Outcome::Skipped { reason: "unsubscribed".into() }),
    ];
    assert_eq!(pg_outbox.settle(&outcomes, 41).unwrap(), sqlite_outbox.settle(&outcomes, 41).unwrap());
    assert_eq!(pg_outbox.settle(&[], 40).unwrap(), sqlite_outbox.settle(&[], 40).unwrap());
    assert_eq!((pg_outbox.journal_settled().unwrap(), sqlite_outbox.journal_settled().unwrap()), (41, 41));
    let settled = answers(&pg_reader);
    assert_eq!(settled, answers(&sqlite_reader));
    assert_eq!(settled["spend"], json!([["chao-mung", "VND", 1_500_000, 1]]));
    assert_eq!(settled["dead"].as_array().unwrap().len(), 1);

    let filter =
        DeadLetterFilter { seqs: vec![2, 3], connector: Some("webhook".into()), ..DeadLetterFilter::default() };
    let replayed = rows(pg_reader.replay(&filter, 777, 10).unwrap());
    assert_eq!(replayed, rows(sqlite_reader.replay(&filter, 777, 10).unwrap()));
    assert_eq!(replayed.as_array().unwrap().len(), 1);
    assert_eq!(answers(&pg_reader), answers(&sqlite_reader));
}

#[test]
fn definitions_and_the_audit_log_answer_as_sqlites_do() {
    use tutti_core::audit::{AuditFilter, AuditKind, AuditRecord};
    use tutti_store::{AuditLog, DefinitionStore};

    let schema = Schema::new();
    drop(schema.migrated());
    let dir = tempfile::tempdir().unwrap();
    let pg = PgFlowReader::new(Pool::new(&schema.url(), 2).unwrap());
    let sqlite = SqliteFlowReader::open(&dir.path().join("profiles.db")).unwrap();
    let record = |at: i64, kind: AuditKind, flow: &str, profile: u64| AuditRecord {
        at,
        kind,
        flow: Some(flow.into()),
        run: Some(format!("r{at}")),
        profile: Some(ProfileId(profile)),
        detail: json!({"who": "lan@example.vn", "ghi_chu": "Đã duyệt 已批准", "n": at}),
    };
    let mut seen = Vec::new();
    for (definitions, audit) in [(&pg as &dyn DefinitionStore, &pg as &dyn AuditLog), (&sqlite, &sqlite)] {
        let first = definitions.put_all(&[("flow", "chao-mung", "v1"), ("segment", "vip", "s1")], 10).unwrap();
        let second = definitions.put("flow", "chao-mung", "v2", 20).unwrap();
        let deleted = (definitions.delete("segment", "vip").unwrap(), definitions.delete("segment", "vip").unwrap());
        let again = definitions.put("segment", "vip", "s2", 30).unwrap();
        let paused = (
            definitions.set_paused("chao-mung", true, 40).unwrap(),
            definitions.set_paused("chao-mung", true, 41).unwrap(),
            definitions.paused().unwrap(),
            definitions.set_paused("chao-mung", false, 42).unwrap(),
            definitions.paused().unwrap(),
        );
        let all: Vec<_> = definitions
            .all()
            .unwrap()
            .into_iter()
            .map(|d| json!([d.kind, d.id, d.version, d.source, d.created_at, d.deleted]))
            .collect();
        audit
            .append(&[
                record(1, AuditKind::Approval, "chao-mung", 1),
                record(2, AuditKind::ModelCall, "chao-mung", 2),
                record(3, AuditKind::Approval, "khac", 1),
            ])
            .unwrap();
        let read = |filter: AuditFilter| -> Value {
            let forward: Vec<_> =
                audit.audit(&filter, 0, 10).unwrap().into_iter().map(|(n, r)| json!([n, r])).collect();
            let backward: Vec<_> =
                audit.audit_newest(&filter, 0, 2).unwrap().into_iter().map(|(n, r)| json!([n, r])).collect();
            let before: Vec<_> = audit.audit_newest(&filter, 3, 10).unwrap().into_iter().map(|(n, _)| n).collect();
            json!([forward, backward, before])
        };
        let audits = json!([
            read(AuditFilter::default()),
            read(AuditFilter { kind: Some(AuditKind::Approval), ..AuditFilter::default() }),
            read(AuditFilter { flow: Some("chao-mung".into()), profile: Some(ProfileId(2)), ..AuditFilter::default() }),
            read(AuditFilter { since: Some(2), until: Some(3), ..AuditFilter::default() }),
            read(AuditFilter { run: Some("r3".into()), ..AuditFilter::default() }),
        ]);
        seen.push(json!({"first": first, "second": second, "deleted": deleted, "again": again,
            "paused": [paused.0, paused.1, paused.2, paused.3, paused.4], "all": all, "audit": audits}));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0]["first"], json!([1, 1]));
    assert_eq!(seen[0]["again"], json!(2));
    assert_eq!(seen[0]["deleted"], json!([true, false]));
    assert_eq!(seen[0]["audit"][1][0].as_array().unwrap().len(), 2);
}
