//! The `flows` and `timers` scenarios: a flow's actions caught by a local receiver.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::load::client::{Acked, Body, drive, send_numbered};
use crate::load::server::{histogram_shares, metric, rss_kib, start_server_with, wait_until_processed};
use crate::load::{Half, LoadArgs};

/// What the flows receiver saw: when each action arrived, by the event's message id.
#[derive(Default)]
pub(crate) struct Arrivals {
    pub(crate) count: AtomicU64,
    /// Requests to a path ending in `chat.postMessage` (answered as Slack does).
    pub(crate) slack: AtomicU64,
    pub(crate) at: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// A minimal HTTP/1.1 webhook receiver on loopback, answering 200 to every POST: `{"ok":true}` to a path
/// ending in `chat.postMessage`, and never to a path starting with `/hang`.
pub(crate) async fn receiver(arrivals: Arc<Arrivals>) -> anyhow::Result<String> {
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
pub(crate) fn flow_fixture(
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

pub(crate) struct FlowFixture {
    pub(crate) arrivals: Arc<Arrivals>,
    pub(crate) dir: PathBuf,
    pub(crate) env: [(&'static str, String); 2],
}

/// The timers scenario: many runs waiting at once, a SIGKILL, a restart, and every timer firing.
pub(crate) fn timers(root: &std::path::Path, runtime: &tokio::runtime::Runtime, args: &LoadArgs) -> anyhow::Result<()> {
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
pub(crate) fn flows(root: &std::path::Path, runtime: &tokio::runtime::Runtime, args: &LoadArgs) -> anyhow::Result<()> {
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
