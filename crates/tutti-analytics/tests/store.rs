//! The analytics store with real SQLite: events projected, queried through the compiler, merged and erased.

use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tutti_analytics::answer::{Facts, Runner};
use tutti_analytics::metrics::MetricsLayer;
use tutti_analytics::project::project;
use tutti_analytics::sqlite::{Cursor, Limits, Merge, SqliteAnalytics, SqliteAnalyticsReader};
use tutti_analytics::{Period, Query};
use tutti_core::Event;

struct NoFacts;
impl Facts for NoFacts {
    fn segment_size(&self, _: &str) -> Option<u64> {
        None
    }
    fn flow_totals(&self, _: &str) -> Option<Vec<(String, u64)>> {
        None
    }
}

fn event(v: Value) -> Event {
    Event::from_json(v, None, &Default::default(), 1_000, || "m".into()).unwrap()
}

fn order(at: &str, user: &str, currency: &str, products: Value) -> Value {
    json!({"type": "track", "userId": user, "event": "Order Completed", "timestamp": at,
           "properties": {"currency": currency, "products": products,
             "revenue": products.as_array().unwrap().iter().map(|p| p["price"].as_f64().unwrap() * p["quantity"].as_f64().unwrap_or(1.0)).sum::<f64>()}})
}

fn november() -> Period {
    Period {
        from: "2026-11-01T00:00:00+07:00".into(),
        to: "2026-12-01T00:00:00+07:00".into(),
        label: Some("last month".into()),
    }
}

#[test]
fn orders_are_ranked_summed_merged_and_erased() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("analytics.db");
    let layer = MetricsLayer::defaults();
    let mut store = SqliteAnalytics::open(&path).unwrap();
    store.reset(&layer.projection_fingerprint()).unwrap();
    let rows = [
        (
            1,
            10,
            order(
                "2026-11-02T03:00:00Z",
                "a",
                "VND",
                json!([{"name": "Trà", "price": 50000, "quantity": 3}, {"name": "Cà phê", "price": 40000, "quantity": 1}]),
            ),
        ),
        (2, 11, order("2026-11-20T03:00:00Z", "b", "VND", json!([{"name": "Cà phê", "price": 40000, "quantity": 5}]))),
        (3, 12, order("2026-11-21T03:00:00Z", "c", "USD", json!([{"name": "Tea", "price": 4.5, "quantity": 2}]))),
        // 30 November 20:00 UTC is 1 December in Ho Chi Minh City: not last month there.
        (4, 10, order("2026-11-30T20:00:00Z", "a", "VND", json!([{"name": "Trà", "price": 50000, "quantity": 100}]))),
        (
            5,
            13,
            json!({"type": "identify", "userId": "d", "traits": {"city": "Hà Nội"}, "timestamp": "2026-11-01T00:00:00Z"}),
        ),
    ];
    let projected: Vec<_> =
        rows.iter().map(|(seq, profile, v)| project(*seq, &event(v.clone()), *profile, &layer)).collect();
    store.apply(&projected, &[], Cursor { log: 5, merges: 0 }).unwrap();
    assert_eq!(store.cursor().unwrap(), Cursor { log: 5, merges: 0 });

    let reader = SqliteAnalyticsReader::new(&path);
    let zone = TimeZone::get("Asia/Ho_Chi_Minh").unwrap();
    let runner = Runner { layer: &layer, zone: &zone, reader: &reader, facts: &NoFacts, limits: Limits::default() };
    let ask = |q: Value| {
        let query: Query = serde_json::from_value(q).unwrap();
        runner.answer(query, "en", vec![], "local").unwrap()
    };
    let top = ask(json!({"kind": "metric", "measure": "revenue", "by": "product", "period": november(), "limit": 5}));
    assert_eq!(top.columns, ["product", "currency", "revenue"]);
    assert_eq!(
        top.rows,
        vec![
            vec![json!("Cà phê"), json!("VND"), json!(240000)],
            vec![json!("Trà"), json!("VND"), json!(150000)],
            vec![json!("Tea"), json!("USD"), json!(9)],
        ]
    );
    assert!(top.sql.as_deref().unwrap().contains("FROM b JOIN items x"), "{:?}", top.sql);
    let units = ask(json!({"kind": "metric", "measure": "units", "by": "product", "period": november(), "limit": 1}));
    assert_eq!(units.rows, vec![vec![json!("Cà phê"), json!(6)]]);
    assert_eq!(units.answer, "The product with the most units sold in last month: Cà phê (6).");
    let total = ask(json!({"kind": "metric", "measure": "revenue", "period": november()}));
    assert_eq!(total.rows, vec![vec![json!("USD"), json!(9)], vec![json!("VND"), json!(390000)]]);
    assert_eq!(total.answer, "Revenue in last month: 9 USD + 390,000 VND.");
    assert!(total.assumptions.iter().any(|a| a.contains("never converted")));
    let daily = ask(json!({"kind": "metric", "measure": "orders", "grain": "day", "period": november()}));
    assert_eq!(daily.rows.len(), 30);
    assert_eq!(daily.rows[1], vec![json!("2026-11-02"), json!(1)]);

    // b was the same person as a all along.
    store.apply(&[], &[Merge { id: 1, into: 10, from: 11 }], Cursor { log: 5, merges: 1 }).unwrap();
    let customers = ask(json!({"kind": "metric", "measure": "customers", "period": november()}));
    assert_eq!(customers.rows, vec![vec![json!(2)]]);
    let people =
        ask(json!({"kind": "people", "did": ["Order Completed"], "did_not": ["identify"], "period": november()}));
    assert_eq!(people.rows, vec![vec![json!(2)]]);
    let buyers = ask(json!({"kind": "people", "did": ["Order Completed"], "period": november()}));
    assert_eq!(buyers.rows, vec![vec![json!(2)]], "people, not their three orders");

    assert_eq!(store.erase(&[10]).unwrap(), 3);
    let top = ask(json!({"kind": "metric", "measure": "revenue", "by": "product", "period": november()}));
    assert_eq!(top.rows, vec![vec![json!("Tea"), json!("USD"), json!(9)]]);
    assert_eq!(store.count("active").unwrap(), 2);
}

#[test]
fn a_query_past_its_deadline_is_stopped_and_the_store_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("analytics.db");
    let mut store = SqliteAnalytics::open(&path).unwrap();
    store.reset("x").unwrap();
    let reader = SqliteAnalyticsReader::new(&path);
    let slow = tutti_analytics::compile::Sql {
        text: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n".into(),
        params: vec![],
    };
    let limits = Limits { rows: 10, time: std::time::Duration::from_millis(50) };
    let err = reader.run(&slow, limits).unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    let write = tutti_analytics::compile::Sql { text: "DELETE FROM events".into(), params: vec![] };
    assert!(reader.run(&write, limits).is_err(), "a question's connection cannot write");
    let many = tutti_analytics::compile::Sql {
        text: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) SELECT i FROM n".into(),
        params: vec![],
    };
    let rows = reader.run(&many, limits).unwrap();
    assert_eq!((rows.rows.len(), rows.truncated), (10, true));
}
