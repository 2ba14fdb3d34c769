//! Signing in and out through the real binary: the session cookie's attributes, the CSRF token, the same answer
//! for a wrong password and an unknown email, the limit on failed sign-ins, and sessions ended by a new
//! password, by signing out everywhere and by removal.

mod common;

use common::{ADMIN_TOKEN, Server};
use serde_json::{Value, json};

struct Answer {
    status: u16,
    body: Value,
    set_cookie: Option<String>,
    retry_after: Option<String>,
}

fn request(server: &Server, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Answer {
    let url = format!("{}{path}", server.url);
    let agent = common::agent();
    let response = match method {
        "POST" => {
            let mut r = agent.post(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send_json(body.unwrap())
        }
        "PATCH" => {
            let mut r = agent.patch(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send_json(body.unwrap())
        }
        "DELETE" => {
            let mut r = agent.delete(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        _ => {
            let mut r = agent.get(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
    };
    let mut response = response.unwrap();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (set_cookie, retry_after) = (header("set-cookie"), header("retry-after"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    Answer { status, body, set_cookie, retry_after }
}

fn admin(server: &Server, method: &str, path: &str, body: Option<&Value>) -> Answer {
    request(server, method, path, body, &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))])
}

fn sign_in(server: &Server, email: &str, password: &str, extra: &[(&str, &str)]) -> Answer {
    request(server, "POST", "/api/v1/sessions", Some(&json!({"email": email, "password": password})), extra)
}

/// The `name=value` a Set-Cookie sets.
fn cookie_of(answer: &Answer) -> String {
    answer.set_cookie.as_deref().expect("a cookie").split(';').next().unwrap().to_owned()
}

#[test]
fn a_session_is_a_strict_http_only_cookie_ended_by_sign_out_password_or_removal() {
    let server = Server::start();
    let hoa = json!({"email": "hoa@shop.vn", "name": "Nguyễn Hoa", "role": "approver", "password": "mật khẩu của Hoa"});
    assert_eq!(admin(&server, "POST", "/api/v1/people", Some(&hoa)).status, 201);

    // A wrong password and an unknown email get the same answer.
    let wrong = sign_in(&server, "hoa@shop.vn", "mật khẩu sai rồi", &[]);
    let unknown = sign_in(&server, "nobody@shop.vn", "mật khẩu của Hoa", &[]);
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body["error"]["code"], "invalid_sign_in");
    assert!(wrong.set_cookie.is_none());

    let signed_in = sign_in(&server, "HOA@shop.vn", "mật khẩu của Hoa", &[]);
    assert_eq!(signed_in.status, 201, "{}", signed_in.body);
    assert_eq!(
        (signed_in.body["email"].as_str(), signed_in.body["role"].as_str()),
        (Some("hoa@shop.vn"), Some("approver"))
    );
    let set_cookie = signed_in.set_cookie.clone().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP on loopback: {set_cookie}");
    let cookie = cookie_of(&signed_in);
    assert_eq!(cookie.len(), "tutti_session=".len() + 64, "{cookie}");
    let csrf = signed_in.body["csrf"].as_str().unwrap().to_owned();
    assert!(!set_cookie.contains(&csrf), "the CSRF token is not the cookie");
    let behind_tls = sign_in(&server, "hoa@shop.vn", "mật khẩu của Hoa", &[("X-Forwarded-Proto", "https")]);
    assert!(behind_tls.set_cookie.unwrap().contains("; Secure"));

    let me = request(&server, "GET", "/api/v1/session", None, &[("Cookie", &cookie)]);
    assert_eq!(
        (me.status, me.body["name"].as_str(), me.body["csrf"].as_str()),
        (200, Some("Nguyễn Hoa"), Some(csrf.as_str()))
    );
    let nobody = request(&server, "GET", "/api/v1/session", None, &[]);
    assert_eq!((nobody.status, nobody.body["error"]["code"].as_str()), (401, Some("not_signed_in")));
    let forged =
        request(&server, "GET", "/api/v1/session", None, &[("Cookie", &format!("tutti_session={}", "0".repeat(64)))]);
    assert_eq!(forged.status, 401);

    // Signing out needs the CSRF token, and ends this session only.
    let no_csrf = request(&server, "DELETE", "/api/v1/session", None, &[("Cookie", &cookie)]);
    assert_eq!((no_csrf.status, no_csrf.body["error"]["code"].as_str()), (403, Some("forbidden")));
    let out = request(&server, "DELETE", "/api/v1/session", None, &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)]);
    assert_eq!(out.status, 204);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(request(&server, "GET", "/api/v1/session", None, &[("Cookie", &cookie)]).status, 401);

    // A new password ends every session; so does signing out everywhere, and removal.
    let again = cookie_of(&sign_in(&server, "hoa@shop.vn", "mật khẩu của Hoa", &[]));
    let changed =
        admin(&server, "PATCH", "/api/v1/people/hoa@shop.vn", Some(&json!({"password": "mật khẩu mới của Hoa"})));
    assert_eq!(changed.status, 200);
    assert_eq!(request(&server, "GET", "/api/v1/session", None, &[("Cookie", &again)]).status, 401);
    let first = cookie_of(&sign_in(&server, "hoa@shop.vn", "mật khẩu mới của Hoa", &[]));
    let second = cookie_of(&sign_in(&server, "hoa@shop.vn", "mật khẩu mới của Hoa", &[]));
    let everywhere = admin(&server, "DELETE", "/api/v1/people/hoa@shop.vn/sessions", None);
    assert_eq!((everywhere.status, everywhere.body["ended"].as_u64()), (200, Some(2)));
    for cookie in [&first, &second] {
        assert_eq!(request(&server, "GET", "/api/v1/session", None, &[("Cookie", cookie)]).status, 401);
    }
    let last = cookie_of(&sign_in(&server, "hoa@shop.vn", "mật khẩu mới của Hoa", &[]));
    assert_eq!(admin(&server, "DELETE", "/api/v1/people/hoa@shop.vn", None).status, 204);
    assert_eq!(request(&server, "GET", "/api/v1/session", None, &[("Cookie", &last)]).status, 401);
}

#[test]
fn failed_sign_ins_are_limited_per_account_even_for_the_right_password_afterwards() {
    let server = Server::start();
    let li = json!({"email": "li@shop.cn", "role": "viewer", "password": "李娜的密码很长很长很长"});
    assert_eq!(admin(&server, "POST", "/api/v1/people", Some(&li)).status, 201);
    for _ in 0..5 {
        assert_eq!(sign_in(&server, "li@shop.cn", "猜错了猜错了猜错了", &[]).status, 401);
    }
    let blocked = sign_in(&server, "li@shop.cn", "李娜的密码很长很长很长", &[]);
    assert_eq!(
        (blocked.status, blocked.body["error"]["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{}",
        blocked.body
    );
    let seconds: u64 = blocked.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&seconds), "{seconds}");
    // Another account from the same address is not held up by li's five.
    let an = json!({"email": "an@shop.vn", "role": "viewer", "password": "mật khẩu của An"});
    assert_eq!(admin(&server, "POST", "/api/v1/people", Some(&an)).status, 201);
    assert_eq!(sign_in(&server, "an@shop.vn", "mật khẩu của An", &[]).status, 201);
}
