//! Failures under load with the log on NATS JetStream: the NATS server killed and started again, a worker
//! killed mid-stream, and the Postgres server two workers share killed and started again. Clients retry what
//! was not acknowledged, as Segment's libraries do. Afterwards: no acknowledged event lost or stored twice,
//! each person's events applied in the order sent, each action delivered under one key, and a key repeated
//! at most as often as actions were in flight.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Server, wait_until};
use serde_json::json;
use tutti_connectors::testing::Vendors;
use tutti_log::nats::testing::NatsServer;

const CLIENTS: usize = 4;
const USERS_PER_CLIENT: usize = 10;
const EVENTS_PER_USER: usize = 40;

/// A flow that calls the receiver once per event, saying whose event and which.
fn echo_flow(url: &str) -> String {
    format!(
        "flow: echo\ncategory: transactional\ntrigger: {{ event: Ticked }}\nentry: {{ every_time: true }}\nsteps:\n  - id: call\n    action: webhook.post\n    with: {{ url: '{url}', who: '{{{{ event.userId }}}}', n: '{{{{ event.properties.n }}}}' }}\n"
    )
}

/// Load from `CLIENTS` threads, each sending its users' events one after another (so each person's order is
/// the order sent), retrying the same `messageId` until it is acknowledged.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    failures: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, enough: std::sync::mpsc::Sender<()>, at: usize) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(0));
        let signalled = Arc::new(AtomicBool::new(false));
        let threads = (0..CLIENTS)
            .map(|client| {
                let (url, acked, failures, enough, signalled) =
                    (url.clone(), acked.clone(), failures.clone(), enough.clone(), signalled.clone());
                std::thread::spawn(move || {
                    let agent = common::agent();
                    let auth = Server::basic_auth();
                    for n in 0..EVENTS_PER_USER {
                        for u in 0..USERS_PER_CLIENT {
                            let user = format!("c{client}-u{u}");
                            let id = format!("{user}-{n}");
                            let body =
                                json!({"userId": user, "event": "Ticked", "messageId": id, "properties": {"n": n}});
                            loop {
                                let sent = agent
                                    .post(format!("{url}/v1/track"))
                                    .header("Authorization", &auth)
                                    .send(body.to_string().as_bytes());
                                if matches!(&sent, Ok(r) if r.status() == 200) {
                                    break;
                                }
                                failures.fetch_add(1, Ordering::Relaxed);
                                // A client's pause before it retries, not a wait for anything in the test.
                                std::thread::park_timeout(std::time::Duration::from_millis(20));
                            }
                            let mut acked = acked.lock().unwrap();
                            acked.push(id);
                            if acked.len() >= at && !signalled.swap(true, Ordering::Relaxed) {
                                let _ = enough.send(());
                            }
                        }
                    }
                })
            })
            .collect();
        Load { acked, failures, threads }
    }

    fn finish(self) -> Vec<String> {
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// What every failure test checks once the load is done and processed. `in_flight`: how many actions may
/// have been in flight when something failed (the webhook connector's concurrency, 16, per worker).
fn check(worker: &Server, vendors: &Vendors, acked: &[String], in_flight: usize) {
    let total = CLIENTS * USERS_PER_CLIENT * EVENTS_PER_USER;
    assert_eq!(acked.len(), total);
    // Every acknowledged event is in the log exactly once.
    let events = worker.all_events();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *seen.entry(e["event"]["messageId"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    for id in acked {
        assert_eq!(seen.get(id), Some(&1), "{id} is in the log {:?} times", seen.get(id));
    }
    // Each person's events were applied in the order they were sent: the log's order is theirs, and the profile
    // counted them all.
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event"]["event"] == "Ticked") {
        let user = e["event"]["userId"].as_str().unwrap_or_default().to_owned();
        order.entry(user).or_default().push(e["event"]["properties"]["n"].as_u64().unwrap());
    }
    for (user, ns) in &order {
        assert_eq!(ns, &(0..EVENTS_PER_USER as u64).collect::<Vec<_>>(), "{user}'s events out of order");
    }
    wait_until("every profile counted", || {
        order.keys().all(|user| {
            let (status, profile) = worker.profile(&format!("user_id:{user}"));
            status == 200 && profile["event_counts"]["Ticked"] == EVENTS_PER_USER
        })
    });
    // Each action reached the receiver under one key; a key came again at most as often as actions were in
    // flight when something failed.
    wait_until("every action delivered", || {
        let delivered: HashSet<String> = vendors
            .received("hook")
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| format!("{}-{}", r.body["who"].as_str().unwrap_or(""), r.body["n"].as_str().unwrap_or("")))
            .collect();
        delivered.len() == total
    });
    let mut keys_of: HashMap<String, HashSet<String>> = HashMap::new();
    let mut sends_of_key: HashMap<String, usize> = HashMap::new();
    for r in vendors.received("hook").iter().filter(|r| r.status == 200) {
        let action = format!("{}-{}", r.body["who"].as_str().unwrap_or(""), r.body["n"].as_str().unwrap_or(""));
        let key = r.headers["idempotency-key"].to_str().unwrap().to_owned();
        keys_of.entry(action).or_default().insert(key.clone());
        *sends_of_key.entry(key).or_default() += 1;
    }
    for (action, keys) in &keys_of {
        assert_eq!(keys.len(), 1, "{action} was delivered under {keys:?}");
    }
    let repeats: usize = sends_of_key.values().map(|n| n - 1).sum();
    assert!(repeats <= in_flight, "{repeats} repeated deliveries");
    println!("{} events, {} actions, {repeats} repeated deliveries", acked.len(), keys_of.len());
}

fn env_for<'a>(nats: &'a str, flows: &'a str, role: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TUTTI_BUS__NATS", nats),
        ("TUTTI_SERVER__ROLE", role),
        ("TUTTI_FLOWS__DIR", flows),
        ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]"),
    ]
}

