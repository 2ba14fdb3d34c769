//! A segment defined after the data arrived: 100,000 existing profiles worked out at once by the backfill, with
//! members counted exactly, behaviour read from each profile's history, and flows triggered by entering it.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use serde_json::json;
use tutti_core::{BatchDefaults, Event};
use tutti_engine::config::Config;
use tutti_engine::{Engine, ManualClock, NewEvent};

const PEOPLE: u64 = 100_000;

fn ingest_all(engine: &Engine, events: impl Iterator<Item = serde_json::Value>) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let received = engine.clock.now_ms();
    let mut batch = Vec::with_capacity(1000);
    for (i, v) in events.enumerate() {
        let mid = format!("m-{i}");
        batch
            .push(NewEvent::of(Event::from_json(v, None, &BatchDefaults::default(), received, || mid).unwrap(), false));
        if batch.len() == 1000 {
            runtime.block_on(engine.ingest(std::mem::take(&mut batch))).unwrap();
        }
    }
    runtime.block_on(engine.ingest(batch)).unwrap();
    assert!(engine.sync(Duration::from_secs(300)), "the processor caught up");
}

#[test]
fn a_segment_defined_after_the_data_counts_every_existing_member() {
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(tutti_core::time::parse_timestamp("2026-12-01T09:00:00Z").unwrap()));
    let mut config = Config::default();
    config.storage.data_dir = data.path().to_owned();
    let engine = Engine::start(config, clock.clone()).unwrap();

    // Everyone is identified; one in ten is on the pro plan; one in twenty viewed pricing twice.
    let identifies = (0..PEOPLE).map(|i| {
        let plan = if i % 10 == 0 { "pro" } else { "free" };
        json!({"type": "identify", "userId": format!("u{i}"), "traits": {"plan": plan}})
    });
    let views = (0..PEOPLE).filter(|i| i % 20 == 0).flat_map(|i| {
        (0..2).map(move |_| json!({"type": "track", "userId": format!("u{i}"), "event": "Viewed Pricing"}))
    });
    ingest_all(&engine, identifies.chain(views));

    // Defined now: with nothing more arriving, the members are there at once.
    let pro = "segment: pro\nwhen: \"profile.traits.plan == 'pro'\"\n";
    let curious = "segment: pricing-curious\nbehaviour:\n  - { performed: Viewed Pricing, at_least: 2, within: 30d }\n";
    let welcome = "flow: pro-welcome\ntrigger: { segment: pro }\nsteps:\n  - id: mark\n    update_profile: { traits: { welcomed: true } }\n";
    engine.put_definition("segment", "pro", pro, None).unwrap();
    engine.put_definition("segment", "pricing-curious", curious, None).unwrap();
    engine.put_definition("flow", "pro-welcome", welcome, None).unwrap();

    let started = Instant::now();
    loop {
        let backfills = engine.segment_backfills().unwrap();
        let done = backfills.len() == 2 && backfills.iter().all(|b| b.finished_at.is_some());
        if done {
            for b in &backfills {
                assert_eq!((b.done, b.total), (PEOPLE, PEOPLE), "{b:?}");
            }
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the backfill did not finish: {backfills:?}");
        std::thread::yield_now();
    }
    println!("backfilled 2 segments over {PEOPLE} profiles in {:.1} s (debug build)", started.elapsed().as_secs_f64());
    assert_eq!(engine.segment_members("pro", 0, 1).unwrap().1, PEOPLE / 10);
    assert_eq!(engine.segment_members("pricing-curious", 0, 1).unwrap().1, PEOPLE / 20);
    let stats = engine.flow_stats("pro-welcome").unwrap();
    let entered = stats.iter().find(|(step, m, _)| step.is_empty() && m == "entered").map(|(_, _, n)| *n);
    assert_eq!(entered, Some(PEOPLE / 10), "entering the segment started the flow for each member");
    let someone = engine.parse_key("user_id:u20").and_then(|k| engine.resolve_key(&k).unwrap()).unwrap();
    assert_eq!(engine.segments_of(someone).unwrap(), ["pricing-curious", "pro"]);
    assert_eq!(engine.profile(someone).unwrap().unwrap().traits["welcomed"].value, true);

    // A changed segment is worked out again; an unchanged one is not.
    let first = engine.segment_backfills().unwrap().into_iter().find(|b| b.segment == "pro").unwrap().source_hash;
    let pro_or_team = "segment: pro\nwhen: \"profile.traits.plan in ['pro', 'team']\"\n";
    engine.put_definition("segment", "pro", pro_or_team, None).unwrap();
    let started = Instant::now();
    loop {
        let backfills = engine.segment_backfills().unwrap();
        let pro = backfills.iter().find(|b| b.segment == "pro").unwrap();
        if pro.source_hash != first && pro.finished_at.is_some() {
            assert_eq!(pro.done, PEOPLE);
            let curious = backfills.iter().find(|b| b.segment == "pricing-curious").unwrap();
            assert!(curious.started_at <= pro.started_at && curious.finished_at.is_some());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the second backfill did not finish");
        std::thread::yield_now();
    }
    assert_eq!(engine.segment_members("pro", 0, 1).unwrap().1, PEOPLE / 10, "the same members, none twice");
    engine.shutdown();
}
