//! The tracking API's contract, end to end through a real server.

mod common;

use std::io::Write;

use common::{ADMIN_TOKEN, Server, WRITE_KEY};
use serde_json::{Value, json};
use tutti_core::time::parse_timestamp;

#[test]
fn a_retried_message_is_stored_once() {
    let server = Server::start();
    let event = json!({"userId": "u1", "event": "Signed Up", "messageId": "retry-me"});
    for _ in 0..3 {
        assert_eq!(server.track("/v1/track", &event).0, 200);
    }
    let (status, body) = server.track(
        "/v1/batch",
        &json!({"batch": [{"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "retry-me"}]}),
    );
    assert_eq!((status, body["duplicates"].as_u64()), (200, Some(1)));
    assert_eq!(server.all_events().len(), 1);
    assert_eq!(server.metric("tutti_events_duplicate_total"), 3.0);
    let (_, profile) = server.profile("user_id:u1");
    assert_eq!(profile["event_counts"]["Signed Up"], 1);
}

#[test]
fn timestamps_are_corrected_and_received_at_is_set_by_the_server() {
    let server = Server::start();
    // The client's clock runs a year ahead; it says the event happened 5 s before sending.
    let event =
        json!({"userId": "u", "event": "E", "timestamp": "2027-06-01T00:00:00Z", "sentAt": "2027-06-01T00:00:05Z"});
    assert_eq!(server.track("/v1/track", &event).0, 200);
    let stored = &server.all_events()[0]["event"];
    let received = parse_timestamp(stored["receivedAt"].as_str().unwrap()).unwrap();
    let corrected = parse_timestamp(stored["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(received - corrected, 5_000, "{stored}");
    assert_eq!(stored["originalTimestamp"], "2027-06-01T00:00:00.000Z");
}

#[test]
fn write_key_in_the_body_and_gzip_bodies_are_accepted() {
    let server = Server::start();
    let (status, _) = server.post_raw(
        "/v1/identify",
        json!({"writeKey": WRITE_KEY, "userId": "u2", "traits": {"name": "Lê Minh"}}).to_string().as_bytes(),
        &[],
    );
    assert_eq!(status, 200);
    let batch = json!({"writeKey": WRITE_KEY, "batch": [{"type": "track", "userId": "u2", "event": "Đặt hàng 下单"}]});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(batch.to_string().as_bytes()).unwrap();
    let (status, body) = server.post_raw("/v1/batch", &enc.finish().unwrap(), &[("Content-Encoding", "gzip")]);
    assert_eq!(status, 200, "{body}");
    let (_, profile) = server.profile("user_id:u2");
    assert_eq!(profile["traits"]["name"], "Lê Minh");
    assert_eq!(profile["event_counts"]["Đặt hàng 下单"], 1);
    assert!(
        !server.all_events().iter().any(|e| e["event"].get("writeKey").is_some()),
        "the write key must not be stored"
    );
}

#[test]
fn batches_store_valid_items_and_name_the_rejected_ones() {
    let server = Server::start();
    let (status, body) = server.track(
        "/v1/batch",
        &json!({
            "context": {"locale": "vi-VN", "library": {"name": "test"}},
            "integrations": {"All": false},
            "batch": [
                {"type": "identify", "userId": "u3", "traits": {"email": "u3@example.vn"}},
                {"type": "track", "userId": "u3"},
                {"type": "page", "anonymousId": "a3", "name": "Home", "context": {"locale": "zh-CN"}},
                {"type": "screen", "userId": "u3", "name": "Cart"},
                {"type": "group", "userId": "u3", "groupId": "g1", "traits": {"name": "Công ty ABC"}},
                {"type": "alias", "userId": "u3", "previousId": "a3"},
                {"type": "identify", "userId": 17}
            ]
        }),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["rejected"],
        json!([{"index": 1, "code": "invalid_event", "field": "event", "message": "event: is required for track"}])
    );
    let events = server.all_events();
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["event"]["context"]["locale"], "vi-VN");
    assert_eq!(events[1]["event"]["context"]["locale"], "zh-CN", "the item's own context wins");
    assert_eq!(events[1]["event"]["context"]["library"]["name"], "test");
    assert_eq!(events[0]["event"]["integrations"]["All"], false);
    assert_eq!(events[5]["event"]["userId"], "17", "numeric ids become strings");

    // The alias merged the anonymous page view into u3's profile.
    let (_, profile) = server.profile("email:U3@Example.vn");
    assert_eq!(profile["groups"]["g1"]["traits"]["name"], "Công ty ABC");
    assert_eq!(profile["event_counts"], json!({"identify": 1, "page": 1, "screen": 1, "group": 1, "alias": 1}));
    assert_eq!(profile["locale"], "vi-VN");
    let ids: Vec<&str> =
        profile["identities"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
    assert!(ids.contains(&"a3") && ids.contains(&"u3") && ids.contains(&"u3@example.vn"), "{ids:?}");
    let (_, anon) = server.profile("anonymous_id:a3");
    assert_eq!(anon["id"], profile["id"]);
}

#[test]
fn an_anonymous_visitor_who_identifies_merges_into_the_known_profile_and_the_merge_is_recorded() {
    let server = Server::start();
    assert_eq!(
        server.track("/v1/identify", &json!({"userId": "u4", "traits": {"email": "u4@example.com", "plan": "pro"}})).0,
        200
    );
    assert_eq!(server.profile("user_id:u4").0, 200);
    for path in ["/pricing", "/pricing", "/features"] {
        let e = json!({"anonymousId": "cookie-4", "event": "Page Viewed", "properties": {"path": path}, "context": {"timezone": "Asia/Shanghai"}});
        assert_eq!(server.track("/v1/track", &e).0, 200);
    }
    let (_, anon_before) = server.profile("anonymous_id:cookie-4");
    let (_, known_before) = server.profile("user_id:u4");
    assert_ne!(anon_before["id"], known_before["id"]);

    // Logging in: the anonymous profile identifies as u4 by email only.
    let login = json!({"anonymousId": "cookie-4", "traits": {"email": " U4@Example.com "}, "messageId": "login-1"});
    assert_eq!(server.track("/v1/identify", &login).0, 200);
    let (_, merged) = server.profile("anonymous_id:cookie-4");
    assert_eq!(merged["id"], known_before["id"], "the anonymous profile merged into the known one");
    assert_eq!(merged["event_counts"]["Page Viewed"], 3);
    assert_eq!(merged["traits"]["plan"], "pro");
    assert_eq!(merged["timezone"], "Asia/Shanghai");
    assert_eq!(merged["merged_from"], json!([anon_before["id"]]));
    let (status, _) =
        server.request("GET", &format!("/api/v1/profiles/{}", anon_before["id"].as_str().unwrap()), Some(ADMIN_TOKEN));
    assert_eq!(status, 404, "the merged-away profile no longer exists");
    let merges = server.admin("/api/v1/profiles/user_id:u4/merges");
    assert_eq!(merges["merges"][0]["from"], anon_before["id"]);
    assert_eq!(merges["merges"][0]["message_id"], "login-1");
    let events = server.admin("/api/v1/profiles/user_id:u4/events?limit=2");
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    let before = events["next_before"].as_u64().unwrap();
    let older = server.admin(&format!("/api/v1/profiles/user_id:u4/events?limit=10&before={before}"));
    assert_eq!(older["events"].as_array().unwrap().len(), 3, "5 events in all, newest first, paged");
    assert_eq!(server.metric("tutti_merges_total"), 1.0);
}

#[test]
fn a_second_user_id_does_not_merge_and_blocked_values_identify_nobody() {
    let server = Server::start();
    assert_eq!(
        server.track("/v1/identify", &json!({"userId": "alice", "traits": {"email": "shared@example.com"}})).0,
        200
    );
    // Segment's documented case: a new user id with an email already held by another user id.
    assert_eq!(
        server.track("/v1/identify", &json!({"userId": "bob", "traits": {"email": "shared@example.com"}})).0,
        200
    );
    let (_, alice) = server.profile("user_id:alice");
    let (_, bob) = server.profile("user_id:bob");
    assert_ne!(alice["id"], bob["id"]);
    let (_, by_email) = server.profile("email:shared@example.com");
    assert_eq!(by_email["id"], alice["id"], "the email stays with the profile that had it");
    // "null", "undefined", "0" never link anyone together.
    for user in ["carol", "dave"] {
        let e = json!({"userId": user, "anonymousId": "undefined", "traits": {"email": "null", "phone": "0000"}});
        assert_eq!(server.track("/v1/identify", &e).0, 200);
    }
    let (_, carol) = server.profile("user_id:carol");
    let (_, dave) = server.profile("user_id:dave");
    assert_ne!(carol["id"], dave["id"]);
    assert_eq!(carol["identities"].as_array().unwrap().len(), 1);
    let (status, body) = server.profile("anonymous_id:undefined");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("profile_not_found")),
        "a blocked value identifies nobody"
    );
}

#[test]
fn max_user_ids_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("TUTTI_IDENTITY__MAX_USER_IDS", "2")]);
    for user in ["shop-1", "crm-1"] {
        assert_eq!(
            server.track("/v1/identify", &json!({"userId": user, "traits": {"email": "same@example.com"}})).0,
            200
        );
    }
    let (_, a) = server.profile("user_id:shop-1");
    let (_, b) = server.profile("user_id:crm-1");
    assert_eq!(a["id"], b["id"], "with two user ids allowed, both land on one profile");
}

#[test]
fn healthz_is_public_and_metrics_are_prometheus_text() {
    let server = Server::start();
    assert_eq!(server.request("GET", "/healthz", None).1["status"], "ok");
    let (status, text) = server.request("GET", "/metrics", Some(ADMIN_TOKEN));
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    for name in [
        "tutti_events_received_total",
        "tutti_events_accepted_total",
        "tutti_events_rejected_total{reason=\"invalid_json\"}",
        "tutti_commit_latency_seconds_bucket{le=\"0.001\"}",
        "tutti_profiles",
        "tutti_merges_total",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
}

/// One raw request with headers: status, response headers (lower-case names), body.
fn raw(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let agent = common::agent();
    let url = format!("{}{path}", server.url);
    let mut request = ureq::http::Request::builder().method(method).uri(&url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = agent.run(request.body(body.to_owned()).unwrap()).expect("request");
    let status = response.status().as_u16();
    let headers =
        response.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    (status, headers, response.body_mut().read_to_string().unwrap_or_default())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn web_pages_may_call_the_tracking_api_and_decide_but_not_the_admin_api() {
    let server = Server::start();
    let page = "https://shop.example.vn";
    let (status, headers, _) = raw(
        &server,
        "OPTIONS",
        "/v1/track",
        &[
            ("Origin", page),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type"),
        ],
        "",
    );
    assert_eq!(status, 204);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(page));
    assert!(header(&headers, "access-control-allow-methods").unwrap().contains("POST"));
    assert_eq!(header(&headers, "access-control-allow-headers"), Some("authorization, content-type"));
    let auth = Server::basic_auth();
    let body = json!({"userId": "lan", "event": "Viewed"}).to_string();
    let (status, headers, _) = raw(
        &server,
        "POST",
        "/v1/track",
        &[("Origin", page), ("Authorization", &auth), ("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(page));
    let (status, headers, _) =
        raw(&server, "OPTIONS", "/api/v1/decide", &[("Origin", page), ("Access-Control-Request-Method", "GET")], "");
    assert_eq!(status, 204);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(page));
    let (_, headers, _) = raw(
        &server,
        "GET",
        "/api/v1/events",
        &[("Origin", page), ("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        "",
    );
    assert_eq!(header(&headers, "access-control-allow-origin"), None, "the admin API is not for pages");

    // With origins configured, others are refused with the JSON error.
    let data = tempfile::tempdir().unwrap();
    let strict = Server::start_in(data.path(), &[("TUTTI_SERVER__TRACKING_ORIGINS", "[\"https://shop.example.vn\"]")]);
    let (status, _, body) = raw(
        &strict,
        "OPTIONS",
        "/v1/track",
        &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")],
        "",
    );
    assert_eq!(status, 403);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "forbidden");
    let (status, headers, _) =
        raw(&strict, "OPTIONS", "/v1/batch", &[("Origin", page), ("Access-Control-Request-Method", "POST")], "");
    assert_eq!((status, header(&headers, "access-control-allow-origin")), (204, Some(page)));
}
