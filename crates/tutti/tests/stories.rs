//! The seed stories S1 and S3 end to end through the real binary and the real connectors, against local
//! stand-ins that enforce each vendor's request format: the example flows of `examples/`, unchanged.
//!
//! - S1: a lead reads the pricing page five times; the owner hears about it once in Slack, the lead joins the
//!   `pricing-visitors` audience (hashed, in a batch), and the website's hero slot answers with the case study
//!   for the lead's industry.
//! - S3: a salesperson's objection arrives from the CRM's signed webhook and becomes a card on the content
//!   board carrying the notes; another salesperson's objection on the same topic becomes a comment on that card;
//!   the CRM's retry of the same note changes nothing.

mod common;

use common::{Server, repo_root, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::{self, Vendors};

fn start(vendors: &Vendors, story: &str, extra_env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    common::start_story(vendors, story, extra_env)
}

fn decide(server: &Server, profile: &str, slot: &str) -> (u16, Value) {
    let auth = Server::basic_auth();
    let url = format!("/api/v1/decide?profile={profile}&slot={slot}");
    let mut response =
        common::agent().get(format!("{}{url}", server.url)).header("Authorization", &auth).call().unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap())
}

#[test]
fn s1_a_lead_on_the_pricing_page() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (server, _data) = start(&vendors, "s1-pricing", &[]);
    let (status, body) = server.track(
        "/v1/identify",
        &json!({"userId": "minh", "traits": {"name": "Trần Minh", "company": "Công ty Sao Việt", "email": "Minh@SaoViet.vn",
                 "phone": "0912 345 678", "lifecycle_stage": "lead", "industry": "retail", "owner": "Hà"}}),
    );
    assert_eq!(status, 200, "{body}");
    for path in ["/pricing", "/pricing/enterprise", "/pricing", "/pricing", "/pricing"] {
        let (status, _) =
            server.track("/v1/page", &json!({"userId": "minh", "name": "Pricing", "properties": {"path": path}}));
        assert_eq!(status, 200);
    }
    wait_until("the Slack message", || !vendors.received("slack").is_empty());
    // The slot is set by the run's third action, delivered on its own connector's lane.
    wait_until("the decision", || decide(&server, "user_id:minh", "home-hero").1["content"] == "case-study/retail");
    let (status, answer) = decide(&server, "user_id:minh", "home-hero");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["content"], "case-study/retail", "{answer}");
    wait_until("the audience batch", || vendors.audience(testing::AUDIENCE_ID).len() == 1);
    let slack = vendors.received("slack");
    assert_eq!(slack.len(), 1, "five views, one message");
    assert_eq!(slack[0].body["text"], "Trần Minh (Công ty Sao Việt) is reading /pricing; owner Hà");
    assert_eq!(slack[0].body["channel"], "#sales");
    // `printf minh@saoviet.vn | sha256sum`: the email normalised, then hashed; never sent in clear.
    assert_eq!(
        vendors.audience(testing::AUDIENCE_ID),
        ["555a876646509d4f57cd3b22e94121033b1ce2abd868e5b0a4314e97a1cb53a1".to_owned()]
    );
    // A visitor nothing was decided for: null content (the site shows its default).
    let (status, answer) = decide(&server, "user_id:someone-else", "home-hero");
    assert_eq!((status, &answer["content"]), (200, &Value::Null));
    let mut response = common::agent()
        .get(format!("{}/api/v1/decide?profile=user_id:minh&slot=home-hero", server.url))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401, "a key is needed: {}", response.body_mut().read_to_string().unwrap());
    // The write key is in every visitor's browser: it may not ask whether an email or phone is a customer, nor
    // by internal id, and it is not told internal ids.
    for key in ["email:minh@saoviet.vn", "phone:%2B84912345678", "p1"] {
        let (status, body) = decide(&server, key, "home-hero");
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{key}: {body}");
    }
    let (_, answer) = decide(&server, "user_id:minh", "home-hero");
    assert!(answer["profile"].is_null(), "{answer}");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

const CRM_SECRET: &str = "crm-client-secret";

fn signed_note(server: &Server, note: &Value) -> (u16, Value) {
    let body = note.to_string();
    let headers = common::hubspot_headers(CRM_SECRET, "/hooks/crm", body.as_bytes());
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.post_raw("/hooks/crm", body.as_bytes(), &headers)
}

