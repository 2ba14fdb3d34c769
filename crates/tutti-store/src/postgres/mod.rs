//! The Postgres backend, for Tutti on several machines (`storage = postgres`): several `tutti serve` processes
//! share one database. What is here so far: connecting, versioned schema migrations applied at start
//! ([`migrate`]), which worker owns which partition of the event stream ([`leases`]), and the processor's store
//! of profiles and flows ([`profiles`], with `flows.rs`), checked against other workers' writes.
//!
//! The client is the synchronous `postgres` crate: the stores' traits are synchronous and are called from the
//! engine's own threads (the intake writer, the processor), as SQLite's are.

mod audit;
pub mod connectors;
pub mod creatives;
mod definitions;
mod flow_reader;
mod flows;
pub mod leases;
pub mod migrate;
pub mod outbox;
pub mod pool;
pub mod profiles;
pub mod readers;

pub use flow_reader::PgFlowReader;

pub use postgres::{Client, Transaction};

use crate::Result;

/// Connects to `url` (`postgres://user@host:5432/db`, or `host=... user=... dbname=...`). Without TLS: the
/// database is expected on the machine or its private network; `sslmode` other than `disable` is refused
/// rather than silently ignored.
pub fn connect(url: &str) -> Result<Client> {
    let config: postgres::Config = url.parse()?;
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        return Err(crate::StoreError::Corrupt(
            "`sslmode=require` needs TLS, which this build does not have; reach Postgres on a private network".into(),
        ));
    }
    Ok(config.connect(postgres::NoTls)?)
}

/// Where `url` points, for logs and `tutti config`: host, port, database and user, never the password.
pub fn describe(url: &str) -> String {
    let Ok(config) = url.parse::<postgres::Config>() else { return "<not a Postgres connection string>".into() };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "host={} port={} dbname={} user={}",
        hosts.join(","),
        if ports.is_empty() { "5432".to_owned() } else { ports.join(",") },
        config.get_dbname().unwrap_or("-"),
        config.get_user().unwrap_or("-")
    )
}
