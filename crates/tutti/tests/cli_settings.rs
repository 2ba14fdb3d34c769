//! The CLI finds its server and token from the environment, so it runs from any directory.

mod common;

use std::process::Command;

use common::{ADMIN_TOKEN, Server};

#[test]
fn the_server_and_its_token_come_from_the_environment() {
    let server = Server::start();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("secrets.toml"), format!("admin_token = \"{ADMIN_TOKEN}\"\n")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["profiles", "get", "user_id:nobody-here"])
        .current_dir(elsewhere.path())
        .env("TUTTI_URL", &server.url)
        .env("TUTTI_STORAGE__DATA_DIR", data.path())
        .env_remove("TUTTI_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Authenticated with the token from that data directory: the server answers that nobody matches, not 401.
    assert!(stderr.contains("profile_not_found") || stderr.contains("no profile matches"), "{stderr}");
    assert!(!stderr.contains("unauthorized"), "{stderr}");
}
