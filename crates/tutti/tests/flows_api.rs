//! Flows through the real binary: definitions managed over the admin API, runs inspected, and a SIGKILL while
//! runs wait and actions sit in the outbox, after which every action reaches the webhook stand-in exactly once.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Server, wait_until};
use serde_json::json;
use tutti_connectors::testing::Vendors;

/// Every request the webhook stand-in received, as (idempotency key, answered with 200).
fn hook_log(vendors: &Vendors) -> Vec<(String, bool)> {
    vendors
        .received("hook")
        .iter()
        .map(|r| {
            let key = r.idempotency_key().to_owned();
            (key, r.status == 200)
        })
        .collect()
}

fn accepted(log: &[(String, bool)]) -> Vec<String> {
    log.iter().filter(|(_, ok)| *ok).map(|(k, _)| k.clone()).collect()
}

#[test]
fn sigkill_with_runs_waiting_and_actions_queued_loses_and_doubles_nothing() {
    // The webhook receiver is down (503, a vendor outage) until the server has been killed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    vendors.set_down("hook", true);
    let data = tempfile::tempdir().unwrap();
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(
        flows.path().join("ping.yaml"),
        format!(
            "flow: ping\ncategory: transactional\ntrigger: {{ event: Pinged }}\nsteps:\n  - id: call\n    action: webhook.post\n    with: {{ url: '{}', user: '{{{{ event.userId }}}}' }}\n",
            vendors.hook_url("ping")
        ),
    )
    .unwrap();
    std::fs::write(
        flows.path().join("welcome.yaml"),
        format!(
            "flow: welcome\ncategory: transactional\ntrigger: {{ event: Signed Up }}\nsteps:\n  - id: pause\n    wait: 3s\n  - id: greet\n    action: webhook.post\n    with: {{ url: '{}', text: 'Chào mừng {{{{ event.userId }}}} 欢迎' }}\n",
            vendors.hook_url("welcome")
        ),
    )
    .unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    // The breaker is set out of reach: this test is about a kill while every ping waits for its retry.
    let env = [
        ("TUTTI_FLOWS__DIR", flows_dir.as_str()),
        ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
        ("TUTTI_CONNECTORS__WEBHOOK__BREAKER_FAILURES", "100000"),
    ];
    let mut server = Server::start_in(data.path(), &env);
    let people = 20;
    for p in 0..people {
        let (status, body) = server.track("/v1/track", &json!({"userId": format!("u{p}"), "event": "Pinged"}));
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.track("/v1/track", &json!({"userId": format!("u{p}"), "event": "Signed Up"}));
        assert_eq!(status, 200, "{body}");
    }
    // Every ping has been tried once and refused (503): they sit in the outbox for a retry.
    wait_until("every ping tried once", || hook_log(&vendors).len() >= people);
    let pending = server.admin("/api/v1/outbox?state=pending");
    assert!(pending["actions"].as_array().unwrap().len() >= people / 2, "{pending}");
    // A 200 means the event is durable, not yet processed: wait for the processor to start every run.
    common::wait_until("every welcome run waiting", || {
        let runs = server.admin("/api/v1/runs?flow=welcome&limit=100");
        runs["runs"].as_array().unwrap().iter().filter(|r| r["status"]["state"] == "waiting").count() == people
    });
    server.kill9();

    vendors.set_down("hook", false);
    let server = Server::start_in(data.path(), &env);
    wait_until("every action delivered", || {
        let mut keys = accepted(&hook_log(&vendors));
        keys.sort();
        keys.dedup();
        keys.len() >= 2 * people
    });
    let log = hook_log(&vendors);
    let keys = accepted(&log);
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2 * people, "every action arrived: {log:?}");
    assert_eq!(keys.len(), 2 * people, "and none twice: {log:?}");
    let runs = server.admin("/api/v1/runs?flow=welcome&limit=100");
    let completed = runs["runs"].as_array().unwrap().iter().filter(|r| r["status"]["state"] == "completed").count();
    assert_eq!(completed, people, "{runs}");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

