//! Every connector against a local stand-in that enforces the vendor's documented request format
//! (`tutti_connectors::testing`): what Tutti sends must be accepted, carry the vendor's auth scheme, and keep
//! Vietnamese and Chinese text intact; what a flow gets wrong is refused before anything is sent, with a
//! message naming the field.

use serde_json::{Value, json};
use tutti_connectors::testing::{self, Vendors};
use tutti_connectors::{Action, Failure, Registry, Shared};

const NOW: i64 = 1_790_000_000_000;

async fn setup() -> (Vendors, Registry) {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry =
        Registry::build(&vendors.connectors(), &testing::context(&shared)).expect("the stand-in's tables are valid");
    (vendors, registry)
}

async fn send(registry: &Registry, connector: &str, operation: &str, payload: Value) -> Result<Value, Failure> {
    send_keyed(registry, connector, operation, payload, "run-1:step:1").await
}

/// Sends one action under a key of its own, as the engine does for every new action.
async fn send_new(registry: &Registry, connector: &str, operation: &str, payload: Value) -> Result<Value, Failure> {
    static ACTIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let key = format!("run-new-{}:step:1", ACTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    send_keyed(registry, connector, operation, payload, &key).await
}

/// Sends an action under a given key: the same key again is a retry of the same action.
async fn send_keyed(
    registry: &Registry,
    connector: &str,
    operation: &str,
    payload: Value,
    key: &str,
) -> Result<Value, Failure> {
    let action = Action {
        key,
        profile: 1,
        flow: "test-flow",
        step: "step",
        operation,
        category: "promotional",
        channel: connector,
        payload: &payload,
        now: NOW,
        tracking: true,
    };
    registry.get(connector).expect("configured").sender.send(action).await
}

fn permanent(result: Result<Value, Failure>) -> String {
    match result {
        Err(Failure::Permanent(e)) => e,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn slack_messages_follow_chat_post_message() {
    let (vendors, registry) = setup().await;
    let text = "Anh Minh (Công ty Sài Gòn) đang xem /pricing · 客户正在查看价格页";
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": text}}]);
    let result = send(&registry, "slack", "post_message", json!({"channel": "#sales", "text": text, "blocks": blocks}))
        .await
        .unwrap();
    assert_eq!(result["body"]["ok"], true);
    // Blocks rendered by a template arrive as text and are sent as the list they spell.
    let as_text = blocks.to_string();
    send(&registry, "slack", "post_message", json!({"channel": "C123", "blocks": as_text})).await.unwrap();
    let got = vendors.received("slack");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body["text"], text, "Vietnamese and Chinese intact");
    assert_eq!(got[0].body["metadata"]["event_payload"]["key"], "run-1:step:1", "the idempotency key travels along");
    assert_eq!(got[1].body["blocks"], blocks);
    assert!(got.iter().all(|r| r.headers["authorization"] == format!("Bearer {}", testing::SLACK_TOKEN)));
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());

    // Caught before sending: no content, no channel, a stray argument, blocks that are not a list.
    assert!(permanent(send(&registry, "slack", "post_message", json!({"channel": "#x"})).await).contains("`text`"));
    assert!(permanent(send(&registry, "slack", "post_message", json!({"text": "hi"})).await).contains("`channel`"));
    assert!(
        permanent(
            send(&registry, "slack", "post_message", json!({"channel": "#x", "text": "a", "colour": "red"})).await
        )
        .contains("`colour`")
    );
    assert!(
        permanent(send(&registry, "slack", "post_message", json!({"channel": "#x", "blocks": "{oops"})).await)
            .contains("`blocks`")
    );
    assert_eq!(vendors.received("slack").len(), 2, "nothing more was sent");
    // What only Slack can judge comes back as Slack's own error, permanent.
    let e = permanent(
        send(&registry, "slack", "post_message", json!({"channel": "#x", "blocks": [{"text": "no type"}]})).await,
    );
    assert!(e.contains("invalid_blocks"), "{e}");
}

#[tokio::test]
async fn slack_incoming_webhooks_and_health() {
    let vendors = Vendors::start().await;
    let mut tables = vendors.connectors();
    tables.insert("slack".into(), json!({"allow_private": ["127.0.0.1"], "webhook_url_env": "HOOK"}));
    let hook = vendors.slack_hook_url();
    let env = |name: &str| (name == "HOOK").then(|| hook.clone()).or_else(|| testing::env(name));
    let registry = Registry::build(
        &tables,
        &tutti_connectors::Context { env: &env, link_key: &[1; 32], shared: &Shared::in_memory() },
    )
    .unwrap();
    send(&registry, "slack", "webhook", json!({"text": "Xin chào 你好"})).await.unwrap();
    assert_eq!(vendors.received("slack-hook")[0].body["text"], "Xin chào 你好");
    let e = permanent(send(&registry, "slack", "post_message", json!({"channel": "#x", "text": "a"})).await);
    assert!(e.contains("token_env"), "{e}");
    // The health check proves the webhook exists without posting a message.
    let health = registry.get("slack").unwrap().sender.health().await.unwrap();
    assert_eq!(health["webhook"], "exists");
    assert_eq!(vendors.received("slack-hook").len(), 2);
    assert!(vendors.refusals().iter().all(|r| r.body == json!({})), "only the health probe is refused");

    let (_, full) = setup().await;
    assert_eq!(full.get("slack").unwrap().sender.health().await.unwrap()["body"]["ok"], true);
}

#[tokio::test]
async fn trello_cards_and_comments() {
    let (vendors, registry) = setup().await;
    let card = send(
        &registry,
        "trello",
        "create_card",
        json!({
            "name": "Objection: lo ngại bảo mật dữ liệu",
            "description": "Sales notes: khách hàng lo ngại về bảo mật · 担心数据安全",
            "labels": ["5f0c0ffee0c0ffee0c0ffe01", "5f0c0ffee0c0ffee0c0ffe02"],
            "due": "2026-12-01T09:00:00+07:00",
            "position": "top",
        }),
    )
    .await
    .unwrap();
    let id = card["body"]["id"].as_str().unwrap().to_owned();
    send(&registry, "trello", "comment", json!({"card": id, "text": "Thêm một phản đối nữa · 又一个"})).await.unwrap();
    let got = vendors.received("trello");
    assert_eq!(got[0].body["idList"], testing::TRELLO_LIST, "the default list");
    assert_eq!(got[0].body["idLabels"], "5f0c0ffee0c0ffee0c0ffe01,5f0c0ffee0c0ffee0c0ffe02");
    assert_eq!(got[0].body["due"], "2026-12-01T02:00:00Z");
    assert_eq!(got[0].body["desc"], "Sales notes: khách hàng lo ngại về bảo mật · 担心数据安全");
    assert!(!got[0].path.contains("token") && !got[0].path.contains("key="), "credentials never in the URL");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());

    assert!(permanent(send(&registry, "trello", "create_card", json!({"description": "x"})).await).contains("`name`"));
    assert!(
        permanent(send(&registry, "trello", "create_card", json!({"name": "x", "due": "next week"})).await)
            .contains("`due`")
    );
    assert!(
        permanent(send(&registry, "trello", "comment", json!({"card": "../boards", "text": "x"})).await)
            .contains("not an id")
    );
    assert_eq!(vendors.received("trello").len(), 2);
    // A list Trello does not know: Trello's own answer, permanent.
    let e = permanent(
        send(&registry, "trello", "create_card", json!({"name": "x", "list": "000000000000000000000000"})).await,
    );
    assert!(e.contains("HTTP 400") && e.contains("idList"), "{e}");
    assert!(registry.get("trello").unwrap().sender.health().await.is_ok());
}

