//! The `deliver` scenario: actions already in the outbox, delivered through the dispatcher.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::load::LoadArgs;
use crate::load::client::{Body, drive};
use crate::load::flows::{Arrivals, receiver};
use crate::load::server::{Server, print_overhead, spawn_server, start_server_with, wait_metric, wait_until_processed};

/// Actions written straight into a fresh data directory's outbox, as the processor would have queued them.
pub(crate) fn prefill(
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
pub(crate) fn start_prefilled(
    root: &std::path::Path,
    env: &[(&str, String)],
    fill: impl FnOnce(&std::path::Path) -> anyhow::Result<u64>,
) -> anyhow::Result<(Server, u64)> {
    let dir = std::env::temp_dir().join(format!("tutti-load-deliver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let count = fill(&dir)?;
    let (child, addr) = spawn_server(root, &dir, env)?;
    Ok((Server::on(child, addr, dir), count))
}

/// Waits (bounded) until `counter` reaches `target`; returns the time from the first to the last step, and the
/// time from `started`.
pub(crate) fn wait_count(counter: &AtomicU64, target: u64, started: Instant, limit: Duration) -> (u64, f64, f64) {
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
pub(crate) fn deliver(
    root: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
    args: &LoadArgs,
) -> anyhow::Result<()> {
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