#[test]
fn s3_objections_from_the_crm_become_one_card_per_topic() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(
        hooks.path().join("crm.yaml"),
        "source: crm\nverify: { scheme: hubspot_v3, secret_env: T_CRM_SECRET, public_url: 'https://mkt.example.vn' }\nbuiltin: crm-objection\n",
    )
    .unwrap();
    let hooks_dir = hooks.path().to_str().unwrap().to_owned();
    let (server, _data) =
        start(&vendors, "s3-objection", &[("TUTTI_HOOKS__DIR", &hooks_dir), ("T_CRM_SECRET", CRM_SECRET)]);
    // The salespeople are not known to Tutti before their notes: the CRM names them in each note.
    let note = |id: &str, (owner, name): (&str, &str), topic: &str, body: &str| {
        json!({"note_id": id, "type": "objection", "topic": topic, "body": body, "account": "Vinamart",
               "owner": {"email": owner, "name": name}})
    };
    let hoa = ("hoa@shop.example.vn", "Nguyễn Hoa");
    let first = note("n-1", hoa, "Data security", "Khách lo dữ liệu khách hàng lưu ở nước ngoài.");
    assert_eq!(signed_note(&server, &first).0, 200);
    wait_until("the card", || vendors.received("trello").iter().any(|r| r.status == 200));
    let second = note("n-2", ("li@shop.example.vn", "李娜"), "data security ", "客户担心数据安全和合规。");
    assert_eq!(signed_note(&server, &second).0, 200);
    // The CRM retries the second note: each of its two events (the name, the objection) is stored once.
    let (status, answer) = signed_note(&server, &second);
    assert_eq!((status, &answer["duplicates"]), (200, &json!(2)), "{answer}");
    wait_until("the comment", || vendors.received("trello").iter().filter(|r| r.status == 200).count() >= 2);
    wait_until("both recorded as delivered", || {
        server.admin("/api/v1/outbox?state=done&limit=100")["actions"].as_array().is_some_and(|a| a.len() == 2)
    });
    let trello = vendors.received("trello");
    let cards: Vec<_> = trello.iter().filter(|r| r.path.ends_with("/cards")).collect();
    let comments: Vec<_> = trello.iter().filter(|r| r.path.ends_with("/actions/comments")).collect();
    assert_eq!((cards.len(), comments.len()), (1, 1), "one card for the topic, then a comment");
    assert_eq!(cards[0].body["name"], "Objection: Data security");
    assert_eq!(cards[0].body["desc"], "Nguyễn Hoa (Vinamart): Khách lo dữ liệu khách hàng lưu ở nước ngoài.");
    assert_eq!(comments[0].body["text"], "#2: 李娜 (Vinamart): 客户担心数据安全和合规。", "the second report");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

#[test]
fn s4_a_viral_post_pauses_the_topics_ad_spend_on_both_platforms() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (server, _data) = start(&vendors, "s4-viral-content", &[]);
    let events = std::fs::read_to_string(repo_root().join("examples/s4-viral-content/events.jsonl")).unwrap();
    for line in events.lines().filter(|l| l.starts_with('{')) {
        let event: Value = serde_json::from_str(line).unwrap();
        let (status, body) = server.track("/v1/track", &event);
        assert_eq!(status, 200, "{body}");
    }
    let adset = format!("meta:{}", testing::META_ADSET);
    let campaign = format!("google:campaign:{}", testing::GOOGLE_CAMPAIGN);
    wait_until("the topic's spend paused", || {
        vendors.ad_state(&adset)["status"] == "PAUSED" && vendors.ad_state(&campaign)["status"] == "PAUSED"
    });
    // Recorded with what it replaced.
    let deliveries = || server.request("GET", "/api/v1/deliveries?connector=ads", Some(common::ADMIN_TOKEN)).1;
    wait_until("the change recorded", || deliveries()["deliveries"][0]["outcome"] == "done");
    let list = deliveries();
    let row = &list["deliveries"][0];
    assert_eq!(row["outcome"], "done", "{list}");
    assert_eq!(row["result"]["changes"][0]["before"]["status"], "ACTIVE", "{row}");
    assert_eq!(row["result"]["changes"][0]["after"]["status"], "PAUSED", "{row}");
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 1, "once a week at most: {list}");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}
