//! Malformed, oversized and hostile requests: each gets the right 4xx and a JSON error, the server stays up,
//! and nothing is stored.

mod common;

use std::io::Write;

use common::{ADMIN_TOKEN, Server};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    path: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn cases() -> Vec<Case> {
    let auth = || vec![("Authorization", Server::basic_auth())];
    let mut out = Vec::new();
    let mut add = |name, path, body: Vec<u8>, headers: Vec<(&'static str, String)>, status, code| {
        out.push(Case { name, path, body, headers, status, code });
    };
    let j = |v: Value| v.to_string().into_bytes();
    let big = "x".repeat(40 * 1024);
    let deep = format!("{{\"userId\":\"u\",\"event\":\"e\",\"properties\":{}1{}}}", "[".repeat(300), "]".repeat(300));
    let many: Vec<Value> =
        (0..2501).map(|i| json!({"type": "track", "userId": format!("u{i}"), "event": "E"})).collect();

    add("empty body", "/v1/track", vec![], auth(), 400, "invalid_json");
    add("truncated JSON", "/v1/track", b"{\"userId\":".to_vec(), auth(), 400, "invalid_json");
    add("not JSON at all", "/v1/track", b"hello".to_vec(), auth(), 400, "invalid_json");
    add("JSON null", "/v1/track", b"null".to_vec(), auth(), 400, "invalid_event");
    add("JSON array", "/v1/identify", b"[1,2]".to_vec(), auth(), 400, "invalid_event");
    add("JSON string", "/v1/page", b"\"page\"".to_vec(), auth(), 400, "invalid_event");
    add("JSON number", "/v1/track", b"42".to_vec(), auth(), 400, "invalid_event");
    add("track without event", "/v1/track", j(json!({"userId": "u"})), auth(), 400, "invalid_event");
    add("track with empty event", "/v1/track", j(json!({"userId": "u", "event": ""})), auth(), 400, "invalid_event");
    add("event is a number", "/v1/track", j(json!({"userId": "u", "event": 7})), auth(), 400, "invalid_event");
    add("no identifier", "/v1/track", j(json!({"event": "E"})), auth(), 400, "invalid_event");
    add("userId is an object", "/v1/track", j(json!({"userId": {"a": 1}, "event": "E"})), auth(), 400, "invalid_event");
    add("userId is an array", "/v1/identify", j(json!({"userId": [1]})), auth(), 400, "invalid_event");
    add("anonymousId is a bool", "/v1/page", j(json!({"anonymousId": true})), auth(), 400, "invalid_event");
    add(
        "properties is a string",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "properties": "x"})),
        auth(),
        400,
        "invalid_event",
    );
    add("traits is an array", "/v1/identify", j(json!({"userId": "u", "traits": []})), auth(), 400, "invalid_event");
    add(
        "context is a number",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "context": 1})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "integrations is a string",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "integrations": "all"})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "timestamp not a date",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "timestamp": "tomorrow"})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "timestamp is a number",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "timestamp": 1700000000})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "sentAt not a date",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "sentAt": "2026-13-45"})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "messageId is an object",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "messageId": {}})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "messageId too long",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "messageId": "m".repeat(2000)})),
        auth(),
        400,
        "invalid_event",
    );
    add("huge userId", "/v1/track", j(json!({"userId": big, "event": "E"})), auth(), 400, "event_too_large");
    add(
        "huge property",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "properties": {"p": big}})),
        auth(),
        400,
        "event_too_large",
    );
    add("deep nesting", "/v1/track", deep.into_bytes(), auth(), 400, "invalid_json");
    add(
        "invalid UTF-8",
        "/v1/track",
        b"{\"userId\":\"\xff\xfe\",\"event\":\"E\"}".to_vec(),
        auth(),
        400,
        "invalid_json",
    );
    add("lone surrogate", "/v1/track", br#"{"userId":"\ud800","event":"E"}"#.to_vec(), auth(), 400, "invalid_json");
    add(
        "number out of range",
        "/v1/track",
        br#"{"userId":"u","event":"E","properties":{"n":1e999}}"#.to_vec(),
        auth(),
        400,
        "invalid_json",
    );
    add("raw NUL byte", "/v1/track", b"{\"userId\":\"u\",\0\"event\":\"E\"}".to_vec(), auth(), 400, "invalid_json");
    add(
        "escaped NUL in value",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "properties": {"a": "b\u{0}"}})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "escaped NUL in key",
        "/v1/track",
        j(json!({"userId": "u", "event": "E", "properties": {"a\u{0}": 1}})),
        auth(),
        400,
        "invalid_event",
    );
    let mut gz = auth();
    gz.push(("Content-Encoding", "gzip".into()));
    add("gzip bomb", "/v1/batch", gzip(&vec![b' '; 50 * 1024 * 1024]), gz.clone(), 400, "request_too_large");
    add("corrupt gzip", "/v1/track", b"\x1f\x8b\x08\x00garbage".to_vec(), gz.clone(), 415, "unsupported_encoding");
    let mut br = auth();
    br.push(("Content-Encoding", "br".into()));
    add("unsupported encoding", "/v1/track", j(json!({"userId": "u", "event": "E"})), br, 415, "unsupported_encoding");
    let ok_event = j(json!({"userId": "u", "event": "E"}));
    add("no auth", "/v1/track", ok_event.clone(), vec![], 401, "unauthorized");
    add(
        "wrong write key",
        "/v1/track",
        ok_event.clone(),
        vec![("Authorization", "Basic d3Jvbmc6".into())],
        401,
        "unauthorized",
    );
    add(
        "garbage basic auth",
        "/v1/track",
        ok_event.clone(),
        vec![("Authorization", "Basic !!!".into())],
        401,
        "unauthorized",
    );
    add(
        "bearer on tracking",
        "/v1/track",
        ok_event.clone(),
        vec![("Authorization", format!("Bearer {ADMIN_TOKEN}"))],
        401,
        "unauthorized",
    );
    add(
        "wrong writeKey in body",
        "/v1/track",
        j(json!({"writeKey": "nope", "userId": "u", "event": "E"})),
        vec![],
        401,
        "unauthorized",
    );
    add("writeKey of wrong type", "/v1/batch", j(json!({"writeKey": 5, "batch": []})), vec![], 401, "unauthorized");
    add("no auth and bad JSON", "/v1/track", b"{{{".to_vec(), vec![], 401, "unauthorized");
    add("oversize body", "/v1/batch", vec![b' '; 600 * 1024], auth(), 400, "request_too_large");
    add("2,501 events", "/v1/batch", j(json!({"batch": many})), auth(), 400, "batch_too_large");
    add("batch is an object", "/v1/batch", j(json!({"batch": {"type": "track"}})), auth(), 400, "invalid_event");
    add("batch missing", "/v1/batch", j(json!({"events": []})), auth(), 400, "invalid_event");
    add(
        "batch item of unknown type",
        "/v1/batch",
        j(json!({"batch": [{"type": "purchase", "userId": "u"}]})),
        auth(),
        400,
        "all_events_rejected",
    );
    add(
        "batch item without type",
        "/v1/batch",
        j(json!({"batch": [{"userId": "u", "event": "E"}]})),
        auth(),
        400,
        "all_events_rejected",
    );
    add(
        "batch item not an object",
        "/v1/batch",
        j(json!({"batch": [1, "two", null]})),
        auth(),
        400,
        "all_events_rejected",
    );
    add(
        "batch item too large",
        "/v1/batch",
        j(json!({"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"p": big}}]})),
        auth(),
        400,
        "all_events_rejected",
    );
    add(
        "batch context not an object",
        "/v1/batch",
        j(json!({"batch": [], "context": [1]})),
        auth(),
        400,
        "invalid_event",
    );
    add(
        "batch sentAt not a date",
        "/v1/batch",
        j(json!({"batch": [], "sentAt": "later"})),
        auth(),
        400,
        "invalid_event",
    );
    add("group without groupId", "/v1/group", j(json!({"userId": "u"})), auth(), 400, "invalid_event");
    add("alias without previousId", "/v1/alias", j(json!({"userId": "u"})), auth(), 400, "invalid_event");
    add(
        "type does not match endpoint",
        "/v1/track",
        j(json!({"type": "identify", "userId": "u", "event": "E"})),
        auth(),
        400,
        "invalid_event",
    );
    add("unknown endpoint", "/v1/purchase", ok_event.clone(), auth(), 404, "not_found");
    out
}

#[test]
fn every_hostile_request_gets_a_json_4xx_and_nothing_is_stored() {
    let server = Server::start();
    let cases = cases();
    assert!(cases.len() >= 40, "the table must hold at least 40 cases, has {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let headers: Vec<(&str, &str)> = case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = server.post_raw(case.path, &case.body, &headers);
        let code = body["error"]["code"].as_str().unwrap_or("<no JSON error>");
        let message = body["error"]["message"].as_str().unwrap_or("");
        if status != case.status || code != case.code || message.is_empty() {
            failures.push(format!("{}: got {status} {code} ({body}), want {} {}", case.name, case.status, case.code));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Other methods and the admin API refuse in the same shape.
    let (status, body) = server.request("GET", "/v1/track", None);
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    for (path, token, want_status, want_code) in [
        ("/api/v1/profiles/user_id:u", None, 401, "unauthorized"),
        ("/api/v1/profiles/user_id:u", Some("wrong"), 401, "unauthorized"),
        ("/metrics", None, 401, "unauthorized"),
        ("/api/v1/profiles/email:", Some(ADMIN_TOKEN), 400, "invalid_profile_key"),
        ("/api/v1/profiles/nonsense", Some(ADMIN_TOKEN), 400, "invalid_profile_key"),
        ("/api/v1/profiles/user_id:u/events?limit=abc", Some(ADMIN_TOKEN), 400, "invalid_query"),
        ("/api/v1/profiles/user_id:u/events?limit=5000", Some(ADMIN_TOKEN), 400, "invalid_query"),
        ("/api/v1/events?bogus=1", Some(ADMIN_TOKEN), 400, "invalid_query"),
        ("/api/v1/profiles/user_id:nobody", Some(ADMIN_TOKEN), 404, "profile_not_found"),
        // Page sizes outside what the OpenAPI document declares are refused, not clamped.
        ("/api/v1/approvals?limit=1001", Some(ADMIN_TOKEN), 400, "invalid_query"),
        ("/api/v1/runs?limit=0", Some(ADMIN_TOKEN), 400, "invalid_query"),
        ("/api/v1/outbox?limit=1001", Some(ADMIN_TOKEN), 400, "invalid_query"),
        ("/api/v1/dead-letters?limit=0", Some(ADMIN_TOKEN), 400, "invalid_query"),
    ] {
        let (status, body) = server.request("GET", path, token);
        assert_eq!((status, body["error"]["code"].as_str()), (want_status, Some(want_code)), "GET {path}: {body}");
    }

    // A consistent read with nothing ever written answers at once, not after the 10 s wait.
    let started = std::time::Instant::now();
    let (status, _) = server.request("GET", "/api/v1/profiles/p0?consistent=true", Some(ADMIN_TOKEN));
    assert_eq!(status, 404);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());

    // Still up, and nothing was stored.
    assert_eq!(server.request("GET", "/healthz", None).0, 200);
    assert_eq!(server.metric("tutti_events_accepted_total"), 0.0);
    assert!(server.all_events().is_empty());
    assert!(server.metric("tutti_events_rejected_total{reason=\"invalid_event\"}") > 10.0);

    // And it still accepts good input afterwards.
    let (status, _) = server.track("/v1/track", &json!({"userId": "u", "event": "E"}));
    assert_eq!(status, 200);
    assert_eq!(server.all_events().len(), 1);
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_its_databases_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    // Made by someone else, open to all: the server closes it.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start_in(&dir, &[]);
    let (status, _) = server.track("/v1/track", &json!({"userId": "lan", "event": "Signed Up"}));
    assert_eq!(status, 200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    let mut databases = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".db") || name == "secrets.toml" {
            assert_eq!(mode(&path), 0o600, "{name}");
            databases += 1;
        }
    }
    assert!(databases >= 4, "the databases and their logs were looked at: {databases}");
}

/// Sends raw bytes on a new connection; returns the status and the body of the answer.
fn raw_http(server: &Server, request: &[u8]) -> (u16, String) {
    use std::io::Read;
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading all of a huge request.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn answers_the_http_layer_gives_by_itself_carry_the_json_error() {
    let server = Server::start();
    let long_uri = format!("GET /v1/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let mut many_headers = String::from("POST /v1/track HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        many_headers.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");
    for (request, status, code) in [
        (long_uri.as_bytes(), 414, "uri_too_long"),
        (many_headers.as_bytes(), 431, "headers_too_large"),
        (b"NOT-HTTP at all\r\n\r\n".as_slice(), 400, "invalid_request"),
    ] {
        let (got, body) = raw_http(&server, request);
        assert_eq!(got, status, "{body}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status}: {e}: {body:?}"));
        assert_eq!(error["error"]["code"], code);
    }
    assert_eq!(server.request("GET", "/healthz", None).0, 200);
}
