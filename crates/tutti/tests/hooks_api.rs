//! Inbound webhooks through the real binary: hook files in the hooks directory, each source's signature checked
//! as its vendor signs (HubSpot v3, Zendesk, Slack), payloads mapped to events on the right profiles, vendor
//! retries stored once, and every kind of bad request answered with its own error code.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{ADMIN_TOKEN, Server};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const SECRET: &str = "hook-secret-xyz";

fn mac(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn hubspot_headers(path: &str, body: &[u8]) -> Vec<(String, String)> {
    common::hubspot_headers(SECRET, path, body)
}

fn post(server: &Server, path: &str, body: &[u8], headers: &[(String, String)]) -> (u16, Value) {
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.post_raw(path, body, &refs)
}

#[test]
fn signed_webhooks_become_events_once_and_bad_ones_are_refused() {
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(
        hooks.path().join("crm.yaml"),
        "source: crm\nverify: { scheme: hubspot_v3, secret_env: T_HOOK_SECRET, public_url: 'https://mkt.example.vn' }\nbuiltin: crm-objection\n",
    )
    .unwrap();
    std::fs::write(
        hooks.path().join("desk.yaml"),
        "source: desk\nverify: { scheme: zendesk, secret_env: T_HOOK_SECRET }\nbuiltin: support-complaint\n",
    )
    .unwrap();
    std::fs::write(
        hooks.path().join("slack.yaml"),
        "source: slack\nverify: { scheme: slack, secret_env: T_HOOK_SECRET }\nitems: event\nevents:\n  - when: 'item.type == \"message\"'\n    event: Slack Message Posted\n    user_id: 'slack:{{ item.user }}'\n    properties: { text: '{{ item.text }}', channel: '{{ item.channel }}' }\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let hooks_dir = hooks.path().to_str().unwrap().to_owned();
    let server = Server::start_in(data.path(), &[("TUTTI_HOOKS__DIR", hooks_dir.as_str()), ("T_HOOK_SECRET", SECRET)]);

    // HubSpot-signed objection from the CRM: on the salesperson's profile.
    let note = json!({"note_id": "n-77", "type": "objection", "topic": "Bảo mật dữ liệu", "body": "Khách lo ngại 担心数据安全",
                      "account": "Vinamart", "owner": {"email": "hoa@shop.example.vn", "name": "Hoa"}});
    let body = note.to_string();
    let (status, answer) =
        post(&server, "/hooks/crm", body.as_bytes(), &hubspot_headers("/hooks/crm", body.as_bytes()));
    // Two events: the owner's name on their profile, then the objection; and the note as a conversation.
    let stored =
        json!({"accepted": 2, "duplicates": 0, "conversations": {"inserted": 1, "updated": 0, "unchanged": 0}});
    assert_eq!((status, &answer), (200, &stored), "{answer}");
    // HubSpot retries the same delivery: stored once.
    let (status, answer) =
        post(&server, "/hooks/crm", body.as_bytes(), &hubspot_headers("/hooks/crm", body.as_bytes()));
    let again = json!({"accepted": 0, "duplicates": 2, "conversations": {"inserted": 0, "updated": 0, "unchanged": 1}});
    assert_eq!((status, &answer), (200, &again), "{answer}");
    // A consistent read first: the events are durable, and folded into the profile once the processor catches up.
    let (status, profile) = server.profile("email:hoa@shop.example.vn");
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["traits"]["name"], "Hoa", "{profile}");
    let (status, events) =
        server.request("GET", "/api/v1/profiles/email:hoa@shop.example.vn/events", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{events}");
    let list = events["events"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{events}");
    let objection = list.iter().find(|e| e["event"]["event"] == "Objection Logged").expect("the objection");
    assert_eq!(objection["event"]["properties"]["notes"], "Khách lo ngại 担心数据安全");
    assert_eq!(objection["event"]["context"]["source"], "hooks/crm");

    // Tampered, stale, unsigned, unknown, not JSON, too large.
    let mut tampered = hubspot_headers("/hooks/crm", body.as_bytes());
    tampered[1].1 = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    let (status, answer) = post(&server, "/hooks/crm", body.as_bytes(), &tampered);
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("invalid_signature")), "{answer}");
    let mut stale = hubspot_headers("/hooks/crm", body.as_bytes());
    let old = (now_ms() - 10 * 60_000).to_string();
    let uri = "https://mkt.example.vn/hooks/crm";
    stale[0].1 = old.clone();
    stale[1].1 = base64::engine::general_purpose::STANDARD.encode(mac(&[
        b"POST",
        uri.as_bytes(),
        body.as_bytes(),
        old.as_bytes(),
    ]));
    let (status, answer) = post(&server, "/hooks/crm", body.as_bytes(), &stale);
    assert_eq!(status, 401, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("five minutes"), "{answer}");
    let (status, answer) = post(&server, "/hooks/crm", body.as_bytes(), &[]);
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("invalid_signature")), "{answer}");
    let (status, answer) = post(&server, "/hooks/nope", b"{}", &[]);
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("unknown_hook")), "{answer}");
    let (status, answer) = post(&server, "/hooks/crm", b"{not json", &hubspot_headers("/hooks/crm", b"{not json"));
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_payload")), "{answer}");
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, answer) = post(&server, "/hooks/crm", &big, &[]);
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("request_too_large")), "{answer}");

    // Zendesk: a complaint ticket.
    let ticket = json!({"ticket_id": 991, "subject": "Giao hàng trễ", "tags": "vip complaint", "channel": "email",
                        "requester": {"email": "lan@example.vn", "name": "Lan"}});
    let body = ticket.to_string();
    let ts = jiff_like_now();
    let sig = base64::engine::general_purpose::STANDARD.encode(mac(&[ts.as_bytes(), body.as_bytes()]));
    let headers =
        vec![("X-Zendesk-Webhook-Signature-Timestamp".to_owned(), ts), ("X-Zendesk-Webhook-Signature".to_owned(), sig)];
    let (status, answer) = post(&server, "/hooks/desk", body.as_bytes(), &headers);
    assert_eq!((status, &answer["accepted"]), (200, &json!(2)), "a complaint and a ticket update: {answer}");
    let (_, profile) = server.profile("email:lan@example.vn");
    assert_eq!(profile["event_counts"]["Complaint Filed"], 1, "{profile}");

    // Slack: the Events API's signed handshake, then a message.
    let secs = (now_ms() / 1000).to_string();
    let slack = |body: &str| {
        let sig: String =
            mac(&[format!("v0:{secs}:").as_bytes(), body.as_bytes()]).iter().map(|b| format!("{b:02x}")).collect();
        vec![
            ("X-Slack-Request-Timestamp".to_owned(), secs.clone()),
            ("X-Slack-Signature".to_owned(), format!("v0={sig}")),
        ]
    };
    let handshake = r#"{"type":"url_verification","challenge":"c-123"}"#;
    let (status, answer) = post(&server, "/hooks/slack", handshake.as_bytes(), &slack(handshake));
    assert_eq!((status, answer), (200, json!({"challenge": "c-123"})));
    let message = json!({"type": "event_callback", "event": {"type": "message", "user": "U42", "text": "Khách hỏi giá 价格", "channel": "C1"}}).to_string();
    let (status, answer) = post(&server, "/hooks/slack", message.as_bytes(), &slack(&message));
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    let (status, _) = post(&server, "/hooks/slack", handshake.as_bytes(), &slack("something else"));
    assert_eq!(status, 401, "the handshake is signed too");
}

