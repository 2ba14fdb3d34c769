//! The server under test: started on a fresh data directory, and its metrics read back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::load::{ADMIN_TOKEN, WRITE_KEY};

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) _dir: PathBuf,
    /// The NATS server the event log is on, with `--nats`.
    _nats: Option<tutti_log::nats::testing::NatsServer>,
    /// The Postgres schema, with `--postgres`.
    _schema: Option<Schema>,
    /// With `--workers`: the other workers, with their addresses and data directories.
    workers: Vec<(Child, String, PathBuf)>,
}

/// `--postgres`: the database every server gets a schema of its own in.
pub(crate) static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A schema for one server under `--postgres`, dropped with it.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str) -> anyhow::Result<Schema> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tutti_load_{}_{n}", std::process::id());
        let mut admin = tutti_store::postgres::connect(url)?;
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))?;
        Ok(Schema { url: url.to_owned(), name })
    }

    /// The connection string of the schema, for the server.
    fn url(&self) -> String {
        format!("{} options='-c search_path={}'", self.url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut admin) = tutti_store::postgres::connect(&self.url) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// `--nats`: every server gets a NATS server of its own and keeps its event log there.
pub(crate) static ON_NATS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--workers`: how many processes share each server's processing (the server itself among them).
pub(crate) static WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

impl Server {
    /// A server started on a prepared data directory, with its log wherever its environment says.
    pub(crate) fn on(child: Child, addr: String, dir: PathBuf) -> Server {
        Server { child, addr, _dir: dir, _nats: None, _schema: None, workers: Vec::new() }
    }

    /// Kills the process with SIGKILL and starts it again on the same data directory.
    pub(crate) fn kill_and_restart(&mut self, root: &std::path::Path, env: &[(&str, String)]) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let mut env = env.to_vec();
        if let Some(nats) = &self._nats {
            env.push(("TUTTI_BUS__NATS", nats.url()));
        }
        if let Some(schema) = &self._schema {
            env.push(("TUTTI_STORAGE__POSTGRES", schema.url()));
        }
        let (child, addr) = spawn_server(root, &self._dir, &env)?;
        self.child = child;
        self.addr = addr;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for (child, _, dir) in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

pub(crate) fn start_server(root: &std::path::Path) -> anyhow::Result<Server> {
    start_server_with(root, &[])
}

pub(crate) fn start_server_with(root: &std::path::Path, env: &[(&str, String)]) -> anyhow::Result<Server> {
    let dir = std::env::temp_dir().join(format!("tutti-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut env = env.to_vec();
    let nats = if ON_NATS.load(std::sync::atomic::Ordering::Relaxed) {
        let nats = tutti_log::nats::testing::NatsServer::start_at(&dir.join("nats"), true)
            .context("--nats needs nats-server (./scripts/test.sh installs it into .venv)")?;
        env.push(("TUTTI_BUS__NATS", nats.url()));
        Some(nats)
    } else {
        None
    };
    let schema = match POSTGRES.get() {
        Some(url) => {
            let schema = Schema::new(url)?;
            env.push(("TUTTI_STORAGE__POSTGRES", schema.url()));
            Some(schema)
        }
        None => None,
    };
    let sharing = WORKERS.load(std::sync::atomic::Ordering::Relaxed) > 1;
    if sharing {
        // Workers sharing a database share the key their tombstones are made with.
        env.push(("TUTTI_AUTH__ERASURE_KEY", "10ad".repeat(16)));
    }
    let (child, addr) = spawn_server(root, &dir, &env)?;
    let mut workers = Vec::new();
    for n in 1..WORKERS.load(std::sync::atomic::Ordering::Relaxed) {
        let dir = std::env::temp_dir().join(format!("tutti-load-{}-worker-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut env = env.clone();
        env.push(("TUTTI_SERVER__ROLE", "worker".into()));
        let (child, addr) = spawn_server(root, &dir, &env)?;
        workers.push((child, addr, dir));
    }
    Ok(Server { child, addr, _dir: dir, _nats: nats, _schema: schema, workers })
}

/// The cargo profile the server under test is built and run with: `release`, or `TUTTI_PROFILE` (`profiling`
/// keeps full debug info, for `perf` with call graphs).
pub(crate) fn build_profile() -> String {
    std::env::var("TUTTI_PROFILE").unwrap_or_else(|_| "release".into())
}

/// Starts `tutti serve` on a data directory and returns it with the address it listens on.
pub(crate) fn spawn_server(
    root: &std::path::Path,
    dir: &std::path::Path,
    env: &[(&str, String)],
) -> anyhow::Result<(Child, String)> {
    let bin = root.join("target").join(build_profile()).join("tutti");
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

/// The server's dispatch overhead histogram, as shares within each bound.
pub(crate) fn print_overhead(addr: &str) -> anyhow::Result<()> {
    let bounds = ["0.0001", "0.0005", "0.001", "0.002", "0.005"];
    let shares = histogram_shares(addr, "tutti_dispatch_overhead_seconds", &bounds)?;
    println!("  dispatcher overhead (taken -> send, not waiting for a vendor): {shares}");
    Ok(())
}

/// Waits (bounded) until a counter metric reaches `target`; returns its value.
pub(crate) fn wait_metric(addr: &str, name: &str, target: f64, limit: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + limit;
    loop {
        let v = metric(addr, name)?;
        if v >= target || Instant::now() > deadline {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The share of a server histogram's observations at or below each bound (`le` as the server writes it),
/// from one scrape: "<= 1 ms 12.34%, ...".
pub(crate) fn histogram_shares(addr: &str, name: &str, bounds: &[&str]) -> anyhow::Result<String> {
    let text = scrape(addr)?;
    let count = read_metric(&text, &format!("{name}_count"))?.max(1.0);
    let mut shares = Vec::new();
    for le in bounds {
        let n = read_metric(&text, &format!("{name}_bucket{{le=\"{le}\"}}"))?;
        shares.push(format!("<= {} ms {:.2}%", le.parse::<f64>()? * 1000.0, n / count * 100.0));
    }
    Ok(shares.join(", "))
}

pub(crate) fn metric(addr: &str, name: &str) -> anyhow::Result<f64> {
    read_metric(&scrape(addr)?, name)
}

/// The server's `/metrics` text.
pub(crate) fn scrape(addr: &str) -> anyhow::Result<String> {
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
pub(crate) fn read_metric(text: &str, name: &str) -> anyhow::Result<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .with_context(|| format!("metric {name}"))?
        .trim()
        .parse()
        .map_err(Into::into)
}

/// Waits until the processor has folded everything stored into profiles.
pub(crate) fn wait_until_processed(addr: &str) -> anyhow::Result<()> {
    while backlog(addr)? > 0.0 {
        // Polling another process's progress counter: the pause paces the polling, it synchronises nothing.
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Events stored but not yet folded into profiles, from one scrape (a scrape counts the pending timers too).
pub(crate) fn backlog(addr: &str) -> anyhow::Result<f64> {
    let text = scrape(addr)?;
    Ok(read_metric(&text, "tutti_log_head")? - read_metric(&text, "tutti_processed_seq")?)
}

/// Reports the processing backlog left when the load stopped and how long it took to clear.
pub(crate) fn report_processing(server: &Server) -> anyhow::Result<()> {
    let started = Instant::now();
    let backlog = backlog(&server.addr)?;
    // Every worker reads the whole log (folding only its partitions' events): all of them caught up is done.
    wait_until_processed(&server.addr)?;
    for (_, addr, _) in &server.workers {
        wait_until_processed(addr)?;
    }
    println!(
        "processing backlog: {backlog:.0} events still to fold into profiles when the load stopped; caught up in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .context("no such field")?
        .parse()
        .map_err(Into::into)
}
