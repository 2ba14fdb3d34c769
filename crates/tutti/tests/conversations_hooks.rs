//! CRM notes and logged calls through the hook mappings, as conversations, through the real binary: the shipped
//! `crm-objection` mapping makes each HubSpot-signed note a conversation linked to the contact; a hook file of
//! one's own maps logged calls as transcripts; a retried delivery changes nothing; a note whose time cannot be
//! read refuses the delivery whole; and the notes are mined together soon after they arrive, so flows hear of
//! the topic without anyone reading it; and a call is erased with its customer.

mod common;

use common::{ADMIN_TOKEN, Server, wait_until};
use serde_json::{Value, json};

const SECRET: &str = "crm-client-secret";

fn signed(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let headers = common::hubspot_headers(SECRET, path, body.as_bytes());
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.post_raw(path, body.as_bytes(), &headers)
}

/// Security worries noted by reps, worded as people write notes.
const NOTES: [&str; 4] = [
    "Khách lo ngại bảo mật dữ liệu khách hàng.",
    "Anh Tuấn lo ngại bảo mật khi lưu dữ liệu trên cloud.",
    "Chị Lan lo ngại bảo mật, hỏi có mã hóa không.",
    "Khách vẫn lo ngại bảo mật dữ liệu, cần thêm tài liệu.",
];

#[test]
fn crm_notes_and_logged_calls_become_conversations_and_are_mined_soon() {
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(
        hooks.path().join("crm.yaml"),
        "source: crm\nverify: { scheme: hubspot_v3, secret_env: T_HOOK_SECRET, public_url: 'https://mkt.example.vn' }\nbuiltin: crm-objection\n",
    )
    .unwrap();
    std::fs::write(
        hooks.path().join("calls.yaml"),
        r#"source: calls
verify: { scheme: hubspot_v3, secret_env: T_HOOK_SECRET, public_url: 'https://mkt.example.vn' }
items: calls
conversations:
  - when: 'item.transcript != ""'
    id: '{{ item.call_id }}'
    text: '{{ item.transcript }}'
    format: transcript
    rep: '{{ item.rep }}'
    outcome: '{{ item.stage }}'
    started_at: '{{ item.at }}'
    customer: { phone: '{{ item.phone }}' }
"#,
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let hooks_dir = hooks.path().to_str().unwrap().to_owned();
    let server = Server::start_in(
        data.path(),
        &[
            ("TUTTI_HOOKS__DIR", hooks_dir.as_str()),
            ("T_HOOK_SECRET", SECRET),
            ("TUTTI_CONVERSATIONS__MINE_AFTER", "0s"),
            ("TUTTI_CONVERSATIONS__TASK_THRESHOLD", "6"),
        ],
    );

    // Eight notes from the CRM, two per wording, half of the deals won.
    for n in 0..8 {
        let note = json!({"note_id": format!("n-{n}"), "type": "objection", "topic": "Bảo mật", "body": NOTES[n % 4],
                          "owner": {"email": "hoa@shop.example.vn"}, "contact": {"email": format!("kh{n}@example.vn")},
                          "created_at": 1_793_000_000 + n as i64 * 3600,
                          "outcome": if n < 4 { "won" } else { "lost" }});
        let (status, answer) = signed(&server, "/hooks/crm", &note);
        assert_eq!((status, &answer["conversations"]["inserted"]), (200, &json!(1)), "{answer}");
        if n == 0 {
            let (status, again) = signed(&server, "/hooks/crm", &note);
            assert_eq!((status, &again["conversations"]["unchanged"]), (200, &json!(1)), "a retry: {again}");
        }
    }
    // A note whose time cannot be read: the delivery is refused whole, its events too.
    let bad = json!({"note_id": "n-bad", "type": "objection", "body": NOTES[0], "owner": {"email": "hoa@shop.example.vn"},
                     "created_at": "last Tuesday"});
    let (status, answer) = signed(&server, "/hooks/crm", &bad);
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_payload")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("started_at"), "{answer}");

    // Two logged calls from a telephony tool, as transcripts: the rep named, the customer by phone.
    let calls = json!({"calls": [
        {"call_id": "call-1", "rep": "Minh", "stage": "won", "phone": "+84901000001", "at": "2026-11-02T09:00:00+07:00",
         "transcript": "Minh: Chào anh, em gọi từ Tutti.\nKhách: Anh lo ngại bảo mật dữ liệu lắm.\nMinh: Dữ liệu được mã hóa và lưu tại Việt Nam."},
        {"call_id": "call-2", "rep": "Minh", "stage": "lost", "phone": "+84901000002", "at": "2026-11-03T10:00:00+07:00",
         "transcript": "Minh: Chào chị.\nKhách: Chị vẫn lo ngại bảo mật dữ liệu.\nMinh: Em gửi chị tài liệu nhé."},
        {"call_id": "call-3", "transcript": ""}
    ]});
    let (status, answer) = signed(&server, "/hooks/calls", &calls);
    assert_eq!(
        (status, &answer),
        (
            200,
            &json!({"accepted": 0, "duplicates": 0,
        "conversations": {"inserted": 2, "updated": 0, "unchanged": 0}})
        ),
        "{answer}"
    );

    // Mined soon after, without anyone reading the topics: the flows' event arrives on its own, counting the
    // eight notes and the two calls (a mining that began before the calls came is not kept, and one after it
    // counts them).
    let counted_all = || -> Option<Value> {
        server
            .all_events()
            .into_iter()
            .map(|e| e["event"].clone())
            .find(|e| e["event"] == "Conversation Topic Counted" && e["properties"]["conversations"] == 10)
    };
    wait_until("the topic counted to flows", || counted_all().is_some());
    let properties = counted_all().unwrap()["properties"].clone();
    assert_eq!(properties["language"], "vi", "{properties}");

    let (status, topics) = server.request("GET", "/api/v1/conversations/topics", Some(ADMIN_TOKEN));
    assert_eq!(status, 200);
    let topic = topics.as_array().unwrap().iter().find(|t| t["id"] == properties["topic"]).unwrap().clone();
    assert_eq!(topic["conversations"], 10, "{topic}");
    assert_eq!(topic["win_rate"], 0.5, "five of ten deals won: {topic}");
    assert!(topic["examples"].to_string().contains("lo ngại bảo mật"), "{topic}");
    // The call's customer, known by phone, is a profile: erasing it erases the call.
    let (status, _) =
        server.track("/v1/identify", &json!({"userId": "kh-call-1", "traits": {"phone": "+84901000001"}}));
    assert_eq!(status, 200);
    let (status, _) = server.request("GET", "/api/v1/profiles/user_id:kh-call-1?consistent=true", Some(ADMIN_TOKEN));
    assert_eq!(status, 200);
    let (status, body) = server.request("DELETE", "/api/v1/profiles/user_id:kh-call-1", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{body}");
    let (_, mining) = server.request("GET", "/api/v1/conversations/mining", Some(ADMIN_TOKEN));
    assert_eq!(mining["conversations"], 9, "{mining}");
}