/// Now as Zendesk writes it: RFC 3339 in UTC.
fn jiff_like_now() -> String {
    let secs = now_ms() / 1000;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_bad_hook_file_stops_the_start_naming_the_line() {
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(
        hooks.path().join("bad.yaml"),
        "source: crm\nverify: { scheme: hubspot_v3, secret_env: T_UNSET_SECRET }\nbuiltin: crm-objection\n",
    )
    .unwrap();
    std::fs::write(hooks.path().join("worse.yaml"), "source: desk\nverify: none\nevents:\n  - event: X\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .current_dir(data.path())
        .env("TUTTI_HOOKS__DIR", hooks.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("bad.yaml:2:") && text.contains("T_UNSET_SECRET"), "{text}");
    assert!(text.contains("worse.yaml:4:5: name the person"), "{text}");
}

#[test]
fn hooks_load_from_the_data_directory_never_from_the_working_directory() {
    // A `hooks/` in the working directory that would stop the start if it were read.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("hooks")).unwrap();
    std::fs::write(cwd.path().join("hooks/stray.yaml"), "not: a hook file\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("hooks")).unwrap();
    std::fs::write(data.path().join("hooks/desk.yaml"), "source: desk\nverify: none\nbuiltin: support-complaint\n")
        .unwrap();
    let server = Server::start_from(data.path(), cwd.path(), &[]);
    let ticket =
        json!({"ticket_id": 9, "subject": "Hỏng", "tags": "complaint", "requester": {"email": "an@example.vn"}});
    let (status, body) = post(&server, "/hooks/desk", ticket.to_string().as_bytes(), &[]);
    assert_eq!(status, 200, "the data directory's hook serves: {body}");
}

#[test]
fn hooks_test_maps_a_sample_payload_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("desk.yaml");
    std::fs::write(
        &file,
        "source: desk\nverify: { scheme: zendesk, secret_env: NOT_SET_HERE }\nbuiltin: support-complaint\n",
    )
    .unwrap();
    let payload = dir.path().join("ticket.json");
    std::fs::write(
        &payload,
        json!({"ticket_id": 7, "subject": "Giao hàng trễ 延迟", "tags": "complaint", "requester": {"email": "lan@example.vn"}}).to_string(),
    )
    .unwrap();
    let dry_run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["hooks", "test"])
            .arg(&file)
            .arg("--payload")
            .arg(&payload)
            .output()
            .unwrap()
    };
    let out = dry_run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "Complaint Filed");
    assert_eq!(events[0]["properties"]["ticket_id"], 7);
    assert_eq!(events[1]["properties"]["subject"], "Giao hàng trễ 延迟");
    // A CRM note: its event, then the conversation the miner will read, as the server would store it.
    std::fs::write(
        &file,
        "source: crm\nverify: { scheme: hubspot_v3, secret_env: NOT_SET_HERE }\nbuiltin: crm-objection\n",
    )
    .unwrap();
    std::fs::write(
        &payload,
        json!({"note_id": "n-1", "type": "objection", "body": "Khách lo ngại bảo mật dữ liệu.", "outcome": "won",
               "owner": {"email": "hoa@shop.example.vn"}, "contact": {"email": "Lan@Example.vn"}})
        .to_string(),
    )
    .unwrap();
    let out = dry_run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((lines.len(), &lines[0]["event"]), (2, &json!("Objection Logged")));
    let conversation = &lines[1]["conversation"];
    assert_eq!((&conversation["id"], &conversation["outcome"]), (&json!("hook:crm:note-n-1"), &json!("won")));
    assert_eq!(conversation["customer"]["email"], "Lan@Example.vn", "kept as sent; linked in lower case");
    assert_eq!(conversation["turns"][0]["text"], "Khách lo ngại bảo mật dữ liệu.");
    // A broken file: its problems, located, and a failure.
    std::fs::write(&file, "source: desk\nverify: none\nevents:\n  - event: X\n").unwrap();
    let out = dry_run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("desk.yaml:4:5: name the person"));
}

