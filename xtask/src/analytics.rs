//! `cargo xtask analytics`: the analytics store's targets, measured.
//!
//! 1. Queries at scale: `--events` events (10,000,000) from `--profiles` people (1,000,000) over the twelve months
//!    before 6 December 2026 are written straight into a fresh `analytics.db` through the store's own writer, in
//!    time order as a log has them (sessions of page and product views, carts, checkouts and orders of one to
//!    three items), then each
//!    question's query is compiled and run as the server runs it, five times: "top 10 products by revenue last
//!    month", "daily active people over 90 days", and a few more of the shapes questions take.
//! 2. The projection in the server: a release `tutti serve` takes `--intake-events` events (1,000,000) over HTTP
//!    at full speed while the analytics lag is sampled; then the tables are rebuilt from the log with the
//!    processor idle, and the projection's own rate is reported.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tutti_analytics::answer::{Facts, Runner};
use tutti_analytics::project::{Item, Projected};
use tutti_analytics::sqlite::{Cursor, Limits, SqliteAnalytics, SqliteAnalyticsReader};
use tutti_analytics::{MetricsLayer, Query};

#[derive(clap::Args)]
pub(crate) struct AnalyticsArgs {
    /// Events written for the query timings.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// People those events come from.
    #[arg(long, default_value_t = 1_000_000)]
    profiles: u64,
    /// Events sent to the server for the projection's rate (0 skips that part).
    #[arg(long, default_value_t = 1_000_000)]
    intake_events: u64,
    /// Keep the generated analytics.db here (for comparisons with other engines) instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

const NOW: &str = "2026-12-06T10:00:00+07:00";
const ZONE: &str = "Asia/Ho_Chi_Minh";
const DAY_MS: i64 = 86_400_000;

/// splitmix64: a fixed sequence, so every run writes the same data (the question suite's shop too).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CITIES: [&str; 12] = [
    "Hà Nội",
    "Hồ Chí Minh",
    "Đà Nẵng",
    "Hải Phòng",
    "Cần Thơ",
    "Huế",
    "Nha Trang",
    "上海",
    "北京",
    "深圳",
    "Singapore",
    "Bangkok",
];

fn product(i: u64) -> (String, String, f64) {
    let category = format!("Danh mục {}", i % 20);
    let price = 50_000.0 + (i * 7_919 % 200) as f64 * 10_000.0;
    (format!("Sản phẩm {i}"), category, price)
}

/// Writes the synthetic year; returns (events written, seconds).
fn generate(store: &mut SqliteAnalytics, events: u64, people: u64) -> anyhow::Result<(u64, f64)> {
    let now = tutti_core::time::parse_timestamp(NOW).context("now")?;
    let start = now - 365 * DAY_MS;
    let mut rng = Rng(20_261_206);
    let mut seq = 0u64;
    let mut batch: Vec<Projected> = Vec::with_capacity(5_000);
    let mut identified = vec![false; people as usize];
    let began = Instant::now();
    let event = |seq: u64, at: i64, profile: u64, name: &str| Projected {
        seq,
        at,
        profile,
        name: name.to_owned(),
        revenue: None,
        currency: None,
        props: None,
        items: Vec::new(),
        traits: serde_json::Map::new(),
    };
    while seq < events {
        // One session: a person, two to eight events minutes apart. Sessions follow one another through the year
        // (about five events each), as a log receives them: in time order, give or take an hour.
        let profile = 1 + rng.below(people);
        let mut at =
            start + (seq as i128 * 365 * DAY_MS as i128 / events.max(1) as i128) as i64 + rng.below(3_600_000) as i64;
        let length = 2 + rng.below(7);
        if !identified[(profile - 1) as usize] {
            identified[(profile - 1) as usize] = true;
            seq += 1;
            let mut e = event(seq, at, profile, "identify");
            e.traits.insert("city".into(), CITIES[(profile % CITIES.len() as u64) as usize].into());
            batch.push(e);
        }
        for step in 0..length {
            seq += 1;
            at += 20_000 + rng.below(120_000) as i64;
            let name = match step {
                1 | 2 => "Product Viewed",
                3 => "Product Added",
                4 => "Checkout Started",
                5 => "Order Completed",
                _ => "Page Viewed",
            };
            let mut e = event(seq, at, profile, name);
            if name == "Order Completed" {
                let lines = 1 + rng.below(3);
                let mut revenue = 0.0;
                for _ in 0..lines {
                    // A few products sell far more than the rest.
                    let p = if rng.below(4) == 0 { rng.below(20) } else { rng.below(500) };
                    let (name, category, price) = product(p);
                    let quantity = 1.0 + rng.below(3) as f64;
                    revenue += price * quantity;
                    e.items.push(Item {
                        product_id: Some(format!("sku-{p}")),
                        name: Some(name),
                        category: Some(category),
                        price: Some(price),
                        quantity,
                        ..Item::default()
                    });
                }
                e.revenue = Some(revenue);
                e.currency = Some("VND".into());
            }
            batch.push(e);
            if seq >= events {
                break;
            }
        }
        if batch.len() >= 5_000 {
            store.apply(&batch, &[], Cursor { log: seq, merges: 0 })?;
            batch.clear();
        }
    }
    store.apply(&batch, &[], Cursor { log: seq, merges: 0 })?;
    Ok((seq, began.elapsed().as_secs_f64()))
}

