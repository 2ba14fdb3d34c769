//! Developer tasks. `cargo xtask load` is the load harness for the tracking API: it builds and starts a release
//! `tutti serve` on a fresh data directory, drives it with concurrent keep-alive HTTP/1.1 clients over loopback
//! and prints throughput and latency percentiles. The raw client is deliberately minimal so that as much of
//! the shared CPU as possible goes to the server under test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Load-test the tracking API and print a report.
    Load(LoadArgs),
    /// Time the creative analysis over a synthetic campaign and print a report.
    Insights(InsightsArgs),
    /// Time the AI layer's local work (the review gate) and print a report.
    Ai(AiArgs),
}

#[derive(clap::Args)]
struct AiArgs {
    /// Reviews timed (the labelled set's messages, over and over).
    #[arg(long, default_value_t = 200_000)]
    reviews: usize,
}

#[derive(clap::Args)]
struct InsightsArgs {
    /// Our creatives, spread over three channels.
    #[arg(long, default_value_t = 10_000)]
    creatives: usize,
    /// Days of performance per creative (creatives x days = performance rows).
    #[arg(long, default_value_t = 100)]
    days: u32,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// `/v1/batch`, 100 events of about 500 bytes per request.
    Batch,
    /// Single-event `/v1/track`.
    Track,
    /// `/v1/track` at half the peak rate measured first, for acknowledgement latency.
    HalfLoad,
    /// 1,000,000 distinct people identified, then the server's resident memory.
    Profiles,
    /// A two-step flow (event trigger, branch, webhook to a local receiver): runs/s at full batch load, then
    /// acknowledgement-to-dispatch latency with `/v1/track` paced at `--rate`.
    Flows,
    /// `--timers` people each start a run that waits until a time in their profile, spread evenly over
    /// `--spread` seconds starting `--wait` seconds in: resident memory with them all pending, then SIGKILL
    /// and a restart, then how late each timer fires and whether every action arrives once.
    Timers,
    /// Delivery through the dispatcher: `--actions` webhook actions already in the outbox delivered to a local
    /// receiver (deliveries/s, with and without outcome events); the dispatcher's overhead with actions handed
    /// over at `--rate`/s; and Slack-style deliveries while the webhook connector hangs for a minute.
    Deliver,
    /// All of the above in order.
    All,
}

#[derive(clap::Args)]
struct LoadArgs {
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Seconds per throughput scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Profiles to create in the `profiles` scenario.
    #[arg(long, default_value_t = 1_000_000)]
    profiles: u64,
    /// Events per second in the flows latency run.
    #[arg(long, default_value_t = 5_000.0)]
    rate: f64,
    /// Pending timers in the `timers` scenario.
    #[arg(long, default_value_t = 1_000_000)]
    timers: u64,
    /// Seconds until the first timer of the `timers` scenario: long enough for all of them to be set and the
    /// server restarted before the first fires.
    #[arg(long, default_value_t = 240)]
    wait: u64,
    /// Seconds over which the timers of the `timers` scenario come due.
    #[arg(long, default_value_t = 300)]
    spread: u64,
    /// Actions in the outbox for the `deliver` scenario.
    #[arg(long, default_value_t = 50_000)]
    actions: u64,
    /// Which half of the `flows` scenario to run: `throughput`, `latency` or both (the default).
    #[arg(long, value_enum, default_value = "both")]
    half: Half,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Half {
    Throughput,
    Latency,
    Both,
}

const WRITE_KEY: &str = "load-write-key";
const ADMIN_TOKEN: &str = "load-admin-token";

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Load(args) => load(args),
        Task::Insights(args) => insights(args),
        Task::Ai(args) => ai(args),
    }
}

/// The review gate over the labelled set's messages (three languages, every built-in pack and a brand pack),
/// on one thread, then on every core.
fn ai(args: AiArgs) -> anyhow::Result<()> {
    use tutti_ai::review::{Gate, read_labelled};
    let set = read_labelled(include_str!("../../crates/tutti-ai/data/review/labelled.jsonl"))
        .map_err(|e| anyhow::anyhow!(e))?;
    let brand = include_str!("../../crates/tutti-ai/data/review/acme.yaml");
    let compiled = Instant::now();
    let gate = Gate::from_sources(&[("acme.yaml".into(), brand.into())])?;
    let compile_ms = compiled.elapsed().as_secs_f64() * 1000.0;
    let mut cases = Vec::new();
    for m in &set {
        cases.push((m.draft(), m.recipient(), gate.select(&m.packs)?));
    }
    let chars: usize = cases.iter().map(|(d, _, _)| d.fields.iter().map(|f| f.1.chars().count()).sum::<usize>()).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# Tutti AI benchmark");
    println!(
        "machine: {cores} cores; review gate: {} packs compiled in {compile_ms:.1} ms; {} labelled messages, {:.0} characters on average, each with its own packs",
        gate.packs().len(),
        cases.len(),
        chars as f64 / cases.len() as f64
    );
    let run = |n: usize| {
        let mut failed = 0usize;
        for (draft, recipient, packs) in cases.iter().cycle().take(n) {
            failed += usize::from(!gate.review(draft, recipient, *packs).passed);
        }
        failed
    };
    let started = Instant::now();
    let failed = run(args.reviews);
    let one = args.reviews as f64 / started.elapsed().as_secs_f64();
    println!("review, one thread: {} reviews ({failed} failed) at {one:.0} reviews/s", args.reviews);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| run(args.reviews / cores));
        }
    });
    let every = (args.reviews / cores * cores) as f64 / started.elapsed().as_secs_f64();
    println!("review, {cores} threads: {every:.0} reviews/s");
    generate_bench(args.reviews / 5, cores)
}

