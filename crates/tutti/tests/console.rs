//! The console through the real binary, as a browser sees it (HTTP only; no script runs in it): signing in
//! and out with the session cookie and the CSRF token, the overview, the three languages, hostile values shown
//! as text, and the headers that keep pages from being framed or running script.

mod common;

use common::{Server, post_admin};
use serde_json::json;

struct Page {
    status: u16,
    body: String,
    location: Option<String>,
    set_cookie: Option<String>,
    csp: Option<String>,
    content_type: Option<String>,
}

/// A browser that does not follow redirects, so each step can be checked.
fn browser() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut request = browser().get(&format!("{}{path}", server.url));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    page(request.call().unwrap())
}

fn post_form(server: &Server, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
    let mut request = browser().post(&format!("{}{path}", server.url));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    page(request.send_form(form.iter().copied()).unwrap())
}

fn page(mut response: ureq::http::Response<ureq::Body>) -> Page {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (location, set_cookie, csp, content_type) =
        (header("location"), header("set-cookie"), header("content-security-policy"), header("content-type"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Page { status, body, location, set_cookie, csp, content_type }
}

fn cookie_of(page: &Page) -> String {
    page.set_cookie.as_deref().expect("a cookie").split(';').next().unwrap().to_owned()
}

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