#[tokio::test]
async fn asana_tasks_and_comments() {
    let (vendors, registry) = setup().await;
    let task = send(
        &registry,
        "asana",
        "create_task",
        json!({"name": "Viết bài: bảo mật dữ liệu", "notes": "担心数据安全", "project": testing::ASANA_PROJECT,
               "assignee": "me", "due_on": "2026-12-05"}),
    )
    .await
    .unwrap();
    let gid = task["body"]["data"]["gid"].as_str().unwrap().to_owned();
    send(&registry, "asana", "comment", json!({"task": gid, "text": "Thêm bằng chứng"})).await.unwrap();
    // No project: the configured workspace.
    send(&registry, "asana", "create_task", json!({"name": "Inbox task"})).await.unwrap();
    let got = vendors.received("asana");
    assert_eq!(got[0].body["data"]["projects"], json!([testing::ASANA_PROJECT]));
    assert_eq!(got[0].body["data"]["notes"], "担心数据安全");
    assert_eq!(got[2].body["data"]["workspace"], testing::ASANA_WORKSPACE);
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    let e = permanent(send(&registry, "asana", "create_task", json!({"name": "x", "due_on": "5/12/2026"})).await);
    assert!(e.contains("due_on"), "{e}");
    let e = permanent(send(&registry, "asana", "comment", json!({"task": "1", "text": "x"})).await);
    assert!(e.contains("HTTP 404") && e.contains("Unknown object"), "Asana's answer: {e}");
}

