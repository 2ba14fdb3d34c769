//! The duplicate window: 2,000 actions in a burst and five `kill -9` while they are delivered. Every action
//! arrives, and the same-key deliveries repeated by the restarts are at most what was in flight at each kill
//! (the connector's concurrency), because each outcome is recorded as soon as the vendor answers.

mod common;

use std::collections::HashMap;

use common::{Server, wait_until};
use serde_json::json;
use tutti_connectors::testing::{self, Vendors};

const ACTIONS: usize = 2_000;
const KILLS: usize = 5;
const CONCURRENCY: usize = 16;

#[test]
fn a_burst_with_five_kills_repeats_at_most_what_was_in_flight() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let data = tempfile::tempdir().unwrap();
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(
        flows.path().join("burst.yaml"),
        format!(
            "flow: burst\ncategory: transactional\ntrigger: {{ event: Ordered }}\nsteps:\n  - id: notify\n    action: webhook.post\n    with: {{ url: '{}', order: '{{{{ event.properties.n }}}}' }}\n",
            vendors.hook_url("orders")
        ),
    )
    .unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let concurrency = CONCURRENCY.to_string();
    let env = [
        ("TUTTI_FLOWS__DIR", flows_dir.as_str()),
        ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
        ("TUTTI_CONNECTORS__WEBHOOK__CONCURRENCY", concurrency.as_str()),
        ("TUTTI_CONNECTORS__WEBHOOK__SIGNING_SECRET_ENV", "T_WEBHOOK_SECRET"),
        ("T_WEBHOOK_SECRET", testing::WEBHOOK_SECRET),
    ];
    let mut server = Server::start_in(data.path(), &env);
    let batch: Vec<_> = (0..ACTIONS)
        .map(|n| json!({"type": "track", "userId": format!("u{n}"), "event": "Ordered", "properties": {"n": n}}))
        .collect();
    let (status, body) = server.track("/v1/batch", &json!({"batch": batch}));
    assert_eq!(status, 200, "{body}");

    let delivered = || vendors.received("hook").iter().filter(|r| r.status == 200).count();
    for kill in 1..=KILLS {
        // Kill while deliveries are under way: after another share of the burst has arrived.
        let share = kill * ACTIONS / (KILLS + 2);
        wait_until("deliveries under way", || delivered() >= share);
        server.kill9();
        server = Server::start_in(data.path(), &env);
    }
    let keys = || -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in vendors.received("hook").iter().filter(|r| r.status == 200) {
            let key = r.idempotency_key().to_owned();
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    };
    wait_until("every action delivered", || keys().len() == ACTIONS);
    let counts = keys();
    let repeated: usize = counts.values().map(|n| n - 1).sum();
    let worst = counts.values().max().copied().unwrap_or(0);
    println!(
        "{ACTIONS} actions, {KILLS} kills: {repeated} repeated deliveries (at most {} allowed), a key at most {worst} times",
        KILLS * CONCURRENCY
    );
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals().first());
    assert!(repeated <= KILLS * CONCURRENCY, "{repeated} repeated deliveries");
    drop(server);
}
