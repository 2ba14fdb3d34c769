//! Durable intake with group commit.
//!
//! One writer thread owns the event log. Requests queue on a bounded channel; the writer takes every request
//! waiting at that moment (up to `max_commit_events` events), appends them in one transaction, and answers each
//! request only after that transaction is durable. While one fsync runs, the next group gathers, so concurrent
//! clients share fsyncs and durability does not cost throughput. The bounded channel is the backpressure: when
//! the disk cannot keep up, requests wait for room instead of piling up in memory.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tutti_bus::LogFeed;
use tutti_core::Millis;
use tutti_store::{Appended, EventLog, NewEvent};

use crate::clock::Clock;
use crate::metrics::Metrics;

/// Why the intake could not store a request. The request was not stored and may be retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    #[error("the intake is shut down")]
    Closed,
    #[error("storage failed: {0}")]
    Storage(String),
}

type Reply<T> = oneshot::Sender<Result<T, IntakeError>>;

enum Command {
    Append {
        events: Vec<NewEvent>,
        reply: Reply<Vec<Appended>>,
    },
    Delete {
        seqs: Vec<u64>,
        reply: Reply<usize>,
    },
    Scrub {
        reply: Reply<()>,
    },
    /// Commit what is queued before this, then stop.
    Shutdown,
}

/// A handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Command>,
}

/// Writer settings.
pub struct WriterSettings {
    pub max_commit_events: usize,
    /// `messageId`s older than this are forgotten.
    pub dedup_retention_ms: Millis,
}

impl Intake {
    /// Starts the writer thread.
    pub fn start(
        log: Box<dyn EventLog>,
        feed: Arc<dyn LogFeed>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        settings: WriterSettings,
    ) -> std::io::Result<(Intake, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(1024);
        let handle = std::thread::Builder::new()
            .name("tutti-intake".into())
            .spawn(move || writer(log, rx, feed, metrics, clock, settings))?;
        Ok((Intake { tx }, handle))
    }

    /// Appends events; resolves once they are durable (or known duplicates), with one outcome per event.
    pub async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Command::Append { events, reply }).await.map_err(|_| IntakeError::Closed)?;
        answer.await.map_err(|_| IntakeError::Closed)?
    }

    /// Deletes events from the log. Blocking: for the processor thread, never for async code.
    pub fn delete_blocking(&self, seqs: Vec<u64>) -> Result<usize, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.blocking_send(Command::Delete { seqs, reply }).map_err(|_| IntakeError::Closed)?;
        answer.blocking_recv().map_err(|_| IntakeError::Closed)?
    }

    /// Empties the log's write-ahead log so deleted data leaves the files. Blocking, like `delete_blocking`.
    pub fn scrub_blocking(&self) -> Result<(), IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.blocking_send(Command::Scrub { reply }).map_err(|_| IntakeError::Closed)?;
        answer.blocking_recv().map_err(|_| IntakeError::Closed)?
    }
}

impl Intake {
    /// Asks the writer to stop after everything queued before this call. Blocking.
    pub fn shutdown_blocking(&self) {
        let _ = self.tx.blocking_send(Command::Shutdown);
    }
}

fn storage(e: tutti_store::StoreError) -> IntakeError {
    IntakeError::Storage(e.to_string())
}

const PRUNE_EVERY_MS: Millis = 10 * 60 * 1000;

fn writer(
    mut log: Box<dyn EventLog>,
    mut rx: mpsc::Receiver<Command>,
    feed: Arc<dyn LogFeed>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    settings: WriterSettings,
) {
    let mut last_prune = clock.now_ms();
    let mut deferred: Option<Command> = None;
    loop {
        let Some(command) = deferred.take().or_else(|| rx.blocking_recv()) else {
            break;
        };
        match command {
            Command::Append { events, reply } => {
                let mut group = vec![(events.len(), reply)];
                let mut all = events;
                while all.len() < settings.max_commit_events {
                    match rx.try_recv() {
                        Ok(Command::Append { events, reply }) => {
                            group.push((events.len(), reply));
                            all.extend(events);
                        }
                        Ok(other) => {
                            deferred = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let started = Instant::now();
                let result = log.append(&all);
                metrics.commit_latency.observe_duration(started.elapsed());
                metrics.commit_events.observe(all.len() as f64);
                match result {
                    Ok(outcomes) => {
                        let mut head = 0;
                        let (mut stored, mut dupes) = (0, 0);
                        for o in &outcomes {
                            match o {
                                Appended::Stored(seq) => {
                                    head = *seq;
                                    stored += 1;
                                }
                                Appended::Duplicate => dupes += 1,
                            }
                        }
                        metrics.events_accepted.fetch_add(stored, Ordering::Relaxed);
                        metrics.events_duplicate.fetch_add(dupes, Ordering::Relaxed);
                        if head > 0 {
                            metrics.log_head.fetch_max(head, Ordering::Relaxed);
                            feed.publish(head);
                        }
                        let mut outcomes = outcomes.into_iter();
                        for (n, reply) in group {
                            let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, events = all.len(), "group commit failed; nothing was acknowledged");
                        let err = storage(e);
                        for (_, reply) in group {
                            let _ = reply.send(Err(err.clone()));
                        }
                    }
                }
            }
            Command::Delete { seqs, reply } => {
                let _ = reply.send(log.delete(&seqs).map_err(storage));
            }
            Command::Scrub { reply } => {
                let _ = reply.send(log.scrub().map_err(storage));
            }
            Command::Shutdown => break,
        }
        let now = clock.now_ms();
        if now - last_prune >= PRUNE_EVERY_MS {
            last_prune = now;
            match log.prune_dedup(now - settings.dedup_retention_ms) {
                Ok(n) if n > 0 => tracing::info!(forgotten = n, "pruned message ids past the deduplication window"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning message ids failed"),
            }
        }
    }
    feed.close();
}