#[tokio::test]
async fn hubspot_contacts_notes_and_tasks() {
    let (vendors, registry) = setup().await;
    let first = send(
        &registry,
        "hubspot",
        "upsert_contact",
        json!({"email": "Lan@Example.VN", "properties": {"firstname": "Lan", "lastname": "Nguyễn", "score": 42}}),
    )
    .await
    .unwrap();
    // Again: the same contact, updated, not a second one.
    let again = send(&registry, "hubspot", "upsert_contact", json!({"email": "lan@example.vn"})).await.unwrap();
    assert_eq!(first["body"]["results"][0]["id"], again["body"]["results"][0]["id"]);
    assert_eq!(again["body"]["results"][0]["new"], false);
    send(&registry, "hubspot", "note", json!({"email": "lan@example.vn", "body": "Khách lo ngại về giá · 担心价格"}))
        .await
        .unwrap();
    send(&registry, "hubspot", "task", json!({"email": "lan@example.vn", "subject": "Call back", "priority": "high"}))
        .await
        .unwrap();
    let got = vendors.received("hubspot");
    assert_eq!(got[0].body["inputs"][0]["properties"]["score"], "42", "HubSpot takes property values as text");
    assert_eq!(got[0].body["inputs"][0]["id"], "lan@example.vn");
    assert!(got.iter().any(|r| r.path.contains("lan%40example.vn?idProperty=email")), "looked up by email");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    let e = permanent(send(&registry, "hubspot", "note", json!({"email": "nobody@example.vn", "body": "x"})).await);
    assert!(e.contains("no contact"), "{e}");
    let e = permanent(
        send(&registry, "hubspot", "task", json!({"contact_id": "1", "subject": "x", "priority": "urgent"})).await,
    );
    assert!(e.contains("priority"), "{e}");
}

