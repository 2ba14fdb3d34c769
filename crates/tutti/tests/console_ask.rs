//! The console's Ask box through the real binary, as a browser without script sees it: a question in the
//! person's language answered on the page with its table, chart and assumptions; one it cannot answer says what
//! it can; what the data says is shown as text.

mod common;

use common::browser::{get, signed_in};
use common::{Server, wait_until};
use serde_json::json;

#[test]
fn a_viewer_asks_in_vietnamese_and_reads_the_answer_in_their_time_zone() {
    let server = Server::start();
    let products = json!([{"name": "<b>Trà</b>", "price": 50000, "quantity": 3}, {"name": "Cà phê", "price": 40000, "quantity": 1}]);
    let order = json!({"userId": "lan", "event": "Order Completed", "timestamp": "2026-11-20T03:00:00Z",
                       "properties": {"currency": "VND", "revenue": 190000, "products": products}});
    assert_eq!(server.track("/v1/track", &order).0, 200);
    wait_until("the order projected", || server.metric("tutti_analytics_seq") >= 1.0);

    let (viewer, _) = signed_in(&server, "an@shop.vn", "viewer");
    let cookie = format!("{viewer}; tutti_lang=vi; tutti_zone=Asia/Ho_Chi_Minh");
    let page = get(&server, "/ask", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Thử hỏi") && page.body.contains("/ask?q="), "examples to try: {}", page.body);

    let q = "s%E1%BA%A3n%20ph%E1%BA%A9m%20n%C3%A0o%20b%C3%A1n%20ch%E1%BA%A1y%20nh%E1%BA%A5t%20th%C3%A1ng%2011%2F2026";
    let page = get(&server, &format!("/ask?q={q}"), &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("dẫn đầu"), "the sentence is Vietnamese: {}", page.body);
    assert!(page.body.contains("&lt;b&gt;Trà&lt;/b&gt;") || page.body.contains("&#60;b&#62;Trà"), "{}", page.body);
    assert!(!page.body.contains("<b>Trà"), "a product name is never markup");
    assert!(page.body.contains("Asia/Ho_Chi_Minh"), "the period in the person's zone: {}", page.body);
    assert!(page.body.contains("FROM b JOIN items x"), "the SQL that ran: {}", page.body);

    let page = get(&server, "/ask?q=top%2010%20products%20by%20revenue%20in%20November%202026", &[("Cookie", &cookie)]);
    assert!(
        page.body.contains("<svg") && page.body.matches("<rect").count() == 2,
        "a chart of two bars: {}",
        page.body
    );

    let page = get(&server, "/ask?q=th%E1%BB%9Di%20ti%E1%BA%BFt%20th%E1%BA%BF%20n%C3%A0o", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("role=\"alert\"") && page.body.contains("Tôi trả lời được"), "{}", page.body);

    let anonymous = get(&server, "/ask?q=revenue", &[]);
    assert_eq!(anonymous.status, 303, "signed out: to the sign-in page");
}
