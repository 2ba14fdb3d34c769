//! `cargo xtask jetstream`: what JetStream itself takes from one publisher, the client Tutti's log uses, with
//! and without `sync_interval: always`: one event per message (pipelined in groups) against atomic batches of
//! 1,000, 400-byte payloads on 16 subjects, each for `--seconds`. The server is `.venv/bin/nats-server`
//! (`scripts/test.sh` installs it) or `TUTTI_NATS_SERVER`.

use std::time::{Duration, Instant};

use anyhow::Context;
use tutti_log::nats::jetstream::Publish;
use tutti_log::nats::testing::NatsServer;
use tutti_log::nats::{JetStream, Options};

#[derive(clap::Args)]
pub(crate) struct JetStreamArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
}

pub(crate) fn jetstream(args: JetStreamArgs) -> anyhow::Result<()> {
    println!("# JetStream publish report ({})\n", tutti_log::nats::testing::binary().display());
    println!("| sync_interval | how | messages/s |\n|---|---|---|");
    for always in [true, false] {
        let server = NatsServer::start_syncing(always).context("nats-server is not installed")?;
        let js = JetStream::connect(&Options::parse(&server.url(), "xtask").map_err(anyhow::Error::msg)?)?;
        js.create_stream(&serde_json::json!({
            "name": "BENCH", "subjects": ["bench.>"], "storage": "file", "num_replicas": 1, "allow_atomic": true,
        }))?;
        let body = vec![b'x'; 400];
        let subjects: Vec<String> = (0..16).map(|i| format!("bench.{i}")).collect();
        let messages: Vec<Publish<'_>> = (0..1000)
            .map(|i| Publish { subject: &subjects[i % 16], message_id: None, headers: &[], payload: &body })
            .collect();
        let setting = if always { "always" } else { "default (2 min)" };
        let rate = measure(args.seconds, || {
            for ack in js.publish_all(&messages)? {
                ack?;
            }
            Ok(messages.len())
        })?;
        println!("| {setting} | one event per message, 1,000 in flight | {rate:.0} |");
        let rate = measure(args.seconds, || {
            js.publish_atomic(&[&messages])?.pop().context("an acknowledgement")??;
            Ok(messages.len())
        })?;
        println!("| {setting} | atomic batches of 1,000 | {rate:.0} |");
    }
    Ok(())
}

/// Messages per second that `round` (which returns how many it stored) gets through in `seconds`.
fn measure(seconds: u64, mut round: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut stored = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        stored += round()?;
    }
    Ok(stored as f64 / started.elapsed().as_secs_f64())
}
