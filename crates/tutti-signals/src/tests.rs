//! The hook files' own tests: compiling, the shipped mappings, problems located, payloads mapped.

use super::*;

fn none(_: &str) -> Option<String> {
    None
}

#[test]
fn every_builtin_compiles() {
    for (name, _) in BUILTINS {
        let file = format!("source: s\nverify: none\nbuiltin: {name}\n");
        compile("t.yaml", &file, &none).unwrap_or_else(|p| panic!("{name}: {p:?}"));
    }
}

fn builtin(name: &str) -> Hook {
    compile("t.yaml", &format!("source: s\nverify: none\nbuiltin: {name}\n"), &none).unwrap()
}

#[test]
fn the_builtins_map_what_their_documentation_says() {
    let crm = builtin("crm-objection")
        .apply(&json!({"note_id": "n-1", "type": "objection", "topic": "Bảo mật dữ liệu",
        "body": "Khách lo ngại", "account": "Vinamart", "owner": {"email": "hoa@shop.vn", "name": "Hoa"},
        "contact": {"email": "an@vinamart.vn"}}))
        .unwrap();
    assert_eq!(crm.len(), 2, "the owner's name on their profile, then the objection: {crm:?}");
    assert_eq!((crm[0]["type"].as_str(), crm[0]["traits"]["name"].as_str()), (Some("identify"), Some("Hoa")));
    assert_eq!(crm[0]["anonymousId"], "email:hoa@shop.vn");
    assert_eq!(
        (crm[1]["event"].as_str(), crm[1]["anonymousId"].as_str()),
        (Some("Objection Logged"), Some("email:hoa@shop.vn"))
    );
    assert_eq!(crm[1]["properties"]["topic"], "Bảo mật dữ liệu");
    assert_eq!(crm[1]["messageId"], "hook:s:note-n-1");

    let desk = builtin("support-complaint");
    let ticket = |tags: &str| {
        json!({"ticket_id": 5, "subject": "Giao hàng trễ", "tags": tags,
        "requester": {"email": "lan@example.vn"}, "channel": "email"})
    };
    let names = |events: Vec<Value>| events.iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        names(desk.apply(&ticket("vip complaint shipping")).unwrap()),
        ["Complaint Filed", "Support Ticket Updated"]
    );
    assert_eq!(names(desk.apply(&ticket("non-complaint")).unwrap()), ["Support Ticket Updated"]);

    let reach = builtin("content-engagement");
    let post =
        |reach: i64| json!({"slug": "tet-recipes", "topic": "recipes", "organic_reach": reach, "median_reach": 1000});
    assert_eq!(
        names(reach.apply(&post(12_000)).unwrap()),
        ["Content Performance Updated", "Content Engagement Crossed"]
    );
    assert_eq!(names(reach.apply(&post(2_000)).unwrap()), ["Content Performance Updated"]);
    assert_eq!(reach.apply(&post(2_000)).unwrap()[0]["anonymousId"], "post:tet-recipes");
    assert_eq!(reach.apply(&post(2_000)).unwrap()[0]["properties"]["organic_reach"], 2_000, "a number for the S4 flow");

    let published = builtin("content-published")
        .apply(&json!({"slug": "a", "title": "Mẹo Tết", "published_at": "2026-11-22T01:00:00Z"}))
        .unwrap();
    assert_eq!(published[0]["timestamp"], "2026-11-22T01:00:00Z");

    let mail = builtin("email-events").apply(&json!([
        {"email": "a@example.vn", "event": "bounce", "type": "bounce", "reason": "550 no such user", "sg_event_id": "e1", "timestamp": 1_790_000_000},
        {"email": "b@example.vn", "event": "bounce", "type": "blocked", "reason": "421 try later", "sg_event_id": "e2", "timestamp": 1_790_000_000},
        {"email": "c@example.vn", "event": "spamreport", "sg_event_id": "e3", "timestamp": 1_790_000_000},
        {"email": "d@example.vn", "event": "delivered", "sg_event_id": "e4", "timestamp": 1_790_000_000},
    ])).unwrap();
    let summary: Vec<(String, String)> = mail
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["event"].as_str().unwrap_or("-").to_owned()))
        .collect();
    assert_eq!(
        summary,
        [
            ("track".to_owned(), "Email Bounced".to_owned()),
            ("identify".to_owned(), "-".to_owned()),
            ("track".to_owned(), "Email Bounced".to_owned()),
            ("identify".to_owned(), "-".to_owned()),
            ("track".to_owned(), "Email Marked as Spam".to_owned()),
        ],
        "a hard bounce and a complaint unsubscribe; a block does not; a delivery maps to nothing"
    );
    assert_eq!(mail[1]["traits"], json!({"email_subscribe": "unsubscribed", "email": "a@example.vn"}));
    assert_eq!(mail[0]["timestamp"], "2026-09-21T14:13:20.000Z");
}

