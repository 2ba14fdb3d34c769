//! Creatives in Postgres beside SQLite's: the same imports, tags and snapshots give the same answers, counted
//! the same way (inserted, updated, unchanged), with headlines in Vietnamese and Chinese.

#![cfg(feature = "postgres")]

mod common;

use std::collections::BTreeMap;

use common::Schema;
use tutti_core::creative::{Creative, Daily, Date, Owner, Performance, Tag, TagSource};
use tutti_store::CreativeStore;
use tutti_store::postgres::creatives::PgCreativeStore;
use tutti_store::postgres::pool::Pool;
use tutti_store::sqlite::{CREATIVES_FILE, SqliteCreativeStore};

fn creative(id: &str, headline: &str, owner: Owner) -> Creative {
    Creative {
        id: id.to_owned(),
        campaign: "tết-2027".to_owned(),
        channel: "facebook".to_owned(),
        language: "vi".to_owned(),
        headline: headline.to_owned(),
        body: "Giảm 30% hôm nay".to_owned(),
        call_to_action: "Mua ngay".to_owned(),
        landing_url: "https://shop.example.vn/tet".to_owned(),
        owner,
        launched: Some(Date::constant(2026, 3, 1)),
        tags: BTreeMap::new(),
    }
}

fn row(id: &str, day: i8, impressions: u64, revenue: Option<i64>) -> Performance {
    Performance {
        creative: id.to_owned(),
        date: Date::constant(2026, 3, day),
        numbers: Daily { impressions, clicks: 10, conversions: 1, spend_micros: 5_000_000, revenue_micros: revenue },
    }
}

fn tag(value: &str, source: TagSource) -> BTreeMap<String, Tag> {
    let tag = match source {
        TagSource::Manual => Tag::manual(value),
        other => Tag { value: value.to_owned(), confidence: 0.75, source: other, why: Some("vì giá".to_owned()) },
    };
    BTreeMap::from([("tone".to_owned(), tag)])
}

/// Every write and read, as JSON, for comparing two stores.
fn exercise(store: &dyn CreativeStore) -> serde_json::Value {
    let mut out = Vec::new();
    let mut with_tag = creative("b", "担心数据安全", Owner::Competitor("rival-co".to_owned()));
    with_tag.tags = tag("rational", TagSource::Local);
    let mut no_launch = creative("c", "Mệt mỏi?", Owner::Ours);
    no_launch.launched = None;
    let all = vec![creative("a", "Mệt mỏi?", Owner::Ours), with_tag, no_launch];
    out.push(serde_json::to_value(store.put_creatives(&all).unwrap()).unwrap());
    out.push(serde_json::to_value(store.put_creatives(&all).unwrap()).unwrap());
    let mut changed = all.clone();
    changed[1].headline = "担心数据安全？".to_owned();
    changed[2].launched = Some(Date::constant(2026, 4, 1));
    out.push(serde_json::to_value(store.put_creatives(&changed).unwrap()).unwrap());

    let rows = vec![row("a", 1, 100, None), row("a", 2, 200, Some(7_000_000)), row("b", 1, 50, None)];
    out.push(serde_json::to_value(store.put_performance(&rows).unwrap()).unwrap());
    out.push(serde_json::to_value(store.put_performance(&rows).unwrap()).unwrap());
    out.push(serde_json::to_value(store.put_performance(&[row("a", 2, 250, None)]).unwrap()).unwrap());

    store.put_tags("a", &tag("emotional", TagSource::Manual)).unwrap();
    store.put_tags("a", &tag("rational", TagSource::Model)).unwrap();
    out.push(serde_json::to_value(store.creative("a").unwrap()).unwrap());
    out.push(serde_json::json!([
        store.clear_manual_tag("a", "tone").unwrap(),
        store.clear_manual_tag("a", "tone").unwrap()
    ]));
    store.put_tags("a", &tag("rational", TagSource::Model)).unwrap();

    out.push(serde_json::to_value(store.creatives().unwrap()).unwrap());
    out.push(serde_json::to_value(store.creative("none").unwrap()).unwrap());
    let sorted = |totals: std::collections::HashMap<String, tutti_core::creative::Totals>| {
        let sorted: BTreeMap<_, _> = totals.into_iter().collect();
        serde_json::to_value(sorted).unwrap()
    };
    out.push(sorted(store.totals(None, None).unwrap()));
    out.push(sorted(store.totals(Some(Date::constant(2026, 3, 2)), None).unwrap()));
    out.push(sorted(store.totals(None, Some(Date::constant(2026, 3, 1))).unwrap()));
    out.push(store.count_performance().unwrap().into());
    out.push(serde_json::to_value(store.snapshot("alerts").unwrap()).unwrap());
    store.put_snapshot("alerts", "{\"v\": 1}").unwrap();
    store.put_snapshot("alerts", "{\"v\": 2, \"vi\": \"cảnh báo\"}").unwrap();
    out.push(serde_json::to_value(store.snapshot("alerts").unwrap()).unwrap());
    serde_json::Value::Array(out)
}

#[test]
fn postgres_keeps_creatives_as_sqlite_does() {
    let schema = Schema::new();
    drop(schema.migrated());
    let pg = PgCreativeStore::new(Pool::new(&schema.url(), 2).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteCreativeStore::open(&dir.path().join(CREATIVES_FILE)).unwrap();
    let (from_pg, from_sqlite) = (exercise(&pg), exercise(&sqlite));
    assert_eq!(from_pg, from_sqlite);
    // What both said, checked once by hand so that two equally wrong stores do not pass.
    assert_eq!(from_pg[0], serde_json::json!({"inserted": 3, "updated": 0, "unchanged": 0}));
    assert_eq!(from_pg[1], serde_json::json!({"inserted": 0, "updated": 0, "unchanged": 3}));
    assert_eq!(from_pg[2], serde_json::json!({"inserted": 0, "updated": 2, "unchanged": 1}));
    assert_eq!(from_pg[5], serde_json::json!({"inserted": 0, "updated": 1, "unchanged": 0}));
    assert_eq!(from_pg[6]["tags"]["tone"]["value"], "emotional", "a manual tag wins: {}", from_pg[6]);
    assert_eq!(from_pg[7], serde_json::json!([true, false]));
    assert_eq!(from_pg[10]["a"]["impressions"], 350);
    assert_eq!(from_pg[11]["a"]["impressions"], 250);
    assert!(from_pg[11].get("b").is_none());
    assert_eq!(from_pg[13], 3);
    assert_eq!(from_pg[15], "{\"v\": 2, \"vi\": \"cảnh báo\"}");
}
