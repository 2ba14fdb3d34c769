//! Email through a real SMTP server (aiosmtpd, installed into `.venv` by `scripts/test.sh`), read back with
//! Python's own email parser: headers, both parts, Vietnamese and Chinese intact; the one-click unsubscribe
//! (RFC 8058) works and stops every further promotional email, while transactional email still goes.

mod common;

use common::Server;
use serde_json::json;
use tutti_connectors::testing::SmtpServer as Smtp;

/// A server sending through `smtp`, with the flows in `flows`, after its data directory (which must outlive it).
fn serve(smtp: &Smtp, flows: &std::path::Path) -> (tempfile::TempDir, Server) {
    let data = tempfile::tempdir().unwrap();
    let port = smtp.port.to_string();
    let flows_dir = flows.to_str().unwrap().to_owned();
    let env = [
        ("TUTTI_FLOWS__DIR", flows_dir.as_str()),
        ("TUTTI_CONNECTORS__SMTP__HOST", "127.0.0.1"),
        ("TUTTI_CONNECTORS__SMTP__PORT", port.as_str()),
        ("TUTTI_CONNECTORS__SMTP__SECURITY", "none"),
        ("TUTTI_CONNECTORS__SMTP__FROM", "Cửa hàng Tutti <news@shop.example.vn>"),
        ("TUTTI_CONNECTORS__SMTP__UNSUBSCRIBE_BASE_URL", "https://mkt.shop.example.vn"),
    ];
    let server = Server::start_in(data.path(), &env);
    (data, server)
}

const SUBJECT: &str = "Ưu đãi cuối tuần cho chị Lan · 周末特惠";

#[test]
fn email_arrives_intact_and_one_click_unsubscribe_stops_promotions() {
    let Some(smtp) = Smtp::start() else { return };
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(
        flows.path().join("newsletter.yaml"),
        format!(
            "flow: newsletter\ncategory: promotional\ntrigger: {{ event: Newsletter Due }}\nentry: {{ every_time: true }}\nsteps:\n\
             \x20 - id: mail\n    action: smtp.send\n    with:\n      to: '{{{{ profile.traits.email }}}}'\n      to_name: '{{{{ profile.traits.name }}}}'\n\
             \x20     subject: '{SUBJECT}'\n\
             \x20     text: 'Chào chị {{{{ profile.traits.name }}}}, giảm 20% hôm nay. 今天八折。 Hủy: %%unsubscribe_url%%'\n\
             \x20     html: '<p>Chào chị <b>{{{{ profile.traits.name }}}}</b> — giảm 20%. 今天八折。</p><a href=\"%%unsubscribe_url%%\">Hủy đăng ký</a>'\n"
        ),
    )
    .unwrap();
    std::fs::write(
        flows.path().join("receipt.yaml"),
        "flow: receipt\ncategory: transactional\ntrigger: { event: Order Completed }\nentry: { every_time: true }\nsteps:\n\
         \x20 - id: mail\n    action: smtp.send\n    with: { to: '{{ profile.traits.email }}', subject: 'Biên nhận đơn hàng 订单收据', text: 'Cảm ơn chị! 谢谢！' }\n",
    )
    .unwrap();
    let (_data, server) = serve(&smtp, flows.path());
    let (status, body) =
        server.track("/v1/identify", &json!({"userId": "lan", "traits": {"email": "lan@example.vn", "name": "Lan"}}));
    assert_eq!(status, 200, "{body}");
    server.track("/v1/track", &json!({"userId": "lan", "event": "Newsletter Due"}));

    let got = smtp.wait_for(1);
    let mail = &got[0];
    let headers = &mail["headers"];
    assert_eq!(headers["Subject"], SUBJECT, "{mail}");
    assert_eq!(headers["From"], "Cửa hàng Tutti <news@shop.example.vn>");
    assert_eq!(headers["To"], "Lan <lan@example.vn>");
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    let list_unsubscribe = headers["List-Unsubscribe"].as_str().unwrap();
    let url = list_unsubscribe.trim_start_matches('<').trim_end_matches('>');
    assert!(url.starts_with("https://mkt.shop.example.vn/u/"), "{list_unsubscribe}");
    let text = mail["text"].as_str().unwrap();
    assert!(text.contains("Chào chị Lan, giảm 20% hôm nay. 今天八折。"), "{text}");
    assert!(text.contains(url), "the footer link is the same URL: {text}");
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains("<b>Lan</b> — giảm 20%. 今天八折。") && html.contains(url), "{html}");
    assert!(headers["Message-ID"].as_str().unwrap().ends_with("@shop.example.vn>"));

    // The mail client's one-click POST (RFC 8058), at Tutti's own address.
    let path = &url["https://mkt.shop.example.vn".len()..];
    let (status, page) =
        server.post_raw(path, b"List-Unsubscribe=One-Click", &[("Content-Type", "application/x-www-form-urlencoded")]);
    assert_eq!(status, 200, "{page}");
    // A tampered token changes nothing.
    let (status, body) = server.post_raw(&format!("{path}x"), b"List-Unsubscribe=One-Click", &[]);
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_link")), "{body}");

    let (_, profile) = server.profile("email:lan@example.vn");
    assert_eq!(profile["traits"]["email_subscribe"], "unsubscribed", "{profile}");
    assert_eq!(profile["event_counts"]["Unsubscribed"], 1, "Segment's email event, for reports: {profile}");
    server.track("/v1/track", &json!({"userId": "lan", "event": "Newsletter Due"}));
    server.track("/v1/track", &json!({"userId": "lan", "event": "Order Completed"}));
    let got = smtp.wait_for(2);
    assert_eq!(got.len(), 2, "the second newsletter was not sent: {got:?}");
    let receipt = &got[1];
    assert_eq!(receipt["headers"]["Subject"], "Biên nhận đơn hàng 订单收据");
    assert_eq!(receipt["text"].as_str().unwrap().trim_end(), "Cảm ơn chị! 谢谢！");
    assert!(receipt["headers"].get("List-Unsubscribe").is_none(), "transactional mail has no unsubscribe link");
    let runs = server.admin("/api/v1/runs?flow=newsletter&limit=10");
    assert!(runs.to_string().contains("email_subscribe"), "the skip names the reason: {runs}");
}

