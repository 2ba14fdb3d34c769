//! Durable intake with group commit.
//!
//! One writer thread owns the event log. Requests queue on a bounded channel; the writer takes every request
//! waiting at that moment (up to `max_commit_events` events) and commits them in one transaction. It then hands
//! the group to the sync thread and goes on to the next group at once. The sync thread takes every group
//! committed meanwhile, flushes the log to disk once ([`LogSyncer`]), and only then answers their requests and
//! publishes the new durable head to the processor. So concurrent clients share fsyncs, the CPU work of one
//! group overlaps the flush of the last, and nothing is acknowledged or processed before it is on disk. The
//! bounded channels are the backpressure: when the disk cannot keep up, requests wait for room instead of
//! piling up in memory.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tutti_core::Millis;
use tutti_log::LogFeed;
use tutti_store::{Appended, EventLog, LogSyncer, NewEvent};

use tutti_core::clock::Clock;
use tutti_metrics::Metrics;

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
        /// Answer once flushed to disk (survives a power cut), or once committed (survives the process).
        flushed: bool,
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
    /// Starts the writer and sync threads. Returns once a recovered log is durable.
    pub fn start(
        log: Box<dyn EventLog>,
        feed: Arc<dyn LogFeed>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        settings: WriterSettings,
    ) -> std::io::Result<(Intake, std::thread::JoinHandle<()>)> {
        let io = |e: tutti_store::StoreError| std::io::Error::other(e.to_string());
        let syncer = log.syncer().map_err(io)?;
        // Whatever a crash left committed but unflushed becomes durable before anyone reads it.
        syncer.sync().map_err(io)?;
        let writer_syncer = log.syncer().map_err(io)?;
        let (tx, rx) = mpsc::channel(1024);
        let (committed_tx, committed_rx) = std::sync::mpsc::sync_channel(SYNC_QUEUE);
        let sync_metrics = metrics.clone();
        let sync_thread = std::thread::Builder::new()
            .name("tutti-sync".into())
            .spawn(move || sync_loop(syncer, committed_rx, feed, sync_metrics))?;
        let handle = std::thread::Builder::new().name("tutti-intake".into()).spawn(move || {
            writer(log, writer_syncer, rx, committed_tx, metrics, clock, settings);
            let _ = sync_thread.join();
        })?;
        Ok((Intake { tx }, handle))
    }

    /// Appends events; resolves once they are durable (or known duplicates), with one outcome per event.
    pub async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Command::Append { events, reply, flushed: true }).await.map_err(|_| IntakeError::Closed)?;
        answer.await.map_err(|_| IntakeError::Closed)?
    }

    /// [`Intake::append`] for a thread outside any runtime (the dispatcher's recorder).
    pub fn append_blocking(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.blocking_send(Command::Append { events, reply, flushed: true }).map_err(|_| IntakeError::Closed)?;
        answer.blocking_recv().map_err(|_| IntakeError::Closed)?
    }

    /// [`Intake::append_blocking`] that answers once the events are committed, before the flush: they survive
    /// the process dying (a `kill -9`), not a power cut, and reach the processor once flushed like any other.
    /// For what can be written again, such as the dispatcher's outcome events.
    pub fn append_committed_blocking(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.blocking_send(Command::Append { events, reply, flushed: false }).map_err(|_| IntakeError::Closed)?;
        answer.blocking_recv().map_err(|_| IntakeError::Closed)?
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

/// Message ids examined per slice of pruning, between two commits.
const PRUNE_SLICE: usize = 10_000;

/// Committed groups waiting for the sync thread, at most. Past this the writer waits: the disk sets the pace.
const SYNC_QUEUE: usize = 64;

/// A group committed but not yet flushed.
struct Committed {
    /// Each waiting append's share of the outcomes (those answered at commit are not here).
    replies: Vec<(std::ops::Range<usize>, Reply<Vec<Appended>>)>,
    outcomes: Vec<Appended>,
    started: Instant,
}

fn writer(
    mut log: Box<dyn EventLog>,
    syncer: Box<dyn LogSyncer>,
    mut rx: mpsc::Receiver<Command>,
    committed: std::sync::mpsc::SyncSender<Committed>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    settings: WriterSettings,
) {
    let mut last_prune = clock.now_ms();
    let (mut pruning, mut pruned) = (false, 0);
    let mut deferred: Option<Command> = None;
    // Group commits failed in a row: the first is logged as an error, the rest at debug until one succeeds (a
    // log on a NATS server that is away fails every group until it is back).
    let mut failing: u64 = 0;
    loop {
        let Some(command) = deferred.take().or_else(|| rx.blocking_recv()) else {
            break;
        };
        match command {
            Command::Append { events, reply, flushed } => {
                let mut replies = vec![(events.len(), reply, flushed)];
                let mut all = events;
                while all.len() < settings.max_commit_events {
                    match rx.try_recv() {
                        Ok(Command::Append { events, reply, flushed }) => {
                            replies.push((events.len(), reply, flushed));
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
                metrics.commit_events.observe(all.len() as f64);
                match log.append(&all) {
                    Ok(outcomes) => {
                        if failing > 0 {
                            tracing::info!(failed = failing, "the log takes events again after failed group commits");
                            failing = 0;
                        }
                        let mut waiting = Vec::with_capacity(replies.len());
                        let mut at = 0;
                        for (n, reply, flushed) in replies {
                            let share = at..at + n;
                            at += n;
                            if flushed {
                                waiting.push((share, reply));
                            } else {
                                let _ = reply.send(Ok(outcomes[share].to_vec()));
                            }
                        }
                        if committed.send(Committed { replies: waiting, outcomes, started }).is_err() {
                            tracing::error!("the sync thread is gone; stopping intake");
                            break;
                        }
                    }
                    Err(e) => {
                        failing += 1;
                        if failing == 1 {
                            tracing::error!(error = %e, events = all.len(), "group commit failed; nothing was acknowledged");
                        } else {
                            tracing::debug!(error = %e, events = all.len(), failing, "group commit failed again");
                        }
                        let err = storage(e);
                        for (_, reply, _) in replies {
                            let _ = reply.send(Err(err.clone()));
                        }
                    }
                }
            }
            Command::Delete { seqs, reply } => {
                // An erasure must be on disk before it is reported done.
                let _ = reply.send(log.delete(&seqs).and_then(|n| syncer.sync().map(|()| n)).map_err(storage));
            }
            Command::Scrub { reply } => {
                let _ = reply.send(log.scrub().map_err(storage));
            }
            Command::Shutdown => break,
        }
        // Pruning runs in slices between commits, so a large window never holds up intake for long.
        let now = clock.now_ms();
        if pruning || now - last_prune >= PRUNE_EVERY_MS {
            if !pruning {
                last_prune = now;
            }
            match log.prune_dedup(last_prune - settings.dedup_retention_ms, PRUNE_SLICE) {
                Ok((examined, forgotten)) => {
                    pruned += forgotten;
                    pruning = examined == PRUNE_SLICE;
                    if !pruning && pruned > 0 {
                        tracing::info!(forgotten = pruned, "pruned message ids past the deduplication window");
                        pruned = 0;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning message ids failed");
                    pruning = false;
                }
            }
        }
    }
    // Dropping the sender lets the sync thread flush and answer what is left, then close the feed.
}

/// Flushes committed groups, several at a time, then acknowledges them and publishes the durable head.
fn sync_loop(
    syncer: Box<dyn LogSyncer>,
    committed: std::sync::mpsc::Receiver<Committed>,
    feed: Arc<dyn LogFeed>,
    metrics: Arc<Metrics>,
) {
    while let Ok(first) = committed.recv() {
        let mut groups = vec![first];
        groups.extend(committed.try_iter());
        let synced = syncer.sync();
        if let Err(e) = &synced {
            tracing::error!(error = %e, "flushing the event log failed; nothing in these groups was acknowledged");
            let err = IntakeError::Storage(e.to_string());
            for group in groups {
                for (_, reply) in group.replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
            continue;
        }
        // Publish before answering: a client that got its 200 and then asks for its own writes must find them
        // counted in the head it waits for.
        let head = groups.iter().flat_map(|g| &g.outcomes).filter_map(Appended::seq).max().unwrap_or(0);
        if head > 0 {
            metrics.log_head.fetch_max(head, Ordering::Relaxed);
            feed.publish(head);
        }
        for Committed { replies, outcomes, started } in groups {
            metrics.commit_latency.observe_duration(started.elapsed());
            let stored = outcomes.iter().filter(|o| o.seq().is_some()).count() as u64;
            metrics.events_accepted.fetch_add(stored, Ordering::Relaxed);
            metrics.events_duplicate.fetch_add(outcomes.len() as u64 - stored, Ordering::Relaxed);
            for (share, reply) in replies {
                let _ = reply.send(Ok(outcomes[share].to_vec()));
            }
        }
    }
    feed.close();
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use tutti_log::LocalFeed;
    use tutti_store::{Result as StoreResult, StoreError};

    use super::*;
    use tutti_core::clock::ManualClock;

    /// What the fake log has done: (highest sequence number committed, highest flushed, gate open, a flush
    /// waiting at the gate). A flush waits for the gate the test opens, so the test can look at the world while
    /// one is under way.
    #[derive(Default)]
    struct Disk {
        state: Mutex<(u64, u64, bool, bool)>,
        changed: Condvar,
    }

    impl Disk {
        fn wait(&self, what: impl Fn(&(u64, u64, bool, bool)) -> bool) {
            let state = self.state.lock().unwrap();
            let (_state, timeout) =
                self.changed.wait_timeout_while(state, Duration::from_secs(30), |s| !what(s)).unwrap();
            assert!(!timeout.timed_out(), "the intake never got there");
        }

        fn open_gate(&self) {
            self.state.lock().unwrap().2 = true;
            self.changed.notify_all();
        }
    }

    struct FakeLog(Arc<Disk>, Arc<Mutex<Vec<Millis>>>);

    impl EventLog for FakeLog {
        fn append(&mut self, events: &[NewEvent]) -> StoreResult<Vec<Appended>> {
            let mut state = self.0.state.lock().unwrap();
            let first = state.0 + 1;
            state.0 += events.len() as u64;
            self.0.changed.notify_all();
            Ok((first..=state.0).map(Appended::Stored).collect())
        }
        fn syncer(&self) -> StoreResult<Box<dyn LogSyncer>> {
            Ok(Box::new(FakeSyncer(self.0.clone())))
        }
        fn delete(&mut self, _: &[u64]) -> StoreResult<usize> {
            Err(StoreError::Corrupt("not in this test".into()))
        }
        fn prune_dedup(&mut self, before: Millis, limit: usize) -> StoreResult<(usize, usize)> {
            let mut calls = self.1.lock().unwrap();
            calls.push(before);
            // Two full slices, then the rest.
            Ok(if calls.len() <= 2 { (limit, 1) } else { (5, 1) })
        }
        fn scrub(&mut self) -> StoreResult<()> {
            Ok(())
        }
    }

    struct FakeSyncer(Arc<Disk>);

    impl LogSyncer for FakeSyncer {
        fn sync(&self) -> StoreResult<()> {
            let mut state = self.0.state.lock().unwrap();
            state.3 = true;
            self.0.changed.notify_all();
            let mut state = self.0.changed.wait_while(state, |s| !s.2).unwrap();
            state.1 = state.0;
            state.3 = false;
            Ok(())
        }
    }

    fn event(id: &str) -> NewEvent {
        NewEvent {
            message_id: id.into(),
            client_message_id: true,
            received_at: 0,
            body: b"{}".to_vec(),
            routing_key: String::new(),
        }
    }

    #[test]
    fn nothing_is_acknowledged_or_published_before_it_is_flushed() {
        let disk = Arc::new(Disk::default());
        let feed = Arc::new(LocalFeed::new(0));
        // The start-up flush passes the gate once; close it again behind it.
        disk.open_gate();
        let (intake, writer) = Intake::start(
            Box::new(FakeLog(disk.clone(), Arc::default())),
            feed.clone(),
            Arc::new(Metrics::default()),
            Arc::new(ManualClock::new(0)),
            WriterSettings { max_commit_events: 100, dedup_retention_ms: 1000 },
        )
        .unwrap();
        disk.state.lock().unwrap().2 = false;
        assert_eq!(disk.state.lock().unwrap().1, 0);

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pending = {
            let intake = intake.clone();
            runtime.spawn(async move { intake.append(vec![event("a"), event("b")]).await })
        };
        // The group is committed, and its flush is waiting at the gate.
        let committed = std::thread::spawn({
            let disk = disk.clone();
            move || disk.wait(|s| s.0 == 2 && s.3)
        });
        while !committed.is_finished() {
            runtime.block_on(tokio::task::yield_now());
        }
        committed.join().unwrap();
        // Had an answer been sent, these polls would deliver it.
        for _ in 0..10 {
            runtime.block_on(tokio::task::yield_now());
        }
        assert!(!pending.is_finished(), "acknowledged before the flush");
        assert_eq!(feed.head(), 0, "published to the processor before the flush");

        disk.open_gate();
        let outcome = runtime.block_on(pending).unwrap().unwrap();
        assert_eq!(outcome, [Appended::Stored(1), Appended::Stored(2)]);
        assert_eq!(disk.state.lock().unwrap().1, 2, "the flush covered the group");
        assert_eq!(feed.head(), 2);

        intake.shutdown_blocking();
        writer.join().unwrap();
        assert!(feed.is_closed());
    }

    #[test]
    fn pruning_runs_in_slices_between_commits_until_done() {
        let disk = Arc::new(Disk::default());
        disk.open_gate();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let clock = Arc::new(ManualClock::new(1_000_000_000));
        let (intake, writer) = Intake::start(
            Box::new(FakeLog(disk, calls.clone())),
            Arc::new(LocalFeed::new(0)),
            Arc::new(Metrics::default()),
            clock.clone(),
            WriterSettings { max_commit_events: 100, dedup_retention_ms: 60_000 },
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let append = |id: &str| runtime.block_on(intake.append(vec![event(id)])).unwrap();
        append("a");
        assert!(calls.lock().unwrap().is_empty(), "not due yet");
        clock.advance(PRUNE_EVERY_MS);
        let due = clock.now_ms();
        for id in ["b", "c", "d", "e"] {
            append(id);
        }
        // One slice after each commit while slices come back full, then it waits for the next period.
        assert_eq!(*calls.lock().unwrap(), vec![due - 60_000; 3]);
        intake.shutdown_blocking();
        writer.join().unwrap();
    }
}
