//! The console as a browser without script sees it: pages fetched and forms posted over HTTP, redirects not
//! followed so that each step can be checked.

use serde_json::json;

use super::{Server, post_admin};

pub struct Page {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub csp: Option<String>,
    pub content_type: Option<String>,
}

/// A browser that does not follow redirects, so each step can be checked.
pub fn browser() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

pub fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut request = browser().get(&format!("{}{path}", server.url));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    page(request.call().unwrap())
}

pub fn post_form(server: &Server, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
    let mut request = browser().post(&format!("{}{path}", server.url));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    page(request.send_form(form.iter().copied()).unwrap())
}

pub fn page(mut response: ureq::http::Response<ureq::Body>) -> Page {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (location, set_cookie, csp, content_type) =
        (header("location"), header("set-cookie"), header("content-security-policy"), header("content-type"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Page { status, body, location, set_cookie, csp, content_type }
}

pub fn cookie_of(page: &Page) -> String {
    page.set_cookie.as_deref().expect("a cookie").split(';').next().unwrap().to_owned()
}

/// Signs in through the form; the session's cookie, and the CSRF token its pages carry.
pub fn signed_in(server: &Server, email: &str, role: &str) -> (String, String) {
    let password = "một mật khẩu dài";
    let person = json!({"email": email, "role": role, "password": password});
    assert_eq!(post_admin(server, "/api/v1/people", &person).0, 201);
    let cookie = cookie_of(&post_form(server, "/sign-in", &[("email", email), ("password", password)], &[]));
    let overview = get(server, "/", &[("Cookie", &cookie)]).body;
    let csrf = overview.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    (cookie, csrf)
}
