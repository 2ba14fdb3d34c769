//! Flows in the running engine: events through the log and the processor, timers on a manual clock, actions
//! through the outbox and the dispatcher to the webhook stand-in, a real HTTP server on this machine.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{ingest, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::Vendors;
use tutti_core::time::parse_timestamp;
use tutti_engine::config::Config;
use tutti_engine::{Clock, Engine, ManualClock};

/// The webhook stand-in of `tutti_connectors::testing`, on a runtime of its own: it checks each request as a
/// webhook receiver would (JSON, an `Idempotency-Key`) and answers 200.
struct Receiver {
    _runtime: tokio::runtime::Runtime,
    vendors: Vendors,
    /// The base URL flows post to (paths may follow).
    url: String,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let vendors = runtime.block_on(Vendors::start());
        let url = vendors.hook_url("flows");
        Receiver { _runtime: runtime, vendors, url }
    }

    /// Every request received: its idempotency key and JSON body.
    fn received(&self) -> Vec<(String, Value)> {
        let refused = self.vendors.refusals();
        assert!(refused.is_empty(), "the receiver refused requests: {refused:?}");
        self.vendors
            .received("hook")
            .into_iter()
            .map(|r| {
                let key = r.idempotency_key().to_owned();
                (key, r.body)
            })
            .collect()
    }

    /// Waits until at least `n` requests arrived (or 20 s pass); returns what arrived.
    fn wait_for(&self, n: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::yield_now();
        }
    }
}

fn at(text: &str) -> i64 {
    parse_timestamp(text).unwrap()
}

/// The S2 example's definitions, sending to the receiver.
fn s2_flows(dir: &Path, receiver: &str) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/s2-complaint");
    for file in ["complaint-suppression.yaml", "winback-promo.yaml", "receipt.yaml"] {
        let source = std::fs::read_to_string(examples.join(file)).unwrap().replace("http://127.0.0.1:9400", receiver);
        std::fs::write(dir.join(file), source).unwrap();
    }
}

fn start(data: &Path, flows: &Path, clock: Arc<ManualClock>) -> Engine {
    let mut config = Config::default();
    config.storage.data_dir = data.to_owned();
    config.flows.dir = Some(flows.to_owned());
    config.connectors.insert("webhook".into(), toml::Value::Table(toml::toml! { allow_private = ["127.0.0.1"] }));
    Engine::start(config, clock).unwrap()
}

/// Waits (bounded) until no profile waits on a timer due by now and nothing is left to deliver.
fn settle(engine: &Engine, clock: &ManualClock) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let due_left = engine.runs(None, None, 1000).unwrap().into_iter().any(|r| {
            let run: Value = serde_json::from_slice(&r).unwrap();
            run["status"]["state"] == "waiting" && run["status"]["until"].as_i64().unwrap() <= clock.now_ms()
        });
        let pending = engine.outbox("pending", 10).unwrap().len();
        if !due_left && pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the engine did not settle: due runs {due_left}, pending {pending}");
        std::thread::yield_now();
    }
}

#[test]
fn s2_in_the_engine_the_complaint_stops_the_promo_and_the_receipt_goes() {
    let receiver = Receiver::start();
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    s2_flows(flows.path(), &receiver.url);
    let clock = Arc::new(ManualClock::new(at("2026-11-22T10:00:00Z")));
    let engine = start(data.path(), flows.path(), clock.clone());
    ingest(
        &engine,
        &[
            json!({"type": "identify", "userId": "lan", "traits": {"email": "lan@example.vn", "name": "Lan"}}),
            json!({"type": "track", "userId": "lan", "event": "Checkout Started"}),
        ],
    );
    clock.advance(2 * 60_000);
    ingest(
        &engine,
        &[
            json!({"type": "track", "userId": "lan", "event": "Complaint Filed"}),
            json!({"type": "track", "userId": "lan", "event": "Order Completed", "properties": {"order_id": "HD-1"}}),
        ],
    );
    // Past the promo's 10:05 and the receipt's 10:04.
    clock.advance(4 * 60_000);
    let got = receiver.wait_for(1);
    settle(&engine, &clock);
    let got_after = receiver.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got_after.len(), 1, "{got_after:?}");
    assert_eq!(got[0].1, json!({"to": "lan@example.vn", "subject": "Hoá đơn HD-1"}));
    assert!(got[0].0.ends_with(":send-receipt:1"), "{}", got[0].0);

    let runs: Vec<Value> = engine
        .runs(None, Some("winback-promo"), 10)
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"]["state"], "exited");
    assert!(runs[0]["status"]["reason"].as_str().unwrap().contains("complaint-suppression"));
    let path: Vec<&str> = runs[0]["path"].as_array().unwrap().iter().map(|d| d["decision"].as_str().unwrap()).collect();
    assert_eq!(path, ["entered", "waiting", "exited"]);
    engine.shutdown();
}