/// The `generate` step's work with no model: the personalisation context, three variants from the local
/// provider, review of each until one passes (revising with the gate's feedback), over profiles in Vietnamese,
/// Chinese and English and triggers of every kind (a cart, an order, a complaint, a lapsed customer); a third
/// of the asks carry an offer that fails review, so a third of the messages are revised.
fn generate_bench(messages: usize, cores: usize) -> anyhow::Result<()> {
    use serde_json::json;
    use std::future::Future;
    use std::sync::Arc;
    use tutti_ai::generate::{self, Stats};
    use tutti_ai::provider::{Task, local::Local, route::Router};
    use tutti_ai::review::Gate;
    let now = 1_795_000_000_000i64;
    let day = 86_400_000i64;
    let people = [
        json!({"name": "Nguyễn Văn Minh", "gender": "male", "language": "vi", "email": "minh@example.vn"}),
        json!({"name": "Trần Thị Lan", "gender": "female", "language": "vi"}),
        json!({"name": "王伟", "gender": "male", "language": "zh"}),
        json!({"name": "李娜", "gender": "female", "language": "zh", "last_order_at": tutti_core::time::format_timestamp(now - 40 * day)}),
        json!({"first_name": "Emma", "language": "en"}),
        json!({"name": "Sam Lee", "language": "en", "last_order_at": tutti_core::time::format_timestamp(now - 31 * day)}),
    ];
    let events = [
        json!({"type": "track", "event": "Cart Abandoned", "properties": {"item": "Áo dài lụa"}}),
        json!({"type": "track", "event": "Order Completed", "properties": {"item": "茶具", "order_id": "o-1"}}),
        json!({"type": "track", "event": "Ticket Created", "properties": {"text": "Đơn hàng bị hỏng, tôi muốn hoàn tiền"}}),
        json!({"type": "track", "event": "Product Viewed", "properties": {"product": "linen shirt"}}),
    ];
    let asks = [
        json!({"prompt": "x", "channel": "email", "variants": 3, "brief": {"offer": "10%", "link": "https://shop.example/c"}}),
        json!({"prompt": "x", "channel": "sms", "variants": 2}),
    ];
    // An offer no brand may send (an unproven superlative, in the person's language): the copy that carries it
    // fails review and is revised (the sentence dropped), so revision is part of what is measured.
    let boast = |p: &serde_json::Value| match p["language"].as_str() {
        Some("vi") => "giá rẻ nhất thị trường",
        Some("zh") => "全网最低价",
        _ => "the lowest price ever",
    };
    let mut inputs = Vec::new();
    for (i, p) in people.iter().enumerate() {
        for (j, e) in events.iter().enumerate() {
            let failing = json!({"prompt": "x", "channel": "email", "variants": 1, "brief": {"offer": boast(p)}});
            for (k, a) in asks.iter().chain([&failing]).enumerate() {
                inputs.push(json!({
                    "request": a, "event": e,
                    "profile": {"id": format!("{i}{j}{k}"), "traits": p, "identities": [{"type": "user_id", "value": format!("u-{i}")}],
                                "event_counts": {"Product Viewed": 3 + i, "Order Completed": j}, "last_seen": tutti_core::time::format_timestamp(now - (i as i64) * 9 * day)},
                    "run": {"id": "r", "flow": "bench", "version": 1, "step": "copy", "steps": {}, "last_event": null},
                }));
            }
        }
    }
    let router = Router::local_only(Local::new().with(Task::Generate, Arc::new(generate::local_skill)));
    let gate = Gate::builtin();
    let stats = Stats::default();
    let run = |n: usize| {
        for input in inputs.iter().cycle().take(n) {
            let mut f = std::pin::pin!(generate::generate(input, &router, &gate, &stats, now));
            match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
                std::task::Poll::Ready(r) => {
                    r.expect("the local provider generates");
                }
                std::task::Poll::Pending => unreachable!("the local provider answers at once"),
            }
        }
    };
    let started = Instant::now();
    run(messages);
    let one = messages as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| run(messages / cores));
        }
    });
    let every = (messages / cores * cores) as f64 / started.elapsed().as_secs_f64();
    let c = stats.snapshot()["bench"];
    println!(
        "generate + review (local provider, {} distinct inputs in vi, zh, en): one thread {one:.0} messages/s; {cores} threads {every:.0} messages/s",
        inputs.len()
    );
    println!(
        "  {} messages: first-pass {:.1}%, final pass {:.1}%, {} revisions",
        c.messages,
        100.0 * c.first_pass as f64 / c.messages as f64,
        100.0 * c.final_pass as f64 / c.messages as f64,
        c.revisions
    );
    Ok(())
}