struct NoFacts;

impl Facts for NoFacts {
    fn segment_size(&self, _: &str) -> Option<u64> {
        None
    }
    fn flow_totals(&self, _: &str) -> Option<Vec<(String, u64)>> {
        None
    }
}

/// The questions timed: (what is asked, the query it is read into).
fn questions() -> anyhow::Result<Vec<(&'static str, Query)>> {
    let period = |from: &str, to: &str| serde_json::json!({"from": from, "to": to});
    let last_month = period("2026-11-01T00:00:00+07:00", "2026-12-01T00:00:00+07:00");
    let ninety = period("2026-09-08T00:00:00+07:00", NOW);
    let year = period("2025-12-07T00:00:00+07:00", NOW);
    let q = |v: serde_json::Value| serde_json::from_value::<Query>(v).context("a query");
    Ok(vec![
        (
            "top 10 products by revenue last month",
            q(
                serde_json::json!({"kind": "metric", "measure": "revenue", "by": "product", "period": last_month, "limit": 10}),
            )?,
        ),
        (
            "daily active people over 90 days",
            q(serde_json::json!({"kind": "metric", "measure": "active_profiles", "grain": "day", "period": ninety}))?,
        ),
        (
            "revenue by city last month (a trait)",
            q(serde_json::json!({"kind": "metric", "measure": "revenue", "by": "city", "period": last_month}))?,
        ),
        (
            "orders per week over 12 months",
            q(serde_json::json!({"kind": "metric", "measure": "orders", "grain": "week", "period": year}))?,
        ),
        (
            "revenue this month against last month",
            q(
                serde_json::json!({"kind": "metric", "measure": "revenue", "period": period("2026-12-01T00:00:00+07:00", NOW), "compare": last_month}),
            )?,
        ),
        (
            "people who added to cart and did not order last month",
            q(
                serde_json::json!({"kind": "people", "did": ["Product Added"], "did_not": ["Order Completed"], "period": last_month}),
            )?,
        ),
    ])
}

