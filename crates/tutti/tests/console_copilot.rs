//! The console's Copilot page: a marketer makes a plan of a goal and changes it in words, a viewer only looks,
//! an approver approves it; the page shows the assumptions, the audience, the cost, the sample messages with
//! their review, and the YAML, every value escaped.

mod common;

use common::Server;
use common::browser::{get, post_form, signed_in};

#[test]
fn a_plan_is_made_changed_and_approved_on_the_copilot_page() {
    let server = Server::start();
    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let (marketer, marketer_csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let (approver, approver_csrf) = signed_in(&server, "binh@shop.vn", "approver");

    let page = get(&server, "/copilot", &[("Cookie", &viewer)]);
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("action=\"/copilot\""), "a viewer makes no plan");
    let refused = post_form(&server, "/copilot", &[("csrf", &viewer_csrf), ("goal", "x")], &[("Cookie", &viewer)]);
    assert_eq!(refused.status, 403);

    let goal =
        "Kéo lại khách VIP lâu không mua ở Hà Nội, ngân sách 50 triệu, email và Zalo <b>ngay</b>, trong hai tuần";
    let made = post_form(&server, "/copilot", &[("csrf", &marketer_csrf), ("goal", goal)], &[("Cookie", &marketer)]);
    let location = made.location.clone().unwrap_or_default();
    assert!(location.starts_with("/copilot?plan=p"), "{} {}", made.status, made.body);
    let page = get(&server, &location, &[("Cookie", &marketer)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("lâu không mua = không có Order Completed trong 90 ngày"), "assumptions in Vietnamese");
    assert!(page.body.contains("50,000,000 VND"), "the budget");
    assert!(!page.body.contains("<b>ngay</b>"), "the goal is text, not markup");
    assert!(page.body.contains("b&gt;ngay") || page.body.contains("b&#62;ngay"), "the goal shown escaped");
    assert!(page.body.contains("class=\"message\""), "sample messages");
    assert!(page.body.contains("action: smtp.send"), "the YAML");
    assert!(!page.body.contains("/approve\""), "a marketer has no approve form");
    let id = location.trim_start_matches("/copilot?plan=").to_owned();

    let unreadable =
        post_form(&server, "/copilot", &[("csrf", &marketer_csrf), ("goal", "hello")], &[("Cookie", &marketer)]);
    assert!(unreadable.status == 200 && unreadable.body.contains("role=\"alert\""), "{}", unreadable.body);

    let changed = post_form(
        &server,
        &format!("/copilot/{id}/change"),
        &[("csrf", &marketer_csrf), ("change", "only customers who bought twice")],
        &[("Cookie", &marketer)],
    );
    assert_eq!(changed.location.as_deref(), Some(location.as_str()));
    let page = get(&server, &location, &[("Cookie", &approver)]);
    assert!(page.body.contains("· v2 ·") && page.body.contains("class=\"diff\""), "{}", page.body);
    assert!(page.body.contains(&format!("action=\"/copilot/{id}/approve\"")));
    let approved =
        post_form(&server, &format!("/copilot/{id}/approve"), &[("csrf", &approver_csrf)], &[("Cookie", &approver)]);
    assert_eq!(approved.location.as_deref(), Some(location.as_str()));
    let page = get(&server, &location, &[("Cookie", &viewer)]);
    assert!(page.body.contains("class=\"status\">approved<"), "{}", page.body);
    let (status, _) = server.request("GET", &format!("/api/v1/flows/plan-{id}"), Some(common::ADMIN_TOKEN));
    assert_eq!(status, 200, "the flow exists");
}