/// The creative analysis over `creatives` x `days` synthetic performance rows, timed end to end (summing the rows
/// per creative, fitting the channel priors, the posterior draws, the comparisons).
fn insights(args: InsightsArgs) -> anyhow::Result<()> {
    use tutti_insights::synth::{Spec, generate};
    let mut spec = Spec::s6(42);
    let channels = spec.channels.len();
    for (i, c) in spec.channels.iter_mut().enumerate() {
        c.creatives = args.creatives / channels + usize::from(i < args.creatives % channels);
    }
    spec.days = args.days;
    let made = Instant::now();
    let campaign = generate(&spec);
    println!("# Tutti insights benchmark");
    println!(
        "machine: {} cores; {} creatives ({} ours), {} performance rows, generated in {:.2} s",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        campaign.creatives.len(),
        args.creatives,
        campaign.performance.len(),
        made.elapsed().as_secs_f64()
    );
    // Local tagging: the shipped evaluation set's texts (three languages), over and over, on one thread.
    let trained = Instant::now();
    let tagger = tutti_ai::LocalTagger::new_default();
    println!("local tagger trained in {:.0} ms", trained.elapsed().as_secs_f64() * 1000.0);
    let examples = tutti_ai::tagger::read_examples(include_str!("../../crates/tutti-ai/data/creatives/eval.jsonl"))?;
    let count = 50_000;
    let started = Instant::now();
    let mut tags = 0usize;
    for e in examples.iter().cycle().take(count) {
        tags += tutti_ai::tagger::LocalTagger::tag(&tagger, e.text()).len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "local tagging: {count} creatives ({tags} tags) in {elapsed:.2} s on one thread: {:.0} creatives/s",
        count as f64 / elapsed
    );
    let options = tutti_insights::Options::default();
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        report = Some(tutti_insights::analyze(&campaign.creatives, &campaign.performance, &options));
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let report = report.expect("at least one run");
    let comparisons: usize = report.channels.iter().flat_map(|c| &c.traits).map(|t| t.comparisons.len()).sum();
    println!(
        "analysis ({} draws, {} channels, {comparisons} comparisons): median {:.3} s, min {:.3} s, max {:.3} s over {} runs",
        options.draws,
        report.channels.len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    // The same from the embedded store: rows written to creatives.db (not part of the timing), then each
    // creative's sums in SQL and the analysis, as `tutti insights creatives` and the API run it.
    let dir = std::env::temp_dir().join(format!("tutti-insights-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let store = tutti_store::sqlite::SqliteCreativeStore::open(&dir.join("creatives.db"))?;
    let written = Instant::now();
    {
        use tutti_store::CreativeStore;
        store.put_creatives(&campaign.creatives)?;
        for rows in campaign.performance.chunks(10_000) {
            store.put_performance(rows)?;
        }
    }
    println!(
        "stored {} rows in creatives.db in {:.1} s ({:.0} rows/s)",
        campaign.performance.len(),
        written.elapsed().as_secs_f64(),
        campaign.performance.len() as f64 / written.elapsed().as_secs_f64()
    );
    let mut stored_times = Vec::new();
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let r = tutti_insights::service::analyze(&store, &options)?;
        stored_times.push(started.elapsed().as_secs_f64());
        assert_eq!(r.channels.len(), report.channels.len());
    }
    stored_times.sort_by(f64::total_cmp);
    println!(
        "from the store (sums in SQL, then the analysis): median {:.3} s, min {:.3} s, max {:.3} s over {} runs",
        stored_times[stored_times.len() / 2],
        stored_times[0],
        stored_times[stored_times.len() - 1],
        stored_times.len()
    );
    let summed = Instant::now();
    let sums = {
        use tutti_store::CreativeStore;
        (store.creatives()?.len(), store.totals(None, None)?.len())
    };
    println!(
        "  of which reading {} creatives with their tags and summing {} creatives' rows in SQL: {:.3} s",
        sums.0,
        sums.1,
        summed.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

struct Server {
    child: Child,
    addr: String,
    _dir: PathBuf,
}

impl Server {
    /// Kills the process with SIGKILL and starts it again on the same data directory.
    fn kill_and_restart(&mut self, root: &std::path::Path, env: &[(&str, String)]) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let (child, addr) = spawn_server(root, &self._dir, env)?;
        self.child = child;
        self.addr = addr;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_server(root: &std::path::Path) -> anyhow::Result<Server> {
    start_server_with(root, &[])
}

fn start_server_with(root: &std::path::Path, env: &[(&str, String)]) -> anyhow::Result<Server> {
    let dir = std::env::temp_dir().join(format!("tutti-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (child, addr) = spawn_server(root, &dir, env)?;
    Ok(Server { child, addr, _dir: dir })
}

/// Starts `tutti serve` on a data directory and returns it with the address it listens on.
fn spawn_server(
    root: &std::path::Path,
    dir: &std::path::Path,
    env: &[(&str, String)],
) -> anyhow::Result<(Child, String)> {
    let bin = root.join("target/release/tutti");
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("TUTTI_WRITE_KEY", WRITE_KEY)
        .env("TUTTI_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("TUTTI_LOG__LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let addr = loop {
        let line = lines.next().context("server exited")??;
        if let Some(rest) = line.strip_prefix("Tutti listening on http://") {
            break rest.split_whitespace().next().context("address")?.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr))
}

fn load(args: LoadArgs) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new("cargo").args(["build", "--release", "-p", "tutti"]).current_dir(&root).status()?;
    if !status.success() {
        bail!("building tutti failed");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    println!("# Tutti load report");
    println!(
        "machine: {} cores, harness and server on the same machine over loopback\n",
        std::thread::available_parallelism()?
    );
    let run = |s: Scenario| args.scenario == s || args.scenario == Scenario::All;
    let mut track_peak = None;
    if run(Scenario::Deliver) {
        deliver(&root, &runtime, &args)?;
    }
    if run(Scenario::Batch) {
        let server = start_server(&root)?;
        let r = runtime.block_on(drive(&server.addr, Body::Batch, args.connections, args.duration, None, None))?;
        r.print("batch: /v1/batch, 100 events x ~500 B per request", 100);
        report_processing(&server)?;
    }
    if run(Scenario::Track) || run(Scenario::HalfLoad) {
        let server = start_server(&root)?;
        let r = runtime.block_on(drive(&server.addr, Body::Track, args.connections, args.duration, None, None))?;
        r.print("track: single-event /v1/track", 1);
        track_peak = Some(r.requests as f64 / r.elapsed.as_secs_f64());
    }
    if run(Scenario::HalfLoad) {
        let peak = track_peak.context("the half-load scenario needs the track peak")?;
        let server = start_server(&root)?;
        let rate = peak / 2.0;
        let r =
            runtime.block_on(drive(&server.addr, Body::Track, args.connections, args.duration, Some(rate), None))?;
        r.print(&format!("half load: /v1/track paced at {rate:.0} requests/s (half the peak)"), 1);
    }
    if run(Scenario::Profiles) {
        let server = start_server(&root)?;
        runtime.block_on(profiles(&server, args.profiles, args.connections.min(16)))?;
    }
    if run(Scenario::Flows) {
        flows(&root, &runtime, &args)?;
    }
    if run(Scenario::Timers) {
        timers(&root, &runtime, &args)?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Body {
    Batch,
    Track,
}

/// What the flows receiver saw: when each action arrived, by the event's message id.
#[derive(Default)]
struct Arrivals {
    count: AtomicU64,
    /// Requests to a path ending in `chat.postMessage` (answered as Slack does).
    slack: AtomicU64,
    at: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// A minimal HTTP/1.1 webhook receiver on loopback, answering 200 to every POST: `{"ok":true}` to a path
/// ending in `chat.postMessage`, and never to a path starting with `/hang`.
async fn receiver(arrivals: Arc<Arrivals>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::with_capacity(8192);
                loop {
                    let header_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    if path.starts_with("/hang") {
                        std::future::pending::<()>().await;
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    while buf.len() < header_end + length {
                        let mut chunk = [0u8; 8192];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let now = Instant::now();
                    let body = serde_json::from_slice::<serde_json::Value>(&buf[header_end..header_end + length]);
                    if let Ok(body) = body
                        && let Some(mid) = body["mid"].as_str()
                    {
                        arrivals.at.lock().expect("not poisoned").insert(mid.to_owned(), now);
                    }
                    arrivals.count.fetch_add(1, Ordering::Relaxed);
                    buf.drain(..header_end + length);
                    let answer: &[u8] = if path.ends_with("chat.postmessage") {
                        arrivals.slack.fetch_add(1, Ordering::Relaxed);
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                    };
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// What a flows scenario runs against: a receiver on loopback, a flows directory holding the one flow `yaml`
/// writes for the receiver's URL, and the server settings that load it and let it reach the receiver.
fn flow_fixture(
    runtime: &tokio::runtime::Runtime,
    scenario: &str,
    yaml: impl FnOnce(&str) -> String,
) -> anyhow::Result<FlowFixture> {
    let arrivals = Arc::new(Arrivals::default());
    let url = runtime.block_on(receiver(arrivals.clone()))?;
    let dir = std::env::temp_dir().join(format!("tutti-load-{scenario}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("flow.yaml"), yaml(&url))?;
    let env = [
        ("TUTTI_FLOWS__DIR", dir.display().to_string()),
        ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", "[\"127.0.0.1\"]".to_owned()),
    ];
    Ok(FlowFixture { arrivals, dir, env })
}

struct FlowFixture {
    arrivals: Arc<Arrivals>,
    dir: PathBuf,
    env: [(&'static str, String); 2],
}

/// The timers scenario: many runs waiting at once, a SIGKILL, a restart, and every timer firing.
fn timers(root: &std::path::Path, runtime: &tokio::runtime::Runtime, args: &LoadArgs) -> anyhow::Result<()> {
    let FlowFixture { arrivals, dir, env } = flow_fixture(runtime, "timers", |url| {
        format!(
            "flow: reminder\ncategory: transactional\ntrigger: {{ event: Reminder Set }}\nsteps:\n  - id: later\n    wait: {{ until_trait: remind_at }}\n  - id: remind\n    action: webhook.post\n    with: {{ url: '{url}/hook', mid: '{{{{ event.messageId }}}}' }}\n"
        )
    })?;
    let total = args.timers;
    let first_due =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64 + args.wait * 1000;
    let spread_ms = args.spread * 1000;
    let mut server = start_server_with(root, &env)?;
    let started = Instant::now();
    // Each person's reminder time as a trait (milliseconds), then the event that starts the run.
    runtime.block_on(send_numbered(&server.addr, total, args.connections.min(16), move |i| {
        let due = first_due + i * spread_ms / total;
        format!(
            r#"{{"type":"identify","userId":"sleeper-{i}","messageId":"t-{i}","traits":{{"remind_at":{due}}}}},{{"type":"track","event":"Reminder Set","userId":"sleeper-{i}","messageId":"r-{i}"}}"#
        )
    }))?;
    let accepted = started.elapsed().as_secs_f64();
    wait_until_processed(&server.addr)?;
    let set = started.elapsed().as_secs_f64();
    let pending = metric(&server.addr, "tutti_timers_pending")?;
    let pid = server.child.id();
    let (rss, peak) = (rss_kib(pid, "VmRSS:")? / 1024, rss_kib(pid, "VmHWM:")? / 1024);
    println!(
        "## timers: {total} runs waiting for times spread over {} s from {} s on, then SIGKILL and a restart",
        args.spread, args.wait
    );
    println!(
        "accepted in {accepted:.1} s; all runs started and waiting after {set:.1} s; pending timers: {pending:.0}"
    );
    println!("server memory with every timer pending: resident {rss} MiB, peak resident {peak} MiB");
    if set + 30.0 > args.wait as f64 {
        println!("(the first timers may come due before the restart: raise --wait for a clean lateness figure)");
    }
    let restart = Instant::now();
    server.kill_and_restart(root, &env)?;
    println!("SIGKILL and restart: listening again after {:.1} s", restart.elapsed().as_secs_f64());
    let deadline = started + Duration::from_secs(args.wait + args.spread) + Duration::from_secs(600);
    while arrivals.count.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        // Polling a counter the receiver's tasks advance: the pause paces the polling only.
        std::thread::sleep(Duration::from_millis(500));
    }
    let arrived = arrivals.count.load(Ordering::Relaxed);
    let distinct = arrivals.at.lock().expect("not poisoned").len() as u64;
    let fired = metric(&server.addr, "tutti_timers_fired_total")?;
    let shares = histogram_shares(
        &server.addr,
        "tutti_timer_lateness_seconds",
        &["0.001", "0.01", "0.025", "0.05", "0.1", "0.25", "1"],
    )?;
    println!("after the restart: {fired:.0} timers fired; {arrived} actions arrived, {distinct} distinct, of {total}");
    println!("timer lateness (due -> handled, whole ms): {shares}");
    println!("restarted server's peak resident memory: {} MiB\n", rss_kib(server.child.id(), "VmHWM:")? / 1024);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The flows scenario: a two-step flow to a local receiver.
fn flows(root: &std::path::Path, runtime: &tokio::runtime::Runtime, args: &LoadArgs) -> anyhow::Result<()> {
    let FlowFixture { arrivals, dir, env } = flow_fixture(runtime, "flows", |url| {
        format!(
            "flow: two-step\ncategory: transactional\ntrigger: {{ event: Product Viewed }}\nentry: {{ every_time: true, max_concurrent: 1000 }}\nsteps:\n  - id: pricey\n    branch:\n      - {{ when: 'event.properties.price > 1000000', next: tell }}\n      - {{ next: tell }}\n  - id: tell\n    action: webhook.post\n    with: {{ url: '{url}/hook', mid: '{{{{ event.messageId }}}}', product: '{{{{ event.properties.name }}}}' }}\n"
        )
    })?;
    // Throughput: batches at full speed; runs are counted when their action reaches the receiver.
    if args.half != Half::Latency {
        let server = start_server_with(root, &env)?;
        let started = Instant::now();
        let r = runtime.block_on(drive(&server.addr, Body::Batch, args.connections, args.duration, None, None))?;
        let sent = r.requests * 100;
        let in_window = arrivals.count.load(Ordering::Relaxed);
        let deadline = started + Duration::from_secs(args.duration * 6 + 60);
        let mut all_queued = None;
        while arrivals.count.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
            // Polling counters the receiver and the server advance: the pause paces the polling only.
            std::thread::sleep(Duration::from_millis(100));
            if all_queued.is_none() && metric(&server.addr, "tutti_actions_queued_total")? as u64 >= sent {
                all_queued = Some(started.elapsed().as_secs_f64());
            }
        }
        let (delivered, all) = (arrivals.count.load(Ordering::Relaxed), started.elapsed().as_secs_f64());
        let queued = metric(&server.addr, "tutti_actions_queued_total")?;
        r.print("flows: /v1/batch into a two-step flow (trigger, branch, webhook)", 100);
        let processor = match all_queued {
            Some(t) => format!("all {queued:.0} queued by the processor after {t:.1} s ({:.0} runs/s)", queued / t),
            None => format!("{queued:.0} queued by the processor ({:.0}/s)", queued / all),
        };
        println!(
            "runs: {sent} started; {in_window} actions delivered during the {:.1} s of load ({:.0}/s); {processor}; {delivered} delivered after {all:.1} s: {:.0} runs/s end to end\n",
            r.elapsed.as_secs_f64(),
            in_window as f64 / r.elapsed.as_secs_f64(),
            delivered as f64 / all
        );
    }
    // Latency: paced single events; from the 200 to the action arriving at the receiver.
    if args.half != Half::Throughput {
        arrivals.count.store(0, Ordering::Relaxed);
        arrivals.at.lock().expect("not poisoned").clear();
        let server = start_server_with(root, &env)?;
        let acked: Acked = Arc::default();
        let r = runtime.block_on(drive(
            &server.addr,
            Body::Track,
            args.connections,
            args.duration,
            Some(args.rate),
            Some(acked.clone()),
        ))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let total = acked.lock().expect("not poisoned").len() as u64;
        while arrivals.count.load(Ordering::Relaxed) < total && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let at = arrivals.at.lock().expect("not poisoned");
        let mut lat: Vec<f64> = acked
            .lock()
            .expect("not poisoned")
            .iter()
            .filter_map(|(mid, ack)| {
                at.get(mid).map(|arrived| arrived.saturating_duration_since(*ack).as_secs_f64() * 1000.0)
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        r.print(&format!("flows latency: /v1/track paced at {:.0} events/s", args.rate), 1);
        // The server's own view: from the batch that queued an action to its delivery.
        let shares = histogram_shares(
            &server.addr,
            "tutti_dispatch_latency_seconds",
            &["0.001", "0.0025", "0.005", "0.01", "0.025"],
        )?;
        println!("queued -> delivered inside the server (whole ms): {shares}");
        let shares = histogram_shares(
            &server.addr,
            "tutti_commit_latency_seconds",
            &["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05"],
        )?;
        println!("received -> acknowledged inside the server: {shares}");
        println!(
            "acknowledged -> action at the receiver, ms ({} of {total} arrived): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
            lat.len(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(0.999),
            pct(1.0)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Actions written straight into a fresh data directory's outbox, as the processor would have queued them.
fn prefill(
    dir: &std::path::Path,
    actions: impl Iterator<Item = (String, String, serde_json::Value)>,
) -> anyhow::Result<u64> {
    use tutti_store::ProfileStore as _;
    let paths = tutti_store::sqlite::Paths::in_dir(dir);
    let mut store = tutti_store::sqlite::SqliteProfileStore::open(&paths.profiles)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let mut outbox = Vec::new();
    for (i, (connector, operation, payload)) in actions.enumerate() {
        let key = format!("bench-{i}:step:1");
        let body = serde_json::json!({"key": key, "run": format!("bench-{i}"), "flow": "bench", "version": 1, "step": "step",
            "connector": connector, "operation": operation, "channel": connector, "category": "transactional", "payload": payload});
        outbox.push(tutti_store::OutboxItem {
            key,
            profile: tutti_core::ProfileId(i as u64 + 1),
            connector,
            body: serde_json::to_vec(&body)?,
            created_at: now,
        });
    }
    let count = outbox.len() as u64;
    let mut batch = tutti_store::ProfileBatch { next_profile_id: count + 1, ..Default::default() };
    batch.flows.outbox = outbox;
    store.commit(&batch)?;
    Ok(count)
}

/// Starts the server on a data directory prepared by `fill`.
fn start_prefilled(
    root: &std::path::Path,
    env: &[(&str, String)],
    fill: impl FnOnce(&std::path::Path) -> anyhow::Result<u64>,
) -> anyhow::Result<(Server, u64)> {
    let dir = std::env::temp_dir().join(format!("tutti-load-deliver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let count = fill(&dir)?;
    let (child, addr) = spawn_server(root, &dir, env)?;
    Ok((Server { child, addr, _dir: dir }, count))
}

/// Waits (bounded) until `counter` reaches `target`; returns the time from the first to the last step, and the
/// time from `started`.
fn wait_count(counter: &AtomicU64, target: u64, started: Instant, limit: Duration) -> (u64, f64, f64) {
    let mut first = None;
    loop {
        let n = counter.load(Ordering::Relaxed);
        if n > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if n >= target || started.elapsed() > limit {
            let from_first = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
            return (n, from_first, started.elapsed().as_secs_f64());
        }
        // Polling a counter the receiver advances: the pause paces the polling only.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The deliver scenario.
fn deliver(root: &std::path::Path, runtime: &tokio::runtime::Runtime, args: &LoadArgs) -> anyhow::Result<()> {
    let arrivals = Arc::new(Arrivals::default());
    let url = runtime.block_on(receiver(arrivals.clone()))?;
    let local = "[\"127.0.0.1\"]".to_owned();
    let webhooks = |n: u64, path: &'static str| {
        let url = url.clone();
        (0..n).map(move |i| {
            ("webhook".to_owned(), "post".to_owned(), serde_json::json!({"url": format!("{url}{path}"), "n": i}))
        })
    };
    // 1. Throughput from a full outbox.
    for outcomes in [false, true] {
        arrivals.count.store(0, Ordering::Relaxed);
        let env = [
            ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", local.clone()),
            ("TUTTI_CONNECTORS__WEBHOOK__RECORD_OUTCOMES", outcomes.to_string()),
        ];
        let started = Instant::now();
        let (server, total) = start_prefilled(root, &env, |dir| prefill(dir, webhooks(args.actions, "/hook")))?;
        let (n, steady, all) = wait_count(&arrivals.count, total, started, Duration::from_secs(300));
        let recorded =
            wait_metric(&server.addr, "tutti_actions_delivered_total", total as f64, Duration::from_secs(120))?;
        println!(
            "deliver ({} outcome events): {n} of {total} webhook actions from a full outbox in {steady:.2} s from the first arrival: {:.0} deliveries/s ({:.0}/s counting the server's start, {all:.2} s); {recorded:.0} recorded as delivered",
            if outcomes { "with" } else { "without" },
            n as f64 / steady.max(1e-9),
            n as f64 / all
        );
        print_overhead(&server.addr)?;
    }
    // 2. Overhead with actions handed over by the processor at a steady rate.
    {
        let dir = std::env::temp_dir().join(format!("tutti-load-deliver-flows-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("flow.yaml"),
            format!(
                "flow: tell\ncategory: transactional\ntrigger: {{ event: Product Viewed }}\nentry: {{ every_time: true, max_concurrent: 1000 }}\nsteps:\n  - id: tell\n    action: webhook.post\n    with: {{ url: '{url}/hook', mid: '{{{{ event.messageId }}}}' }}\n"
            ),
        )?;
        for outcomes in [false, true] {
            let env = [
                ("TUTTI_FLOWS__DIR", dir.display().to_string()),
                ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", local.clone()),
                ("TUTTI_CONNECTORS__WEBHOOK__RECORD_OUTCOMES", outcomes.to_string()),
            ];
            let server = start_server_with(root, &env)?;
            let r = runtime.block_on(drive(
                &server.addr,
                Body::Track,
                args.connections,
                args.duration,
                Some(args.rate),
                None,
            ))?;
            r.print(
                &format!(
                    "deliver overhead: /v1/track paced at {:.0} events/s into a one-step webhook flow, {} outcome events",
                    args.rate,
                    if outcomes { "with" } else { "without" }
                ),
                1,
            );
            wait_until_processed(&server.addr)?;
            print_overhead(&server.addr)?;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    // 3. One connector hanging: webhook actions to a receiver that never answers (timeout 60 s), Slack-style
    //    actions to one that does, interleaved in the outbox.
    for hanging in [false, true] {
        arrivals.slack.store(0, Ordering::Relaxed);
        let env = [
            ("TUTTI_CONNECTORS__WEBHOOK__ALLOW_PRIVATE", local.clone()),
            ("TUTTI_CONNECTORS__WEBHOOK__TIMEOUT", "60s".to_owned()),
            ("TUTTI_CONNECTORS__SLACK__ALLOW_PRIVATE", local.clone()),
            ("TUTTI_CONNECTORS__SLACK__TOKEN_ENV", "LOAD_SLACK_TOKEN".to_owned()),
            ("TUTTI_CONNECTORS__SLACK__API_BASE", format!("{url}/slack/api")),
            ("LOAD_SLACK_TOKEN", "xoxb-load".to_owned()),
        ];
        let slack_n = args.actions / 2;
        let hang_n = if hanging { 2_000 } else { 0 };
        let started = Instant::now();
        let (server, _) = start_prefilled(root, &env, |dir| {
            let slack = (0..slack_n).map(|i| {
                (
                    "slack".to_owned(),
                    "post_message".to_owned(),
                    serde_json::json!({"channel": "#load", "text": format!("message {i}")}),
                )
            });
            let hang = webhooks(hang_n, "/hang");
            // Interleaved: every fourth action is a hanging webhook (while they last).
            let mut rows = Vec::new();
            let (mut slack, mut hang) = (slack.peekable(), hang.peekable());
            while slack.peek().is_some() || hang.peek().is_some() {
                for _ in 0..3 {
                    if let Some(r) = slack.next() {
                        rows.push(r);
                    }
                }
                if let Some(r) = hang.next() {
                    rows.push(r);
                }
            }
            prefill(dir, rows.into_iter())
        })?;
        let (n, steady, all) = wait_count(&arrivals.slack, slack_n, started, Duration::from_secs(120));
        println!(
            "deliver, {}: {n} of {slack_n} Slack messages in {steady:.2} s from the first ({:.0}/s; {all:.2} s counting the start){}",
            if hanging { "the webhook connector hanging" } else { "nothing hanging" },
            n as f64 / steady.max(1e-9),
            if hanging {
                format!(", while {hang_n} webhook actions wait on a receiver that never answers (timeout 60 s)")
            } else {
                String::new()
            },
        );
        drop(server);
    }
    println!();
    Ok(())
}

/// The server's dispatch overhead histogram, as shares within each bound.
fn print_overhead(addr: &str) -> anyhow::Result<()> {
    let bounds = ["0.0001", "0.0005", "0.001", "0.002", "0.005"];
    let shares = histogram_shares(addr, "tutti_dispatch_overhead_seconds", &bounds)?;
    println!("  dispatcher overhead (taken -> send, not waiting for a vendor): {shares}");
    Ok(())
}

/// Waits (bounded) until a counter metric reaches `target`; returns its value.
fn wait_metric(addr: &str, name: &str, target: f64, limit: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + limit;
    loop {
        let v = metric(addr, name)?;
        if v >= target || Instant::now() > deadline {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pad(n: usize) -> String {
    "lorem ipsum dolor sit amet ".repeat(n / 27 + 1)[..n].to_owned()
}

fn event_json(kind: &str, conn: usize, seq: u64, k: usize) -> String {
    // About 500 bytes: a realistic e-commerce event with Vietnamese text.
    format!(
        r#"{{"type":"{kind}","event":"Product Viewed","userId":"user-{conn}-{k}","messageId":"m-{conn}-{seq}-{k}","timestamp":"2026-11-22T10:00:00.000Z","properties":{{"product_id":"sku-{k}","name":"Áo dài lụa tơ tằm","category":"thời trang","price":1250000,"currency":"VND","url":"https://shop.example.vn/p/sku-{k}","note":"{}"}},"context":{{"locale":"vi-VN","timezone":"Asia/Ho_Chi_Minh","library":{{"name":"load","version":"1"}}}}}}"#,
        pad(120)
    )
}

fn request(addr: &str, path: &str, body: &str) -> Vec<u8> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request on a keep-alive connection and reads the response; returns the status code.
async fn exchange(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    stream.write_all(req).await?;
    buf.clear();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..header_end])?;
    let status: u16 = head.split(' ').nth(1).context("status")?.parse()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .context("content-length")?
        .parse()?;
    while buf.len() < header_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

struct Report {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Report {
    fn print(&self, title: &str, events_per_request: u64) {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let pct = |p: f64| l.get(((l.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |v| *v as f64 / 1000.0);
        let secs = self.elapsed.as_secs_f64();
        println!("## {title}");
        println!("requests: {} ok, {} failed in {secs:.1} s", self.requests, self.errors);
        println!(
            "throughput: {:.0} requests/s, {:.0} events/s durably accepted",
            self.requests as f64 / secs,
            (self.requests * events_per_request) as f64 / secs
        );
        println!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(0.999),
            pct(1.0)
        );
    }
}

/// Message ids of events with the moment their 200 arrived.
type Acked = Arc<std::sync::Mutex<Vec<(String, Instant)>>>;

/// Drives the server with `connections` keep-alive clients for `seconds`, at full speed or paced at `rate`
/// requests/s; with `acked`, records when each single event was acknowledged.
async fn drive(
    addr: &str,
    body: Body,
    connections: usize,
    seconds: u64,
    rate: Option<f64>,
    acked: Option<Acked>,
) -> anyhow::Result<Report> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let (addr, stop, errors, acked) = (addr.to_owned(), stop.clone(), errors.clone(), acked.clone());
        // Paced clients start evenly spread over one interval so their requests do not arrive in bursts.
        let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let Ok(mut stream) = TcpStream::connect(&addr).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return latencies;
            };
            let _ = stream.set_nodelay(true);
            let mut buf = Vec::with_capacity(8192);
            let mut next =
                Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(conn as f64 / connections as f64));
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += i;
                }
                let req = match body {
                    Body::Batch => {
                        let items: Vec<String> = (0..100).map(|k| event_json("track", conn, seq, k)).collect();
                        request(&addr, "/v1/batch", &format!("{{\"batch\":[{}]}}", items.join(",")))
                    }
                    Body::Track => request(&addr, "/v1/track", &event_json("track", conn, seq, 0)),
                };
                let sent = seq;
                seq += 1;
                let t = Instant::now();
                match exchange(&mut stream, &req, &mut buf).await {
                    Ok(200) => {
                        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        if let Some(acked) = &acked {
                            // The message id `event_json` gave the single event of this request.
                            acked.lock().expect("not poisoned").push((format!("m-{conn}-{sent}-0"), Instant::now()));
                        }
                    }
                    Ok(_) | Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return latencies;
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await?);
    }
    Ok(Report {
        requests: latencies_us.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies_us,
    })
}

/// The share of a server histogram's observations at or below each bound (`le` as the server writes it),
/// from one scrape: "<= 1 ms 12.34%, ...".
fn histogram_shares(addr: &str, name: &str, bounds: &[&str]) -> anyhow::Result<String> {
    let text = scrape(addr)?;
    let count = read_metric(&text, &format!("{name}_count"))?.max(1.0);
    let mut shares = Vec::new();
    for le in bounds {
        let n = read_metric(&text, &format!("{name}_bucket{{le=\"{le}\"}}"))?;
        shares.push(format!("<= {} ms {:.2}%", le.parse::<f64>()? * 1000.0, n / count * 100.0));
    }
    Ok(shares.join(", "))
}

fn metric(addr: &str, name: &str) -> anyhow::Result<f64> {
    read_metric(&scrape(addr)?, name)
}

/// The server's `/metrics` text.
fn scrape(addr: &str) -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text)?;
    Ok(text)
}

/// One sample's value from `/metrics` text.
fn read_metric(text: &str, name: &str) -> anyhow::Result<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .with_context(|| format!("metric {name}"))?
        .trim()
        .parse()
        .map_err(Into::into)
}

/// Waits until the processor has folded everything stored into profiles.
fn wait_until_processed(addr: &str) -> anyhow::Result<()> {
    while backlog(addr)? > 0.0 {
        // Polling another process's progress counter: the pause paces the polling, it synchronises nothing.
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Events stored but not yet folded into profiles, from one scrape (a scrape counts the pending timers too).
fn backlog(addr: &str) -> anyhow::Result<f64> {
    let text = scrape(addr)?;
    Ok(read_metric(&text, "tutti_log_head")? - read_metric(&text, "tutti_processed_seq")?)
}

/// Reports the processing backlog left when the load stopped and how long it took to clear.
fn report_processing(server: &Server) -> anyhow::Result<()> {
    let started = Instant::now();
    let backlog = backlog(&server.addr)?;
    wait_until_processed(&server.addr)?;
    println!(
        "processing backlog: {backlog:.0} events still to fold into profiles when the load stopped; caught up in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn rss_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .context("no such field")?
        .parse()
        .map_err(Into::into)
}

/// Sends the events `items(0)` .. `items(total - 1)` to `/v1/batch`, 500 numbers per request, over
/// `connections` keep-alive connections at full speed. `items` may give several events per number.
async fn send_numbered(
    addr: &str,
    total: u64,
    connections: usize,
    items: impl Fn(u64) -> String + Clone + Send + 'static,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, next, items) = (addr.to_owned(), next.clone(), items.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await?;
            let mut buf = Vec::new();
            loop {
                let start = next.fetch_add(500, Ordering::Relaxed);
                if start >= total {
                    return anyhow::Ok(());
                }
                let batch: Vec<String> = (start..(start + 500).min(total)).map(&items).collect();
                let req = request(&addr, "/v1/batch", &format!("{{\"batch\":[{}]}}", batch.join(",")));
                let status = exchange(&mut stream, &req, &mut buf).await?;
                if status != 200 {
                    bail!("status {status}");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn profiles(server: &Server, total: u64, connections: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    send_numbered(&server.addr, total, connections, |i| {
        format!(
            r#"{{"type":"identify","userId":"person-{i}","anonymousId":"cookie-{i}","traits":{{"email":"person{i}@example.vn","name":"Khách hàng {i}","plan":"free"}}}}"#
        )
    })
    .await?;
    let sent = started.elapsed().as_secs_f64();
    // Every client task has finished, so blocking this runtime thread while polling delays nothing.
    wait_until_processed(&server.addr)?;
    let profiles = metric(&server.addr, "tutti_profiles")?;
    let pid = server.child.id();
    println!("## profiles: {total} people identified (user id, anonymous id, email, traits)");
    println!("accepted in {sent:.1} s; all folded into profiles after {:.1} s", started.elapsed().as_secs_f64());
    println!("profiles: {profiles:.0}");
    println!(
        "server memory: resident {} MiB now, peak resident {} MiB\n",
        rss_kib(pid, "VmRSS:")? / 1024,
        rss_kib(pid, "VmHWM:")? / 1024
    );
    Ok(())
}
