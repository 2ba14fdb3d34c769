//! The creatives and insights admin API on a real server: import a Meta export over HTTP, read the creatives
//! and their tags, override a tag, and ask which traits win.

mod common;

use common::Server;
use serde_json::Value;

const META: &[u8] = include_bytes!("../../tutti-insights/tests/fixtures/meta_ads_manager.csv");

fn send(server: &Server, method: &str, path: &str, body: &[u8], content_type: &str, auth: bool) -> (u16, Value) {
    let url = format!("{}{path}", server.url);
    let agent = common::agent();
    let mut request = match method {
        "POST" => agent.post(&url),
        "PUT" => agent.put(&url),
        other => panic!("{other}"),
    }
    .header("Content-Type", content_type);
    if auth {
        request = request.header("Authorization", format!("Bearer {}", common::ADMIN_TOKEN));
    }
    let mut response = request.send(body).expect("a response");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[test]
fn import_tag_override_and_analyse_over_http() {
    let server = Server::start();
    // No token, no import.
    assert_eq!(send(&server, "POST", "/api/v1/creatives/import", META, "text/csv", false).0, 401);
    let (status, summary) = send(&server, "POST", "/api/v1/creatives/import", META, "text/csv", true);
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["layout"], "meta");
    assert_eq!(summary["performance"]["inserted"], 3);
    assert_eq!(summary["tagged"], 2);
    assert_eq!(summary["rejected_count"], 2);
    assert_eq!(summary["rejected"][0]["line"], 5);
    let (_, again) = send(&server, "POST", "/api/v1/creatives/import", META, "text/csv", true);
    assert_eq!(again["performance"]["unchanged"], 3);
    assert_eq!(again["creatives"]["inserted"], 0);

    let list = server.admin("/api/v1/creatives");
    assert_eq!(list["creatives"].as_array().unwrap().len(), 2);
    let one = server.admin("/api/v1/creatives/120210000000002");
    assert_eq!(one["headline"], "月圆人团圆");
    assert_eq!(one["tags"]["language"]["value"], "zh");
    assert_eq!(one["tags"]["tone"]["source"], "local");
    assert!(one["tags"]["tone"]["confidence"].as_f64().unwrap() > 0.0);

    let path = "/api/v1/creatives/120210000000002/tags/tone";
    let (status, set) = send(&server, "PUT", path, br#"{"value": "rational"}"#, "application/json", true);
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        send(&server, "POST", "/api/v1/creatives/tag", br#"{"all": true}"#, "application/json", true).1["tagged"],
        2
    );
    let one = server.admin("/api/v1/creatives/120210000000002");
    assert_eq!(
        (one["tags"]["tone"]["value"].as_str(), one["tags"]["tone"]["source"].as_str()),
        (Some("rational"), Some("manual"))
    );
    let (status, cleared) = server.request("DELETE", path, Some(common::ADMIN_TOKEN));
    assert_eq!((status, cleared["cleared"].as_bool()), (200, Some(true)));

    let (status, missing) = server.request("GET", "/api/v1/creatives/nope", Some(common::ADMIN_TOKEN));
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("unknown_creative")));
    let (status, bad) = send(&server, "POST", "/api/v1/creatives/import", b"a,b\n1,2\n", "text/csv", true);
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_import")));
    let (status, bad) = send(&server, "PUT", path, b"{}", "application/json", true);
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_json")));

    let report = server.admin("/api/v1/insights/creatives?from=2026-03-01&to=2026-03-31");
    assert_eq!(report["from"], "2026-03-01");
    let facebook = &report["channels"][0];
    assert_eq!(facebook["channel"], "facebook");
    assert_eq!(facebook["impressions"], 32_370);
    // Two creatives are too few to compare anything: said so, not guessed.
    for t in facebook["traits"].as_array().unwrap() {
        for c in t["comparisons"].as_array().unwrap() {
            assert_eq!(c["verdict"], "not_enough_data", "{c}");
        }
    }
    let (status, bad) = server.request("GET", "/api/v1/insights/creatives?from=yesterday", Some(common::ADMIN_TOKEN));
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_query")));
}

