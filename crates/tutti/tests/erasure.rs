//! Erasure is complete: afterwards the person's email appears nowhere in the data directory (databases, WAL,
//! free pages), and events already in flight cannot bring the profile back.

mod common;

use common::{ADMIN_TOKEN, Server};
use serde_json::json;

fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn erasure_leaves_no_trace_and_in_flight_events_do_not_recreate_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let email = "erase.me.please@example.vn";
    // Someone else's data must survive the erasure.
    assert_eq!(
        server.track("/v1/identify", &json!({"userId": "keeper", "traits": {"email": "keeper@example.vn"}})).0,
        200
    );
    assert_eq!(server.track("/v1/page", &json!({"anonymousId": "cookie-x", "name": "Home"})).0, 200);
    assert_eq!(
        server
            .track(
                "/v1/identify",
                &json!({"userId": "gone", "anonymousId": "cookie-x", "traits": {"email": email, "name": "Phạm Thu"}})
            )
            .0,
        200
    );
    for i in 0..50 {
        let e = json!({"userId": "gone", "event": "Viewed", "properties": {"note": format!("{email} #{i}")}});
        assert_eq!(server.track("/v1/track", &e).0, 200);
    }
    let (_, profile) = server.profile(&format!("email:{email}"));
    assert_eq!(profile["event_counts"]["Viewed"], 50);
    assert!(!files_containing(dir.path(), email.as_bytes()).is_empty(), "the email is stored before erasure");

    let (status, report) = server.request("DELETE", &format!("/api/v1/profiles/email:{email}"), Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 52);
    assert_eq!(report["identities"], 3);

    // A client retry of an event from before the erasure arrives afterwards: it must not re-create the person.
    let retry =
        json!({"userId": "gone", "event": "Viewed", "timestamp": "2020-01-01T00:00:00Z", "properties": {"e": email}});
    assert_eq!(server.track("/v1/track", &retry).0, 200);
    assert_eq!(server.profile("user_id:gone").0, 404);
    assert_eq!(server.profile(&format!("email:{email}")).0, 404);
    assert_eq!(server.profile("anonymous_id:cookie-x").0, 404);
    assert_eq!(server.metric("tutti_events_erased_in_flight_total"), 1.0);

    let hits = files_containing(dir.path(), email.as_bytes());
    assert!(hits.is_empty(), "the erased email is still in {hits:?}");
    assert!(files_containing(dir.path(), b"Ph\xe1\xba\xa1m Thu").is_empty(), "the erased name is still stored");
    let (_, keeper) = server.profile("user_id:keeper");
    assert_eq!(keeper["traits"]["email"], "keeper@example.vn");
    assert!(!files_containing(dir.path(), b"keeper@example.vn").is_empty());
    assert_eq!(server.request("DELETE", &format!("/api/v1/profiles/email:{email}"), Some(ADMIN_TOKEN)).0, 404);
}