#[tokio::test]
async fn webhooks_are_signed_and_keyed() {
    let (vendors, registry) = setup().await;
    let url = vendors.hook_url("crm/contacts");
    let result = send(
        &registry,
        "webhook",
        "post",
        json!({"url": url, "method": "PUT", "headers": {"X-Team": "growth"}, "body": "{\"name\": \"Trần Thị B\", \"城市\": \"上海\"}"}),
    )
    .await
    .unwrap();
    assert_eq!(result["status"], 200);
    let got = &vendors.received("hook")[0];
    assert_eq!(got.method, "PUT");
    assert_eq!(got.body, json!({"name": "Trần Thị B", "城市": "上海"}), "a template's JSON text is sent as JSON");
    assert_eq!(got.headers["idempotency-key"], "run-1:step:1");
    assert_eq!(got.headers["x-team"], "growth");
    assert!(got.headers["tutti-signature"].to_str().unwrap().starts_with(&format!("t={},v1=", NOW / 1000)));
    assert!(vendors.refusals().is_empty(), "the receiver verified the signature: {:?}", vendors.refusals());
    for (payload, says) in [
        (json!({"url": url, "headers": {"Host": "evil"}}), "set by Tutti"),
        (json!({"url": url, "body": "{not json"}), "not JSON"),
        (json!({"url": url, "method": "DELETE"}), "method"),
        (json!({"url": url, "headers": {"X-A": "line\nbreak"}}), "header"),
        (json!({"url": "file:///etc/passwd"}), "file:///etc/passwd"),
        (json!({"url": "gopher://example.com/x"}), "only http and https"),
    ] {
        let e = permanent(send(&registry, "webhook", "post", payload.clone()).await);
        assert!(e.contains(says), "{payload}: {e}");
    }
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let none = |_: &str| None;
    let registry = Registry::build(
        &Default::default(),
        &tutti_connectors::Context { env: &none, link_key: &[1; 32], shared: &Shared::in_memory() },
    )
    .unwrap();
    for url in [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/x",
        "http://[::1]:9/x",
    ] {
        let e = permanent(send(&registry, "webhook", "post", json!({"url": url})).await);
        assert!(e.contains("private address") && e.contains("allow_private"), "{url}: {e}");
    }
}

/// Two workers sharing the staged changes (one Postgres) flush at the same moment: each change is sent once.
#[tokio::test]
async fn workers_sharing_staged_audience_changes_send_each_once() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let build = || Registry::build(&vendors.connectors(), &testing::context(&shared)).unwrap();
    let (one, other) = (build(), build());
    for email in ["lan@example.vn", "mai@example.vn", "hoa@example.vn"] {
        send(&one, "audience", "add", json!({"audience": "pricing-visitors", "email": email})).await.unwrap();
    }
    let (a, b) =
        tokio::join!(one.get("audience").unwrap().sender.health(), other.get("audience").unwrap().sender.health());
    let sent = a.unwrap()["sent"].as_u64().unwrap() + b.unwrap()["sent"].as_u64().unwrap();
    assert_eq!(sent, 3);
    let rows: usize =
        vendors.received("meta").iter().map(|r| r.body["payload"]["data"].as_array().unwrap().len()).sum();
    assert_eq!(rows, 3, "each member sent once");
    assert_eq!(vendors.audience(testing::AUDIENCE_ID).len(), 3);
}

#[tokio::test]
async fn audiences_are_hashed_batched_and_synced() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry = Registry::build(&vendors.connectors(), &testing::context(&shared)).unwrap();
    let audience = &registry.get("audience").unwrap().sender;
    for (email, phone) in [("Lan@Example.vn ", "0912 345 678"), ("mai@example.vn", ""), ("", "+84 987 654 321")] {
        send(&registry, "audience", "add", json!({"audience": "pricing-visitors", "email": email, "phone": phone}))
            .await
            .unwrap();
    }
    // Mai is removed before the batch goes: only the removal is sent.
    send(&registry, "audience", "remove", json!({"audience": "pricing-visitors", "email": "mai@example.vn"}))
        .await
        .unwrap();
    assert!(vendors.received("meta").is_empty(), "staged, not yet sent");
    let flushed = audience.health().await.unwrap();
    assert_eq!(flushed["sent"], 3, "{flushed}");
    let members = vendors.audience(testing::AUDIENCE_ID);
    // `printf lan@example.vn | sha256sum`, and the phone-only member by `printf 84987654321 | sha256sum`.
    let lan = "6ffce78f72e706c77fd0c01a2e9c18ed8e3a9761259a5c1692f848b8e6d9ae4e";
    let phone_only = "116ce31ae9170769b075a11dedca1198f41d30318334919fb90917e9c617b438";
    assert_eq!(members, [phone_only.to_owned(), lan.to_owned()], "normalised, then hashed: {members:?}");
    let sent = vendors.received("meta");
    assert_eq!(sent.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["POST", "DELETE"]);
    let rows = sent[0].body["payload"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(!sent.iter().any(|r| r.body.to_string().contains("example.vn")), "never in clear");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    assert_eq!(audience.health().await.unwrap()["sent"], 0, "nothing staged is left");
    let e = permanent(send(&registry, "audience", "add", json!({"audience": "nobody", "email": "a@b.vn"})).await);
    assert!(e.contains("no audience `nobody`"), "{e}");
    let e = permanent(
        send(&registry, "audience", "add", json!({"audience": "pricing-visitors", "email": "not-an-email"})).await,
    );
    assert!(e.contains("email"), "{e}");
}