#[test]
fn sms_and_zalo_receipts_arrive_as_forms_queries_and_lists() {
    let hooks = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(hooks.path().join(name), text).unwrap();
    write(
        "sms.yaml",
        "source: sms\nverify: { scheme: twilio, secret_env: T_HOOK_SECRET, public_url: 'https://mkt.example.vn' }\nbuiltin: sms-twilio\n",
    );
    write("esms.yaml", "source: esms\nverify: { scheme: token, secret_env: T_HOOK_SECRET }\nbuiltin: sms-esms\n");
    write("ali.yaml", "source: ali\nverify: { scheme: token, secret_env: T_HOOK_SECRET }\nbuiltin: sms-alibaba\n");
    write(
        "zalo.yaml",
        "source: zalo\nverify: { scheme: zalo, secret_env: T_HOOK_SECRET, app_id: '4291' }\nbuiltin: zalo-events\n",
    );
    let data = tempfile::tempdir().unwrap();
    let hooks_dir = hooks.path().to_str().unwrap().to_owned();
    let server = Server::start_in(
        data.path(),
        &[
            ("TUTTI_HOOKS__DIR", hooks_dir.as_str()),
            ("T_HOOK_SECRET", SECRET),
            ("TUTTI_IDENTITY__IDENTIFIER_TRAITS", "[\"zalo_id\"]"),
        ],
    );
    // The customer, known by phone and Zalo id.
    let (status, _) = server.track(
        "/v1/identify",
        &json!({"userId": "lan", "traits": {"phone": "+84 912 345 678", "zalo_id": "2512523625412515"}}),
    );
    assert_eq!(status, 200);

    // Twilio: a signed form.
    let form = "MessageSid=SM0123&MessageStatus=delivered&To=%2B84912345678&From=%2B15005550006";
    let mut fields: Vec<(&str, &str)> = vec![
        ("From", "+15005550006"),
        ("MessageSid", "SM0123"),
        ("MessageStatus", "delivered"),
        ("To", "+84912345678"),
    ];
    fields.sort();
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(b"https://mkt.example.vn/hooks/sms");
    for (k, v) in &fields {
        m.update(k.as_bytes());
        m.update(v.as_bytes());
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    let headers = vec![
        ("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
        ("X-Twilio-Signature".to_owned(), signature),
    ];
    let (status, answer) = post(&server, "/hooks/sms", form.as_bytes(), &headers);
    assert_eq!((status, &answer), (200, &json!({"accepted": 1, "duplicates": 0})), "{answer}");
    let tampered = form.replace("delivered", "failed");
    let (status, _) = post(&server, "/hooks/sms", tampered.as_bytes(), &headers);
    assert_eq!(status, 401, "another status under the same signature");

    // eSMS: a GET with the token in the query.
    let query = format!(
        "/hooks/esms?SMSID=e-1&SendFailed=0&SendStatus=5&SendSuccess=1&RequestId=r1&phonenumber=0912345678&token={SECRET}"
    );
    let (status, answer) = server.request("GET", &query, None);
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    let (status, _) = server.request(
        "GET",
        "/hooks/esms?SMSID=e-2&SendStatus=5&SendSuccess=1&phonenumber=0912345678&token=guess",
        None,
    );
    assert_eq!(status, 401);

    // Alibaba Cloud: a list, answered with the code it waits for.
    let list = json!([{"phone_number": "13800138000", "success": false, "err_code": "MK:0001", "err_msg": "停机",
                       "biz_id": "901^0", "out_id": "r9", "sms_size": "1"}]);
    let (status, answer) = post(
        &server,
        &format!("/hooks/ali?token={SECRET}"),
        list.to_string().as_bytes(),
        &[("Content-Type".to_owned(), "application/json".to_owned())],
    );
    assert_eq!((status, &answer["code"], &answer["accepted"]), (200, &json!(0), &json!(1)), "{answer}");

    // Zalo: signed with the app id, the body and its timestamp.
    let ts = now_ms().to_string();
    let body = json!({"app_id": "4291", "event_name": "user_received_message", "sender": {"id": "oa1"},
                      "recipient": {"id": "2512523625412515"}, "message": {"msg_id": "m1", "tracking_id": "r1"},
                      "timestamp": ts})
    .to_string();
    let digest = sha2::Sha256::digest(format!("4291{body}{ts}{SECRET}").as_bytes());
    let mac_hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("X-ZEvent-Signature".to_owned(), format!("mac={mac_hex}")),
    ];
    let (status, answer) = post(&server, "/hooks/zalo", body.as_bytes(), &headers);
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");

    // Every receipt joined the one profile: by phone, and by Zalo id.
    let (status, profile) = server.profile("user_id:lan");
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["event_counts"]["SMS Delivered"], 2, "{profile}");
    assert_eq!(profile["event_counts"]["Zalo Message Delivered"], 1, "{profile}");
    let (_, other) = server.profile("phone:+8613800138000");
    assert_eq!(other["event_counts"]["SMS Failed"], 1, "{other}");
}