#[test]
fn predictions_budgets_competitors_alerts_and_the_html_report_over_http() {
    let dir = tempfile::tempdir().unwrap();
    common::seeded_creatives(dir.path());
    let server = Server::start_in(dir.path(), &[]);

    let body =
        r#"{"channel": "facebook", "headline": "Bạn có nhớ vòng tay mẹ?", "body": "Món quà ấm áp cho cả gia đình"}"#;
    let (status, p) = send(&server, "POST", "/api/v1/insights/predict", body.as_bytes(), "application/json", true);
    assert_eq!(status, 200, "{p}");
    let (low, mean, high) = (
        p["click_through"]["low"].as_f64().unwrap(),
        p["click_through"]["mean"].as_f64().unwrap(),
        p["click_through"]["high"].as_f64().unwrap(),
    );
    assert!(low < mean && mean < high, "{p}");
    assert!(p["parts"].as_array().unwrap().iter().any(|x| x["name"] == "tone"), "{p}");
    let (status, e) = send(
        &server,
        "POST",
        "/api/v1/insights/predict",
        br#"{"channel": "radio", "tags": {"tone": "emotional"}}"#,
        "application/json",
        true,
    );
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_request")));

    let (status, b) = send(
        &server,
        "POST",
        "/api/v1/insights/budget",
        br#"{"channel": "google", "budget": 500, "objective": "clicks"}"#,
        "application/json",
        true,
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "proposed");
    let total: i64 = b["allocations"].as_array().unwrap().iter().map(|a| a["budget_micros"].as_i64().unwrap()).sum();
    assert!((total - 500_000_000).abs() < 1_000, "{total}");
    let (status, e) = send(
        &server,
        "POST",
        "/api/v1/insights/budget",
        br#"{"channel": "google", "budget": 0}"#,
        "application/json",
        true,
    );
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_request")));

    let c = server.admin("/api/v1/insights/competitors");
    assert!(
        c["traits"].as_array().unwrap().iter().any(|t| t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["owner"] == "rival-co"))
    );

    let first = server.admin("/api/v1/insights/alerts");
    assert!(!first["alerts"].as_array().unwrap().is_empty(), "the first look reports every standing call");
    let second = server.admin("/api/v1/insights/alerts");
    assert!(second["alerts"].as_array().unwrap().is_empty(), "{second}");

    let mut response = common::agent()
        .get(format!("{}/api/v1/insights/creatives/report.html", server.url))
        .header("Authorization", format!("Bearer {}", common::ADMIN_TOKEN))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    let page = response.body_mut().read_to_string().unwrap();
    assert!(page.contains("<svg") && page.contains("facebook") && page.contains("rival-co"));
}

#[test]
fn creatives_and_their_days_written_as_json() {
    let server = Server::start();
    let body = r#"{"channel": "Zalo", "headline": "担心数据安全？", "body": "企业级加密，免费试用30天", "tags": {"tone": "rational"}}"#;
    let (status, put) = send(&server, "PUT", "/api/v1/creatives/zh-1", body.as_bytes(), "application/json", true);
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["changes"]["inserted"], 1);
    let c = server.admin("/api/v1/creatives/zh-1");
    assert_eq!(c["channel"], "zalo");
    assert_eq!(
        (c["tags"]["tone"]["value"].as_str(), c["tags"]["tone"]["source"].as_str()),
        (Some("rational"), Some("manual"))
    );
    assert_eq!(c["tags"]["language"]["value"], "zh");
    assert_eq!(c["tags"]["offer"]["source"], "local");
    let days = br#"{"days": [{"date": "2026-03-01", "impressions": 1000, "clicks": 12, "spend": 3.5}, {"date": "2026-03-02", "impressions": 900, "clicks": 9, "conversions": 1, "spend": 3.1, "revenue": 20}]}"#;
    let (status, posted) = send(&server, "POST", "/api/v1/creatives/zh-1/performance", days, "application/json", true);
    assert_eq!((status, posted["changes"]["inserted"].as_i64()), (200, Some(2)));
    let (_, again) = send(&server, "POST", "/api/v1/creatives/zh-1/performance", days, "application/json", true);
    assert_eq!(again["changes"]["unchanged"], 2);
    let (status, e) = send(&server, "POST", "/api/v1/creatives/nope/performance", days, "application/json", true);
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("unknown_creative")));
    let bad = br#"{"days": [{"date": "tomorrow"}]}"#;
    let (status, e) = send(&server, "POST", "/api/v1/creatives/zh-1/performance", bad, "application/json", true);
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_request")));
    assert!(e["error"]["message"].as_str().unwrap().contains("days[0].date"));
    let (status, e) =
        send(&server, "PUT", "/api/v1/creatives/x", br#"{"headline": "no channel"}"#, "application/json", true);
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_json")));
}

#[test]
fn hostile_imports_get_a_4xx_or_a_summary_never_a_500() {
    let server = Server::start();
    let mut bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xFF, 0xFE, 0x00],
        vec![0xFF; 4096],
        b"creative_id,channel,date,impressions\n\"unterminated,x,2026-03-01,1\n".to_vec(),
        b"creative_id,channel,date,impressions\nx,y,2026-02-30,1\nx,y,2026-03-01,99999999999999999999999\n".to_vec(),
        format!("creative_id,channel,date,impressions\n{}\n", "a,".repeat(20_000)).into_bytes(),
        b"Ad ID,Day,Impressions\n\x00\x01,2026-03-01,5\n".to_vec(),
    ];
    bodies.push(b"\xEF\xBB\xBFcreative_id,channel\n<script>,web\n".to_vec());
    for body in bodies {
        let (status, answer) = send(&server, "POST", "/api/v1/creatives/import", &body, "text/csv", true);
        assert!(
            status == 200 || (400..500).contains(&status),
            "{status} {answer} for {:?}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        if status != 200 {
            assert!(answer["error"]["code"].is_string(), "{answer}");
        }
    }
    // Text with a NUL character is refused whatever the store (Postgres's text cannot hold one).
    let nul = br#"{"channel": "facebook", "headline": "Gi\u0000m gi\u00e1"}"#;
    let (status, e) = send(&server, "PUT", "/api/v1/creatives/nul-1", nul, "application/json", true);
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_request")), "{e}");
    let (status, _) =
        send(&server, "PUT", "/api/v1/creatives/a%00b", br#"{"channel": "web"}"#, "application/json", true);
    assert_eq!(status, 400);
    let (status, _) = server.request("GET", "/api/v1/creatives/a%00b", Some(common::ADMIN_TOKEN));
    assert_eq!(status, 404);
    // The server is still fine.
    assert_eq!(server.request("GET", "/healthz", None).0, 200);
}
