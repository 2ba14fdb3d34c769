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
    let agent = common::agent();
    let mut checked = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let url = format!(
                "{}{}",
                server.url,
                path.replace("{key}", "p1").replace("{id}", "x").replace("{name}", "flow.json")
            );
            let mut response = match method.as_str() {
                "get" => agent.get(&url).call(),
                "delete" => agent.delete(&url).call(),
                "post" => agent.post(&url).header("Content-Type", "application/json").send("{}"),
                "put" => agent.put(&url).header("Content-Type", "application/yaml").send("flow: x"),
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
