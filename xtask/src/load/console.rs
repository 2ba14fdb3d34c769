//! The `console` scenario: the console's pages on a big installation. `--profiles` people (1,000,000 by default)
//! send `--events` events in all (5,000,000): each is identified once, then views products, and one in eight
//! orders, which starts a run of a one-step flow. Once everything is folded into profiles, a person signed in
//! opens pages one after another, as a marketer would, and each page's time to the last byte is reported:
//! the profile search (by email, answered with a redirect to the profile), the profile's page, the flow's page
//! and the overview.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::load::ADMIN_TOKEN;
use crate::load::LoadArgs;
use crate::load::client::send_numbered;
use crate::load::server::{Server, metric, rss_kib, start_server_with, wait_until_processed};

/// Requests timed per page.
const SAMPLES: usize = 400;

const FLOW: &str = "flow: thanks\ncategory: transactional\ntrigger: { event: Order Completed }\nentry: { every_time: true }\nsteps:\n  - id: note\n    action: log.write\n    with: { text: 'Cảm ơn {{ profile.traits.name }}' }\n";

/// One request on its own connection: the status, the `Location` header, and the time to the last byte.
fn get(addr: &str, path: &str, cookie: &str) -> anyhow::Result<(u16, Option<String>, Duration)> {
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text.split(' ').nth(1).context("status")?.parse()?;
    let location = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .map(str::to_owned);
    Ok((status, location, elapsed))
}

/// A JSON POST with the admin token; the status and the `Set-Cookie` header.
fn post(addr: &str, path: &str, body: &str) -> anyhow::Result<(u16, Option<String>)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status: u16 = answer.split(' ').nth(1).context("status")?.parse()?;
    let cookie = answer
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    Ok((status, cookie))
}

/// Milliseconds at a percentile of sorted durations.
fn at(sorted: &[Duration], percentile: f64) -> f64 {
    let i = ((sorted.len() as f64 * percentile).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn line(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        times.len(),
        at(&times, 0.50),
        at(&times, 0.95),
        at(&times, 0.99),
        at(&times, 1.0)
    );
}

/// A person from a spread of the population (a fixed sequence, so runs compare).
fn person(k: usize, people: u64) -> u64 {
    (k as u64).wrapping_mul(2_654_435_761) % people
}

pub(crate) fn console(
    root: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
    args: &LoadArgs,
) -> anyhow::Result<()> {
    let people = args.profiles;
    let events = args.events.max(people);
    let dir = std::env::temp_dir().join(format!("tutti-load-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("thanks.yaml"), FLOW)?;
    let server: Server = start_server_with(root, &[("TUTTI_FLOWS__DIR", dir.display().to_string())])?;

    let started = Instant::now();
    runtime.block_on(send_numbered(&server.addr, events, args.connections, move |n| {
        let i = n % people;
        if n < people {
            format!(
                r#"{{"type":"identify","userId":"person-{i}","traits":{{"email":"person{i}@example.vn","name":"Khách hàng {i}","plan":"free","city":"Hà Nội"}}}}"#
            )
        } else if n / people == 1 && i.is_multiple_of(8) {
            format!(
                r#"{{"type":"track","userId":"person-{i}","event":"Order Completed","properties":{{"order_id":"o-{n}","total":450000,"currency":"VND"}}}}"#
            )
        } else {
            format!(
                r#"{{"type":"track","userId":"person-{i}","event":"Product Viewed","properties":{{"product_id":"sku-{}","name":"Áo dài lụa","price":1250000}}}}"#,
                n % 997
            )
        }
    }))?;
    let sent = started.elapsed().as_secs_f64();
    wait_until_processed(&server.addr)?;
    let folded = started.elapsed().as_secs_f64();
    let profiles = metric(&server.addr, "tutti_profiles")?;
    let data_mib = dir_size(&server._dir)? / (1024 * 1024);

    let person_json = r#"{"email":"bench@shop.vn","name":"Bench","role":"viewer","password":"mật khẩu đo tốc độ"}"#;
    let (status, _) = post(&server.addr, "/api/v1/people", person_json)?;
    if status != 201 {
        bail!("adding the person answered {status}");
    }
    let (status, cookie) =
        post(&server.addr, "/api/v1/sessions", r#"{"email":"bench@shop.vn","password":"mật khẩu đo tốc độ"}"#)?;
    let cookie = cookie.filter(|_| status == 201).with_context(|| format!("signing in answered {status}"))?;

    let (mut search, mut profile, mut flow, mut overview) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..SAMPLES {
        let i = person(k, people);
        let (status, location, took) = get(&server.addr, &format!("/profiles?q=person{i}%40example.vn"), &cookie)?;
        let location =
            location.filter(|_| status == 303).with_context(|| format!("search for person {i}: {status}"))?;
        search.push(took);
        let (status, _, took) = get(&server.addr, &location, &cookie)?;
        if status != 200 {
            bail!("{location}: {status}");
        }
        profile.push(took);
        let (status, _, took) = get(&server.addr, "/flows/thanks", &cookie)?;
        if status != 200 {
            bail!("the flow's page: {status}");
        }
        flow.push(took);
        let (status, _, took) = get(&server.addr, "/", &cookie)?;
        if status != 200 {
            bail!("the overview: {status}");
        }
        overview.push(took);
    }

    println!("## console: {people} people, {events} events");
    println!(
        "accepted in {sent:.0} s; all folded into profiles after {folded:.0} s; profiles {profiles:.0}; data directory {data_mib} MiB; server resident {} MiB",
        rss_kib(server.child.id(), "VmRSS:")? / 1024
    );
    println!("one person signed in, one page after another, each on a new connection (time to the last byte, ms):\n");
    println!("| page | requests | p50 | p95 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    line("profile search by email (303 to the profile)", search);
    line("profile page", profile);
    line("flow page (graph, step counts, recent runs)", flow);
    line("overview", overview);
    println!();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn dir_size(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}