#[test]
fn definitions_are_versioned_validated_and_served() {
    let server = Server::start();
    let flow = "flow: hello\ntrigger: { event: Signed Up }\nsteps:\n  - id: note\n    action: log.write\n    with: { text: 'Xin chào {{ profile.traits.name }}' }\n";
    let (status, body) = server.put("/api/v1/flows/hello", flow);
    assert_eq!((status, &body["version"]), (200, &json!(1)), "{body}");
    let (status, body) = server.put("/api/v1/flows/hello", &flow.replace("Xin chào", "你好"));
    assert_eq!((status, &body["version"]), (200, &json!(2)), "{body}");
    let got = server.admin("/api/v1/flows/hello");
    assert_eq!(got["version"], 2);
    assert!(got["source"].as_str().unwrap().contains("你好"));
    assert_eq!(server.admin("/api/v1/flows")["flows"][0]["id"], "hello");

    // Every problem, with its line and a hint.
    let (status, body) = server.put(
        "/api/v1/flows/bad",
        "flow: bad\ntrigger: { event: X }\nsteps:\n  - id: a\n    action: slak.post_message\n    nxt: b\n",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_definition");
    let problems = body["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["line"] == 5 && p["message"].as_str().unwrap().contains("unknown connector `slak`")),
        "{body}"
    );
    assert!(
        problems.iter().any(|p| p["line"] == 6 && p["hint"].as_str().unwrap().contains("did you mean `next`")),
        "{body}"
    );
    // The id in the path must be the id in the file; a segment a flow names must exist.
    let (status, body) = server.put("/api/v1/flows/other", flow);
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_definition")), "{body}");
    let (status, body) = server
        .put("/api/v1/flows/vip", "flow: vip\ntrigger: { segment: vips }\nsteps:\n  - id: a\n    action: log.write\n");
    assert_eq!(status, 400, "{body}");
    assert!(body["problems"][0]["message"].as_str().unwrap().contains("unknown segment `vips`"), "{body}");

    // A segment, its members and its count.
    let (status, body) = server.put(
        "/api/v1/segments/vips",
        "segment: vips\nwhen: 'has(profile.traits.plan) && profile.traits.plan == \"vip\"'\n",
    );
    assert_eq!(status, 200, "{body}");
    for (user, plan) in [("a", "vip"), ("b", "free"), ("c", "vip")] {
        let (status, _) = server.track("/v1/identify", &json!({"userId": user, "traits": {"plan": plan}}));
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let members = loop {
        let members = server.admin("/api/v1/segments/vips/members");
        // The count and the list are two reads: wait until both show the second member.
        let listed = members["members"].as_array().map_or(0, Vec::len);
        if (members["count"] == 2 && listed == 2) || Instant::now() > deadline {
            break members;
        }
        std::thread::yield_now();
    };
    assert_eq!(members["count"], 2, "{members}");
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    let (status, body) = server.request("GET", "/api/v1/segments/nobody/members", Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_segment")));

    // Runs of the flow, with their path and reasons.
    let (status, _) = server.track("/v1/track", &json!({"userId": "a", "event": "Signed Up"}));
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let runs = server.admin("/api/v1/runs?profile=user_id:a");
        if runs["runs"].as_array().is_some_and(|r| !r.is_empty()) || Instant::now() > deadline {
            break runs;
        }
        std::thread::yield_now();
    };
    let run = &runs["runs"][0];
    assert_eq!(run["flow"], "hello");
    assert_eq!(run["version"], 2);
    assert_eq!(run["status"]["state"], "completed");
    let decisions: Vec<&str> =
        run["path"].as_array().unwrap().iter().map(|d| d["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["entered", "action", "completed"], "{run}");
    assert_eq!(run["path"][1]["payload"]["text"], "你好 ");

    // Deleting: gone from the list; deleting again is 404.
    let (status, _) = server.request("DELETE", "/api/v1/flows/hello", Some(ADMIN_TOKEN));
    assert_eq!(status, 204);
    let (status, body) = server.request("DELETE", "/api/v1/flows/hello", Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_flow")));
    assert_eq!(server.admin("/api/v1/flows")["flows"], json!([]));
    // The schemas are public.
    let (status, schema) = server.request("GET", "/api/v1/schemas/flow.json", None);
    assert_eq!(status, 200);
    assert_eq!(schema["title"], "Tutti flow");
}
