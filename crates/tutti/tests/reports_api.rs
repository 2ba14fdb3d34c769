//! A flow's report, black-box: a win-back flow holds 10% of people out as a control; people in the offer arm
//! are made to order three times as often (30% against 10%), and the report's lift, with its interval, finds
//! that planted effect; revenue within the attribution window is counted per arm.

mod common;

use common::{ADMIN_TOKEN, Server, wait_until};
use serde_json::{Value, json};

const FLOW: &str = "flow: winback
category: promotional
trigger: { event: Cart Abandoned }
goal: { event: Order Completed, within: 7d }
steps:
  - id: test
    split:
      - { arm: offer, percent: 90, next: send }
      - { arm: control, percent: 10, holdout: true }
  - id: send
    action: log.write
    with: { text: 'Quay lại nhé {{ event.userId }}' }
";

const PEOPLE: usize = 2000;

#[test]
fn a_holdout_split_reports_the_planted_lift_with_an_interval() {
    let server = Server::start();
    assert_eq!(server.put("/api/v1/flows/winback", FLOW).0, 200);
    let abandoned: Vec<Value> =
        (0..PEOPLE).map(|i| json!({"type": "track", "userId": format!("u{i}"), "event": "Cart Abandoned"})).collect();
    for chunk in abandoned.chunks(500) {
        assert_eq!(server.track("/v1/batch", &json!({"batch": chunk})).0, 200);
    }
    // The log also holds the delivery events of the actions, so "caught up" is the head as it stands now.
    let head = server.metric("tutti_log_head");
    wait_until("every run started", || server.metric("tutti_processed_seq") >= head);

    // Who landed where, from each person's run; then the planted effect: the offer converts 3 in 10, the
    // control 1 in 10 (by the person's number, which the split's hash does not see).
    let mut arms = Vec::with_capacity(PEOPLE);
    for i in 0..PEOPLE {
        let (status, body) = server.request(
            "GET",
            &format!("/api/v1/runs?profile=user_id:u{i}&flow=winback&limit=1"),
            Some(ADMIN_TOKEN),
        );
        assert_eq!(status, 200, "{body}");
        let path = body["runs"][0]["path"].as_array().cloned().unwrap_or_default();
        let arm = path.iter().find_map(|d| d["arm"].as_str().map(str::to_owned)).expect("the split's decision");
        arms.push(arm);
    }
    let converts = |i: usize, arm: &str| if arm == "control" { i % 10 < 1 } else { i % 10 < 3 };
    let orders: Vec<Value> = (0..PEOPLE)
        .filter(|&i| converts(i, &arms[i]))
        .map(|i| {
            json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed",
                        "properties": {"revenue": 100000, "currency": "VND"}})
        })
        .collect();
    for chunk in orders.chunks(500) {
        assert_eq!(server.track("/v1/batch", &json!({"batch": chunk})).0, 200);
    }
    let head = server.metric("tutti_log_head");
    wait_until("the orders folded and projected", || {
        server.metric("tutti_processed_seq") >= head && server.metric("tutti_analytics_seq") >= head
    });

    let (status, report) = server.request("GET", "/api/v1/flows/winback/report", Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["window_ms"], 7 * 86_400_000);
    assert_eq!(report["complete"], true);
    let version = &report["versions"][0];
    assert_eq!(version["entered"], PEOPLE);
    assert_eq!(version["conversion"]["successes"], orders.len());
    let split = &version["splits"][0];
    assert_eq!((split["step"].as_str(), split["control"].as_str()), (Some("test"), Some("control")));
    let arm = |name: &str| split["arms"].as_array().unwrap().iter().find(|a| a["arm"] == name).unwrap().clone();
    let (offer, control) = (arm("offer"), arm("control"));
    let in_control = arms.iter().filter(|a| *a == "control").count();
    assert_eq!(control["conversion"]["trials"], in_control);
    assert_eq!(offer["conversion"]["trials"], PEOPLE - in_control);
    assert!((150..=250).contains(&in_control), "about a tenth held out: {in_control}");
    assert!(control["lift"].is_null(), "the control has no lift against itself");
    let lift = &offer["lift"];
    let (low, high) = (lift["low"].as_f64().unwrap(), lift["high"].as_f64().unwrap());
    assert!(low <= 0.20 && 0.20 <= high, "the interval {low}..{high} covers the planted 20 points");
    assert!(low > 0.0, "and says the offer works: {lift}");
    assert!((lift["difference"].as_f64().unwrap() - 0.20).abs() < 0.05, "{lift}");
    // Revenue within the window, per arm and per currency.
    let goals = |a: &Value| a["conversion"]["successes"].as_u64().unwrap() as f64;
    assert_eq!(offer["revenue"]["VND"].as_f64().unwrap(), goals(&offer) * 100000.0);
    assert_eq!(control["revenue"]["VND"].as_f64().unwrap(), goals(&control) * 100000.0);
    assert_eq!(version["revenue"]["VND"].as_f64().unwrap(), orders.len() as f64 * 100000.0);
    // Each step's outcomes: everyone reached the split; the offer arm reached the message.
    assert_eq!(version["steps"]["test"]["reached"], PEOPLE);
    assert_eq!(version["steps"]["send"]["acted"], PEOPLE - in_control);

    // The same in the CLI and on the console's report page.
    let (ok, out) = common::cli(&server, &["analytics", "flow", "winback"]);
    assert!(ok && out.contains("split test (control: control)") && out.contains("lift +"), "{out}");
    let (viewer, _) = common::browser::signed_in(&server, "an@shop.vn", "viewer");
    let page =
        common::browser::get(&server, "/flows/winback/report", &[("Cookie", &format!("{viewer}; tutti_lang=zh"))]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("相对对照组的提升")
            && page.body.contains(" pt (95%: +")
            && page.body.contains("class=\"whisker\""),
        "{}",
        page.body
    );

    let (status, body) = server.request("GET", "/api/v1/flows/nope/report", Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_flow")));
    let (status, _) = server.request("GET", "/api/v1/flows/winback/report?window=forever", Some(ADMIN_TOKEN));
    assert_eq!(status, 400);
}
