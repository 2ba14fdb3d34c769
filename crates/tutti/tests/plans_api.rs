//! The copilot through the real binary: `POST /api/v1/plans` plans a goal on the profiles there are, a change in
//! words makes the next version, roles decide who may propose and approve, an approved plan's segment and flow
//! exist, and `tutti plan` prints the same.

mod common;

use common::{ADMIN_TOKEN, Server, cli_as, personal_token, post_as};
use serde_json::json;

fn days_ago(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    tutti_core::time::format_timestamp(now - days * 86_400_000)
}

#[test]
fn a_goal_becomes_a_plan_a_change_a_version_and_an_approval_a_flow() {
    let server = Server::start();
    // Three lapsed VIPs in Hanoi (one bought twice), a recent buyer, and one in Da Nang.
    let people = [
        ("lan", "Hà Nội", 20_000_000, vec![200]),
        ("minh", "Hanoi", 15_000_000, vec![300, 120]),
        ("hoa", "河内", 12_000_000, vec![95]),
        ("binh", "Hà Nội", 30_000_000, vec![10]),
        ("an", "Đà Nẵng", 50_000_000, vec![200]),
    ];
    for (id, city, ltv, orders) in &people {
        let traits = json!({"email": format!("{id}@example.vn"), "city": city, "ltv": ltv, "name": id});
        let (status, _) =
            server.track("/v1/identify", &json!({"userId": id, "traits": traits, "timestamp": days_ago(400)}));
        assert_eq!(status, 200);
        for d in orders {
            let order = json!({"userId": id, "event": "Order Completed", "timestamp": days_ago(*d)});
            assert_eq!(server.track("/v1/track", &order).0, 200);
        }
    }
    let (status, _) = server.request("GET", "/api/v1/profiles/user_id:an?consistent=true", Some(ADMIN_TOKEN));
    assert_eq!(status, 200);
    let marketer = personal_token(&server, "mai@shop.vn", "marketer");
    let approver = personal_token(&server, "binh@shop.vn", "approver");
    let viewer = personal_token(&server, "an@shop.vn", "viewer");

    let goal = json!({"goal": "Bring back lapsed VIP customers in Hanoi, budget 50 million VND, email, two weeks"});
    let (status, body) = post_as(&server, &viewer, "/api/v1/plans", &goal);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, plan) = post_as(&server, &marketer, "/api/v1/plans", &goal);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["audience"]["count"], 3, "{plan}");
    assert_eq!(plan["status"], "proposed");
    assert_eq!(plan["budget"]["amount"], json!(50_000_000.0));
    assert!(plan["assumptions"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("河内")));
    assert!(plan["flow_yaml"].as_str().unwrap().contains("action: smtp.send"));
    assert_eq!(plan["messages"][0]["channel"], "email");
    let id = plan["id"].as_str().unwrap().to_owned();

    let (status, body) = post_as(&server, &marketer, "/api/v1/plans", &json!({"goal": "viết một bài thơ"}));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("goal_not_understood")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("kéo lại khách"), "answered in Vietnamese: {body}");

    let (status, v2) = post_as(
        &server,
        &marketer,
        &format!("/api/v1/plans/{id}/versions"),
        &json!({"change": "only customers who bought twice"}),
    );
    assert_eq!(status, 200, "{v2}");
    assert_eq!((v2["version"].as_u64(), v2["audience"]["count"].as_u64()), (Some(2), Some(1)));
    assert!(v2["changes"]["segment"].as_str().unwrap().contains("+   - { performed"), "{v2}");
    // Nothing exists before approval.
    let (status, _) = server.request("GET", &format!("/api/v1/flows/plan-{id}"), Some(ADMIN_TOKEN));
    assert_eq!(status, 404);

    let verdict = format!("/api/v1/plans/{id}/approve");
    let (status, body) = post_as(&server, ADMIN_TOKEN, &verdict, &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("needs_person")), "{body}");
    let (status, _) = post_as(&server, &marketer, &verdict, &json!({}));
    assert_eq!(status, 403, "a marketer does not approve");
    let (status, decided) = post_as(&server, &approver, &verdict, &json!({"reason": "ok"}));
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "approved");
    let (status, flow) = server.request("GET", &format!("/api/v1/flows/plan-{id}"), Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{flow}");
    let (status, again) = post_as(&server, &approver, &verdict, &json!({}));
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("approval_closed")), "{again}");
    let audit = server.admin("/api/v1/audit?kind=plan");
    assert_eq!(audit["records"][0]["detail"]["decision"], "approved", "{audit}");

    let (ok, out) = cli_as(&server, &marketer, &["plan", "--show", &id]);
    assert!(ok, "{out}");
    assert!(out.contains("version 2 (approved)") && out.contains("audience now: 1 people"), "{out}");
    let (ok, out) = cli_as(&server, &marketer, &["plan", "--list"]);
    assert!(ok && out.contains(&id) && out.contains("approved"), "{out}");
    let (ok, out) =
        cli_as(&server, &marketer, &["plan", "Kéo lại khách lâu không mua, email, 2 tuần", "--format", "json"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["shape"], "win_back");
}

