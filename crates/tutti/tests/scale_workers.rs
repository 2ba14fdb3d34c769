//! Several workers on one Postgres and one NATS JetStream: each partition of the log processed by one worker
//! at a time, the partitions shared out among the live workers, and taken over when one of them is killed.
//! Afterwards every event is counted once, each person's in the order sent, and each action is delivered
//! under one key.

mod common;

use std::collections::{HashMap, HashSet};

use common::{Server, SharedSchema, wait_until};
use serde_json::{Value, json};
use tutti_connectors::testing::Vendors;
use tutti_log::nats::testing::NatsServer;

const USERS: usize = 40;
const PARTITIONS: usize = 16;

/// A flow that calls the receiver once per event, saying whose event and which.
fn echo_flow(url: &str) -> String {
    format!(
        "flow: echo\ncategory: transactional\ntrigger: {{ event: Ticked }}\nentry: {{ every_time: true }}\nsteps:\n  - id: call\n    action: webhook.post\n    with: {{ url: '{url}', who: '{{{{ event.userId }}}}', n: '{{{{ event.properties.n }}}}' }}\n"
    )
}

/// What two workers share: one NATS server, one Postgres schema, the vendors' stand-ins and a flow.
struct Cluster {
    nats: NatsServer,
    schema: SharedSchema,
    _runtime: tokio::runtime::Runtime,
    vendors: Vendors,
    flows: tempfile::TempDir,
}

impl Cluster {
    /// `None` when no NATS server is installed (the test says so and returns).
    fn new(flow: impl FnOnce(&Vendors) -> String) -> Option<Cluster> {
        let nats = NatsServer::start()?;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let vendors = runtime.block_on(Vendors::start());
        let flows = tempfile::tempdir().unwrap();
        std::fs::write(flows.path().join("flow.yaml"), flow(&vendors)).unwrap();
        Some(Cluster { nats, schema: SharedSchema::new(), _runtime: runtime, vendors, flows })
    }

    /// A Tutti process in `role` on the shared NATS and Postgres, its leases `lease` long.
    fn start(&self, role: &str, lease: &str) -> Server {
        let (url, flows_dir) = (self.nats.url(), self.flows.path().to_str().unwrap().to_owned());
        Server::start_from_temp(&[
            ("TUTTI_BUS__NATS", url.as_str()),
            ("TUTTI_STORAGE__POSTGRES", self.schema.url.as_str()),
            ("TUTTI_STORAGE__LEASE", lease),
            ("TUTTI_AUTH__ERASURE_KEY", common::SHARED_ERASURE_KEY),
            ("TUTTI_SERVER__ROLE", role),
            ("TUTTI_FLOWS__DIR", flows_dir.as_str()),
            ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
        ])
    }
}

/// Each live worker's partitions, as `GET /api/v1/workers` on `server` shows them.
fn holdings(server: &Server) -> HashMap<String, usize> {
    let view = server.admin("/api/v1/workers");
    let now = view["now"].as_i64().unwrap_or(0);
    let mut held: HashMap<String, usize> = HashMap::new();
    for p in view["partitions"].as_array().into_iter().flatten() {
        if let (Some(owner), Some(until)) = (p["owner"].as_str(), p["expires_at"].as_i64())
            && until > now
        {
            *held.entry(owner.to_owned()).or_default() += 1;
        }
    }
    held
}

/// Sends `n` (from `from`) of every user's events, one after another, through `server`.
fn send(server: &Server, from: usize, n: usize) {
    for i in from..from + n {
        for u in 0..USERS {
            let user = format!("khach-{u}");
            let body =
                json!({"userId": user, "event": "Ticked", "messageId": format!("{user}-{i}"), "properties": {"n": i}});
            assert_eq!(server.track("/v1/track", &body).0, 200);
        }
    }
}

/// Every action delivered exactly once per key, `total` of them; returns the repeats of a key.
fn delivered(vendors: &Vendors, total: usize) -> usize {
    let ok: Vec<_> = vendors.received("hook").into_iter().filter(|r| r.status == 200).collect();
    let mut keys_of: HashMap<String, HashSet<String>> = HashMap::new();
    let mut sends_of_key: HashMap<String, usize> = HashMap::new();
    for r in &ok {
        let action = format!("{}-{}", r.body["who"].as_str().unwrap_or(""), r.body["n"].as_str().unwrap_or(""));
        let key = r.headers["idempotency-key"].to_str().unwrap().to_owned();
        keys_of.entry(action).or_default().insert(key.clone());
        *sends_of_key.entry(key).or_default() += 1;
    }
    for (action, keys) in &keys_of {
        assert_eq!(keys.len(), 1, "{action} was delivered under {keys:?}");
    }
    assert_eq!(keys_of.len(), total, "actions delivered");
    sends_of_key.values().map(|n| n - 1).sum()
}

