//! The conversations API through the real binary: JSON lines imported by a marketer (a viewer may read but not
//! import), the topics and scripts as the CLI prints them, suggestions for a customer's words, a rename kept on
//! the next mining, hostile bodies and queries refused or read harmlessly, and a person's conversations erased
//! with them.

mod common;

use common::{ADMIN_TOKEN, Server, personal_token};
use serde_json::{Value, json};
use tutti_conversations::synth::{self, Shape};

fn put_json(server: &Server, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut response = common::agent()
        .put(format!("{}{path}", server.url))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn get(server: &Server, token: &str, path: &str) -> Value {
    let (status, body) = server.request("GET", path, Some(token));
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[test]
fn import_topics_scripts_suggest_edit_and_erase() {
    let server = Server::start();
    let marketer = personal_token(&server, "mai@shop.vn", "marketer");
    let viewer = personal_token(&server, "an@shop.vn", "viewer");
    let shape = Shape { conversations: 2_000, turns: 8, seed: 5, start: 1_790_000_000_000, weeks: 3, noise: 0 };
    let (conversations, _) = synth::generate(&shape);
    let lines = common::conversation_lines(&conversations);

    // A small body: a request refused before its body is read ends its connection, and a large one would still
    // be on its way.
    let (status, body) = common::import_conversations(&server, &viewer, "{\"id\": \"c\", \"turns\": []}\n");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, summary) =
        common::import_conversations(&server, &marketer, &format!("{lines}\u{0}\u{1}binary\n{{\"id\": 7}}\n"));
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["changes"]["inserted"], 2_000, "{summary}");
    assert_eq!(summary["rejected_count"], 2, "{summary}");
    assert_eq!(summary["rejected"][1]["reason"], "`turns` is missing", "{summary}");

    let topics = get(&server, &viewer, "/api/v1/conversations/topics");
    let topics = topics.as_array().unwrap();
    assert!(topics.len() >= 11, "{topics:?}");
    let topic_of = |language: &str| {
        let t = topics.iter().find(|t| t["language"] == language && t["taxonomy"] == "price").expect("a price topic");
        t["id"].as_str().unwrap().to_owned()
    };
    let (id, vi) = (topic_of("zh"), topic_of("vi"));
    let scripts = get(&server, &viewer, &format!("/api/v1/conversations/scripts?topic={vi}"));
    assert_eq!(scripts.as_array().unwrap().len(), 1);
    assert_eq!(scripts[0]["scripts"][0]["winner"], true, "{scripts}");
    assert!(scripts[0]["scripts"][0]["reply"].as_str().unwrap().contains("gói năm"), "{scripts}");
    let (status, body) = server.request("GET", "/api/v1/conversations/scripts?topic=t-none", Some(&viewer));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_topic")), "{body}");

    let text = "这个价格太贵了，超出预算";
    let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    let url = format!("/api/v1/conversations/suggest?text={encoded}");
    let suggestions = get(&server, &viewer, &url);
    assert_eq!(suggestions[0]["topic"]["id"], json!(id), "{suggestions}");
    assert!(suggestions[0]["replies"][0]["reply"].is_string(), "{suggestions}");
    let (status, body) = server.request("GET", "/api/v1/conversations/suggest?text=", Some(&viewer));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "{body}");
    let long = "a".repeat(2_001);
    let (status, _) = server.request("GET", &format!("/api/v1/conversations/suggest?text={long}"), Some(&viewer));
    assert_eq!(status, 400);

    let path = format!("/api/v1/conversations/topics/{id}");
    let (status, body) =
        put_json(&server, &marketer, &path, &json!({"label": "价格太高", "label_en": "Price too high"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["edit"]["by"], "mai@shop.vn");
    let (status, body) = put_json(&server, &marketer, &path, &json!({"label": "\u{0007}"}));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = put_json(&server, &marketer, "/api/v1/conversations/topics/t-none", &json!({"label": "x"}));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_topic")), "{body}");
    let topics = get(&server, &viewer, "/api/v1/conversations/topics");
    let renamed = topics.as_array().unwrap().iter().find(|t| t["id"] == json!(id)).unwrap();
    assert_eq!((renamed["label"].as_str(), renamed["label_en"].as_str()), (Some("价格太高"), Some("Price too high")));

    // A customer who is also a profile: erasing the profile erases their conversations.
    let email = conversations[0].customer["email"].clone();
    let (status, _) = server.track("/v1/identify", &json!({"userId": "buyer-0", "traits": {"email": email}}));
    assert_eq!(status, 200);
    let (status, _) = server.request("GET", "/api/v1/profiles/user_id:buyer-0?consistent=true", Some(ADMIN_TOKEN));
    assert_eq!(status, 200);
    let (status, body) = server.request("DELETE", "/api/v1/profiles/user_id:buyer-0", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{body}");
    let store = common::conversation_store(&server.dir);
    assert!(store.get(&conversations[0].id).unwrap().is_none(), "erased with the person");
    assert_eq!(store.count().unwrap().0, 1_999);
    assert!(store.snapshot("mined").unwrap().is_none(), "the last mining, which may quote them, is gone");
    let examples = get(&server, &viewer, "/api/v1/conversations/topics");
    assert!(!examples.to_string().contains(&email), "mined again without them");
}