#[tokio::test]
async fn one_card_and_one_task_per_topic_then_comments() {
    let (vendors, registry) = setup().await;
    let report = |topic: &str, notes: &str| json!({"topic_key": topic, "name": format!("Objection: {topic}"), "description": notes, "comment": notes});
    let first =
        send_new(&registry, "trello", "upsert_card", report("Bảo mật dữ liệu", "Khách lo dữ liệu ở nước ngoài"))
            .await
            .unwrap();
    assert_eq!(first["created"], true);
    // The same topic, written differently (case, spaces, decomposed Vietnamese): a comment on the same card.
    let decomposed = "ba\u{0309}o mật dữ liệu";
    let second = send(
        &registry,
        "trello",
        "upsert_card",
        report(&format!("  {}  ", decomposed.to_uppercase()), "Lo ngại tuân thủ"),
    )
    .await
    .unwrap();
    assert_eq!((second["created"].as_bool(), &second["card"]), (Some(false), &first["card"]), "{second}");
    // The same worry in other words and other languages: the taxonomy files it under the same topic.
    for (topic, note) in [
        ("lo ngại bảo mật dữ liệu", "Khách hỏi về mã hóa"),
        ("担心数据安全", "客户担心数据存储"),
        ("worried about data security", "Asked about encryption"),
    ] {
        let same = send_new(&registry, "trello", "upsert_card", report(topic, note)).await.unwrap();
        assert_eq!((same["created"].as_bool(), &same["card"]), (Some(false), &first["card"]), "{topic}: {same}");
        assert_eq!(same["topic"], "topic:data_security");
    }
    send_new(&registry, "trello", "upsert_card", report("Giá", "Đắt quá")).await.unwrap();
    // No topic in the taxonomy: the words themselves are the key.
    let other = send_new(&registry, "trello", "upsert_card", report("Màu logo", "Khách muốn đổi màu")).await.unwrap();
    assert_eq!((other["created"].as_bool(), other["topic"].as_str()), (Some(true), Some("màu logo")));
    let got = vendors.received("trello");
    let cards = got.iter().filter(|r| r.path.ends_with("/cards")).count();
    let comments: Vec<_> = got.iter().filter(|r| r.path.ends_with("/actions/comments")).collect();
    assert_eq!((cards, comments.len()), (3, 4));
    // Each comment is numbered with the report it is: the card's description is the first.
    assert_eq!(comments[0].body["text"], "#2: Lo ngại tuân thủ");
    assert_eq!(comments[2].body["text"], "#4: 客户担心数据存储");
    assert_eq!(comments[3].body["text"], "#5: Asked about encryption");

    // A retry of an action the vendor took (its outcome lost in a crash) keeps its number and the count.
    let retried = report("worried about data security", "Hỏi lại");
    let sixth = send_keyed(&registry, "trello", "upsert_card", retried.clone(), "run-retry:step:1").await.unwrap();
    let again = send_keyed(&registry, "trello", "upsert_card", retried, "run-retry:step:1").await.unwrap();
    assert_eq!((sixth["reports"].as_u64(), again["reports"].as_u64()), (Some(6), Some(6)), "{again}");
    let texts: Vec<String> = vendors
        .received("trello")
        .iter()
        .filter(|r| r.path.ends_with("/actions/comments"))
        .map(|r| r.body["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts[texts.len() - 2..], ["#6: Hỏi lại", "#6: Hỏi lại"]);
    let seventh = send_new(&registry, "trello", "upsert_card", report("data security", "Once more")).await.unwrap();
    assert_eq!(seventh["reports"], 7, "{seventh}");

    let task = send_new(&registry, "asana", "upsert_task", json!({"topic_key": "担心数据安全", "name": "Objection: 数据安全", "notes": "客户担心", "project": testing::ASANA_PROJECT})).await.unwrap();
    let again = send(
        &registry,
        "asana",
        "upsert_task",
        json!({"topic_key": "担心数据安全", "name": "x", "comment": "又一个客户"}),
    )
    .await
    .unwrap();
    assert_eq!((task["created"].as_bool(), again["created"].as_bool()), (Some(true), Some(false)));
    assert_eq!((task["reports"].as_u64(), again["reports"].as_u64()), (Some(1), Some(2)));
    assert_eq!(task["task"], again["task"]);
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

/// Two workers sharing one memory (one Postgres) report one topic at the same moment: the second waits for the
/// first's card and comments on it, rather than making a second card.
#[tokio::test]
async fn workers_sharing_the_memory_make_one_card_per_topic_at_the_same_moment() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let build = || Registry::build(&vendors.connectors(), &testing::context(&shared)).unwrap();
    let (one, other) = (build(), build());
    let report = |notes: &str| json!({"topic_key": "Giá cao", "name": "Objection: Giá cao", "description": notes, "comment": notes});
    let (first, second) = tokio::join!(
        send_new(&one, "trello", "upsert_card", report("Đắt hơn đối thủ")),
        send_new(&other, "trello", "upsert_card", report("价格太高"))
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!((first["created"].as_bool(), second["created"].as_bool()), (Some(true), Some(false)), "{second}");
    assert_eq!(first["card"], second["card"]);
    let got = vendors.received("trello");
    let cards = got.iter().filter(|r| r.path.ends_with("/cards")).count();
    let comments = got.iter().filter(|r| r.path.ends_with("/actions/comments")).count();
    assert_eq!((cards, comments), (1, 1));
}

#[tokio::test]
async fn google_customer_match_style_batches() {
    let vendors = Vendors::start().await;
    let mut tables = vendors.connectors();
    tables.get_mut("audience").unwrap()["format"] = json!("google");
    tables.get_mut("audience").unwrap()["endpoint"] =
        json!(format!("http://{}/google/{{audience_id}}/members", vendors.addr));
    let shared = Shared::in_memory();
    let registry = Registry::build(&tables, &testing::context(&shared)).unwrap();
    send(
        &registry,
        "audience",
        "add",
        json!({"audience": "pricing-visitors", "email": "Lan.Nguyen@gmail.com", "phone": "0912345678"}),
    )
    .await
    .unwrap();
    assert_eq!(registry.get("audience").unwrap().sender.health().await.unwrap()["sent"], 1);
    let got = &vendors.received("google")[0];
    let ids = &got.body["operations"][0]["create"]["userIdentifiers"];
    // `printf lannguyen@gmail.com | sha256sum` (gmail's dots removed) and `printf +84912345678 | sha256sum`.
    assert_eq!(ids[0]["hashedEmail"], sha256_hex("lannguyen@gmail.com"));
    assert_eq!(ids[1]["hashedPhoneNumber"], sha256_hex("+84912345678"));
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
