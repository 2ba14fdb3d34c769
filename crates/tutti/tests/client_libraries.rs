//! The official Segment clients (Python and Node) and RudderStack's Python SDK, unchanged except for their host
//! option, deliver page, track, identify, group and alias calls that end up on the right merged profile.
//! `scripts/test.sh` installs the clients into `.venv` and `tests/clients/node_modules`.

mod common;

use std::process::Command;

use common::{Server, WRITE_KEY, repo_root};
use serde_json::json;
use tutti_connectors::testing::tool_installed;

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo_root().join("tests/clients"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn check_profile(server: &Server, prefix: &str) {
    let (status, profile) = server.profile(&format!("email:{prefix}@example.vn"));
    assert_eq!(status, 200, "{prefix}: {profile}");
    assert_eq!(
        profile["event_counts"],
        json!({"page": 1, "Product Viewed": 1, "identify": 1, "group": 1, "alias": 1, "Order Completed": 1}),
        "{prefix}: every call landed on one profile"
    );
    let ids: Vec<String> = profile["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}:{}", i["type"].as_str().unwrap(), i["value"].as_str().unwrap()))
        .collect();
    for want in [
        format!("user_id:{prefix}-user"),
        format!("anonymous_id:{prefix}-anon"),
        format!("anonymous_id:{prefix}-anon2"),
        format!("email:{prefix}@example.vn"),
    ] {
        assert!(ids.contains(&want), "{prefix}: missing {want} in {ids:?}");
    }
    assert_eq!(profile["traits"]["name"], "Trần Văn An");
    assert_eq!(profile["groups"][format!("{prefix}-acme")]["traits"]["name"], "Công ty 越南");
    let (_, anon) = server.profile(&format!("anonymous_id:{prefix}-anon"));
    assert_eq!(anon["id"], profile["id"]);
}

#[test]
fn official_clients_deliver_to_merged_profiles() {
    let python = repo_root().join(".venv/bin/python");
    let node_clients = repo_root().join("tests/clients/node_modules/@segment/analytics-node");
    if !tool_installed(&python, "the Segment and RudderStack Python SDKs (in .venv)")
        || !tool_installed(&node_clients, "@segment/analytics-node")
    {
        return;
    }
    let server = Server::start();
    let python = python.to_str().unwrap();
    run(python, &["segment_python.py", "segment", WRITE_KEY, &server.url, "py-segment"]);
    run(python, &["segment_python.py", "rudder", WRITE_KEY, &server.url, "py-rudder"]);
    run("node", &["segment_node.mjs", WRITE_KEY, &server.url, "node-segment"]);
    for prefix in ["py-segment", "py-rudder", "node-segment"] {
        check_profile(&server, prefix);
    }
    // RudderStack's SDK gzips its batches: those requests were decompressed, not refused.
    assert_eq!(server.metric("tutti_events_rejected_total{reason=\"unsupported_encoding\"}"), 0.0);
}
