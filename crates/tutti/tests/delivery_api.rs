//! Dead letters and connectors through the real binary: a vendor refuses an action, the dead letter is listed
//! with its reason over the API and the CLI, replayed from the CLI, and delivered with its idempotency key; a
//! connector configured through environment variables is health-checked the way a send would go.

mod common;

use std::process::Command;

use common::{ADMIN_TOKEN, Server, cli, post_admin, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::{self, Fault, Vendors};

#[test]
fn dead_letters_are_listed_and_replayed_and_connectors_checked() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    vendors.inject("hook", [Fault::Status(422)]);
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(flows.path().join("ping.yaml"), common::ping_flow(&vendors.hook_url("ping"))).unwrap();
    let api_base = format!("http://{}/slack/api", vendors.addr);
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let env = [
        ("TUTTI_FLOWS__DIR", flows_dir.as_str()),
        ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
        ("TUTTI_CONNECTORS__SLACK__TOKEN_ENV", "T_SLACK_TOKEN"),
        ("TUTTI_CONNECTORS__SLACK__API_BASE", api_base.as_str()),
        ("TUTTI_CONNECTORS__SLACK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
        ("T_SLACK_TOKEN", testing::SLACK_TOKEN),
    ];
    let server = Server::start_in(data.path(), &env);

    let (status, body) = server.track("/v1/track", &json!({"userId": "lan", "event": "Pinged"}));
    assert_eq!(status, 200, "{body}");
    let mut letters = Value::Null;
    wait_until("the dead letter", || {
        letters = server.admin("/api/v1/dead-letters");
        letters["dead_letters"].as_array().is_some_and(|l| l.len() == 1)
    });
    let letter = &letters["dead_letters"][0];
    assert_eq!(letter["connector"], "webhook");
    assert!(letter["error"].as_str().unwrap().contains("HTTP 422"), "{letter}");
    assert_eq!(letter["attempts"], 1, "a 422 is permanent: not retried");
    let key = letter["key"].as_str().unwrap().to_owned();

    let (ok, out) = cli(&server, &["dead-letters", "list"]);
    assert!(ok && out.contains(&key) && out.contains("HTTP 422"), "{out}");
    let (status, body) = post_admin(&server, "/api/v1/dead-letters/replay", &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = post_admin(&server, "/api/v1/dead-letters/424242/replay", &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_dead_letter")), "{body}");

    let (ok, out) = cli(&server, &["dead-letters", "replay", "--connector", "webhook"]);
    assert!(ok && out.contains("replayed 1"), "{out}");
    wait_until("the replayed delivery", || vendors.received("hook").iter().any(|r| r.status == 200));
    let delivered: Vec<_> = vendors.received("hook").into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].headers["idempotency-key"], key.as_str(), "the same idempotency key");
    assert_eq!(delivered[0].body["who"], "lan");
    wait_until("the outcome recorded", || server.admin("/api/v1/dead-letters")["dead_letters"] == json!([]));

    let connectors = server.admin("/api/v1/connectors");
    let by_name =
        |name: &str| connectors["connectors"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!(by_name("slack")["configured"], true);
    assert_eq!(by_name("trello")["configured"], false);
    assert!(!connectors.to_string().contains(testing::SLACK_TOKEN), "secrets are never shown");
    let health = server.admin("/api/v1/connectors/slack/health");
    assert_eq!(health["ok"], true, "{health}");
    let (ok, out) = cli(&server, &["connectors", "check", "slack"]);
    assert!(ok && out.contains("slack: ok"), "{out}");
    let (status, body) = server.request("GET", "/api/v1/connectors/trello/health", Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_connector")), "{body}");
    let (status, _) = server.request("GET", "/api/v1/dead-letters", None);
    assert_eq!(status, 401, "the admin token is required");

    // Outcome events name profiles by id under a reserved prefix that clients may not use.
    let (status, body) =
        server.track("/v1/track", &json!({"anonymousId": "tutti:profile:1", "event": "Action Delivered"}));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_event")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("anonymousId"), "{body}");
    // The outcome event follows the settled outbox row (it is a courtesy written after the delivery's record),
    // so the dead letter can be gone from the list a moment before the event is in the log.
    let mut profile = Value::Null;
    wait_until("the replayed delivery on the profile", || {
        profile = server.profile("user_id:lan").1;
        !profile["event_counts"]["Action Delivered"].is_null()
    });
    assert_eq!(profile["event_counts"]["Action Delivered"], 1, "the replayed delivery is on the profile: {profile}");
}

#[test]
fn a_bad_connector_table_stops_the_start_naming_the_key() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .current_dir(data.path())
        .env("TUTTI_CONNECTORS__SLACK__TOKEN_ENV", "TUTTI_TEST_UNSET_TOKEN")
        .env("TUTTI_CONNECTORS__TRELO__KEY_ENV", "X")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("[connectors.slack]") && text.contains("TUTTI_TEST_UNSET_TOKEN"), "{text}");
    assert!(text.contains("[connectors.trelo]") && text.contains("no connector named"), "{text}");
}

#[test]
fn deliveries_are_counted_at_info_once_a_period() {
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        flows.path().join("note.yaml"),
        "flow: note\ntrigger: { event: Noted }\nentry: { every_time: true }\nsteps:\n  - id: write\n    action: log.write\n    with: { text: hi }\n",
    )
    .unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let env =
        [("TUTTI_FLOWS__DIR", flows_dir.as_str()), ("TUTTI_LOG__LEVEL", "info"), ("TUTTI_LOG__DELIVERY_SUMMARY", "1s")];
    let server = Server::start_in(data.path(), &env);
    for who in ["lan", "mei"] {
        let (status, body) = server.track("/v1/track", &json!({"userId": who, "event": "Noted"}));
        assert_eq!(status, 200, "{body}");
    }
    // Each process counts what it delivered: with several workers (`TUTTI_TEST_WORKERS`) the two may be counted
    // by two of them, so the summaries are added up.
    wait_until("summaries counting both deliveries", || {
        let delivered: u64 = server
            .output()
            .lines()
            .filter(|l| l.contains("INFO") && l.contains("deliveries in the last"))
            .filter_map(|l| l.split("log: delivered ").nth(1))
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
            .sum();
        delivered == 2
    });
    assert!(!server.output().contains("delivered 0"), "only what happened is counted");
}
