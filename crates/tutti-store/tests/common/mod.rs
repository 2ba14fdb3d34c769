//! The machine's Postgres for tests (127.0.0.1:5432, trust auth, database `test`; `.ci/run` starts it when it
//! is down): each test in a schema of its own.
#![allow(dead_code)]

use serde_json::json;
use tutti_core::ProfileId;
use tutti_core::audit::{AuditKind, AuditRecord};
use tutti_flows::StepKey;
use tutti_profiles::{IdKind, Identifier, Profile};
use tutti_store::postgres::{Client, connect};
use tutti_store::{Backfill, FlowBatch, FlowMeasure, MergeRecord, OutboxItem, ProfileBatch, RunRecord};

/// A schema of its own, dropped when the test ends.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new() -> Schema {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tutti_test_{}_{n}", std::process::id());
        let mut admin = Schema::admin();
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).unwrap();
        Schema { name }
    }

    pub fn admin() -> Client {
        connect("host=127.0.0.1 port=5432 user=root dbname=test")
            .expect("Postgres on 127.0.0.1:5432 (trust auth, database `test`): `.ci/run` starts it when it is down")
    }

    /// The connection string of this schema.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port=5432 user=root dbname=test options='-c search_path={}'", self.name)
    }

    pub fn client(&self) -> Client {
        connect(&self.url()).unwrap()
    }

    /// A connection to this schema with every migration applied.
    pub fn migrated(&self) -> Client {
        let mut client = self.client();
        tutti_store::postgres::migrate::migrate(&mut client).unwrap();
        client
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Schema::admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

pub fn email(value: &str) -> Identifier {
    Identifier::new(IdKind::Email, value)
}

pub fn profile(id: u64, events: u64) -> Profile {
    let mut p = Profile::new(ProfileId(id));
    p.event_counts.insert("Đặt hàng".into(), events);
    p.identities.insert(email(&format!("p{id}@example.vn")));
    let stamped = |value| tutti_profiles::profile::Stamped { value, at: id as i64, message_id: format!("m{id}") };
    p.traits.insert("plan".into(), stamped(json!(if id % 2 == 1 { "pro" } else { "free" })));
    p.traits.insert("vip".into(), stamped(json!(id == 1)));
    p.traits.insert("spend".into(), stamped(json!(id * 1000)));
    p
}

pub fn outbox(key: &str, profile: u64) -> OutboxItem {
    OutboxItem {
        key: key.into(),
        profile: ProfileId(profile),
        connector: "webhook".into(),
        body: br#"{"url":"https://example.vn"}"#.to_vec(),
        created_at: 5,
    }
}

/// Batches that touch every kind of row: new profiles and identifiers, events, a merge, flow rows of every
/// kind, an outbox key queued twice.
pub fn batches() -> Vec<ProfileBatch> {
    let run = |id: &str, profile: u64, state: &str| RunRecord {
        id: id.into(),
        profile: ProfileId(profile),
        flow: "chao-mung".into(),
        version: 2,
        state: state.into(),
        started_at: 10,
        updated_at: 20,
        body: format!(r#"{{"run":"{id}"}}"#).into_bytes(),
    };
    let first = ProfileBatch {
        links: vec![(email("p1@example.vn"), ProfileId(1)), (email("p2@example.vn"), ProfileId(2))],
        attributions: vec![(ProfileId(1), 1), (ProfileId(2), 2), (ProfileId(1), 3)],
        profiles: vec![profile(1, 2), profile(2, 1)],
        checkpoint: 3,
        next_profile_id: 3,
        flows: FlowBatch {
            states: vec![(ProfileId(1), Some(b"state-1".to_vec())), (ProfileId(2), Some(b"state-2".to_vec()))],
            timers: vec![(ProfileId(1), Some(500)), (ProfileId(2), Some(400))],
            outbox: vec![outbox("r1:send:0", 1), outbox("r2:send:0", 2)],
            runs: vec![run("r1", 1, "waiting"), run("r2", 2, "approval")],
            members: vec![("vip".into(), ProfileId(1), true), ("vip".into(), ProfileId(2), true)],
            audit: vec![AuditRecord {
                at: 7,
                kind: AuditKind::Approval,
                flow: Some("chao-mung".into()),
                run: Some("r2".into()),
                profile: Some(ProfileId(2)),
                detail: json!({"message": "Xin chào 你好", "decision": "approved"}),
            }],
            counts: vec![(StepKey { flow: "chao-mung".into(), version: 2, step: "duyet".into() }, 1)],
            stats: vec![(FlowMeasure { flow: "chao-mung".into(), step: "".into(), measure: "entered".into() }, 2)],
            backfills: vec![Backfill {
                segment: "vip".into(),
                source_hash: "abc".into(),
                next_profile: 2,
                done: 2,
                total: 2,
                started_at: 1,
                finished_at: Some(9),
            }],
            sizes: vec![("vip".into(), "2026-12-07".into(), 2)],
            ..FlowBatch::default()
        },
        ..ProfileBatch::default()
    };
    // Profile 2 merges into 1: its identifier, events and run follow; its flow rows go.
    let mut merged = profile(1, 3);
    merged.identities.insert(email("p2@example.vn"));
    let second = ProfileBatch {
        links: vec![(email("new@example.vn"), ProfileId(1))],
        attributions: vec![(ProfileId(1), 4)],
        moves: vec![MergeRecord { into: ProfileId(1), from: ProfileId(2), at: 30, seq: 4, message_id: "m4".into() }],
        profiles: vec![merged],
        deleted: vec![ProfileId(2)],
        checkpoint: 4,
        next_profile_id: 3,
        flows: FlowBatch {
            states: vec![(ProfileId(1), Some(b"state-1b".to_vec()))],
            timers: vec![(ProfileId(1), None)],
            outbox: vec![outbox("r1:send:0", 1), outbox("r1:send:1", 1)],
            members: vec![("vip".into(), ProfileId(1), false)],
            counts: vec![(StepKey { flow: "chao-mung".into(), version: 2, step: "duyet".into() }, 2)],
            stats: vec![(FlowMeasure { flow: "chao-mung".into(), step: "".into(), measure: "entered".into() }, 1)],
            ..FlowBatch::default()
        },
    };
    vec![first, second]
}
