//! Human approval and the audit log through the real binary, with no model configured: the S6 flow writes a
//! thank-you per customer (with the AI-use disclosure the email policy asks for); the big spenders' messages
//! wait in the inbox; one is rejected from the CLI and never sent, one is edited and approved over the API and
//! sent once as edited; the audit log holds every model call and every decision, exports as JSON Lines, and
//! an erasure redacts what it says about the person while the record stays.

mod common;

use common::{ADMIN_TOKEN, Server, cli, cli_as, personal_token, post_admin, post_as, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::Vendors;

fn order(server: &Server, user: &str, traits: Value, order_id: &str) {
    let (status, body) = server.track("/v1/identify", &json!({"userId": user, "traits": traits}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.track(
        "/v1/track",
        &json!({"userId": user, "event": "Order Completed", "properties": {"item": "bộ ấm trà", "order_id": order_id}}),
    );
    assert_eq!(status, 200, "{body}");
}

fn run_of(inbox: &Value, profile: &str) -> String {
    inbox["approvals"].as_array().unwrap().iter().find(|a| a["profile"] == profile).unwrap()["run"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn messages_wait_for_a_person_and_every_decision_is_audited() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let server = Server::start_s6(&vendors, &[("TUTTI_CONNECTORS__AI__DISCLOSURE__EMAIL", "always")]);

    order(&server, "sam", json!({"email": "sam@example.com", "first_name": "Sam", "language": "en", "ltv": 20}), "E-1");
    order(
        &server,
        "lan",
        json!({"email": "lan@example.vn", "name": "Nguyễn Thị Lan", "gender": "female", "ltv": 5000}),
        "E-2",
    );
    order(
        &server,
        "hoa",
        json!({"email": "hoa@example.vn", "name": "Trần Văn Hòa", "gender": "male", "ltv": 3000}),
        "E-3",
    );
    let sent = || vendors.received("hook").into_iter().filter(|r| r.status == 200).collect::<Vec<_>>();
    wait_until("the ordinary customer's message", || sent().len() == 1);
    let sam = &sent()[0];
    assert_eq!(sam.body["to"], "sam@example.com");
    let text = sam.body["text"].as_str().unwrap();
    // The disclosure goes before the sign-off, as every required line does.
    let disclosure = text.find("This message was written with the help of AI.").expect("the disclosure");
    assert!(text.contains("Sam") && disclosure < text.find("Best regards").expect("a sign-off"), "{text}");

    let mut inbox = Value::Null;
    wait_until("two approvals", || {
        inbox = server.admin("/api/v1/approvals");
        inbox["approvals"].as_array().is_some_and(|a| a.len() == 2)
    });
    let (lan_pid, hoa_pid) =
        (server.profile("user_id:lan").1["id"].clone(), server.profile("user_id:hoa").1["id"].clone());
    let lan_run = run_of(&inbox, lan_pid.as_str().unwrap());
    let hoa_run = run_of(&inbox, hoa_pid.as_str().unwrap());
    let lan_item = inbox["approvals"].as_array().unwrap().iter().find(|a| a["run"] == lan_run.as_str()).unwrap();
    assert_eq!(lan_item["step"], "review");
    assert_eq!(lan_item["reason"], "a customer worth 5000");
    let body = lan_item["content"]["body"].as_str().unwrap();
    let disclosure = body.find("Nội dung này được soạn với sự hỗ trợ của AI.").expect("the disclosure");
    assert!(body.contains("chị Lan") && disclosure < body.find("Trân trọng").expect("a sign-off"), "{body}");

    let (ok, out) = cli(&server, &["approvals", "list"]);
    assert!(ok && out.contains(&lan_run) && out.contains("why: a customer worth 5000"), "{out}");

    // A person decides: the admin token, which is nobody, cannot; neither can a person in another's name.
    let mai = personal_token(&server, "mai@shop.vn", "approver");
    let approve_lan = format!("/api/v1/approvals/{lan_run}/approve");
    let (status, body) = post_admin(&server, &approve_lan, &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("needs_person")), "{body}");
    let (status, body) = post_as(&server, &mai, &approve_lan, &json!({"by": "someone@else.vn"}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (ok, out) = cli(&server, &["approvals", "reject", &lan_run, "--reason", "no"]);
    assert!(!ok && out.contains("needs_person"), "the CLI with the admin token is refused: {out}");

    // Bad decisions are refused, naming the problem; nothing changes.
    let (status, body) = post_as(&server, &mai, &approve_lan, &json!({"edits": {"approved_by": "someone else"}}));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) =
        post_as(&server, &mai, &format!("/api/v1/approvals/{lan_run}/reject"), &json!({"reason": " "}));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = post_as(&server, &mai, "/api/v1/approvals/p9-9/approve", &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_approval")), "{body}");
    let (status, _) = server.post_raw(&approve_lan, b"{}", &[]);
    assert_eq!(status, 401, "a token is required");
    let (status, _) = post_as(&server, &format!("tutti_pat_{}", "0".repeat(64)), &approve_lan, &json!({}));
    assert_eq!(status, 401, "an unknown personal token is refused");

    // Rejected from the CLI with Mai's token: never sent.
    let (ok, out) = cli_as(&server, &mai, &["approvals", "reject", &lan_run, "--reason", "too pushy"]);
    assert!(ok && out.contains(&format!("rejected; run {lan_run} went on to the end of its flow")), "{out}");
    let (status, body) = post_as(&server, &mai, &approve_lan, &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("approval_closed")), "{body}");
    assert_eq!(body["state"], "rejected", "{body}");

    // Edited and approved over the API: sent once, as edited, with the approver on it.
    let edited = "Anh Hòa ơi, cảm ơn anh đã đặt hàng. Theo dõi đơn: https://shop.example/orders/E-3";
    let (status, body) =
        post_as(&server, &mai, &format!("/api/v1/approvals/{hoa_run}/approve"), &json!({"edits": {"body": edited}}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approval"]["edited"], true);
    assert_eq!(body["content"]["body"], edited);
    wait_until("the approved message", || sent().len() == 2);
    let hoa = sent().into_iter().find(|r| r.body["to"] == "hoa@example.vn").unwrap();
    assert_eq!(hoa.body["text"], edited);
    assert_eq!(hoa.body["approved_by"], "mai@shop.vn");
    assert!(server.admin("/api/v1/approvals")["approvals"].as_array().unwrap().is_empty());

    // The audit log: three model calls (the local provider, labelled), two requests and two decisions.
    let (ok, out) = cli(&server, &["audit", "--kind", "approval"]);
    assert!(ok, "{out}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let decisions: Vec<(&str, &str)> =
        lines.iter().map(|r| (r["run"].as_str().unwrap(), r["detail"]["decision"].as_str().unwrap())).collect();
    assert_eq!(decisions.iter().filter(|(_, d)| *d == "requested").count(), 2, "{decisions:?}");
    assert!(decisions.contains(&(lan_run.as_str(), "rejected")), "{decisions:?}");
    assert!(decisions.contains(&(hoa_run.as_str(), "edited_and_approved")), "{decisions:?}");
    let rejected = lines.iter().find(|r| r["detail"]["decision"] == "rejected").unwrap();
    assert_eq!(
        (rejected["detail"]["approver"].as_str(), rejected["detail"]["reason"].as_str()),
        (Some("mai@shop.vn"), Some("too pushy"))
    );

    let calls = server.admin("/api/v1/audit?kind=model_call");
    let calls = calls["records"].as_array().unwrap();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for c in calls {
        let d = &c["detail"];
        assert_eq!(
            (d["provider"].as_str(), d["local"].as_bool(), d["task"].as_str()),
            (Some("local"), Some(true), Some("generate"))
        );
        assert_eq!(d["template_version"], "personal-thanks@1#copy");
        assert!(d["verdict"]["passed"].as_bool().unwrap());
        assert!(d["output"]["variants"].as_array().is_some_and(|v| v.len() == 3), "{d}");
    }
    let mut export = common::agent()
        .get(format!("{}/api/v1/audit?format=jsonl", server.url))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let text = export.body_mut().read_to_string().unwrap();
    let kinds: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].as_str().unwrap().to_owned()).collect();
    let of = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!((of("model_call"), of("approval")), (3, lines.len()), "{text}");
    // Mai was added (people), signed in and made a token (people): who did what is on the log too.
    assert_eq!((of("people"), of("sign_in")), (2, 1), "{text}");
    let (status, body) = server.request("GET", "/api/v1/audit?kind=nonsense", Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "{body}");

    // Erasure: the person's records stay, blanked of what described them.
    let (status, body) = server.request("DELETE", "/api/v1/profiles/user_id:hoa", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{body}");
    let after = server.admin(&format!("/api/v1/audit?profile={}", hoa_pid.as_str().unwrap()));
    let (after, erasure): (Vec<Value>, Vec<Value>) =
        after["records"].as_array().unwrap().iter().cloned().partition(|r| r["kind"] != "erasure");
    assert_eq!(after.len(), 3, "a call, a request and a decision: {after:?}");
    assert_eq!(erasure.len(), 1, "and the erasure itself: {erasure:?}");
    assert_eq!(erasure[0]["detail"]["by"], "admin token");
    for r in &after {
        assert_eq!(r["detail"]["redacted"], true, "{r}");
        assert!(r["detail"].get("output").is_none() && r["detail"].get("content").is_none(), "{r}");
        assert!(!r.to_string().contains("Hòa"), "{r}");
    }
    assert!(after.iter().any(|r| r["detail"]["approver"] == "mai@shop.vn"), "who decided stays on record");
}

#[test]
fn with_four_eyes_the_person_who_saved_a_flow_does_not_approve_its_messages() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let policy = "policy: four-eyes\napprovals: { authors_may_approve: false }\n";
    let server = Server::start_s6_with(&vendors, &[("four-eyes.yaml", policy)], &[]);
    let mai = personal_token(&server, "mai@shop.vn", "approver");
    let binh = personal_token(&server, "binh@shop.vn", "approver");
    // Mai saves the flow's next version; the message it holds is then not hers to approve.
    let source = server.admin("/api/v1/flows/personal-thanks")["source"].as_str().unwrap().to_owned();
    let saved = common::agent()
        .put(format!("{}/api/v1/flows/personal-thanks", server.url))
        .header("Authorization", format!("Bearer {mai}"))
        .header("Content-Type", "application/yaml")
        .send(source.as_bytes())
        .unwrap();
    assert_eq!(saved.status().as_u16(), 200);
    order(&server, "lan", json!({"email": "lan@example.vn", "name": "Lan", "ltv": 5000}), "F-1");
    let mut inbox = Value::Null;
    wait_until("the held message", || {
        inbox = server.admin("/api/v1/approvals");
        inbox["approvals"].as_array().is_some_and(|a| a.len() == 1)
    });
    assert_eq!(inbox["approvals"][0]["version"], 2);
    let approve = format!("/api/v1/approvals/{}/approve", inbox["approvals"][0]["run"].as_str().unwrap());
    let (status, body) = post_as(&server, &mai, &approve, &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("four-eyes"), "{body}");
    let (status, body) = post_as(&server, &binh, &approve, &json!({}));
    assert_eq!(status, 200, "another approver decides: {body}");
    assert_eq!(body["approval"]["by"], "binh@shop.vn");
}
