//! A real SMTP server for tests: aiosmtpd (installed into `.venv` by `scripts/test.sh`) on a free port, storing
//! messages in a maildir, read back with Python's own email parser.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository's root (where `.venv` and `tests/smtp` are).
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// aiosmtpd on a free port, storing messages in a maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    /// The SMTP server on a free port, or `None` (the test is skipped) when it is not installed.
    pub fn start() -> Option<SmtpServer> {
        let maildir = tempfile::tempdir().expect("temp dir");
        let python = repo_root().join(".venv/bin/python");
        if !super::tool_installed(&python, "aiosmtpd (in .venv)") {
            return None;
        }
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/smtp/server.py"))
            .arg(maildir.path().join("box"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP server did not start: {line:?}"));
        Some(SmtpServer { child, port, maildir })
    }

    /// Every message received, parsed by Python's email package.
    pub fn messages(&self) -> Vec<Value> {
        let dir = self.maildir.path().join("box");
        if !dir.join("new").exists() {
            return Vec::new();
        }
        let out = Command::new(repo_root().join(".venv/bin/python"))
            .arg(repo_root().join("tests/smtp/read.py"))
            .arg(&dir)
            .output()
            .expect("run python");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("json")).collect()
    }

    /// Waits (bounded, 30 s) until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} message(s) arrived, waiting for {n}", got.len());
            std::thread::yield_now();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