#[test]
fn waiting_runs_survive_a_restart_and_act_once() {
    let receiver = Receiver::start();
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    s2_flows(flows.path(), &receiver.url);
    let clock = Arc::new(ManualClock::new(at("2026-11-22T10:00:00Z")));
    let engine = start(data.path(), flows.path(), clock.clone());
    let people = 50;
    let mut events = Vec::new();
    for p in 0..people {
        events.push(
            json!({"type": "identify", "userId": format!("u{p}"), "traits": {"email": format!("u{p}@example.vn")}}),
        );
        events.push(json!({"type": "track", "userId": format!("u{p}"), "event": "Checkout Started"}));
    }
    ingest(&engine, &events);
    assert_eq!(engine.pending_timers().unwrap(), people);
    engine.shutdown();
    drop(engine);

    // A new engine on the same data: every wait is still there and fires once.
    let engine = start(data.path(), flows.path(), clock.clone());
    assert_eq!(engine.pending_timers().unwrap(), people);
    clock.advance(6 * 60_000);
    let got = receiver.wait_for(people as usize);
    settle(&engine, &clock);
    let mut keys: Vec<String> = receiver.wait_for(people as usize).into_iter().map(|(k, _)| k).collect();
    assert_eq!(got.len(), people as usize);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), people as usize, "each action exactly once");
    assert_eq!(engine.pending_timers().unwrap(), 0);
    engine.shutdown();
}

#[test]
fn private_destinations_become_dead_letters_without_a_request() {
    let receiver = Receiver::start();
    let port = receiver.url.split(':').nth(2).and_then(|rest| rest.split('/').next()).unwrap().to_owned();
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        flows.path().join("probe.yaml"),
        format!(
            "flow: probe\ncategory: transactional\ntrigger: {{ event: Ping }}\nentry: {{ every_time: true }}\nsteps:\n  \
             - id: literal\n    action: webhook.post\n    with: {{ url: '{}/a' }}\n  \
             - id: named\n    action: webhook.post\n    with: {{ url: 'http://localhost:{port}/b' }}\n  \
             - id: metadata\n    action: webhook.post\n    with: {{ url: 'http://169.254.169.254/latest/meta-data/' }}\n",
            receiver.url
        ),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-22T10:00:00Z")));
    let mut config = Config::default();
    config.storage.data_dir = data.path().to_owned();
    config.flows.dir = Some(flows.path().to_owned());
    // No allow-list: loopback is refused, by address and by name.
    let engine = Engine::start(config, clock.clone()).unwrap();
    ingest(&engine, &[json!({"type": "track", "userId": "mai", "event": "Ping"})]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let dead = engine.outbox("dead", 10).unwrap();
        if dead.len() == 3 || Instant::now() > deadline {
            break dead;
        }
        std::thread::yield_now();
    };
    let errors: Vec<String> = dead.iter().map(|(_, e)| e.clone().unwrap_or_default()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    // One attempt each: a refusal is permanent, not retried.
    assert!(dead.iter().all(|(row, _)| row.attempts == 1), "{dead:?}");
    assert!(errors[0].contains("127.0.0.1") && errors[0].contains("allow_private"), "{}", errors[0]);
    assert!(errors[1].contains("localhost") && errors[1].contains("allow_private"), "{}", errors[1]);
    assert!(errors[2].contains("169.254.169.254") && errors[2].contains("allow_private"), "{}", errors[2]);
    assert!(engine.outbox("pending", 10).unwrap().is_empty());
    assert!(receiver.received().is_empty(), "nothing reached the receiver");
    engine.shutdown();
}

/// The S6 example's flow, sending to the receiver.
fn s6_flow(dir: &Path, receiver: &str) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/s6-personal-copy/personal-thanks.yaml");
    let source = std::fs::read_to_string(example).unwrap().replace("http://127.0.0.1:9400", receiver);
    std::fs::write(dir.join("personal-thanks.yaml"), source).unwrap();
}