/// An agent that does not follow redirects, to see them.
fn no_redirects() -> ureq::Agent {
    ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().into()
}

#[test]
fn opens_and_clicks_come_back_as_events_that_flows_trigger_on() {
    let Some(smtp) = Smtp::start() else { return };
    let flows = tempfile::tempdir().unwrap();
    let mail = |id: &str, extra: &str| {
        format!(
            "flow: {id}\ncategory: promotional\ntrigger: {{ event: {id} due }}\nentry: {{ every_time: true }}\n{extra}steps:\n\
             \x20 - id: mail\n    action: smtp.send\n    with:\n      to: '{{{{ profile.traits.email }}}}'\n      subject: 'Ưu đãi {id}'\n\
             \x20     html: '<html><body><p>Xem <a href=\"https://shop.example.vn/sale?a=1&amp;b=2\">ưu đãi</a> · 周末特惠</p><a href=\"%%unsubscribe_url%%\">Hủy</a></body></html>'\n"
        )
    };
    std::fs::write(flows.path().join("promo.yaml"), mail("promo", "")).unwrap();
    std::fs::write(flows.path().join("quiet.yaml"), mail("quiet", "tracking: false\n")).unwrap();
    std::fs::write(
        flows.path().join("follow-up.yaml"),
        "flow: follow-up\ncategory: transactional\ntrigger: { event: Email Link Clicked }\nentry: { every_time: true }\nsteps:\n\
         \x20 - id: note\n    action: log.write\n    with: { text: 'clicked {{ event.properties.url }}' }\n",
    )
    .unwrap();
    let (_data, server) = serve(&smtp, flows.path());
    server.track("/v1/identify", &json!({"userId": "lan", "traits": {"email": "lan@example.vn"}}));
    server.track("/v1/track", &json!({"userId": "lan", "event": "promo due"}));
    let got = smtp.wait_for(1);
    let html = got[0]["html"].as_str().unwrap().to_owned();
    let find = |marker: &str| -> String {
        let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in {html}"));
        let rest = &html[at + "https://mkt.shop.example.vn".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    let (pixel, link) = (find("https://mkt.shop.example.vn/t/o/"), find("https://mkt.shop.example.vn/t/c/"));
    assert!(html.contains("https://mkt.shop.example.vn/u/"), "the unsubscribe link is not rewritten: {html}");
    assert!(!html.contains("https://shop.example.vn/sale"), "the link goes through Tutti: {html}");
    assert!(html.contains("ưu đãi") && html.contains("周末特惠"));

    let agent = no_redirects();
    for _ in 0..2 {
        let mut opened = agent.get(format!("{}{pixel}", server.url)).call().unwrap();
        assert_eq!(opened.status().as_u16(), 200);
        assert_eq!(opened.headers()["content-type"], "image/gif");
        assert_eq!(opened.body_mut().read_to_vec().unwrap()[..6], *b"GIF89a");
    }
    let clicked = agent.get(format!("{}{link}", server.url)).call().unwrap();
    assert_eq!(clicked.status().as_u16(), 302);
    assert_eq!(
        clicked.headers()["location"],
        "https://shop.example.vn/sale?a=1&b=2",
        "the link as the browser reads it"
    );

    common::wait_until("the open and the click on the profile", || {
        let counts = &server.profile("user_id:lan").1["event_counts"];
        counts["Email Opened"] == 1 && counts["Email Link Clicked"] == 1
    });
    common::wait_until("the click to start a flow", || {
        server.admin("/api/v1/runs?flow=follow-up&limit=10")["runs"].as_array().is_some_and(|r| r.len() == 1)
    });
    let events = server.admin("/api/v1/profiles/user_id:lan/events?limit=100");
    let events = events["events"].as_array().cloned().unwrap_or_default();
    let click = events
        .iter()
        .map(|e| &e["event"])
        .find(|e| e["event"] == "Email Link Clicked")
        .unwrap_or_else(|| panic!("the click event: {events:?}"));
    assert_eq!(click["properties"]["url"], "https://shop.example.vn/sale?a=1&b=2");
    assert_eq!(
        (click["properties"]["flow"].as_str(), click["properties"]["step"].as_str()),
        (Some("promo"), Some("mail"))
    );

    // Altered tokens, or an open's token used as a click, are refused.
    let altered = format!("{}{}x", server.url, &link[..link.len() - 1]);
    let (status, _) = (agent.get(altered).call().unwrap().status().as_u16(), ());
    assert_eq!(status, 400);
    let swapped = format!("{}/t/c/{}", server.url, &pixel["/t/o/".len()..]);
    assert_eq!(agent.get(swapped).call().unwrap().status().as_u16(), 400);

    // The message's report: one sent and delivered, opened and clicked once, today.
    let head = server.metric("tutti_log_head");
    common::wait_until("the events projected", || server.metric("tutti_analytics_seq") >= head);
    let report = server.admin("/api/v1/flows/promo/messages?step=mail");
    let totals = &report["totals"];
    assert_eq!((totals["sent"].as_u64(), totals["delivered"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!((totals["opened"].as_u64(), totals["clicked"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(report["rates"]["open"], 1.0);
    assert_eq!(report["days"].as_array().unwrap().len(), 31, "30 days back and today: {report}");
    let (status, answer) = common::post_admin(
        &server,
        "/api/v1/questions",
        &json!({"question": "How many emails were opened in the promo flow today?"}),
    );
    assert_eq!((status, &answer["rows"]), (200, &json!([[1]])), "a message's metric, asked: {answer}");
    let (ok, out) = common::cli(&server, &["analytics", "messages", "promo"]);
    assert!(ok && out.contains("sent 1 · delivered 1 · opened 1 · clicked 1"), "{out}");
    let (viewer, _) = common::browser::signed_in(&server, "an@shop.vn", "viewer");
    let page = common::browser::get(&server, "/flows/promo/report", &[("Cookie", &format!("{viewer}; tutti_lang=vi"))]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Tin nhắn, 30 ngày qua") && page.body.contains("1 (100.0%)"), "{}", page.body);

    // A flow that says `tracking: false` sends its links as written and no pixel.
    server.track("/v1/track", &json!({"userId": "lan", "event": "quiet due"}));
    let got = smtp.wait_for(2);
    let quiet = got.iter().find(|m| m["headers"]["Subject"] == "Ưu đãi quiet").expect("the quiet flow's email");
    let html = quiet["html"].as_str().unwrap();
    assert!(html.contains("https://shop.example.vn/sale?a=1&amp;b=2") && !html.contains("/t/o/"), "{html}");
}
