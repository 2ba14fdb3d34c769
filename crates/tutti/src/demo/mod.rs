//! `tutti demo`: Tutti in one command, with nothing to configure. On a temporary data directory it starts the
//! engine with the stories' flows (`examples/`, built in) and local stand-ins for every vendor (Slack, Trello,
//! Asana, HubSpot, ad audiences, and the webhooks that stand for email), serves the console with a demo
//! account, and plays a day of customers through the stories on a fast clock: the stories' own people, and
//! synthetic shoppers around them. When the day is played it says what each story did; the console shows every
//! decision and why, and the clock goes on at the wall's pace (a message held for approval waits for you).

mod clock;
mod day;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use tutti_core::time::parse_timestamp;
use tutti_core::{BatchDefaults, Event};
use tutti_engine::config::Config;
use tutti_engine::people::Role;
use tutti_engine::{DeliveryFilter, Engine, NewEvent};

use clock::DemoClock;
use day::{EXAMPLE_RECEIVER, STORIES};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Address the console listens on.
    #[arg(long, default_value = "127.0.0.1:8910")]
    listen: SocketAddr,
    /// How many times faster than the wall the day runs (1440: a day in a minute).
    #[arg(long, default_value_t = 1440.0)]
    speed: f64,
    /// Synthetic shoppers besides the stories' people.
    #[arg(long, default_value_t = 200)]
    shoppers: usize,
    /// Keep the data here instead of a temporary directory removed at the end.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The day the stories happen on (their events' date).
const DAY: &str = "2026-11-22T00:00:00Z";
const ACCOUNT: &str = "demo@tutti.local";

pub(crate) fn demo(args: DemoArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_target(false).init();
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile_dir()?),
    };
    let data_dir = args.data_dir.clone().or_else(|| temp.clone()).context("a data directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(run(args, data_dir.clone()));
    if let Some(temp) = temp {
        let _ = std::fs::remove_dir_all(temp);
    }
    outcome
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tutti-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn run(args: DemoArgs, data_dir: PathBuf) -> anyhow::Result<()> {
    let vendors = tutti_connectors::testing::Vendors::start().await;
    let flows_dir = data_dir.join("flows");
    std::fs::create_dir_all(&flows_dir)?;
    let receiver = format!("http://{}/hook", vendors.addr);
    for story in &STORIES {
        for (file, source) in story.files {
            std::fs::write(flows_dir.join(file), source.replace(EXAMPLE_RECEIVER, &receiver))?;
        }
    }
    let mut config = Config::default();
    config.storage.data_dir = data_dir.clone();
    config.flows.dir = Some(flows_dir);
    config.server.listen = args.listen;
    for (name, table) in vendors.connectors() {
        config.connectors.insert(name, toml::Value::try_from(table)?);
    }
    let start = parse_timestamp(DAY).context("the demo's day")?;
    let mut calls = day::story_calls();
    calls.extend(day::shoppers(start, args.shoppers));
    calls.sort_by_key(|c| c.at);
    let day_end = calls.iter().map(|c| c.at).max().unwrap_or(start).max(start + 86_400_000);
    let clock = Arc::new(DemoClock::new(start, args.speed, day_end));
    // Held from the start: the engine's start takes real time, and the first call must not be overtaken.
    clock.hold_at(calls.first().map_or(tutti_core::Millis::MAX, |c| c.at));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let engine_clock: Arc<dyn tutti_engine::Clock> = clock.clone();
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || {
            Engine::start_with_env(config, engine_clock, &tutti_connectors::testing::env)
        })
        .await??,
    );
    let password = tutti_engine::people::generated_password();
    {
        let (engine, password) = (engine.clone(), password.clone());
        tokio::task::spawn_blocking(move || engine.people().add(ACCOUNT, "Demo", Role::Admin, &password)).await??;
    }
    let addr = listener.local_addr()?;
    println!("Tutti demo: a day of customers through the stories, {}x faster than the wall.", args.speed);
    println!("Console: http://{addr}  sign in as {ACCOUNT} with the password {password}");
    println!("Admin token: {}", engine.secrets.admin_token);
    println!(
        "Vendors stand in at http://{} (Slack, Trello, Asana, HubSpot, ad audiences, email by webhook)",
        vendors.addr
    );
    println!("Data in {}", data_dir.display());
    let server = tokio::spawn(tutti_server::serve(engine.clone(), listener, crate::cli::serve::shutdown_signal()));

    let played = play(&engine, &clock, calls).await?;
    settle(&engine).await;
    println!("The day is played: {played} calls. What each story did:");
    for line in summary(&engine).await? {
        println!("  {line}");
    }
    println!("Open the console to see every decision and why; stop with Ctrl-C.");
    server.await??;
    let engine_for = engine.clone();
    tokio::task::spawn_blocking(move || engine_for.shutdown()).await?;
    Ok(())
}