#[test]
fn the_nats_server_killed_and_started_again_under_load_loses_nothing() {
    let Some(mut nats) = NatsServer::start() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(flows.path().join("echo.yaml"), echo_flow(&vendors.hook_url("echo"))).unwrap();
    let (url, flows_dir) = (nats.url(), flows.path().to_str().unwrap().to_owned());
    let worker = Server::start_from_temp(&env_for(&url, &flows_dir, "worker"));
    let intake = Server::start_from_temp(&env_for(&url, &flows_dir, "intake"));

    let (enough, enough_rx) = std::sync::mpsc::channel();
    let load = Load::start(intake.url.clone(), enough, 400);
    enough_rx.recv().unwrap();
    nats.kill();
    let before = load.failures.load(Ordering::Relaxed);
    // Down long enough that every client meets it a few times.
    wait_until("the clients to meet the outage", || load.failures.load(Ordering::Relaxed) > before + 4 * CLIENTS);
    nats.restart();
    let failures = load.failures.load(Ordering::Relaxed);
    let acked = load.finish();
    println!("{failures} requests failed while NATS was down");
    check(&worker, &vendors, &acked, 16);
    // An outage is reported, not repeated for every retry: each thread says it once.
    for server in [&worker, &intake] {
        let errors = server.output().lines().filter(|l| l.contains("ERROR")).count();
        assert!(errors <= 5, "{errors} error lines:\n{}", server.output());
    }
}

#[test]
fn a_worker_killed_mid_stream_loses_nothing() {
    let Some(nats) = NatsServer::start() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(flows.path().join("echo.yaml"), echo_flow(&vendors.hook_url("echo"))).unwrap();
    let (url, flows_dir) = (nats.url(), flows.path().to_str().unwrap().to_owned());
    let data = tempfile::tempdir().unwrap();
    let mut worker = Server::start_in(data.path(), &env_for(&url, &flows_dir, "worker"));
    let intake = Server::start_from_temp(&env_for(&url, &flows_dir, "intake"));

    let (enough, enough_rx) = std::sync::mpsc::channel();
    let load = Load::start(intake.url.clone(), enough, 600);
    enough_rx.recv().unwrap();
    worker.kill9();
    let worker = Server::start_in(data.path(), &env_for(&url, &flows_dir, "worker"));
    let acked = load.finish();
    check(&worker, &vendors, &acked, 16);
}

#[test]
fn the_postgres_server_two_workers_share_killed_and_started_again_under_load_loses_nothing() {
    let Some(nats) = NatsServer::start() else { return };
    let mut postgres = common::postgres_server::PostgresServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(flows.path().join("echo.yaml"), echo_flow(&vendors.hook_url("echo"))).unwrap();
    let (url, flows_dir, database) = (nats.url(), flows.path().to_str().unwrap().to_owned(), postgres.url());
    let start = |role| {
        let mut env = env_for(&url, &flows_dir, role);
        env.extend([
            ("TUTTI_STORAGE__POSTGRES", database.as_str()),
            ("TUTTI_STORAGE__LEASE", "1500ms"),
            ("TUTTI_AUTH__ERASURE_KEY", common::SHARED_ERASURE_KEY),
        ]);
        Server::start_from_temp(&env)
    };
    let workers = [start("worker"), start("worker")];
    let intake = start("intake");

    let (enough, enough_rx) = std::sync::mpsc::channel();
    let load = Load::start(intake.url.clone(), enough, 400);
    enough_rx.recv().unwrap();
    postgres.kill9();
    let delivered_before = vendors.received("hook").len();
    // Intake goes on without Postgres: the clients' events keep being acknowledged while it is down.
    wait_until("more events acknowledged while Postgres is down", || load.acked.lock().unwrap().len() >= 800);
    postgres.restart();
    // Actions delivered while Postgres was away could not be recorded as delivered there, so they are in flight
    // until it is back: the worker that takes their partition may deliver them again (under the same key).
    let delivered_while_away = vendors.received("hook").len() - delivered_before;
    let acked = load.finish();
    let in_flight = delivered_while_away + 2 * 16;
    println!("{delivered_while_away} actions delivered while Postgres was away");
    let checked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&workers[0], &vendors, &acked, in_flight)));
    if let Err(panic) = checked {
        for server in workers.iter().chain([&intake]) {
            println!("---\n{}", server.output());
        }
        std::panic::resume_unwind(panic);
    }
    // The workers met the outage (and said so once per thread), and the intake never did.
    let mut met = 0;
    for server in workers.iter().chain([&intake]) {
        let output = server.output();
        let errors: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
        println!("{} error lines:\n{}", errors.len(), errors.join("\n"));
        assert!(errors.len() <= 8, "{} error lines:\n{output}", errors.len());
        met += usize::from(output.contains("cannot renew the leases"));
    }
    assert_eq!(met, 2, "both workers lost touch with Postgres");
}
