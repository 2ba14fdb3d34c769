//! The settler thread: journalled outcomes into the outbox, and what was journalled before a stop, at start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tutti_store::{Outbox, OutboxRow, Outcome, OutcomeJournal};

use super::recorder::{RECORD_RETRY, outcomes_of};
use super::{Attempt, Incoming};
use tutti_metrics::Metrics;

/// How often, at most, journalled outcomes are settled into the outbox: each settle is a transaction on the
/// processor's database, so they are few and large. Until then the dispatcher holds the rows.
const SETTLE_EVERY: Duration = Duration::from_millis(25);

/// Settles what was journalled but not settled when the engine last stopped (or died), and has the journal hand
/// out only ids above what the outbox settled. Runs before the dispatcher first reads the outbox.
pub(super) fn settle_journalled(journal: &mut dyn OutcomeJournal, outbox: &mut dyn Outbox) -> tutti_store::Result<()> {
    let from = outbox.journal_settled()?;
    let entries = journal.after(from)?;
    let upto = entries.last().map_or(from, |e| e.id);
    if !entries.is_empty() {
        let outcomes: Vec<(u64, Outcome)> = entries.into_iter().map(|e| (e.seq, e.outcome)).collect();
        outbox.settle(&outcomes, upto)?;
        tracing::info!(count = outcomes.len(), "outcomes journalled before the last stop are settled");
    }
    journal.continue_after(upto)
}

/// Applies journalled outcomes to the outbox, every [`SETTLE_EVERY`] at most, and then lets the dispatcher know.
pub(super) struct OutcomeSettler {
    pub(super) outbox: Box<dyn Outbox>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) answers: mpsc::Sender<Incoming>,
    /// The highest journal id settled, for the recorder to forget.
    pub(super) settled: Arc<AtomicU64>,
}

