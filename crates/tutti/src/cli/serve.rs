//! `tutti serve` and `tutti config`: the engine and its HTTP API, and the configuration they run with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tutti_engine::config::{Config, Overrides};
use tutti_engine::{Engine, SystemClock};

#[derive(Args, Clone)]
pub(crate) struct ServeArgs {
    /// Configuration file (default: ./tutti.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8910).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (default ./tutti-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Flow, segment and policy files loaded at start (default ./flows when present).
    #[arg(long)]
    flows_dir: Option<PathBuf>,
    /// What this process does when several share a log on NATS: all (default), intake or worker.
    #[arg(long)]
    role: Option<tutti_engine::config::Role>,
}

pub(crate) fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: args.listen,
        role: args.role,
        data_dir: args.data_dir.clone(),
        flows_dir: args.flows_dir.clone(),
    };
    Ok(Config::load(args.config.as_deref(), std::env::vars(), &overrides)?)
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let level: tracing::Level =
        config.log.level.parse().with_context(|| format!("log.level {:?}", config.log.level))?;
    // Colour codes only on a terminal: in a file or a log collector they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_max_level(level).with_target(false).with_ansi(ansi).init();
    crate::panics::report_through_the_log();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listen = config.server.listen;
        let data_dir = config.storage.data_dir.clone();
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let engine =
            Arc::new(tokio::task::spawn_blocking(move || Engine::start(config, Arc::new(SystemClock))).await??);
        // The default creative tagger trains while the server starts listening, not inside the first request
        // that tags a creative (a second or more on a busy two-core machine).
        let warming = engine.clone();
        tokio::task::spawn_blocking(move || {
            warming.insights().tagger();
        });
        if !engine.secrets.generated.is_empty() {
            // Shown once, on the terminal only (never through the log); afterwards they live in the data dir.
            println!(
                "Generated new credentials, stored in {}:",
                data_dir.join(tutti_engine::secrets::SECRETS_FILE).display()
            );
            if engine.secrets.generated.contains(&"write_key") {
                println!("  write key:   {}", engine.secrets.write_key);
            }
            if engine.secrets.generated.contains(&"admin_token") {
                println!("  admin token: {}", engine.secrets.admin_token);
            }
            if let Err(e) = tutti_engine::Secrets::mark_shown(&data_dir) {
                tracing::warn!(error = %e, "could not record that the new credentials were shown; the next start shows them again");
            }
        }
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %data_dir.display(), "tutti is listening");
        println!("Tutti listening on http://{addr} (data in {})", data_dir.display());
        tutti_server::serve(engine.clone(), listener, shutdown_signal()).await?;
        tracing::info!("shutting down: committing queued events");
        tokio::task::spawn_blocking(move || engine.shutdown()).await?;
        Ok(())
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
