//! A Postgres server of a test's own (the machine's `initdb` and `postgres`, in a temporary directory, on a free
//! port), so that a test may kill it and start it again without touching the server the rest of the suite
//! shares. Run as root, it runs as the `postgres` user (Postgres refuses root).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The machine's Postgres programs: on the `PATH`, or where Debian puts them.
fn program(name: &str) -> PathBuf {
    let on_path = Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if on_path {
        return PathBuf::from(name);
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("Postgres is installed (/usr/lib/postgresql)");
    let mut found: Vec<PathBuf> = versions.filter_map(Result::ok).map(|v| v.path().join("bin").join(name)).collect();
    found.sort();
    found.pop().expect("a Postgres version")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` as the user Postgres runs as.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PostgresServer {
    /// A new cluster (trust auth, superuser `root`), started.
    pub fn start() -> PostgresServer {
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            let owned = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().expect("chown");
            assert!(owned.success(), "the directory given to the postgres user");
        }
        let initdb = as_postgres(&program("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "root", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(initdb.success(), "initdb made the cluster");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = PostgresServer { dir, port, child: None };
        server.restart();
        server
    }

    /// The connection string Tutti takes.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=root dbname=postgres", self.port)
    }

    /// Kills the server with `SIGKILL`: no shutdown, whatever was not committed is gone. The server's process
    /// is the one `postmaster.pid` names (the child may be `runuser`, which waits on it).
    pub fn kill9(&mut self) {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        if let Some(pid) =
            std::fs::read_to_string(&pid_file).ok().and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same directory and port, and waits until it takes connections. A start
    /// right after a kill may find the last server's processes still leaving; it is tried again until one
    /// starts.
    pub fn restart(&mut self) {
        self.kill9();
        super::wait_until("Postgres takes connections", || {
            let running = match &mut self.child {
                Some(child) => child.try_wait().ok().flatten().is_none(),
                None => false,
            };
            if !running {
                self.child = Some(
                    as_postgres(&program("postgres"))
                        .arg("-D")
                        .arg(self.dir.path().join("data"))
                        .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                        .arg("-c")
                        .arg(format!("unix_socket_directories={}", self.dir.path().display()))
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("postgres"),
                );
            }
            tutti_store::postgres::connect(&self.url()).is_ok()
        });
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