/// Ingests each call when the demo clock reaches its time. Returns how many were accepted.
async fn play(engine: &Arc<Engine>, clock: &DemoClock, calls: Vec<day::Call>) -> anyhow::Result<usize> {
    let mut played = 0;
    let mut hour = -1;
    let times: Vec<tutti_core::Millis> = calls.iter().map(|c| c.at).collect();
    for (i, call) in calls.into_iter().enumerate() {
        // The clock may not pass this call until it is in (see clock.rs).
        clock.hold_at(call.at);
        // The demo paces the day on the wall clock: waiting here is the point, not a synchronisation.
        tokio::time::sleep(clock.real_until(call.at)).await;
        let this_hour = (call.at - parse_timestamp(DAY).unwrap_or(0)) / 3_600_000;
        if this_hour != hour && this_hour < 24 {
            hour = this_hour;
            println!("  {:02}:00 UTC", hour);
        }
        let mid = format!("demo-{}-{i}", call.story);
        let received = tutti_engine::Clock::now_ms(clock);
        match Event::from_json(call.body, None, &BatchDefaults::default(), received, || mid) {
            Ok(event) => {
                engine.ingest(vec![NewEvent::of(event, false)]).await.context("ingesting the day")?;
                played += 1;
            }
            Err(e) => {
                tracing::warn!(story = call.story, field = %e.field, reason = %e.reason, "a demo call was refused")
            }
        }
        clock.hold_at(times.get(i + 1).copied().unwrap_or(tutti_core::Millis::MAX));
    }
    clock.hold_at(tutti_core::Millis::MAX);
    Ok(played)
}

/// Waits (bounded) until the processor has caught up and nothing is left to deliver but what waits on a timer.
async fn settle(engine: &Arc<Engine>) {
    let engine = engine.clone();
    let _ = tokio::task::spawn_blocking(move || {
        engine.sync(Duration::from_secs(30));
        for _ in 0..300 {
            if engine.outbox("pending", 1).map(|p| p.is_empty()).unwrap_or(true) {
                break;
            }
            // Polling another thread's progress for a printed summary; nothing depends on the exact moment.
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
}

/// Per story and flow: actions delivered, stopped by a policy, given up, and messages waiting for a person.
async fn summary(engine: &Arc<Engine>) -> anyhow::Result<Vec<String>> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for story in &STORIES {
            let mut parts = Vec::new();
            for (_, source) in story.files {
                let Some(flow) = source.lines().find_map(|l| l.strip_prefix("flow: ")).map(str::trim) else { continue };
                let filter = DeliveryFilter { flow: Some(flow.to_owned()), ..DeliveryFilter::default() };
                let rows = engine.deliveries(&filter, 0, 10_000)?;
                let count = |state: &str| rows.iter().filter(|d| d.state == state).count();
                let waiting = engine
                    .approvals(Some(flow), 1000)?
                    .iter()
                    .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
                    .count();
                let mut said = format!("{flow}: {} delivered", count("done"));
                for (n, what) in [
                    (count("skipped"), "stopped by a policy"),
                    (count("dead"), "given up"),
                    (waiting, "waiting for approval"),
                ] {
                    if n > 0 {
                        said.push_str(&format!(", {n} {what}"));
                    }
                }
                parts.push(said);
            }
            lines.push(format!("{}: {}", story.title, parts.join("; ")));
        }
        Ok::<_, anyhow::Error>(lines)
    })
    .await?
}
