//! The OpenAPI document served at /api/v1/openapi.json describes the server as it is: every documented
//! operation is routed (no `not_found` or `method_not_allowed` from the router), and operations that declare
//! a security requirement refuse a request without credentials with 401.

mod common;

use common::Server;
use serde_json::Value;

#[test]
fn every_documented_operation_exists_and_is_guarded_as_declared() {
    let server = Server::start();
    let (status, doc) = server.request("GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15, "{} paths", paths.len());
    let mut checked = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            // A connection of its own per request: a request refused before its body is read (no token) ends its
            // connection, and a pooled one could be reused just as the server closes it.
            let agent = common::agent();
            let url = format!(
                "{}{}",
                server.url,
                path.replace("{key}", "p1")
                    .replace("{id}", "x")
                    .replace("{name}", "flow.json")
                    .replace("{email}", "a@b.c")
            );
            let mut response = match method.as_str() {
                "get" => agent.get(&url).call(),
                "delete" => agent.delete(&url).call(),
                "post" => agent.post(&url).header("Content-Type", "application/json").send("{}"),
                "put" => agent.put(&url).header("Content-Type", "application/yaml").send("flow: x"),
                "patch" => agent.patch(&url).header("Content-Type", "application/json").send("{}"),
                other => panic!("unexpected method {other} in the document"),
            }
            .expect("a response");
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            let code =
                serde_json::from_str::<Value>(&body).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            let what = format!("{method} {path}: {status} {body}");
            assert!(
                !matches!(code.as_deref(), Some("not_found" | "method_not_allowed")),
                "documented but not routed: {what}"
            );
            let security = operation.get("security").unwrap_or(&doc["security"]);
            let open = security
                .as_array()
                .is_some_and(|s| s.is_empty() || s.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
            // A signed link with a made-up token is refused as such (`invalid_link`), which shows it is routed.
            if open && method == "get" && path.contains("{token}") {
                assert_eq!(code.as_deref(), Some("invalid_link"), "{what}");
            } else if open && path.starts_with("/hooks/") {
                // No hook file serves the made-up source: refused as such, which shows it is routed.
                assert_eq!(code.as_deref(), Some("unknown_hook"), "{what}");
            } else if open && method == "get" {
                assert_eq!(status, 200, "declared open: {what}");
            } else if !open {
                assert_eq!(status, 401, "declared secured: {what}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "{checked} operations");
}

/// Requests where server and document disagreed (found by Schemathesis, tests/api/run.sh): each now answers
/// as the document says. Raw bodies, so numbers such as `793.0` reach the server as written.
#[test]
fn requests_the_document_allows_or_forbids_answer_accordingly() {
    let server = Server::start();
    let admin = format!("Bearer {}", common::ADMIN_TOKEN);
    let basic = Server::basic_auth();
    let json = ("Content-Type", "application/json");
    // (method, path, body, authorization, expected status)
    let cases: [(&str, &str, &str, &str, u16); 14] = [
        // A read past every sequence number was a 500 (an overflow adding 1).
        ("GET", "/api/v1/events?after=18446744073709551615&limit=100", "", &admin, 200),
        // A placeholder identity identifies nobody: 404, like any unknown profile, not a malformed key.
        ("GET", "/api/v1/profiles/user_id:null", "", &admin, 404),
        ("GET", "/api/v1/profiles/anonymous_id:0", "", &admin, 404),
        // Digits only: `+5` is not a profile id.
        ("GET", "/api/v1/audit?profile=%2B5", "", &admin, 400),
        // JSON Schema's integers include 793.0; past the documented bounds is refused.
        ("POST", "/api/v1/dead-letters/replay", r#"{"all": true, "limit": 793.0}"#, &admin, 200),
        ("POST", "/api/v1/dead-letters/replay", r#"{"seqs": [4413273872597334.0]}"#, &admin, 200),
        ("POST", "/api/v1/dead-letters/replay", r#"{"all": true, "limit": 10001}"#, &admin, 400),
        ("POST", "/api/v1/dead-letters/replay", r#"{"connector": "", "seqs": [1]}"#, &admin, 400),
        ("POST", "/api/v1/dead-letters/replay", r#"{"seqs": [1.5]}"#, &admin, 400),
        // A day's counts are bounded so totals never overflow.
        (
            "POST",
            "/api/v1/creatives/c1/performance",
            r#"{"days": [{"date": "2026-12-01", "impressions": 1e13}]}"#,
            &admin,
            400,
        ),
        // The write key in a body is a string, whether or not the header authorised the call.
        ("POST", "/v1/track", r#"{"userId": "u1", "event": "E", "writeKey": 7}"#, &basic, 400),
        ("POST", "/v1/batch", r#"{"batch": [], "writeKey": 7}"#, &basic, 400),
        // `type: null` on a single-event endpoint means the endpoint's own type, as documented.
        ("POST", "/v1/identify", r#"{"userId": "u1", "type": null}"#, &basic, 200),
        ("GET", "/api/v1/audit?limit=100001", "", &admin, 400),
    ];
    let agent = common::agent();
    for (method, path, body, auth, expected) in cases {
        let url = format!("{}{path}", server.url);
        let mut response = match method {
            "GET" => agent.get(&url).header("Authorization", auth).call(),
            _ => agent.post(&url).header("Authorization", auth).header(json.0, json.1).send(body),
        }
        .expect("a response");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, expected, "{method} {path} {body}: {text}");
        if status >= 400 {
            let answer: Value = serde_json::from_str(&text).expect("a JSON error");
            assert!(answer["error"]["code"].is_string(), "{method} {path}: {text}");
        }
    }
}