impl OutcomeSettler {
    pub(super) fn run(mut self, journalled: mpsc::Receiver<(u64, Vec<(OutboxRow, Attempt)>)>) {
        let mut waiting: Vec<(OutboxRow, Attempt)> = Vec::new();
        let mut upto = 0;
        let mut last = Instant::now();
        let mut open = true;
        // The last settle failed (told once, not at every try).
        let mut failing = false;
        while open || !waiting.is_empty() {
            // Nothing waiting: sleep until something is journalled.
            let idle = waiting.is_empty();
            let mut take = |(id, batch): (u64, Vec<(OutboxRow, Attempt)>)| {
                upto = upto.max(id);
                waiting.extend(batch);
            };
            if idle {
                match journalled.recv() {
                    Ok(sent) => take(sent),
                    Err(_) => break,
                }
            }
            // Whatever else is journalled until the next settle is due (at once when the recorder has stopped).
            let due = last + SETTLE_EVERY;
            while open {
                match journalled.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(sent) => take(sent),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
                }
            }
            match self.outbox.settle(&outcomes_of(&waiting), upto) {
                Ok(kept) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("outcomes are settled into the outbox again");
                    }
                    last = Instant::now();
                    self.settled.store(upto, Ordering::Release);
                    self.recorded(std::mem::take(&mut waiting), kept);
                }
                Err(e) => {
                    // Journalled already: kept and settled with the next try, or at the next start. Said once
                    // until it works again, so a database away for a while does not flood the log.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(error = %e, "cannot settle outcomes into the outbox; trying again");
                    }
                    std::thread::sleep(RECORD_RETRY);
                }
            }
        }
    }

    /// Logs and counts what was written, and tells the dispatcher, which lets the rows go (or keeps them for
    /// their retry).
    fn recorded(&self, batch: Vec<(OutboxRow, Attempt)>, kept: Vec<bool>) {
        let mut back = Vec::with_capacity(batch.len());
        for ((row, attempt), kept) in batch.into_iter().zip(kept) {
            match &attempt.outcome {
                Outcome::Done { .. } | Outcome::Defer { .. } => {}
                Outcome::Skipped { .. } => {
                    self.metrics.actions_skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(key = %row.key, connector = %row.connector, "a policy stopped the action before its attempt");
                }
                // The error may echo the vendor's answer, which may carry personal data: it is on the outbox
                // row (the dead-letters API) and in the log at DEBUG only.
                Outcome::Retry { error, .. } => {
                    self.metrics.actions_retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key = %row.key, connector = %row.connector, attempts = row.attempts + 1,
                        "delivery failed; will retry");
                    tracing::debug!(key = %row.key, %error, "why the delivery failed");
                }
                Outcome::Dead { error } => {
                    self.metrics.actions_dead.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(key = %row.key, connector = %row.connector,
                        "delivery given up; kept as a dead letter (GET /api/v1/dead-letters says why)");
                    tracing::debug!(key = %row.key, %error, "why the delivery was given up");
                }
            }
            back.push((row, attempt.outcome, kept));
        }
        let _ = self.answers.send(Incoming::Recorded(back));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_core::ProfileId;

    /// An outbox in a fresh data directory with `count` pending rows (seq 1..=count), and the journal beside it.
    fn journal_and_outbox(
        dir: &tempfile::TempDir,
        count: u64,
    ) -> (tutti_store::sqlite::SqliteOutcomeJournal, tutti_store::sqlite::SqliteOutbox) {
        use tutti_store::ProfileStore as _;
        let paths = tutti_store::sqlite::Paths::in_dir(dir.path());
        let mut store = tutti_store::sqlite::SqliteProfileStore::open(&paths.profiles).unwrap();
        let mut batch = tutti_store::ProfileBatch { next_profile_id: count + 1, ..Default::default() };
        batch.flows.outbox = (1..=count)
            .map(|i| tutti_store::OutboxItem {
                key: format!("run-{i}:step:1"),
                profile: ProfileId(i),
                connector: "webhook".into(),
                body: b"{}".to_vec(),
                created_at: 0,
            })
            .collect();
        store.commit(&batch).unwrap();
        (
            tutti_store::sqlite::SqliteOutcomeJournal::open(&paths.outcomes).unwrap(),
            tutti_store::sqlite::SqliteOutbox::open(&paths.profiles).unwrap(),
        )
    }

    #[test]
    fn outcomes_journalled_before_a_stop_are_settled_once_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, mut outbox) = journal_and_outbox(&dir, 3);
        // Journalled, and the first two settled (the journal not yet told to forget them), when the process died.
        let retry = Outcome::Retry { at: 9_000, error: "503".into() };
        journal.append(&[(1, Outcome::Done { result: "{}".into(), cost: None })], 0).unwrap();
        let second = journal.append(&[(2, retry.clone())], 0).unwrap();
        outbox.settle(&[(1, Outcome::Done { result: "{}".into(), cost: None }), (2, retry)], second).unwrap();
        journal.append(&[(3, Outcome::Dead { error: "400".into() })], 0).unwrap();
        assert_eq!(outbox.pending_after(0, 10).unwrap().len(), 2, "rows 2 (to retry) and 3 pending in the table");

        settle_journalled(&mut journal, &mut outbox).unwrap();
        let pending = outbox.pending_after(0, 10).unwrap();
        assert_eq!(pending.len(), 1, "only the retry is pending");
        assert_eq!((pending[0].seq, pending[0].attempts, pending[0].due_at), (2, 1, 9_000), "the retry counted once");
        assert!(journal.after(0).unwrap().is_empty(), "settled entries are forgotten");

        // A second start (or a crash right after the settle) applies nothing twice.
        settle_journalled(&mut journal, &mut outbox).unwrap();
        assert_eq!(outbox.pending_after(0, 10).unwrap()[0].attempts, 1, "the retry counted once");
        let next = journal.append(&[(2, Outcome::Defer { at: 10_000 })], 0).unwrap();
        assert!(next > outbox.journal_settled().unwrap(), "new entries come after what was settled");
    }
}