fn counted(server: &Server, events: u64) -> bool {
    (0..USERS).all(|u| {
        let (status, profile) = server.profile(&format!("user_id:khach-{u}"));
        status == 200 && profile["event_counts"]["Ticked"] == events
    })
}

#[test]
fn two_workers_share_the_partitions_and_one_takes_over_when_the_other_is_killed() {
    let Some(cluster) = Cluster::new(|vendors| echo_flow(&vendors.hook_url("echo"))) else { return };
    let vendors = &cluster.vendors;
    let first = cluster.start("all", "1500ms");
    let mut second = cluster.start("worker", "1500ms");

    wait_until("the two workers hold half the partitions each", || {
        let held = holdings(&first);
        held.len() == 2 && held.values().all(|n| *n == PARTITIONS / 2)
    });
    send(&first, 0, 10);
    wait_until("both workers folded every event", || counted(&first, 10) && counted(&second, 10));
    let processed = |server: &Server| server.metric("tutti_events_processed_total") as u64;
    let (by_first, by_second) = (processed(&first), processed(&second));
    assert!(by_first > 0 && by_second > 0, "each worker folded its share: {by_first} and {by_second}");
    wait_until("every action delivered", || {
        vendors.received("hook").iter().filter(|r| r.status == 200).count() >= USERS * 10
    });
    // The log holds the events sent and each delivery's outcome (an event too): each folded by one worker.
    wait_until("every event in the log folded once", || {
        processed(&first) + processed(&second) == first.all_events().len() as u64
    });
    let (by_first, by_second) = (processed(&first), processed(&second));
    // A delivery may be repeated only while a partition moves between workers or an attempt times out: at most
    // the actions in flight (the webhook connector's 16 per worker).
    let repeats_before = delivered(vendors, USERS * 10);
    assert!(repeats_before <= 2 * 16, "{repeats_before} repeated deliveries");

    // The console shows both workers and their partitions.
    let (cookie, _) = common::browser::signed_in(&first, "lan@shop.vn", "viewer");
    let page = common::browser::get(&first, "/workers", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.body;
    let view: Value = first.admin("/api/v1/workers");
    for w in view["workers"].as_array().unwrap() {
        assert!(page.contains(w["id"].as_str().unwrap()), "{page}");
    }

    // The second is killed; the first takes all its partitions once their leases run out, and folds what
    // comes next, and what the second had not finished, exactly once.
    second.kill9();
    send(&first, 10, 10);
    wait_until("the first worker holds every partition", || {
        let held = holdings(&first);
        held.len() == 1 && held.values().all(|n| *n == PARTITIONS)
    });
    wait_until("every event of both rounds counted", || counted(&first, 20));
    wait_until("every action delivered", || {
        let ok: HashSet<String> = vendors
            .received("hook")
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| format!("{}-{}", r.body["who"], r.body["n"]))
            .collect();
        ok.len() == USERS * 20
    });
    let repeats = delivered(vendors, USERS * 20);
    assert!(repeats <= repeats_before + 2 * 16, "{repeats} repeated deliveries");
    println!(
        "{by_first} and {by_second} events folded by each worker; {repeats_before} repeats before the kill, {repeats} in all"
    );
}

/// A flow whose every run waits for a person's approval, then calls the receiver saying whose run it was.
fn approval_flow(url: &str) -> String {
    format!(
        "flow: ask\ntrigger: {{ event: Asked }}\nentry: {{ every_time: true }}\nsteps:\n  - id: review\n    approve: {{ reason: asked, expires: 24h }}\n  - id: call\n    action: webhook.post\n    with: {{ url: '{url}', who: '{{{{ event.userId }}}}', n: '{{{{ event.properties.n }}}}' }}\n"
    )
}

/// The runs waiting for approval, by the user whose run it is (through `server`'s API).
fn waiting_runs(server: &Server) -> Vec<(String, String)> {
    let inbox = server.admin("/api/v1/approvals?limit=200");
    let mut runs = Vec::new();
    for item in inbox["approvals"].as_array().into_iter().flatten() {
        let profile = item["profile"].as_str().unwrap_or_default();
        let user = server.admin(&format!("/api/v1/profiles/{profile}"))["identities"][0]["value"].clone();
        runs.push((user.as_str().unwrap_or_default().to_owned(), item["run"].as_str().unwrap_or_default().to_owned()));
    }
    runs
}

