//! The console's pages through the real binary, as a browser without script sees them: a profile found by its
//! email and shown with what came from outside escaped, erased by an admin after confirming; a dead letter
//! found among the deliveries and replayed by a marketer; and each of those on the audit log with who did it.

mod common;

use common::browser::{get, post_form, signed_in};
use common::{Server, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::{Fault, Vendors};

#[test]
fn a_profile_is_found_shown_escaped_and_erased_by_an_admin_only() {
    let server = Server::start();
    let hostile = "<img src=x onerror=alert(1)>";
    let identify = json!({"userId": "lan", "traits": {"email": "lan@example.vn", "name": hostile,
                          "email_subscribe": "unsubscribed"}});
    assert_eq!(server.track("/v1/identify", &identify).0, 200);
    let viewed = json!({"userId": "lan", "event": "Viewed Product", "properties": {"sku": "TEA-1"}});
    assert_eq!(server.track("/v1/track", &viewed).0, 200);
    wait_until("the profile", || server.profile("user_id:lan").1["event_counts"]["Viewed Product"] == 1);
    let id = server.profile("user_id:lan").1["id"].as_str().unwrap().to_owned();

    // A viewer finds the profile by email and reads it; every outside value is text.
    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let found = get(&server, "/profiles?q=lan%40example.vn", &[("Cookie", &viewer)]);
    assert_eq!((found.status, found.location.as_deref()), (303, Some(format!("/profiles/{id}").as_str())));
    let page = get(&server, &format!("/profiles/{id}"), &[("Cookie", &viewer)]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("&#60;img src=x onerror=alert(1)&#62;") || page.body.contains("&lt;img src=x"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<img src=x"), "a trait is never markup");
    assert!(page.body.contains("Viewed Product") && page.body.contains("TEA-1"), "the timeline: {}", page.body);
    assert!(page.body.contains("traits.email_subscribe is"), "why email is closed: {}", page.body);
    assert!(!page.body.contains("/erase\""), "a viewer has no erase form");
    // By a trait (not indexed: scanned, bounded): the profile, linked.
    let by_trait = get(&server, "/profiles?q=trait%3Aemail_subscribe%3Dunsubscribed", &[("Cookie", &viewer)]);
    assert!(by_trait.body.contains(&format!("href=\"/profiles/{id}\"")), "{}", by_trait.body);
    let none = get(&server, "/profiles?q=trait%3Aemail_subscribe%3Dsubscribed", &[("Cookie", &viewer)]);
    assert!(none.body.contains("No profile matches") && !none.body.contains(&format!("href=\"/profiles/{id}\"")));
    let missing = get(&server, "/profiles?q=nobody%40example.vn", &[("Cookie", &viewer)]);
    assert!(missing.status == 200 && missing.body.contains("No profile matches"), "{}", missing.body);
    let refused = post_form(
        &server,
        &format!("/profiles/{id}/erase"),
        &[("csrf", &viewer_csrf), ("confirm", &id)],
        &[("Cookie", &viewer)],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(get(&server, "/audit", &[("Cookie", &viewer)]).status, 404, "the audit log is for admins");

    // An admin erases it, once the id is typed again.
    let (admin, csrf) = signed_in(&server, "mai@shop.vn", "admin");
    let page = get(&server, &format!("/profiles/{id}"), &[("Cookie", &admin)]);
    assert!(page.body.contains(&format!("action=\"/profiles/{id}/erase\"")), "{}", page.body);
    let unconfirmed = post_form(
        &server,
        &format!("/profiles/{id}/erase"),
        &[("csrf", &csrf), ("confirm", "p0")],
        &[("Cookie", &admin)],
    );
    assert_eq!(unconfirmed.location.as_deref(), Some(format!("/profiles/{id}").as_str()));
    assert_eq!(server.profile(&id).0, 200, "not erased without the confirmation");
    let erased = post_form(
        &server,
        &format!("/profiles/{id}/erase"),
        &[("csrf", &csrf), ("confirm", &id)],
        &[("Cookie", &admin)],
    );
    assert_eq!(erased.location.as_deref(), Some(format!("/profiles?erased={id}").as_str()));
    assert_eq!(server.profile(&id).0, 404);
    assert_eq!(get(&server, &format!("/profiles/{id}"), &[("Cookie", &admin)]).status, 404);

    // The audit log names who signed in and who erased.
    let erasures = server.admin("/api/v1/audit?kind=erasure");
    assert_eq!(erasures["records"][0]["detail"]["by"], "mai@shop.vn", "{erasures}");
    assert_eq!(erasures["records"][0]["profile"], id.as_str());
    let sign_ins = server.admin("/api/v1/audit?kind=sign_in")["records"].as_array().unwrap().clone();
    let who: Vec<&str> = sign_ins.iter().filter_map(|r| r["detail"]["by"].as_str()).collect();
    assert_eq!(who, ["an@shop.vn", "mai@shop.vn"]);
    let added = server.admin("/api/v1/audit?kind=people");
    assert_eq!(added["records"][0]["detail"]["by"], "admin token", "{added}");
    let audit = get(&server, "/audit?kind=erasure", &[("Cookie", &admin)]);
    assert!(audit.status == 200 && audit.body.contains("mai@shop.vn") && audit.body.contains(&id), "{}", audit.body);
}

#[test]
fn a_marketer_replays_a_dead_letter_from_the_deliveries_page_and_a_viewer_cannot() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    vendors.inject("hook", [Fault::Status(422)]);
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(flows.path().join("ping.yaml"), common::ping_flow(&vendors.hook_url("ping"))).unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let env =
        [("TUTTI_FLOWS__DIR", flows_dir.as_str()), ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]")];
    let server = Server::start_in(data.path(), &env);
    assert_eq!(server.track("/v1/track", &json!({"userId": "lan", "event": "Pinged"})).0, 200);
    let mut letters = Value::Null;
    wait_until("the dead letter", || {
        letters = server.admin("/api/v1/deliveries?outcome=dead");
        letters["deliveries"].as_array().is_some_and(|l| l.len() == 1)
    });
    let seq = letters["deliveries"][0]["seq"].as_u64().unwrap().to_string();
    assert!(letters["deliveries"][0]["error"].as_str().unwrap().contains("HTTP 422"), "{letters}");

    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let list = get(&server, "/deliveries?outcome=dead&connector=webhook", &[("Cookie", &viewer)]);
    assert!(list.status == 200 && list.body.contains("HTTP 422"), "{}", list.body);
    assert!(!list.body.contains("name=\"seq\""), "a viewer has nothing to tick");
    let refused =
        post_form(&server, "/deliveries/replay", &[("csrf", &viewer_csrf), ("seq", &seq)], &[("Cookie", &viewer)]);
    assert_eq!(refused.status, 403);

    let (marketer, csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let list = get(&server, "/deliveries?outcome=dead", &[("Cookie", &marketer), ("Accept-Language", "zh-CN")]);
    assert!(
        list.body.contains(&format!("name=\"seq\" value=\"{seq}\"")) && list.body.contains("重放"),
        "{}",
        list.body
    );
    let bad = get(&server, "/deliveries?since=yesterday", &[("Cookie", &marketer)]);
    assert!(bad.status == 200 && bad.body.contains("RFC 3339"), "a bad filter says why: {}", bad.body);
    let replayed =
        post_form(&server, "/deliveries/replay", &[("csrf", &csrf), ("seq", &seq)], &[("Cookie", &marketer)]);
    assert_eq!(replayed.location.as_deref(), Some("/deliveries?replayed=1"));
    wait_until("the replayed delivery", || vendors.received("hook").iter().any(|r| r.status == 200));
    wait_until("the outcome recorded", || {
        server.admin("/api/v1/deliveries?outcome=done")["deliveries"].as_array().is_some_and(|d| d.len() == 1)
    });
    let replays = server.admin("/api/v1/audit?kind=replay");
    assert_eq!(replays["records"][0]["detail"]["by"], "mai@shop.vn", "{replays}");
    assert_eq!(replays["records"][0]["detail"]["seqs"][0].to_string(), seq);
}

#[test]
fn a_flow_page_counts_its_steps_locates_problems_previews_and_saves_a_version() {
    let flows = tempfile::tempdir().unwrap();
    let source = "flow: welcome\ntrigger: { event: Signed Up }\nsteps:\n  - id: hello\n    action: log.write\n    with: { text: 'Xin chào {{ profile.traits.name }}' }\n  - id: done\n    exit: greeted\n";
    std::fs::write(flows.path().join("welcome.yaml"), source).unwrap();
    let data = tempfile::tempdir().unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let server = Server::start_in(data.path(), &[("TUTTI_FLOWS__DIR", flows_dir.as_str())]);
    let identify = json!({"userId": "lan", "traits": {"name": "Lan"}});
    assert_eq!(server.track("/v1/identify", &identify).0, 200);
    assert_eq!(server.track("/v1/track", &json!({"userId": "lan", "event": "Signed Up"})).0, 200);
    wait_until("the run", || {
        server.admin("/api/v1/runs?flow=welcome")["runs"].as_array().is_some_and(|r| r.len() == 1)
    });

    // Counted right after the batch that holds the run commits.
    wait_until("the run counted", || {
        (server.metric("tutti_runs_started_total"), server.metric("tutti_runs_ended_total")) == (1.0, 1.0)
    });
    let stats = server.admin("/api/v1/flows/welcome/stats");
    assert_eq!(
        (stats["totals"]["entered"].as_u64(), stats["totals"]["profiles"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(stats["steps"]["hello"]["acted"], 1, "{stats}");
    assert_eq!(stats["totals"]["exited:greeted"], 1, "{stats}");
    let body = json!({"source": source, "profile": "user_id:lan"});
    let (status, played) = common::post_admin(&server, "/api/v1/flows/welcome/preview", &body);
    assert_eq!(status, 200, "{played}");
    assert_eq!(played["decisions"][1]["payload"]["text"], "Xin chào Lan", "{played}");

    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let list = get(&server, "/flows", &[("Cookie", &viewer)]);
    let overview = get(&server, "/", &[("Cookie", &viewer)]);
    assert!(overview.body.contains("Runs started") && overview.body.contains("Events per second"), "{}", overview.body);
    assert!(list.body.contains("href=\"/flows/welcome\""), "{}", list.body);
    let page = get(&server, "/flows/welcome", &[("Cookie", &viewer)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg") && page.body.contains("hello · log.write"), "{}", page.body);
    assert!(page.body.contains("reached 1"), "the graph counts the step: {}", page.body);
    assert!(page.body.contains("greeted: 1"), "how runs ended: {}", page.body);
    assert!(!page.body.contains("value=\"save\""), "a viewer cannot save");
    let refused = post_form(
        &server,
        "/flows/welcome",
        &[("csrf", &viewer_csrf), ("source", source), ("intent", "save")],
        &[("Cookie", &viewer)],
    );
    assert_eq!(refused.status, 403);

    // A marketer's edit with a mistake: the page again, the mistake at its line and column, nothing saved.
    let (marketer, csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let broken = source.replace("action: log.write", "action: log.wirte");
    let edited = post_form(
        &server,
        "/flows/welcome",
        &[("csrf", &csrf), ("source", &broken), ("intent", "save")],
        &[("Cookie", &marketer)],
    );
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert!(edited.body.contains("<li value=\"5\" class=\"bad\">"), "line 5 is marked: {}", edited.body);
    assert!(edited.body.contains("5:13:"), "{}", edited.body);
    assert!(edited.body.contains("log.wirte"), "the edit is kept in the editor");
    assert_eq!(server.admin("/api/v1/flows/welcome")["version"], 1);

    // A preview as Lan: her name in the message, nothing sent, nothing saved.
    let changed = source.replace("Xin chào", "Chào mừng");
    let preview = post_form(
        &server,
        "/flows/welcome",
        &[
            ("csrf", &viewer_csrf),
            ("source", &changed),
            ("intent", "preview"),
            ("profile", "user_id:lan"),
            ("events", ""),
        ],
        &[("Cookie", &viewer)],
    );
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("Chào mừng Lan"), "the rendered message: {}", preview.body);
    assert!(preview.body.contains(">action<") && preview.body.contains(">exited<"), "{}", preview.body);
    let given =
        "{\"type\":\"track\",\"userId\":\"minh\",\"event\":\"Signed Up\",\"timestamp\":\"2026-12-01T09:00:00Z\"}";
    let preview = post_form(
        &server,
        "/flows/welcome",
        &[("csrf", &viewer_csrf), ("source", &changed), ("intent", "preview"), ("events", given)],
        &[("Cookie", &viewer)],
    );
    assert!(preview.body.contains("Chào mừng") && preview.body.contains("2026-12-01 09:00:00"), "{}", preview.body);
    let junk = post_form(
        &server,
        "/flows/welcome",
        &[("csrf", &viewer_csrf), ("source", &changed), ("intent", "preview"), ("events", "not json")],
        &[("Cookie", &viewer)],
    );
    assert!(junk.status == 200 && junk.body.contains("events:1: not JSON"), "{}", junk.body);
    // A `generate` step previews the copy the local generator writes, and says who wrote it.
    let generating = "flow: welcome\ntrigger: { event: Signed Up }\nsteps:\n  - id: copy\n    generate: { prompt: 'Welcome them', channel: email }\n  - id: done\n    exit: greeted\n";
    let preview = post_form(
        &server,
        "/flows/welcome",
        &[("csrf", &viewer_csrf), ("source", generating), ("intent", "preview"), ("events", given)],
        &[("Cookie", &viewer)],
    );
    assert!(preview.body.contains("the local generator"), "who wrote it: {}", preview.body);
    assert!(preview.body.contains("Welcome aboard"), "the copy: {}", preview.body);

    // Saved: a new version, on the audit log with who saved it.
    let saved = post_form(
        &server,
        "/flows/welcome",
        &[("csrf", &csrf), ("source", &changed), ("intent", "save")],
        &[("Cookie", &marketer)],
    );
    assert_eq!(saved.location.as_deref(), Some("/flows/welcome?saved=2"));
    assert_eq!(server.admin("/api/v1/flows/welcome")["version"], 2);
    let audit = server.admin("/api/v1/audit?kind=definition");
    assert_eq!(audit["records"][0]["detail"]["by"], "mai@shop.vn", "{audit}");
    assert_eq!(audit["records"][0]["flow"], "welcome");

    // Paused, it starts no runs; resumed, it does again.
    let paused = post_form(&server, "/flows/welcome/pause", &[("csrf", &csrf)], &[("Cookie", &marketer)]);
    assert_eq!(paused.location.as_deref(), Some("/flows/welcome"));
    assert!(get(&server, "/flows", &[("Cookie", &viewer)]).body.contains("<td>paused</td>"));
    assert_eq!(server.track("/v1/track", &json!({"userId": "minh", "event": "Signed Up"})).0, 200);
    let (status, _) = server.profile("user_id:minh");
    assert_eq!(status, 200, "the event was folded");
    let (status, body) = common::post_admin(&server, "/api/v1/flows/welcome/resume", &json!({}));
    assert_eq!((status, body["paused"].as_bool()), (200, Some(false)), "{body}");
    assert_eq!(server.track("/v1/track", &json!({"userId": "hoa", "event": "Signed Up"})).0, 200);
    wait_until("hoa's run", || {
        server.admin("/api/v1/runs?flow=welcome")["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["profile"] != Value::Null && r["trigger"]["userId"] == "hoa"))
    });
    let runs = server.admin("/api/v1/runs?flow=welcome");
    assert!(
        !runs["runs"].as_array().unwrap().iter().any(|r| r["trigger"]["userId"] == "minh"),
        "nothing started while paused: {runs}"
    );
}

#[test]
fn settings_choose_a_time_zone_show_connectors_and_let_an_admin_manage_people() {
    let server = Server::start();
    assert_eq!(server.track("/v1/identify", &json!({"userId": "lan", "traits": {"name": "Lan"}})).0, 200);
    wait_until("the profile", || server.profile("user_id:lan").0 == 200);
    let id = server.profile("user_id:lan").1["id"].as_str().unwrap().to_owned();
    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");

    // Anyone chooses their time zone; times are then shown in it. A zone Tutti does not know is refused.
    let chosen = post_form(
        &server,
        "/settings/zone",
        &[("csrf", &viewer_csrf), ("zone", "Asia/Ho_Chi_Minh")],
        &[("Cookie", &viewer)],
    );
    let zone = chosen.set_cookie.clone().expect("the zone's cookie");
    assert!(zone.starts_with("tutti_zone=Asia/Ho_Chi_Minh;"), "{zone}");
    let zone = zone.split(';').next().unwrap().to_owned();
    let both = format!("{viewer}; {zone}");
    let profile = get(&server, &format!("/profiles/{id}"), &[("Cookie", &both)]);
    assert!(profile.body.contains("+07:00") && !profile.body.contains("+00:00"), "{}", profile.body);
    let wrong = post_form(
        &server,
        "/settings/zone",
        &[("csrf", &viewer_csrf), ("zone", "Mars/Olympus")],
        &[("Cookie", &viewer)],
    );
    assert!(
        wrong.location.as_deref().is_some_and(|l| l.starts_with("/settings?problem=")) && wrong.set_cookie.is_none()
    );

    // A personal token, made on the page and shown once, acts as its person until revoked there.
    let made = post_form(
        &server,
        "/settings/tokens",
        &[("csrf", &viewer_csrf), ("name", "laptop"), ("days", "30")],
        &[("Cookie", &viewer)],
    );
    let token = made
        .body
        .split("<code class=\"token\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the token, shown once")
        .to_owned();
    assert!(token.starts_with("tutti_pat_"), "{token}");
    let (status, _) = server.request("GET", "/api/v1/flows", Some(&token));
    assert_eq!(status, 200);
    let listed = get(&server, "/settings", &[("Cookie", &viewer)]);
    assert!(listed.body.contains("laptop") && !listed.body.contains(&token), "listed, never shown again");
    let id =
        listed.body.split("action=\"/settings/tokens/").nth(1).and_then(|r| r.split('/').next()).unwrap().to_owned();
    let revoked =
        post_form(&server, &format!("/settings/tokens/{id}/revoke"), &[("csrf", &viewer_csrf)], &[("Cookie", &viewer)]);
    assert_eq!(revoked.location.as_deref(), Some("/settings#tokens"));
    assert_eq!(server.request("GET", "/api/v1/flows", Some(&token)).0, 401);

    // The connectors: the two that need no configuration are on; a viewer has no people and no checks.
    let settings = get(&server, "/settings", &[("Cookie", &viewer)]);
    assert!(
        settings.body.contains("<th scope=\"row\">webhook</th>") && settings.body.contains("not configured"),
        "{}",
        settings.body
    );
    assert!(!settings.body.contains("id=\"people\"") && !settings.body.contains("/check\""));
    let refused = post_form(
        &server,
        "/settings/people",
        &[
            ("csrf", &viewer_csrf),
            ("change", "add"),
            ("email", "x@shop.vn"),
            ("role", "admin"),
            ("password", "mười ký tự trở lên"),
        ],
        &[("Cookie", &viewer)],
    );
    assert_eq!(refused.status, 403);

    // An admin adds someone, gives them another role, signs them out everywhere and removes them.
    let (admin, csrf) = signed_in(&server, "mai@shop.vn", "admin");
    let change = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        post_form(&server, "/settings/people", &form, &[("Cookie", &admin)]).location.unwrap_or_default()
    };
    let added = change(&[
        ("change", "add"),
        ("email", "Binh@Shop.vn"),
        ("name", "Bình"),
        ("role", "viewer"),
        ("password", "mười ký tự trở lên"),
    ]);
    assert!(added.starts_with("/settings?done=added"), "{added}");
    assert_eq!(server.admin("/api/v1/people/binh@shop.vn")["role"], "viewer");
    assert!(change(&[("change", "role"), ("email", "binh@shop.vn"), ("role", "approver")]).contains("done=changed"));
    assert_eq!(server.admin("/api/v1/people/binh@shop.vn")["role"], "approver");
    let short = change(&[("change", "add"), ("email", "c@shop.vn"), ("role", "viewer"), ("password", "ngắn")]);
    assert!(short.starts_with("/settings?problem="), "a short password is refused with why: {short}");
    assert!(change(&[("change", "sign_out"), ("email", "binh@shop.vn")]).contains("done=signed"));
    assert!(change(&[("change", "remove"), ("email", "binh@shop.vn")]).contains("done=removed"));
    let (status, _) = server.request("GET", "/api/v1/people/binh@shop.vn", Some(common::ADMIN_TOKEN));
    assert_eq!(status, 404);
    let changes: Vec<Value> = server.admin("/api/v1/audit?kind=people")["records"].as_array().unwrap().clone();
    let by_mai: Vec<&str> = changes
        .iter()
        .filter(|r| r["detail"]["by"] == "mai@shop.vn")
        .filter_map(|r| r["detail"]["change"].as_str())
        .collect();
    assert_eq!(by_mai, ["added", "changed", "signed out everywhere", "removed"]);
    let page = get(&server, "/settings", &[("Cookie", &admin)]);
    assert!(page.body.contains("id=\"people\"") && page.body.contains("action=\"/settings/connectors/webhook/check\""));
}

#[test]
fn a_segment_defined_in_the_console_counts_the_people_already_there() {
    let server = Server::start();
    for i in 0..30 {
        let plan = if i % 3 == 0 { "pro" } else { "free" };
        let identify = json!({"userId": format!("u{i}"), "traits": {"plan": plan, "name": format!("Khách {i}")}});
        assert_eq!(server.track("/v1/identify", &identify).0, 200);
    }
    wait_until("the profiles", || server.profile("user_id:u29").0 == 200);
    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let (marketer, csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let good = "segment: pro\nname: Pro plan\nwhen: \"profile.traits.plan == 'pro'\"\n";
    let refused = post_form(
        &server,
        "/segments",
        &[("csrf", &viewer_csrf), ("id", "pro"), ("source", good)],
        &[("Cookie", &viewer)],
    );
    assert_eq!(refused.status, 403);

    // A mistake comes back at its line, the text kept; nothing is defined.
    let broken = "segment: pro\nwhen: \"profile.traits.plan == 'pro'\"\nbehavior: []\n";
    let page = post_form(
        &server,
        "/segments",
        &[("csrf", &csrf), ("id", "pro"), ("source", broken)],
        &[("Cookie", &marketer)],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<li value=\"3\" class=\"bad\">") && page.body.contains("behavior"), "{}", page.body);
    let (status, _) = server.request("GET", "/api/v1/segments/pro", Some(common::ADMIN_TOKEN));
    assert_eq!(status, 404);

    // Defined: the ten people already on the pro plan are its members, without any new event.
    let saved =
        post_form(&server, "/segments", &[("csrf", &csrf), ("id", "pro"), ("source", good)], &[("Cookie", &marketer)]);
    assert_eq!(saved.location.as_deref(), Some("/segments/pro?saved=1"));
    let mut members = Value::Null;
    wait_until("the backfill", || {
        members = server.admin("/api/v1/segments/pro/members");
        !members["backfill"]["finished_at"].is_null()
    });
    assert_eq!((members["count"].as_u64(), members["backfill"]["done"].as_u64()), (Some(10), Some(30)), "{members}");
    // Its size is recorded once the backfill ends, and drawn day by day.
    wait_until("today's size", || server.admin("/api/v1/segments/pro/history")["days"][0]["members"] == 10);
    let page = get(&server, "/segments/pro", &[("Cookie", &viewer)]);
    assert!(page.body.contains("<dd>10</dd>") && page.body.contains("Pro plan"), "{}", page.body);
    assert!(page.body.contains("class=\"sizes\"") && page.body.contains(": 10</title>"), "{}", page.body);
    assert_eq!(page.body.matches("href=\"/profiles/p").count(), 10, "each member linked");
    assert!(!page.body.contains("action=\"/segments/pro"), "a viewer reads the YAML without a form");
    let list = get(&server, "/segments", &[("Cookie", &viewer)]);
    assert!(list.body.contains("href=\"/segments/pro\"") && list.body.contains("<td>10</td>"), "{}", list.body);
    let audit = server.admin("/api/v1/audit?kind=definition");
    assert_eq!(audit["records"][0]["detail"]["by"], "mai@shop.vn", "{audit}");
}

#[test]
fn creatives_show_what_wins_and_a_budget_split_is_proposed_then_decided_by_a_person() {
    let dir = tempfile::tempdir().unwrap();
    common::seeded_creatives(dir.path());
    let server = Server::start_in(dir.path(), &[]);
    let (viewer, _) = signed_in(&server, "an@shop.vn", "viewer");
    let (marketer, marketer_csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let (approver, approver_csrf) = signed_in(&server, "binh@shop.vn", "approver");

    let page = get(&server, "/creatives", &[("Cookie", &viewer)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h2>facebook</h2>") && page.body.contains("<h3>tone</h3>"), "{}", page.body);
    assert!(page.body.contains("class=\"rate\""), "rates drawn as bars");
    assert!(page.body.contains("creatives tagged"), "the comparisons called, in words: {}", page.body);
    assert!(!page.body.contains("action=\"/creatives/proposals\""), "a viewer proposes nothing");

    let bad = post_form(
        &server,
        "/creatives/proposals",
        &[("csrf", &marketer_csrf), ("channel", "facebook"), ("budget", "lots"), ("objective", "clicks")],
        &[("Cookie", &marketer)],
    );
    assert!(bad.status == 200 && bad.body.contains("is a number"), "{}", bad.body);
    let proposed = post_form(
        &server,
        "/creatives/proposals",
        &[("csrf", &marketer_csrf), ("channel", "facebook"), ("budget", "10000000"), ("objective", "clicks")],
        &[("Cookie", &marketer)],
    );
    assert_eq!(proposed.location.as_deref(), Some("/creatives#proposals"));
    let kept = server.admin("/api/v1/insights/budget/proposals");
    let id = kept["proposals"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (kept["proposals"][0]["status"].as_str(), kept["proposals"][0]["proposed_by"].as_str()),
        (Some("proposed"), Some("mai@shop.vn"))
    );
    assert!(kept["proposals"][0]["proposal"]["allocations"].as_array().is_some_and(|a| !a.is_empty()), "{kept}");

    // A marketer may not decide it; the admin token is nobody; an approver does, once.
    let refused = post_form(
        &server,
        &format!("/creatives/proposals/{id}/approve"),
        &[("csrf", &marketer_csrf)],
        &[("Cookie", &marketer)],
    );
    assert_eq!(refused.status, 403);
    let (status, body) =
        common::post_admin(&server, &format!("/api/v1/insights/budget/proposals/{id}/approve"), &json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("needs_person")), "{body}");
    let page = get(&server, "/creatives", &[("Cookie", &approver)]);
    assert!(page.body.contains(&format!("action=\"/creatives/proposals/{id}/approve\"")), "{}", page.body);
    let approved = post_form(
        &server,
        &format!("/creatives/proposals/{id}/approve"),
        &[("csrf", &approver_csrf)],
        &[("Cookie", &approver)],
    );
    assert_eq!(approved.location.as_deref(), Some("/creatives#proposals"));
    let again = post_form(
        &server,
        &format!("/creatives/proposals/{id}/reject"),
        &[("csrf", &approver_csrf), ("reason", "late")],
        &[("Cookie", &approver)],
    );
    assert!(again.status == 200 && again.body.contains("approved already"), "{}", again.body);
    let decided = server.admin("/api/v1/insights/budget/proposals");
    assert_eq!(
        (decided["proposals"][0]["status"].as_str(), decided["proposals"][0]["decided_by"].as_str()),
        (Some("approved"), Some("binh@shop.vn"))
    );
    let audit = server.admin("/api/v1/audit?kind=budget");
    assert_eq!(
        (audit["records"][0]["detail"]["by"].as_str(), audit["records"][0]["detail"]["decision"].as_str()),
        (Some("binh@shop.vn"), Some("approved")),
        "{audit}"
    );
}

#[test]
fn a_broadcast_is_reviewed_then_sent_once_to_each_member_the_policies_allow() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(flows.path().join("pro.yaml"), "segment: pro\nwhen: \"profile.traits.plan == 'pro'\"\n").unwrap();
    let flows_dir = flows.path().to_str().unwrap().to_owned();
    let env =
        [("TUTTI_FLOWS__DIR", flows_dir.as_str()), ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]")];
    let server = Server::start_in(data.path(), &env);
    let people =
        [("u1", "pro", false), ("u2", "pro", true), ("u3", "free", false), ("u4", "pro", false), ("u5", "pro", false)];
    for (id, plan, unsubscribed) in people {
        let traits = json!({"plan": plan, "name": format!("Khách {id}"), "email": format!("{id}@example.vn"), "unsubscribed": unsubscribed});
        assert_eq!(server.track("/v1/identify", &json!({"userId": id, "traits": traits})).0, 200);
    }
    wait_until("the members", || server.admin("/api/v1/segments/pro/members")["count"] == 4);
    let (viewer, viewer_csrf) = signed_in(&server, "an@shop.vn", "viewer");
    let (marketer, csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let with = format!("url: '{}'\ntext: 'Chào {{{{ profile.traits.name }}}}'", vendors.hook_url("tet"));
    let form = |csrf: &str, intent: &str, with: &str, send_at: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("name".to_owned(), "Tết".to_owned()),
            ("segment".to_owned(), "pro".to_owned()),
            ("action".to_owned(), "webhook.post".to_owned()),
            ("with".to_owned(), with.to_owned()),
            ("send_at".to_owned(), send_at.to_owned()),
            ("intent".to_owned(), intent.to_owned()),
        ]
    };
    let post = |cookie: &str, fields: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        post_form(&server, "/broadcasts", &pairs, &[("Cookie", cookie)])
    };

    // Reviewed by anyone: who it reaches, the message for the first members, what the policies say.
    let review = post(&viewer, form(&viewer_csrf, "review", &with, ""));
    assert_eq!(review.status, 200);
    assert!(review.body.contains("<strong>4</strong>"), "{}", review.body);
    assert!(review.body.contains("Chào Khách u1"), "the message rendered: {}", review.body);
    assert!(review.body.contains("not sent: unsubscribed"), "u2's consent: {}", review.body);
    let broken = post(&marketer, form(&csrf, "review", "url: x\ntext: 'Chào {{ profile.traits.name'", ""));
    assert!(broken.body.contains("<li value=\"2\" class=\"bad\">"), "the mistake at its line: {}", broken.body);
    assert_eq!(post(&viewer, form(&viewer_csrf, "schedule", &with, "")).status, 403, "a viewer sends nothing");

    // Scheduled now: each member the policies allow gets it once; a later one is cancelled before it goes.
    assert_eq!(post(&marketer, form(&csrf, "schedule", &with, "")).location.as_deref(), Some("/broadcasts"));
    assert_eq!(
        post(&marketer, form(&csrf, "schedule", &with, "2099-01-01T00:00:00Z")).location.as_deref(),
        Some("/broadcasts")
    );
    let mut all = Value::Null;
    wait_until("the broadcast sent", || {
        all = server.admin("/api/v1/broadcasts");
        all["broadcasts"].as_array().unwrap().iter().any(|b| b["status"] == "sent")
    });
    let sent = all["broadcasts"].as_array().unwrap().iter().find(|b| b["status"] == "sent").unwrap().clone();
    assert_eq!((sent["done"].as_u64(), sent["total"].as_u64()), (Some(4), Some(4)), "{sent}");
    wait_until("three messages", || vendors.received("hook").iter().filter(|r| r.status == 200).count() == 3);
    let texts: Vec<String> =
        vendors.received("hook").iter().filter_map(|r| r.body["text"].as_str().map(str::to_owned)).collect();
    assert!(!texts.iter().any(|t| t.contains("u2") || t.contains("u3")), "{texts:?}");
    let later = all["broadcasts"].as_array().unwrap().iter().find(|b| b["status"] == "scheduled").unwrap();
    let id = later["id"].as_str().unwrap();
    let cancelled =
        post_form(&server, &format!("/broadcasts/{id}/cancel"), &[("csrf", &csrf)], &[("Cookie", &marketer)]);
    assert_eq!(cancelled.location.as_deref(), Some("/broadcasts"));
    let page = get(&server, "/broadcasts", &[("Cookie", &viewer)]);
    assert!(page.body.contains("cancelled") && page.body.contains("4 / 4"), "{}", page.body);
}
