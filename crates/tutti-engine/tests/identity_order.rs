//! Property: the final profiles do not depend on the order in which identify, alias, track, page and group
//! events arrive. Each case runs the real engine (SQLite, processor thread) twice, once per order, and compares
//! what every identifier resolves to.
//!
//! Events are generated for a few people, each with one user id, two anonymous ids and one email; an identifier
//! never belongs to two people. (When two people claim one identifier, Segment's limits decide by arrival
//! order by design; `crates/tutti/tests/tracking_api.rs` covers that rule.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use tutti_core::{BatchDefaults, Event};
use tutti_engine::config::Config;
use tutti_engine::{Engine, ManualClock, NewEvent};

#[derive(Debug, Clone)]
enum Op {
    Identify { person: usize, anon: Option<usize>, email: bool, plan: u8 },
    LoginByEmail { person: usize, anon: usize },
    Track { person: usize, anon: Option<usize>, name: u8 },
    Page { person: usize, anon: usize, tz: bool },
    Alias { person: usize, anon: usize },
    Group { person: usize, group: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let person = 0..3usize;
    prop_oneof![
        (person.clone(), proptest::option::of(0..2usize), any::<bool>(), 0..3u8)
            .prop_map(|(person, anon, email, plan)| Op::Identify { person, anon, email, plan }),
        (person.clone(), 0..2usize).prop_map(|(person, anon)| Op::LoginByEmail { person, anon }),
        (person.clone(), proptest::option::of(0..2usize), 0..3u8).prop_map(|(person, anon, name)| Op::Track {
            person,
            anon,
            name
        }),
        (person.clone(), 0..2usize, any::<bool>()).prop_map(|(person, anon, tz)| Op::Page { person, anon, tz }),
        (person.clone(), 0..2usize).prop_map(|(person, anon)| Op::Alias { person, anon }),
        (person, 0..2u8).prop_map(|(person, group)| Op::Group { person, group }),
    ]
}

fn to_json(index: usize, op: &Op) -> Value {
    // Few distinct timestamps, so ties happen and must be broken the same way in every order.
    let ts = format!("2026-03-01T00:00:0{}Z", index % 4);
    let mid = format!("m{index:03}");
    let user = |p: usize| format!("user-{p}");
    let anon = |p: usize, a: usize| format!("anon-{p}-{a}");
    let mut v = match op {
        Op::Identify { person, anon: a, email, plan } => {
            let mut traits = json!({"plan": format!("plan-{plan}"), "tên": format!("Người {person}")});
            if *email {
                traits["email"] = json!(format!("Person{person}@Example.vn"));
            }
            let mut v = json!({"type": "identify", "userId": user(*person), "traits": traits});
            if let Some(a) = a {
                v["anonymousId"] = json!(anon(*person, *a));
            }
            v
        }
        Op::LoginByEmail { person, anon: a } => {
            json!({"type": "identify", "anonymousId": anon(*person, *a), "traits": {"email": format!("person{person}@example.vn")}})
        }
        Op::Track { person, anon: a, name } => {
            let mut v = json!({"type": "track", "event": format!("Event {name}")});
            match a {
                Some(a) => v["anonymousId"] = json!(anon(*person, *a)),
                None => v["userId"] = json!(user(*person)),
            }
            v
        }
        Op::Page { person, anon: a, tz } => {
            let mut v = json!({"type": "page", "anonymousId": anon(*person, *a), "name": "Giá 价格"});
            if *tz {
                v["context"] = json!({"timezone": "Asia/Ho_Chi_Minh", "locale": "vi-VN"});
            }
            v
        }
        Op::Alias { person, anon: a } => {
            json!({"type": "alias", "userId": user(*person), "previousId": anon(*person, *a)})
        }
        Op::Group { person, group } => {
            json!({"type": "group", "userId": user(*person), "groupId": format!("g{group}"), "traits": {"size": person}})
        }
    };
    v["messageId"] = json!(mid);
    v["timestamp"] = json!(ts);
    v
}

/// Runs the events through a fresh engine in the given order; returns identifier -> profile (without its id).
fn run(events: &[Value]) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    let engine = Engine::start(config, Arc::new(ManualClock::new(1_800_000_000_000))).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for v in events {
        let event =
            Event::from_json(v.clone(), None, &BatchDefaults::default(), 1_800_000_000_000, String::new).unwrap();
        runtime.block_on(engine.ingest(vec![NewEvent::of(event, true)])).unwrap();
    }
    assert!(engine.sync(Duration::from_secs(30)), "the processor caught up");
    let mut out = BTreeMap::new();
    for p in 0..3 {
        let mut keys = vec![format!("user_id:user-{p}"), format!("email:person{p}@example.vn")];
        keys.extend((0..2).map(|a| format!("anonymous_id:anon-{p}-{a}")));
        for key in keys {
            let parsed = engine.parse_key(&key).unwrap();
            if let Some(id) = engine.resolve_key(&parsed).unwrap() {
                let mut profile = engine.profile(id).unwrap().unwrap().to_public_json();
                let object = profile.as_object_mut().unwrap();
                object.remove("id");
                object.remove("merged_from");
                out.insert(key, profile);
            }
        }
    }
    engine.shutdown();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn profiles_do_not_depend_on_arrival_order(
        (ops, order) in proptest::collection::vec(op(), 1..24).prop_flat_map(|ops| {
            let n = ops.len();
            (Just(ops), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let events: Vec<Value> = ops.iter().enumerate().map(|(i, op)| to_json(i, op)).collect();
        let shuffled: Vec<Value> = order.iter().map(|i| events[*i].clone()).collect();
        let a = run(&events);
        let b = run(&shuffled);
        prop_assert_eq!(a, b);
    }
}