fn at(sorted: &[f64], share: f64) -> f64 {
    sorted[((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1]
}

pub(crate) fn analytics(args: AnalyticsArgs) -> anyhow::Result<()> {
    println!("# Tutti analytics report");
    println!("machine: {} cores\n", std::thread::available_parallelism()?);
    let temp = std::env::temp_dir().join(format!("tutti-analytics-bench-{}", std::process::id()));
    let dir = args.keep.clone().unwrap_or(temp.clone());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("analytics.db");
    let _ = std::fs::remove_file(&path);
    let layer = MetricsLayer::defaults();
    let mut store = SqliteAnalytics::open(&path)?;
    store.reset(&layer.projection_fingerprint())?;
    let (written, seconds) = generate(&mut store, args.events, args.profiles)?;
    let items = store.count("items")?;
    let active = store.count("active")?;
    drop(store);
    let size = std::fs::metadata(&path)?.len() / (1024 * 1024);
    println!("## queries: {written} events from {} people over 12 months", args.profiles);
    println!(
        "written through the store's writer in {seconds:.0} s ({:.0} events/s); {items} order items, {active} (slot, person) rows; analytics.db {size} MiB\n",
        written as f64 / seconds
    );
    let reader = SqliteAnalyticsReader::new(&path);
    let zone = jiff::tz::TimeZone::get(ZONE)?;
    let runner = Runner {
        layer: &layer,
        zone: &zone,
        reader: &reader,
        facts: &NoFacts,
        limits: Limits { rows: 1000, time: Duration::from_secs(60) },
    };
    println!("each query compiled and run five times on a fresh read-only connection, as a question is (ms):\n");
    println!("| question | rows | first | median | max |");
    println!("|---|---|---|---|---|");
    let mut shown = Vec::new();
    for (name, query) in questions()? {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..5 {
            let began = Instant::now();
            let answer =
                runner.answer(query.clone(), "en", Vec::new(), "local").map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            times.push(began.elapsed().as_secs_f64() * 1000.0);
            rows = answer.rows.len();
            if shown.len() < questions()?.len() && !shown.iter().any(|(n, _): &(&str, String)| *n == name) {
                shown.push((name, answer.sql.clone().unwrap_or_default()));
            }
        }
        let first = times[0];
        times.sort_by(f64::total_cmp);
        println!("| {name} | {rows} | {first:.0} | {:.0} | {:.0} |", at(&times, 0.5), at(&times, 1.0));
    }
    println!();
    if args.keep.is_some() {
        // The SQL each question ran, values written in, for running the same queries in another engine.
        let listed: Vec<serde_json::Value> =
            shown.iter().map(|(name, sql)| serde_json::json!({"name": name, "sql": sql})).collect();
        std::fs::write(dir.join("queries.json"), serde_json::to_string_pretty(&listed)?)?;
    }
    if args.intake_events > 0 {
        projection(args.intake_events)?;
    }
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(())
}

/// The projection inside a running server: the lag while events arrive at full speed, then a rebuild's rate.
fn projection(events: u64) -> anyhow::Result<()> {
    use crate::load::server::{metric, start_server, wait_until_processed};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = crate::load::server::build_profile();
    let status = std::process::Command::new("cargo")
        .args(["build", "--profile", &profile, "-p", "tutti"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("building tutti failed");
    }
    let server = start_server(&root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let people = (events / 10).max(1);
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (addr, sampling) = (server.addr.clone(), sampling.clone());
        std::thread::spawn(move || {
            let mut worst = 0.0f64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(lag) = metric(&addr, "tutti_analytics_lag_events") {
                    worst = worst.max(lag);
                }
                // Sampling another process's gauge: the pause paces the sampling.
                std::thread::sleep(Duration::from_millis(100));
            }
            worst
        })
    };
    let began = Instant::now();
    runtime.block_on(crate::load::client::send_numbered(&server.addr, events, 16, move |n| {
        let i = n % people;
        if n % 12 == 11 {
            format!(
                r#"{{"type":"track","userId":"p-{i}","event":"Order Completed","properties":{{"revenue":450000,"currency":"VND","products":[{{"product_id":"sku-{}","name":"Áo dài {}","category":"Thời trang","price":450000,"quantity":1}}]}}}}"#,
                n % 97,
                n % 97
            )
        } else {
            format!(r#"{{"type":"track","userId":"p-{i}","event":"Product Viewed","properties":{{"product_id":"sku-{}"}}}}"#, n % 97)
        }
    }))?;
    let sent = began.elapsed().as_secs_f64();
    wait_until_processed(&server.addr)?;
    let folded = began.elapsed().as_secs_f64();
    let processed = metric(&server.addr, "tutti_processed_seq")?;
    while metric(&server.addr, "tutti_analytics_seq")? < processed {
        std::thread::sleep(Duration::from_millis(50));
    }
    let projected = began.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let worst = sampler.join().map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
    println!("## projection in a running server: {events} events from {people} people over /v1/batch");
    println!(
        "accepted in {sent:.1} s ({:.0} events/s); folded into profiles after {folded:.1} s; projected after {projected:.1} s; the most the projection was behind the processor: {worst:.0} events",
        events as f64 / sent
    );
    let began = Instant::now();
    let mut stream = std::net::TcpStream::connect(&server.addr)?;
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST /api/v1/analytics/rebuild HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            server.addr,
            crate::load::ADMIN_TOKEN
        )
        .as_bytes(),
    )?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer)?;
    if !answer.starts_with("HTTP/1.1 202") {
        bail!("rebuild: {answer}");
    }
    let emptied = began.elapsed().as_secs_f64();
    while metric(&server.addr, "tutti_analytics_seq")? < processed {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rebuilt = began.elapsed().as_secs_f64();
    println!(
        "rebuilt from the log with the processor idle: emptied in {emptied:.1} s, made again in {:.1} s: {:.0} events/s (the log read, each event's person looked up, projected, written)\n",
        rebuilt - emptied,
        processed / (rebuilt - emptied)
    );
    Ok(())
}