#[test]
fn problems_are_located_and_named() {
    let file = "source: bad source\nverfy: none\nevents:\n  - event: X\n    colour: red\n    when: 'item.a =='\n";
    let problems = compile("hooks/bad.yaml", file, &none).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    assert!(all.contains("hooks/bad.yaml:1:9: `source` is required"), "{all}");
    assert!(all.contains("hooks/bad.yaml:2:1: unknown key `verfy`"), "{all}");
    assert!(all.contains("unknown key `colour`"), "{all}");
    assert!(all.contains("condition:"), "{all}");
    assert!(all.contains("name the person"), "{all}");
    assert!(all.contains("`verify` is required"), "{all}");
}

#[test]
fn payloads_map_to_events_with_stable_message_ids() {
    let file = "source: desk\nverify: none\nitems: data.tickets\nevents:\n\
                \x20 - when: '\"complaint\" in item.tags'\n    event: Complaint Filed\n    email: '{{ item.email }}'\n\
                \x20   properties: { ticket: '{{ item.id }}', subject: '{{ item.subject }}', priority: 2 }\n";
    let hook = compile("h.yaml", file, &none).unwrap();
    let payload = json!({"data": {"tickets": [
        {"id": 7, "email": "Lan@Example.vn", "tags": ["complaint", "billing"], "subject": "Sai hoá đơn 账单错误"},
        {"id": 8, "email": "mai@example.vn", "tags": ["question"], "subject": "?"},
    ]}});
    let events = hook.apply(&payload).unwrap();
    assert_eq!(events.len(), 1, "the question is not a complaint");
    let e = &events[0];
    assert_eq!(e["event"], "Complaint Filed");
    assert_eq!(e["anonymousId"], "email:lan@example.vn");
    assert_eq!(e["context"]["traits"]["email"], "Lan@Example.vn");
    assert_eq!(
        e["properties"],
        json!({"ticket": 7, "subject": "Sai hoá đơn 账单错误", "priority": 2}),
        "a bare reference keeps its type"
    );
    assert_eq!(hook.apply(&payload).unwrap()[0]["messageId"], e["messageId"], "a retried delivery: the same id");
    let mut other = payload.clone();
    other["data"]["tickets"][0]["id"] = json!(9);
    assert_ne!(hook.apply(&other).unwrap()[0]["messageId"], e["messageId"]);
    assert!(hook.apply(&json!({"data": {}})).unwrap_err().0.contains("data.tickets"));
    let nobody = json!({"data": {"tickets": [{"id": 1, "tags": ["complaint"]}]}});
    assert!(hook.apply(&nobody).unwrap_err().0.contains("named nobody"));
}

#[test]
fn vendors_times_are_read_and_hostile_numbers_do_not_overflow() {
    assert_eq!(time_text("1793000000".into()), "2026-10-26T07:33:20.000Z", "seconds");
    assert_eq!(time_text("1793000000123".into()), "2026-10-26T07:33:20.123Z", "milliseconds");
    assert_eq!(time_text("2026-10-26T07:33:20Z".into()), "2026-10-26T07:33:20Z", "text is kept for its reader");
    for hostile in [i64::MIN, -99_999_999_999_999_999, i64::MAX] {
        assert_eq!(time_text(hostile.to_string()), "invalid", "{hostile}");
    }
}
