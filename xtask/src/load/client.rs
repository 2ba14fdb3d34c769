//! The raw HTTP/1.1 client, deliberately minimal so that as much of the shared CPU as possible goes to the server
//! under test: request bodies, keep-alive exchanges, paced or flat-out drives and their report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::load::WRITE_KEY;

#[derive(Clone, Copy)]
pub(crate) enum Body {
    Batch,
    Track,
}

pub(crate) fn pad(n: usize) -> String {
    "lorem ipsum dolor sit amet ".repeat(n / 27 + 1)[..n].to_owned()
}

pub(crate) fn event_json(kind: &str, conn: usize, seq: u64, k: usize) -> String {
    // About 500 bytes: a realistic e-commerce event with Vietnamese text.
    format!(
        r#"{{"type":"{kind}","event":"Product Viewed","userId":"user-{conn}-{k}","messageId":"m-{conn}-{seq}-{k}","timestamp":"2026-11-22T10:00:00.000Z","properties":{{"product_id":"sku-{k}","name":"Áo dài lụa tơ tằm","category":"thời trang","price":1250000,"currency":"VND","url":"https://shop.example.vn/p/sku-{k}","note":"{}"}},"context":{{"locale":"vi-VN","timezone":"Asia/Ho_Chi_Minh","library":{{"name":"load","version":"1"}}}}}}"#,
        pad(120)
    )
}

pub(crate) fn request(addr: &str, path: &str, body: &str) -> Vec<u8> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request on a keep-alive connection and reads the response; returns the status code.
pub(crate) async fn exchange(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> anyhow::Result<u16> {
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

pub(crate) struct Report {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies_us: Vec<u32>,
}

impl Report {
    pub(crate) fn print(&self, title: &str, events_per_request: u64) {
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
pub(crate) type Acked = Arc<std::sync::Mutex<Vec<(String, Instant)>>>;

/// Drives the server with `connections` keep-alive clients for `seconds`, at full speed or paced at `rate`
/// requests/s; with `acked`, records when each single event was acknowledged.
pub(crate) async fn drive(
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

/// Sends the events `items(0)` .. `items(total - 1)` to `/v1/batch`, 500 numbers per request, over
/// `connections` keep-alive connections at full speed. `items` may give several events per number.
pub(crate) async fn send_numbered(
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
