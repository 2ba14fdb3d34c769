//! Roles through the real binary: the admin API answers a signed-in person as their role allows, asks for the
//! session's CSRF token when something changes, and records the approver a session authenticated.

mod common;

use common::{Server, post_admin, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::Vendors;

struct Person {
    cookie: String,
    csrf: String,
}

fn request(server: &Server, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}{path}", server.url);
    let agent = common::agent();
    let response = if method == "GET" {
        let mut request = agent.get(&url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.call()
    } else {
        let mut request = if method == "PUT" { agent.put(&url) } else { agent.post(&url) };
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        match body {
            Some(Value::String(yaml)) => request.header("Content-Type", "application/yaml").send(yaml.as_bytes()),
            Some(json) => request.send_json(json),
            None => request.send_empty(),
        }
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json::<Value>().unwrap_or(Value::Null))
}

fn person(server: &Server, email: &str, role: &str) -> Person {
    let password = "một mật khẩu dài";
    let added = post_admin(server, "/api/v1/people", &json!({"email": email, "role": role, "password": password}));
    assert_eq!(added.0, 201, "{}", added.1);
    let url = format!("{}/api/v1/sessions", server.url);
    let mut response = common::agent().post(&url).send_json(json!({"email": email, "password": password})).unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let body: Value = response.body_mut().read_json().unwrap();
    Person { cookie, csrf: body["csrf"].as_str().unwrap().to_owned() }
}

fn as_person(p: &Person, with_csrf: bool) -> Vec<(&'static str, &str)> {
    let mut headers = vec![("Cookie", p.cookie.as_str())];
    if with_csrf {
        headers.push(("X-CSRF-Token", p.csrf.as_str()));
    }
    headers
}

#[test]
fn each_role_does_what_it_may_and_an_approval_records_who_signed_in() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let server = Server::start_s6(&vendors, &[]);

    let viewer = person(&server, "an@shop.vn", "viewer");
    let marketer = person(&server, "binh@shop.vn", "marketer");
    let approver = person(&server, "mai@shop.vn", "approver");

    // Everyone signed in reads; only admins see people.
    assert_eq!(request(&server, "GET", "/api/v1/flows", None, &as_person(&viewer, false)).0, 200);
    let (status, body) = request(&server, "GET", "/api/v1/people", None, &as_person(&approver, false));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("admin"), "{body}");

    // Changing a flow is for marketers, with the CSRF token.
    let flow = json!(
        "flow: ping\ntrigger: { event: Pinged }\nsteps:\n  - id: note\n    action: log.write\n    with: { text: hi }\n"
    );
    let put =
        |who: &Person, csrf: bool| request(&server, "PUT", "/api/v1/flows/ping", Some(&flow), &as_person(who, csrf));
    assert_eq!(put(&viewer, true).0, 403, "a viewer may not");
    assert_eq!(put(&marketer, false).0, 403, "not without the CSRF token");
    let (status, body) = put(&marketer, true);
    assert!(status == 200 || status == 201, "{status} {body}");

    // A big spender's message waits; a marketer may not decide it, an approver decides as themselves.
    let (status, _) =
        server.track("/v1/identify", &json!({"userId": "lan", "traits": {"email": "lan@example.vn", "ltv": 5000}}));
    assert_eq!(status, 200);
    let order =
        json!({"userId": "lan", "event": "Order Completed", "properties": {"item": "ấm trà", "order_id": "R-1"}});
    assert_eq!(server.track("/v1/track", &order).0, 200);
    let mut inbox = Value::Null;
    wait_until("the approval", || {
        inbox = server.admin("/api/v1/approvals");
        inbox["approvals"].as_array().is_some_and(|a| a.len() == 1)
    });
    let run = inbox["approvals"][0]["run"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/approvals/{run}/approve");
    let (status, _) =
        request(&server, "POST", &approve, Some(&json!({"by": "binh@shop.vn"})), &as_person(&marketer, true));
    assert_eq!(status, 403, "a marketer may not approve");
    let (status, body) =
        request(&server, "POST", &approve, Some(&json!({"by": "boss@shop.vn"})), &as_person(&approver, true));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "not in someone else's name: {body}"
    );
    let (status, body) =
        request(&server, "POST", &approve, Some(&json!({"by": "MAI@shop.vn"})), &as_person(&approver, true));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approval"]["by"], "mai@shop.vn", "{body}");
    wait_until("the approved message", || vendors.received("hook").iter().any(|r| r.status == 200));
    let sent = vendors.received("hook").into_iter().find(|r| r.status == 200).unwrap();
    assert_eq!(sent.body["approved_by"], "mai@shop.vn");

    // Without a session or the token: 401 as before.
    let (status, body) = request(&server, "GET", "/api/v1/flows", None, &[]);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
}

#[test]
fn a_personal_token_acts_as_its_person_with_their_role_until_revoked() {
    let server = Server::start();
    let token = common::personal_token(&server, "an@shop.vn", "viewer");
    let bearer = format!("Bearer {token}");
    let as_an = [("Authorization", bearer.as_str())];
    assert_eq!(request(&server, "GET", "/api/v1/flows", None, &as_an).0, 200, "a viewer reads");
    let yaml = Value::String("flow: x\ntrigger: { event: X }\nsteps:\n  - id: a\n    action: log.write\n".into());
    let (status, body) = request(&server, "PUT", "/api/v1/flows/x", Some(&yaml), &as_an);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    // A token cannot make tokens; the admin token has none.
    let (status, body) = request(&server, "POST", "/api/v1/tokens", Some(&json!({"name": "more"})), &as_an);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("not_signed_in")), "{body}");
    let admin = format!("Bearer {}", common::ADMIN_TOKEN);
    let (status, body) = request(&server, "GET", "/api/v1/tokens", None, &[("Authorization", admin.as_str())]);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("needs_person")), "{body}");

    let (status, listed) = request(&server, "GET", "/api/v1/tokens", None, &as_an);
    assert_eq!(status, 200);
    assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!listed.to_string().contains(&token[10..]), "the token is never shown again");
    let id = listed["tokens"][0]["id"].as_str().unwrap().to_owned();
    let revoke = |id: &str| {
        let mut response = common::agent()
            .delete(&format!("{}/api/v1/tokens/{id}", server.url))
            .header("Authorization", &bearer)
            .call()
            .unwrap();
        (response.status().as_u16(), response.body_mut().read_json::<Value>().unwrap_or(Value::Null))
    };
    let (status, body) = revoke("000000000000");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_token")), "{body}");
    assert_eq!(revoke(&id).0, 204);
    assert_eq!(request(&server, "GET", "/api/v1/flows", None, &as_an).0, 401, "revoked");
    let made = server.admin("/api/v1/audit?kind=people");
    let changes: Vec<&str> =
        made["records"].as_array().unwrap().iter().filter_map(|r| r["detail"]["change"].as_str()).collect();
    assert!(changes.contains(&"token made") && changes.contains(&"token revoked"), "{changes:?}");
}