#[test]
fn approvals_through_one_worker_meet_the_others_commits_and_lose_nothing() {
    const ASKERS: usize = 24;
    let Some(cluster) = Cluster::new(|vendors| approval_flow(&vendors.hook_url("ask"))) else { return };
    let vendors = &cluster.vendors;
    // The default lease: the partitions stay put while the approvals are made.
    let first = cluster.start("all", "6s");
    let _second = cluster.start("worker", "6s");
    wait_until("the two workers hold half the partitions each", || {
        let held = holdings(&first);
        held.len() == 2 && held.values().all(|n| *n == PARTITIONS / 2)
    });
    let ask = |n: usize| {
        for u in 0..ASKERS {
            let user = format!("khach-{u}");
            let body =
                json!({"userId": user, "event": "Asked", "messageId": format!("{user}-{n}"), "properties": {"n": n}});
            assert_eq!(first.track("/v1/track", &body).0, 200);
        }
    };
    ask(1);
    wait_until("every first run waits for approval", || waiting_runs(&first).len() == ASKERS);
    let approver = common::personal_token(&first, "mai@shop.vn", "approver");
    let approve_all = |runs: Vec<(String, String)>| {
        for (user, run) in runs {
            let (status, body) =
                common::post_as(&first, &approver, &format!("/api/v1/approvals/{run}/approve"), &json!({}));
            assert_eq!(status, 200, "approving {user}'s run {run}: {body}");
        }
    };

    // Every first run is approved through the first worker, which then holds what it read of those people;
    // the second runs start where each person's home partition is (on the second worker for about half), and
    // are approved through the first while each person's browsing is folded where it lands: the first worker
    // must decide on what the other committed, and its decisions must meet the other's commits without failing.
    approve_all(waiting_runs(&first));
    wait_until("every first run delivered", || {
        vendors.received("hook").iter().filter(|r| r.status == 200).count() >= ASKERS
    });
    ask(2);
    wait_until("every second run waits for approval", || {
        let waiting = waiting_runs(&first);
        waiting.len() == ASKERS && waiting.iter().map(|(u, _)| u).collect::<HashSet<_>>().len() == ASKERS
    });
    const BROWSES: usize = 5;
    let seconds = waiting_runs(&first);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..BROWSES {
                for u in 0..ASKERS {
                    let user = format!("khach-{u}");
                    let body = json!({"userId": user, "event": "Browsed", "messageId": format!("{user}-b{i}")});
                    assert_eq!(first.track("/v1/track", &body).0, 200);
                }
            }
        });
        approve_all(seconds);
    });

    wait_until("every approved run delivered", || {
        vendors.received("hook").iter().filter(|r| r.status == 200).count() >= 2 * ASKERS
    });
    let mut runs_of: HashMap<String, Vec<String>> = HashMap::new();
    for r in vendors.received("hook").into_iter().filter(|r| r.status == 200) {
        let who = r.body["who"].as_str().unwrap_or_default().to_owned();
        runs_of.entry(who).or_default().push(r.body["n"].as_str().unwrap_or_default().to_owned());
    }
    for u in 0..ASKERS {
        let mut runs = runs_of.remove(&format!("khach-{u}")).unwrap_or_default();
        runs.sort();
        assert_eq!(runs, ["1", "2"], "khach-{u}'s runs, each delivered once");
    }
    assert!(runs_of.is_empty(), "{runs_of:?}");
    assert!(waiting_runs(&first).is_empty());
    wait_until("every person's browsing counted", || {
        (0..ASKERS).all(|u| first.profile(&format!("user_id:khach-{u}")).1["event_counts"]["Browsed"] == BROWSES)
    });
}

#[test]
fn a_worker_with_another_erasure_key_refuses_to_start() {
    let Some(nats) = NatsServer::start() else { return };
    let schema = SharedSchema::new();
    let url = nats.url();
    let env = [
        ("TUTTI_BUS__NATS", url.as_str()),
        ("TUTTI_STORAGE__POSTGRES", schema.url.as_str()),
        ("TUTTI_AUTH__ERASURE_KEY", common::SHARED_ERASURE_KEY),
    ];
    let _first = Server::start_from_temp(&env);
    let other_key = "00".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["serve", "--role", "worker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("TUTTI_WRITE_KEY", common::WRITE_KEY)
        .envs(env)
        .env("TUTTI_AUTH__ERASURE_KEY", &other_key)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("erasure key") && said.contains("TUTTI_AUTH__ERASURE_KEY"), "{said}");
    assert!(!said.contains(&other_key), "the key itself is never shown");
}