#[test]
fn a_model_reads_the_goal_through_the_typed_tool_and_a_bad_reading_falls_back() {
    use tutti_connectors::testing::{Reply, Vendors};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let server = Server::start_with_model(&vendors, "plan");
    let marketer = personal_token(&server, "mai@shop.vn", "marketer");
    // A goal the local reader would not read ("customers we have not heard from"); the model reads it.
    let goal = json!({"goal": "Re-engage the people we have not heard from since summer in Da Nang, SMS, ten days"});
    let reading = json!({"shape": "win_back", "vip": false, "city": "Đà Nẵng", "bought_at_least": null,
                         "channels": ["sms"], "budget": {"amount": 5000000, "currency": "VND"}, "days": 10, "holdout": 0.2});
    vendors.reply([Reply::Call { name: "propose_plan".into(), arguments: reading.to_string() }]);
    let (status, plan) = post_as(&server, &marketer, "/api/v1/plans", &goal);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["method"], "openai/gpt-4o-mini");
    assert_eq!((plan["shape"].as_str(), plan["holdout"].as_f64()), (Some("win_back"), Some(0.2)));
    assert_eq!(plan["channels"], json!(["sms"]));
    assert!(plan["assumptions"].as_array().unwrap().iter().any(|a| a == "read by openai/gpt-4o-mini"), "{plan}");
    let asked = vendors.received("openai");
    let request = &asked.last().expect("the model was asked").body;
    assert_eq!(request["tool_choice"]["function"]["name"], "propose_plan", "{request}");
    assert_eq!(request["tools"][0]["function"]["parameters"]["properties"]["shape"]["enum"][0], "win_back");

    // Arguments outside the tool's schema are refused before anything reads them: the local planner plans.
    let bad = json!({"shape": "win_back", "vip": false, "city": "Atlantis", "bought_at_least": null,
                     "channels": ["fax"], "budget": null, "days": 10, "holdout": null});
    vendors.reply([Reply::Call { name: "propose_plan".into(), arguments: bad.to_string() }]);
    let goal = json!({"goal": "Win back lapsed customers by email, two weeks"});
    let (status, plan) = post_as(&server, &marketer, "/api/v1/plans", &goal);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["method"], "local");
    assert_eq!(plan["channels"], json!(["email"]));
    // The model may say a goal is outside: refused, in the goal's language.
    let outside = json!({"shape": "outside", "vip": false, "city": null, "bought_at_least": null, "channels": [],
                         "budget": null, "days": null, "holdout": null});
    vendors.reply([Reply::Call { name: "propose_plan".into(), arguments: outside.to_string() }]);
    let (status, body) = post_as(&server, &marketer, "/api/v1/plans", &json!({"goal": "Viết cho tôi một bài thơ"}));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("goal_not_understood")), "{body}");
    let audit = server.admin("/api/v1/audit?kind=model_call&limit=10");
    assert!(audit["records"].as_array().unwrap().iter().any(|r| r["detail"]["task"] == "plan"), "{audit}");
}
