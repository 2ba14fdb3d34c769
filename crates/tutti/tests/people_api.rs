//! `tutti users` and `/api/v1/people` through the real binary: the first admin added with the admin token, a
//! made password shown once, roles changed, bad input refused with its code, and nothing without the token.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{ADMIN_TOKEN, Server, cli};
use serde_json::{Value, json};

fn users_with_stdin(server: &Server, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("users")
        .args(args)
        .args(["--url", &server.url, "--token", ADMIN_TOKEN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn send(server: &Server, method: &str, path: &str, body: Option<&Value>, token: Option<&str>) -> (u16, Value) {
    let url = format!("{}{path}", server.url);
    let agent = common::agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let response = match (method, body) {
        ("POST", Some(b)) => {
            let r = agent.post(&url);
            let r = if let Some(a) = &auth { r.header("Authorization", a) } else { r };
            r.send_json(b)
        }
        ("PATCH", Some(b)) => {
            let r = agent.patch(&url);
            let r = if let Some(a) = &auth { r.header("Authorization", a) } else { r };
            r.send_json(b)
        }
        ("DELETE", _) => {
            let r = agent.delete(&url);
            let r = if let Some(a) = &auth { r.header("Authorization", a) } else { r };
            r.call()
        }
        _ => {
            let r = agent.get(&url);
            let r = if let Some(a) = &auth { r.header("Authorization", a) } else { r };
            r.call()
        }
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, body)
}

#[test]
fn people_are_managed_with_the_admin_token_and_their_passwords_never_shown_again() {
    let server = Server::start();
    let (ok, out) = cli(&server, &["users", "list"]);
    assert!(ok && out.contains("nobody yet"), "{out}");

    // The first admin, with a password made here and shown once.
    let (ok, out) = cli(&server, &["users", "add", "Hoa@Shop.VN", "--role", "admin", "--name", "Nguyễn Hoa"]);
    assert!(ok, "{out}");
    assert!(out.contains("added hoa@shop.vn as admin"), "{out}");
    let password = out.lines().find_map(|l| l.strip_prefix("password (shown once): ")).expect("shown").to_owned();
    assert_eq!(password.chars().count(), 20);

    // A password of one's own, from standard input; too short is refused with the rule.
    let (ok, out) =
        users_with_stdin(&server, &["add", "li@shop.cn", "--role", "approver", "--password-stdin"], "short\n");
    assert!(!ok && out.contains("invalid_person") && out.contains("10 to 64 characters"), "{out}");
    let (ok, out) = users_with_stdin(
        &server,
        &["add", "li@shop.cn", "--role", "approver", "--name", "李娜", "--password-stdin"],
        "李娜的密码很长很长很长\n",
    );
    assert!(ok && !out.contains("shown once"), "{out}");

    let (status, listed) = send(&server, "GET", "/api/v1/people", None, Some(ADMIN_TOKEN));
    assert_eq!(status, 200);
    let people = listed["people"].as_array().unwrap();
    assert_eq!(people.iter().map(|p| p["email"].as_str().unwrap()).collect::<Vec<_>>(), ["hoa@shop.vn", "li@shop.cn"]);
    assert_eq!((people[1]["name"].as_str(), people[1]["role"].as_str()), (Some("李娜"), Some("approver")));
    let answer = listed.to_string();
    assert!(!answer.contains("argon2") && !answer.contains(&password), "no hash or password in answers");

    // The same email again, a role that does not exist, an email that is not one.
    let (status, body) = send(
        &server,
        "POST",
        "/api/v1/people",
        Some(&json!({"email": "LI@shop.cn", "role": "viewer", "password": "another long one"})),
        Some(ADMIN_TOKEN),
    );
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("person_exists")), "{body}");
    let bad_role = json!({"email": "an@shop.vn", "role": "owner", "password": "long enough pw"});
    let (status, body) = send(&server, "POST", "/api/v1/people", Some(&bad_role), Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_person")), "{body}");
    let bad_email = json!({"email": "an at shop", "role": "viewer", "password": "long enough pw"});
    let (status, body) = send(&server, "POST", "/api/v1/people", Some(&bad_email), Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_person")), "{body}");

    // Nothing without the admin token.
    let (status, _) = send(&server, "GET", "/api/v1/people", None, None);
    assert_eq!(status, 401);
    let (status, _) = send(&server, "DELETE", "/api/v1/people/hoa@shop.vn", None, Some("wrong"));
    assert_eq!(status, 401);

    // Roles and passwords change; removal is for good.
    let (ok, out) = cli(&server, &["users", "set-role", "li@shop.cn", "--role", "marketer"]);
    assert!(ok && out.contains("li@shop.cn is now marketer"), "{out}");
    let (ok, out) = cli(&server, &["users", "reset-password", "li@shop.cn"]);
    assert!(ok && out.contains("password (shown once): "), "{out}");
    let (status, li) = send(&server, "GET", "/api/v1/people/LI@shop.cn", None, Some(ADMIN_TOKEN));
    assert_eq!((status, li["role"].as_str()), (200, Some("marketer")));
    assert!(li["password_set_at"].as_i64() >= li["created_at"].as_i64());
    let (status, body) = send(&server, "PATCH", "/api/v1/people/li@shop.cn", Some(&json!({})), Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_person")));
    let (ok, out) = cli(&server, &["users", "remove", "hoa@shop.vn"]);
    assert!(ok, "{out}");
    let (status, body) = send(&server, "GET", "/api/v1/people/hoa@shop.vn", None, Some(ADMIN_TOKEN));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_person")));
    let (ok, out) = cli(&server, &["users", "remove", "hoa@shop.vn"]);
    assert!(!ok && out.contains("unknown_person"), "{out}");
}
