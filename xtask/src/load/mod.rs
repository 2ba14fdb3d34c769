//! `cargo xtask load`: the load harness. It builds and starts a release `tutti serve` on a fresh data directory,
//! drives it with concurrent keep-alive HTTP/1.1 clients over loopback and prints throughput and latency
//! percentiles; one file per kind of scenario.

pub(crate) mod client;
mod console;
mod deliver;
pub(crate) mod flows;
mod profiles;
pub(crate) mod server;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::ValueEnum;

use crate::load::client::{Body, drive};
use crate::load::server::{build_profile, report_processing, start_server};
use console::console;
use deliver::deliver;
use flows::{flows, timers};
use profiles::profiles;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
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
    /// The console's pages on `--profiles` people and `--events` events (a million and five million): the
    /// profile search, a profile's page, a flow's page and the overview, timed one after another. Not part of
    /// `all`: loading the data takes several minutes.
    Console,
    /// All of the above but `console`, in order.
    All,
}

#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    #[arg(long, value_enum, default_value = "all")]
    pub(crate) scenario: Scenario,
    /// Seconds per throughput scenario.
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// Profiles to create in the `profiles` and `console` scenarios.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) profiles: u64,
    /// Events to send in the `console` scenario (identifies included).
    #[arg(long, default_value_t = 5_000_000)]
    pub(crate) events: u64,
    /// Events per second in the flows latency run.
    #[arg(long, default_value_t = 5_000.0)]
    pub(crate) rate: f64,
    /// Pending timers in the `timers` scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) timers: u64,
    /// Seconds until the first timer of the `timers` scenario: long enough for all of them to be set and the
    /// server restarted before the first fires.
    #[arg(long, default_value_t = 240)]
    pub(crate) wait: u64,
    /// Seconds over which the timers of the `timers` scenario come due.
    #[arg(long, default_value_t = 300)]
    pub(crate) spread: u64,
    /// Actions in the outbox for the `deliver` scenario.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) actions: u64,
    /// Which half of the `flows` scenario to run: `throughput`, `latency` or both (the default).
    #[arg(long, value_enum, default_value = "both")]
    pub(crate) half: Half,
    /// The event log on NATS JetStream: each scenario's server gets a NATS server of its own, with
    /// `sync_interval: always` (`.venv/bin/nats-server`, which `scripts/test.sh` installs, or
    /// `TUTTI_NATS_SERVER`).
    #[arg(long)]
    pub(crate) nats: bool,
    /// Profiles, flows and the outbox in Postgres: each scenario's server gets a schema of its own in this
    /// database (a connection string such as `host=127.0.0.1 user=root dbname=test`), dropped afterwards.
    #[arg(long)]
    pub(crate) postgres: Option<String>,
    /// Workers sharing the processing (with `--nats` and `--postgres`): the server the load goes to and this
    /// many less one more processes in the role `worker`, each with its own data directory.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Half {
    Throughput,
    Latency,
    Both,
}

pub(crate) const WRITE_KEY: &str = "load-write-key";

pub(crate) const ADMIN_TOKEN: &str = "load-admin-token";

pub(crate) fn load(args: LoadArgs) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = build_profile();
    let status =
        Command::new("cargo").args(["build", "--profile", &profile, "-p", "tutti"]).current_dir(&root).status()?;
    if !status.success() {
        bail!("building tutti failed");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    server::ON_NATS.store(args.nats, std::sync::atomic::Ordering::Relaxed);
    if args.workers > 1 && !(args.nats && args.postgres.is_some()) {
        bail!("--workers above 1 needs --nats and --postgres: workers share the log and the state");
    }
    server::WORKERS.store(args.workers.max(1), std::sync::atomic::Ordering::Relaxed);
    if args.workers > 1 {
        println!(
            "workers: {} (the server the load goes to, and {} in the role `worker`)",
            args.workers,
            args.workers - 1
        );
    }
    if let Some(url) = &args.postgres {
        let _ = server::POSTGRES.set(url.clone());
        println!("profiles, flows and the outbox: Postgres ({})", tutti_store::postgres::describe(url));
    }
    println!("# Tutti load report");
    if args.nats {
        println!("event log: NATS JetStream ({}), sync_interval: always", tutti_log::nats::testing::binary().display());
    }
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
    if args.scenario == Scenario::Console {
        console(&root, &runtime, &args)?;
    }
    Ok(())
}
