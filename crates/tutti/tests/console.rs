//! The console through the real binary, as a browser sees it (HTTP only; no script runs in it): signing in
//! and out with the session cookie and the CSRF token, the overview, the three languages, hostile values shown
//! as text, and the headers that keep pages from being framed or running script.

mod common;

use common::browser::{cookie_of, get, post_form, signed_in};
use common::{Server, post_admin};
use serde_json::json;

#[test]
fn sign_in_see_the_overview_in_three_languages_and_sign_out() {
    let server = Server::start();
    let hostile = "<img src=x onerror=alert(1)>";
    let person = json!({"email": "hoa@shop.vn", "name": hostile, "role": "viewer", "password": "mật khẩu của Hoa"});
    assert_eq!(post_admin(&server, "/api/v1/people", &person).0, 201);

    // Nothing without a session: the sign-in page, in the browser's language.
    let front = get(&server, "/", &[]);
    assert_eq!((front.status, front.location.as_deref()), (303, Some("/sign-in")));
    let csp = front.csp.expect("every answer carries the policy");
    for rule in ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"] {
        assert!(csp.contains(rule), "{csp}");
    }
    assert!(get(&server, "/sign-in", &[("Accept-Language", "vi-VN,vi;q=0.9")]).body.contains("Đăng nhập"));
    assert!(get(&server, "/sign-in", &[("Accept-Language", "zh-CN")]).body.contains("登录"));
    let form = get(&server, "/sign-in", &[]);
    assert!(form.body.contains("<form method=\"post\" action=\"/sign-in\""), "{}", form.body);
    assert!(!form.body.contains("<script"), "no script anywhere");

    // A wrong password: the form again, with why; a form posted from another site is refused.
    let wrong = post_form(&server, "/sign-in", &[("email", "hoa@shop.vn"), ("password", "sai rồi sai rồi")], &[]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not those of an account") && wrong.set_cookie.is_none(), "{}", wrong.body);
    let forged = post_form(
        &server,
        "/sign-in",
        &[("email", "hoa@shop.vn"), ("password", "mật khẩu của Hoa")],
        &[("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!((forged.status, forged.set_cookie.is_none()), (403, true));

    let signed_in = post_form(&server, "/sign-in", &[("email", "hoa@shop.vn"), ("password", "mật khẩu của Hoa")], &[]);
    assert_eq!((signed_in.status, signed_in.location.as_deref()), (303, Some("/")));
    let cookie = cookie_of(&signed_in);
    assert!(signed_in.set_cookie.as_deref().unwrap().contains("HttpOnly"));

    // The overview, with the hostile name as text.
    let overview = get(&server, "/", &[("Cookie", &cookie)]);
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("Overview") && overview.body.contains("Approvals waiting"), "{}", overview.body);
    assert!(
        overview.body.contains("&#60;img src=x onerror=alert(1)&#62;")
            || overview.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        overview.body
    );
    assert!(!overview.body.contains(hostile), "never as markup");
    assert!(!overview.body.contains("<script"));

    // The person's choice of language wins over the browser's.
    let chosen = get(&server, "/lang/zh", &[]);
    assert_eq!(chosen.status, 303);
    let lang = cookie_of(&chosen);
    let both = format!("{cookie}; {lang}");
    let zh = get(&server, "/", &[("Cookie", &both), ("Accept-Language", "vi")]);
    assert!(zh.body.contains("概览") && zh.body.contains("待审批"), "{}", zh.body);
    assert!(get(&server, "/", &[("Cookie", &cookie), ("Accept-Language", "vi")]).body.contains("Tổng quan"));

    let css = get(&server, "/assets/console.css", &[]);
    assert_eq!((css.status, css.content_type.as_deref()), (200, Some("text/css; charset=utf-8")));

    // Signing out needs the session's CSRF token, which the page carries in its form.
    let csrf = overview
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let refused = post_form(&server, "/sign-out", &[("csrf", "not the token")], &[("Cookie", &cookie)]);
    assert_eq!(refused.status, 403);
    assert_eq!(get(&server, "/", &[("Cookie", &cookie)]).status, 200, "still signed in");
    let out = post_form(&server, "/sign-out", &[("csrf", &csrf)], &[("Cookie", &cookie)]);
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/sign-in")));
    assert_eq!(get(&server, "/", &[("Cookie", &cookie)]).location.as_deref(), Some("/sign-in"));
}

#[test]
fn an_approver_approves_an_edited_message_from_the_inbox_and_a_viewer_cannot() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(tutti_connectors::testing::Vendors::start());
    let server = Server::start_s6(&vendors, &[]);
    let traits = json!({"userId": "lan", "traits": {"email": "lan@example.vn", "name": "Nguyễn Thị Lan", "ltv": 5000}});
    assert_eq!(server.track("/v1/identify", &traits).0, 200);
    let order =
        json!({"userId": "lan", "event": "Order Completed", "properties": {"item": "ấm trà", "order_id": "C-1"}});
    assert_eq!(server.track("/v1/track", &order).0, 200);
    common::wait_until("the message to wait", || {
        server.admin("/api/v1/approvals")["approvals"].as_array().is_some_and(|a| a.len() == 1)
    });
    let run = server.admin("/api/v1/approvals")["approvals"][0]["run"].as_str().unwrap().to_owned();

    // A viewer sees the message, without the forms, and the route refuses them.
    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let inbox = get(&server, "/approvals", &[("Cookie", &viewer)]);
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("a customer worth 5000") && !inbox.body.contains("/approve\""), "{}", inbox.body);
    let refused =
        post_form(&server, &format!("/approvals/{run}/approve"), &[("csrf", &viewer_csrf)], &[("Cookie", &viewer)]);
    assert_eq!(refused.status, 403);

    // An approver edits the body and approves; it goes out once, as edited, with their email.
    let (approver, csrf) = signed_in(&server, "mai@shop.vn", "approver");
    let inbox = get(&server, "/approvals", &[("Cookie", &approver), ("Accept-Language", "vi")]);
    assert!(
        inbox.body.contains(&format!("action=\"/approvals/{run}/approve\"")) && inbox.body.contains("Duyệt"),
        "{}",
        inbox.body
    );
    let edited = "Cảm ơn chị Lan đã mua ấm trà. Hẹn gặp lại chị!";
    assert!(inbox.body.contains("Order Completed") && inbox.body.contains("C-1"), "what started it: {}", inbox.body);
    assert!(inbox.body.contains("class=\"verdict ok\""), "the review gate's verdict: {}", inbox.body);
    // Seeing the changes first sends nothing and keeps the edit in the form.
    let shown = post_form(
        &server,
        &format!("/approvals/{run}/approve"),
        &[("csrf", &csrf), ("body", edited), ("intent", "changes")],
        &[("Cookie", &approver)],
    );
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("<ins>") && shown.body.contains("<del>"), "{}", shown.body);
    assert!(shown.body.contains(&format!(">{edited}</textarea>")), "the edit stays in the form");
    assert!(vendors.received("hook").iter().all(|r| r.status != 200), "nothing went out");
    let approved = post_form(
        &server,
        &format!("/approvals/{run}/approve"),
        &[("csrf", &csrf), ("body", edited)],
        &[("Cookie", &approver)],
    );
    assert_eq!((approved.status, approved.location.as_deref()), (303, Some("/approvals?done=approved")));
    common::wait_until("the approved message", || vendors.received("hook").iter().any(|r| r.status == 200));
    let sent: Vec<_> = vendors.received("hook").into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].body["text"].as_str(), sent[0].body["approved_by"].as_str()),
        (Some(edited), Some("mai@shop.vn"))
    );
    // Deciding again says it no longer waits.
    let again = post_form(
        &server,
        &format!("/approvals/{run}/reject"),
        &[("csrf", &csrf), ("reason", "late")],
        &[("Cookie", &approver)],
    );
    assert_eq!(again.location.as_deref(), Some("/approvals?done=closed"));
    assert!(get(&server, "/approvals?done=closed", &[("Cookie", &approver)]).body.contains("no longer waits"));
}