fn order(user: &str, traits: Value, item: &str, order_id: &str) -> [Value; 2] {
    [
        json!({"type": "identify", "userId": user, "traits": traits}),
        json!({"type": "track", "userId": user, "event": "Order Completed",
               "properties": {"item": item, "order_id": order_id}}),
    ]
}

fn run_of(engine: &Engine, user_email: &str) -> Value {
    engine
        .runs(None, Some("personal-thanks"), 100)
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(r).unwrap())
        .find(|r| r["trigger"]["userId"] == user_email)
        .unwrap_or_else(|| panic!("no run for {user_email}"))
}

fn decide(engine: &Engine, run: &Value, decision: tutti_flows::machine::ApprovalDecision) -> Option<Value> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let pid: tutti_core::ProfileId = run["profile"].as_str().unwrap().parse().unwrap();
    let after = rt.block_on(engine.decide_approval(pid, run["id"].as_str().unwrap(), "review", decision)).unwrap();
    after.map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn s6_in_the_engine_copy_in_three_languages_and_the_big_spender_waits_for_a_person() {
    use tutti_core::audit::{AuditFilter, AuditKind};
    use tutti_flows::machine::ApprovalDecision;

    let receiver = Receiver::start();
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    s6_flow(flows.path(), &receiver.url);
    let clock = Arc::new(ManualClock::new(at("2026-11-22T10:00:00Z")));
    let engine = start(data.path(), flows.path(), clock.clone());
    let mut events = Vec::new();
    // No model is configured: the local provider writes every message.
    events.extend(order(
        "wang",
        json!({"email": "wang@example.cn", "name": "王伟", "gender": "male", "language": "zh", "ltv": 300}),
        "茶具",
        "D-1",
    ));
    events.extend(order(
        "sam",
        json!({"email": "sam@example.com", "first_name": "Sam", "language": "en", "ltv": 80}),
        "tea set",
        "D-2",
    ));
    events.extend(order(
        "lan",
        json!({"email": "lan@example.vn", "name": "Nguyễn Thị Lan", "gender": "female", "language": "vi", "ltv": 5000}),
        "bộ ấm trà",
        "D-3",
    ));
    ingest(&engine, &events);

    // The two ordinary customers get their copy at once; the big spender's waits.
    let sent = receiver.wait_for(2);
    settle(&engine, &clock);
    let sent_now = receiver.wait_for(2);
    assert_eq!(sent_now.len(), 2, "{sent_now:?}");
    let to = |s: &(String, Value), who: &str| s.1["to"] == who;
    let zh = sent.iter().find(|s| to(s, "wang@example.cn")).expect("the Chinese message");
    let en = sent.iter().find(|s| to(s, "sam@example.com")).expect("the English message");
    let zh_body = zh.1["text"].as_str().unwrap();
    assert!(zh_body.contains("王先生"), "{zh_body}");
    assert!(zh_body.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{zh_body}");
    assert!(en.1["text"].as_str().unwrap().contains("Sam"), "{en:?}");
    assert_eq!(zh.1["approved_by"], "", "nobody had to approve it");

    wait_until("the approval is requested", || engine.approvals(None, 10).unwrap().len() == 1);
    let inbox: Vec<Value> =
        engine.approvals(None, 10).unwrap().iter().map(|r| serde_json::from_slice(r).unwrap()).collect();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let lan = run_of(&engine, "lan");
    assert_eq!(inbox[0]["id"], lan["id"]);
    assert_eq!(lan["results"]["review"]["approval"], "pending");
    assert_eq!(lan["results"]["copy"]["language"], "vi");
    let lan_body = lan["results"]["copy"]["body"].as_str().unwrap();
    assert!(lan_body.contains("chị Lan") && lan_body.contains("Cảm ơn chị đã mua"), "{lan_body}");
    assert!(lan["results"]["copy"]["passed"].as_bool().unwrap());

    // Edited and approved: sent once, as edited, with the approver on it.
    clock.advance(60_000);
    let edited = "Chị Lan ơi, cảm ơn chị đã đặt bộ ấm trà. Đơn hàng: https://shop.example/orders/D-3";
    let edits = serde_json::from_value(json!({"body": edited})).unwrap();
    let after = decide(&engine, &lan, ApprovalDecision::Approve { by: "mai@shop.vn".into(), edits: Some(edits) });
    let after = after.expect("the run moved on");
    assert_eq!(after["results"]["review"]["approval"], "approved");
    let sent = receiver.wait_for(3);
    assert_eq!(sent.len(), 3);
    let vi = sent.iter().find(|s| to(s, "lan@example.vn")).unwrap();
    assert_eq!(vi.1["text"], edited);
    assert_eq!(vi.1["approved_by"], "mai@shop.vn");
    // A second decision on the same run changes nothing, and nothing goes twice.
    let again = decide(&engine, &lan, ApprovalDecision::Reject { by: "boss@shop.vn".into(), reason: "late".into() });
    assert!(again.is_none());
    settle(&engine, &clock);
    assert_eq!(receiver.wait_for(3).len(), 3);
    assert!(engine.approvals(None, 10).unwrap().is_empty());

    // Another big spender nobody approves: after 24 h the plain default goes, and a late decision is refused.
    ingest(
        &engine,
        &order("hoa", json!({"email": "hoa@example.vn", "name": "Trần Văn Hòa", "ltv": 2000}), "ấm", "D-4"),
    );
    wait_until("the approval is requested", || engine.approvals(None, 10).unwrap().len() == 1);
    assert_eq!(receiver.wait_for(3).len(), 3, "not sent before approval");
    clock.advance(24 * 3_600_000 + 1000);
    let sent = receiver.wait_for(4);
    settle(&engine, &clock);
    let hoa = sent.iter().find(|s| to(s, "hoa@example.vn")).expect("the default went out");
    assert_eq!(hoa.1["subject"], "Thank you for your order");
    let late =
        decide(&engine, &run_of(&engine, "hoa"), ApprovalDecision::Approve { by: "x@shop.vn".into(), edits: None });
    assert!(late.is_none(), "an expired approval takes no decision");
    assert_eq!(receiver.wait_for(4).len(), 4);

    // The audit log: one model call per message (the local provider, labelled), and every approval.
    let calls = engine.audit(&AuditFilter { kind: Some(AuditKind::ModelCall), ..Default::default() }, 0, 100).unwrap();
    assert_eq!(calls.len(), 4, "{calls:?}");
    for (_, c) in &calls {
        assert_eq!(c.flow.as_deref(), Some("personal-thanks"));
        assert_eq!(c.detail["provider"], "local");
        assert_eq!(c.detail["local"], true);
        assert_eq!(c.detail["template_version"], "personal-thanks@1#copy");
        assert_eq!(c.detail["prompt_hash"].as_str().unwrap().len(), 64);
        assert_eq!(c.detail["verdict"]["passed"], true);
    }
    let lan_run = lan["id"].as_str().unwrap().to_owned();
    let approvals = engine
        .audit(&AuditFilter { kind: Some(AuditKind::Approval), run: Some(lan_run), ..Default::default() }, 0, 100)
        .unwrap();
    let decisions: Vec<&str> = approvals.iter().map(|(_, r)| r.detail["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["requested", "edited_and_approved"]);
    assert_eq!(approvals[1].1.detail["approver"], "mai@shop.vn");
    assert_eq!(approvals[1].1.detail["content"]["body"], edited);
    let expired = engine
        .audit(&AuditFilter { kind: Some(AuditKind::Approval), ..Default::default() }, 0, 100)
        .unwrap()
        .into_iter()
        .filter(|(_, r)| r.detail["decision"] == "expired")
        .count();
    assert_eq!(expired, 1);
    engine.shutdown();
}

/// `first_sends`: the first runs of each flow version wait for a person whoever they belong to; the count is
/// committed with the runs, so a restart does not hold them again, and a new version starts its own count.
#[test]
fn the_first_sends_of_each_version_wait_for_a_person_across_a_restart() {
    let receiver = Receiver::start();
    let (data, flows) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flow = |note: &str| {
        format!(
            "flow: launch\ntrigger: {{ event: Order Completed }}\nsteps:\n  - id: review\n    approve: {{ first_sends: 2, expires: 24h }}\n  - id: send\n    action: webhook.post\n    with: {{ url: '{}/launch', text: '{note}', to: '{{{{ event.userId }}}}' }}\n",
            receiver.url
        )
    };
    let clock = Arc::new(ManualClock::new(at("2026-11-22T10:00:00Z")));
    let buy = |engine: &Engine, users: &[&str]| {
        clock.advance(1000);
        let events: Vec<Value> =
            users.iter().map(|u| json!({"type": "track", "userId": u, "event": "Order Completed"})).collect();
        ingest(engine, &events);
    };
    let held = |engine: &Engine| -> Vec<(String, u64, String)> {
        let mut held: Vec<(String, u64, String)> = engine
            .approvals(Some("launch"), 100)
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(r).unwrap())
            .map(|r| {
                let user = r["trigger"]["userId"].as_str().unwrap().to_owned();
                let reason = r["results"]["review"]["reason"].as_str().unwrap().to_owned();
                (user, r["version"].as_u64().unwrap(), reason)
            })
            .collect();
        held.sort();
        held
    };
    let sent_to = |n: usize| -> Vec<String> {
        receiver.wait_for(n).iter().map(|(_, body)| body["to"].as_str().unwrap().to_owned()).collect()
    };

    let engine = start(data.path(), flows.path(), clock.clone());
    assert_eq!(engine.put_definition("flow", "launch", &flow("v1"), None).unwrap(), 1);
    buy(&engine, &["an", "binh", "chi"]);
    wait_until("two approvals", || engine.approvals(Some("launch"), 100).unwrap().len() == 2);
    assert_eq!(sent_to(1), ["chi"], "the third run goes out unattended");
    let inbox = held(&engine);
    assert_eq!(inbox.iter().map(|h| (h.0.as_str(), h.1)).collect::<Vec<_>>(), [("an", 1), ("binh", 1)]);
    assert!(inbox[0].2.starts_with("send 1 of the first 2 of version 1"), "{inbox:?}");
    assert!(inbox[1].2.starts_with("send 2 of the first 2 of version 1"), "{inbox:?}");
    engine.shutdown();
    drop(engine);

    // After a restart the count stands: version 1 holds nobody else.
    let engine = start(data.path(), flows.path(), clock.clone());
    buy(&engine, &["dung"]);
    assert_eq!(sent_to(2), ["chi", "dung"]);
    assert_eq!(held(&engine).len(), 2);

    // A new version's first two sends wait again.
    assert_eq!(engine.put_definition("flow", "launch", &flow("v2"), None).unwrap(), 2);
    buy(&engine, &["em", "giang", "hai"]);
    wait_until("four approvals", || engine.approvals(Some("launch"), 100).unwrap().len() == 4);
    assert_eq!(sent_to(3), ["chi", "dung", "hai"]);
    let inbox = held(&engine);
    let v2: Vec<(&str, u64)> = inbox.iter().filter(|h| h.1 == 2).map(|h| (h.0.as_str(), h.1)).collect();
    assert_eq!(v2, [("em", 2), ("giang", 2)], "{inbox:?}");
    settle(&engine, &clock);
    assert_eq!(receiver.wait_for(3).len(), 3, "nothing else went out");
    engine.shutdown();
}
