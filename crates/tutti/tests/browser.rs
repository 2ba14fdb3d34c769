//! The console in Debian's Chromium, driven by playwright-core (`tests/browser/console.mjs`): the real binary
//! with stand-in vendors, a held message, a dead letter and a profile whose name is markup; the script signs
//! in as each role and works the pages, and this test then checks what reached the vendors.
//!
//! `scripts/test.sh` installs Chromium (Debian's package) and playwright-core (npm, into
//! `tests/browser/node_modules`). With `TUTTI_SCREENSHOTS=docs/console` the screenshots of `docs/console.md`
//! are written afresh.

mod common;

use std::process::Command;

use common::{Server, post_admin, repo_root, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::{Fault, Vendors, tool_installed};

const PASSWORD: &str = "một mật khẩu dài cho trình duyệt";

#[test]
fn the_console_works_in_a_real_browser() {
    let root = repo_root();
    let playwright = root.join("tests/browser/node_modules/playwright-core");
    if !tool_installed(&playwright, "playwright-core")
        || !tool_installed(std::path::Path::new("/usr/bin/chromium"), "chromium")
    {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    // The first call to a hook is refused for good: the ping's action becomes a dead letter.
    vendors.inject("hook", [Fault::Status(422)]);
    let ping = common::ping_flow(&vendors.hook_url("ping"));
    let pro =
        "segment: pro\nname: Big spenders\nwhen: 'has(profile.traits.ltv) && double(profile.traits.ltv) >= 1000.0'\n";
    let server = Server::start_s6_with(&vendors, &[("ping.yaml", &ping), ("pro.yaml", pro)], &[]);
    for (email, role) in [("admin", "admin"), ("approver", "approver"), ("marketer", "marketer"), ("viewer", "viewer")]
    {
        let person = json!({"email": format!("{email}@shop.vn"), "name": email, "role": role, "password": PASSWORD});
        assert_eq!(post_admin(&server, "/api/v1/people", &person).0, 201);
    }

    assert_eq!(server.track("/v1/track", &json!({"userId": "minh", "event": "Pinged"})).0, 200);
    let mut dead = Value::Null;
    wait_until("the dead letter", || {
        dead = server.admin("/api/v1/deliveries?outcome=dead");
        dead["deliveries"].as_array().is_some_and(|d| d.len() == 1)
    });
    let dead_seq = dead["deliveries"][0]["seq"].to_string();
    let lan = json!({"userId": "lan", "traits": {"email": "lan@example.vn", "name": "Nguyễn Thị Lan", "ltv": 5000}});
    assert_eq!(server.track("/v1/identify", &lan).0, 200);
    let order =
        json!({"userId": "lan", "event": "Order Completed", "properties": {"item": "ấm trà", "order_id": "C-7"}});
    assert_eq!(server.track("/v1/track", &order).0, 200);
    let hoa = json!({"userId": "hoa", "traits": {"name": "<img src=x onerror=alert(1)>", "plan": "pro"}});
    assert_eq!(server.track("/v1/identify", &hoa).0, 200);
    wait_until("the held message", || {
        server.admin("/api/v1/approvals")["approvals"].as_array().is_some_and(|a| a.len() == 1)
    });
    wait_until("the hostile profile", || server.profile("user_id:hoa").0 == 200);
    let hostile = server.profile("user_id:hoa").1["id"].as_str().unwrap().to_owned();
    let meta = include_bytes!("../../tutti-insights/tests/fixtures/meta_ads_manager.csv");
    let imported = server.post_raw(
        "/api/v1/creatives/import",
        meta,
        &[("Authorization", &format!("Bearer {}", common::ADMIN_TOKEN)), ("Content-Type", "text/csv")],
    );
    assert_eq!(imported.0, 200, "{}", imported.1);

    let shots =
        std::env::var("TUTTI_SCREENSHOTS").map(|dir| root.join(dir)).unwrap_or_else(|_| server.dir.join("screenshots"));
    let out = Command::new("node")
        .arg(root.join("tests/browser/console.mjs"))
        .current_dir(root.join("tests/browser"))
        .env("TUTTI_URL", &server.url)
        .env("TUTTI_PASSWORD", PASSWORD)
        .env("TUTTI_HOSTILE", &hostile)
        .env("TUTTI_DEAD_SEQ", &dead_seq)
        .env("TUTTI_SCREENSHOTS", &shots)
        .output()
        .expect("node runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser script failed:\n{said}");
    for step in [
        "every page renders with no console error",
        "a hostile trait value renders as text",
        "an approver approves a held message",
        "a flow edited with a mistake shows it at its line",
        "a flow previewed as a profile",
        "a dead letter replayed",
        "a viewer cannot see the approve button nor call its route",
    ] {
        assert!(said.contains(&format!("ok: {step}")), "{step}: not reached\n{said}");
    }

    // What the browser did reached the vendors: the approved message once, as edited; the replayed ping.
    wait_until("the approved message", || {
        vendors.received("hook").iter().any(|r| r.path.ends_with("/send") && r.status == 200)
    });
    let sent: Vec<_> =
        vendors.received("hook").into_iter().filter(|r| r.path.ends_with("/send") && r.status == 200).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["text"], "Cảm ơn chị Lan đã đặt hàng. Hẹn gặp lại chị!");
    assert_eq!(sent[0].body["approved_by"], "approver@shop.vn");
    wait_until("the replayed ping", || {
        vendors.received("hook").iter().any(|r| r.path.ends_with("/ping") && r.status == 200)
    });
    assert!(std::fs::metadata(shots.join("profile-vi.png")).is_ok_and(|m| m.len() > 10_000), "screenshots written");
}
