//! Erasure is complete: afterwards the person's email appears nowhere in the data directory (databases, WAL,
//! free pages), and events already in flight cannot bring the profile back.

mod common;

use common::{ADMIN_TOKEN, Server};
use serde_json::json;

/// Every file under `dir` (the event log's NATS store included, when the suite runs on NATS) whose bytes hold
/// `needle`, and, when the suite keeps profiles in Postgres, the data of the test's schema too.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    if common::on_postgres()
        && common::postgres_data(dir).is_some_and(|data| {
            let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
            data.windows(needle.len()).any(|w| w == needle) || data.windows(hex.len()).any(|w| w == hex.as_bytes())
        })
    {
        hits.push("the Postgres schema".into());
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
                &json!({"userId": "gone", "anonymousId": "cookie-x", "traits": {"email": email, "name": "Phạm Thu", "city": "Làng Xóa Sạch"}})
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
    // The city is kept for reports in analytics.db too.
    let city = "Làng Xóa Sạch".as_bytes();
    common::wait_until("the city in the analytics store", || {
        files_containing(dir.path(), city)
            .iter()
            .any(|f| f.ends_with("analytics.db") || f.ends_with("analytics.db-wal"))
    });

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

    let gone = || {
        files_containing(dir.path(), email.as_bytes()).is_empty()
            && files_containing(dir.path(), b"Ph\xe1\xba\xa1m Thu").is_empty()
            && files_containing(dir.path(), city).is_empty()
    };
    // At once on one worker. Other workers sharing the database erase their own copies (their analytics tables)
    // at their next round of the leases.
    if common::test_workers() > 1 {
        common::wait_until("the erased email, name and city gone from every worker's files", gone);
    }
    for needle in [email.as_bytes(), "Phạm Thu".as_bytes(), city] {
        let hits = files_containing(dir.path(), needle);
        assert!(hits.is_empty(), "{:?} is still in {hits:?}", String::from_utf8_lossy(needle));
    }
    let (_, keeper) = server.profile("user_id:keeper");
    assert_eq!(keeper["traits"]["email"], "keeper@example.vn");
    assert!(!files_containing(dir.path(), b"keeper@example.vn").is_empty());
    assert_eq!(server.request("DELETE", &format!("/api/v1/profiles/email:{email}"), Some(ADMIN_TOKEN)).0, 404);
}

/// A vendor's answer about the person (here a receiver that echoes what it was sent) is kept with the action's
/// outcome, in the outcome journal first and then on the outbox row: after the erasure it is in neither, nor in
/// any write-ahead log.
#[test]
fn erasure_also_removes_what_vendors_answered_about_the_person() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(tutti_connectors::testing::Vendors::start());
    let dir = tempfile::tempdir().unwrap();
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(
        flows.path().join("echo.yaml"),
        format!(
            "flow: echo\ncategory: transactional\ntrigger: {{ event: Viewed }}\nentry: {{ every_time: true }}\nsteps:\n  - id: tell\n    action: webhook.post\n    with: {{ url: '{}', who: '{{{{ profile.traits.email }}}}' }}\n",
            vendors.hook_url("echo/crm")
        ),
    )
    .unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let env =
        [("TUTTI_FLOWS__DIR", flows_dir.as_str()), ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]")];
    let server = Server::start_in(dir.path(), &env);
    let email = "echoed.back@example.vn";
    let identify = json!({"userId": "echoed", "traits": {"email": email}});
    assert_eq!(server.track("/v1/identify", &identify).0, 200);
    for _ in 0..20 {
        assert_eq!(server.track("/v1/track", &json!({"userId": "echoed", "event": "Viewed"})).0, 200);
    }
    common::wait_until("20 answers settled", || {
        server.admin("/api/v1/outbox?state=done&limit=100")["actions"].as_array().is_some_and(|a| a.len() == 20)
    });
    let hits = files_containing(dir.path(), email.as_bytes());
    assert!(hits.iter().any(|h| h.contains("outcomes.db")), "the echo went through the outcome journal: {hits:?}");

    let (status, report) = server.request("DELETE", &format!("/api/v1/profiles/email:{email}"), Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{report}");
    // The journal is scrubbed by the recorder once the outcomes it held are settled: shortly after the erasure.
    common::wait_until("the echoed email gone from the data directory", || {
        files_containing(dir.path(), email.as_bytes()).is_empty()
    });
}
