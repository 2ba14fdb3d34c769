//! The recorder thread: attempts' outcomes into the outcome journal, awaited answers and outcome events into the
//! log.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde_json::{Value, json};
use tutti_core::Millis;
use tutti_store::{OutboxRow, Outcome, OutcomeJournal};

use super::{Attempt, Incoming};
use tutti_core::clock::Clock;

/// How long the recorder waits before trying again when outcomes cannot be written.
pub(super) const RECORD_RETRY: Duration = Duration::from_millis(100);
/// How long the journal may keep settled entries when no new outcome comes to forget them with.
const FORGET_AFTER: Duration = Duration::from_millis(100);

/// One of the dispatcher's own events, as the log stores it (received now, its message id as given).
pub(super) fn dispatcher_event(value: Value, now: Millis) -> Result<tutti_store::NewEvent, tutti_core::EventError> {
    let event = tutti_core::Event::from_json(value, None, &tutti_core::BatchDefaults::default(), now, String::new)?;
    Ok(tutti_store::NewEvent::of(event, true))
}

/// Writes attempts' outcomes to the journal in batches on its own thread (whatever has gathered while the last
/// write waited for the disk goes into the next), then hands them to the [`OutcomeSettler`].
pub(super) struct OutcomeRecorder {
    journal: Box<dyn OutcomeJournal>,
    /// The highest journal id the settler has settled: forgotten with the next append.
    settled: Arc<AtomicU64>,
    /// Journalled attempts, with the id of the last, for the settler.
    settle: mpsc::Sender<(u64, Vec<(OutboxRow, Attempt)>)>,
    /// Raised by the dispatcher after an erasure.
    scrub: Arc<AtomicBool>,
    /// The journal is scrubbed once entries up to this id are forgotten.
    scrub_after: Option<u64>,
    /// The id of the last entry appended.
    last: u64,
    answers: mpsc::Sender<Incoming>,
    outcomes: Option<(tutti_intake::Intake, HashSet<String>)>,
    clock: Arc<dyn Clock>,
    /// Outcome events the log could not take yet (it is on a NATS server that is away): written with the next
    /// batch, the oldest let go past [`WAITING_EVENTS`].
    waiting: Vec<tutti_store::NewEvent>,
}

/// The most outcome events kept for a log that cannot take them: they are a courtesy to flows and reports, and
/// an outage must not grow memory without bound.
const WAITING_EVENTS: usize = 100_000;

impl OutcomeRecorder {
    /// `settled` is shared with the settler, `scrub` with the dispatcher; journalled attempts go to `settle`.
    pub(super) fn new(
        journal: Box<dyn OutcomeJournal>,
        settled: Arc<AtomicU64>,
        settle: mpsc::Sender<(u64, Vec<(OutboxRow, Attempt)>)>,
        scrub: Arc<AtomicBool>,
        answers: mpsc::Sender<Incoming>,
        outcomes: Option<(tutti_intake::Intake, HashSet<String>)>,
        clock: Arc<dyn Clock>,
    ) -> OutcomeRecorder {
        OutcomeRecorder {
            journal,
            settled,
            settle,
            scrub,
            scrub_after: None,
            last: 0,
            answers,
            outcomes,
            clock,
            waiting: Vec::new(),
        }
    }

    pub(super) fn run(mut self, attempts: mpsc::Receiver<Vec<(OutboxRow, Attempt)>>) {
        let mut batch: Vec<(OutboxRow, Attempt)> = Vec::new();
        let mut forgotten = 0;
        loop {
            let first = match attempts.recv_timeout(FORGET_AFTER) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !self.waiting.is_empty() {
                        self.record_courtesy(Vec::new());
                    }
                    // Quiet: settled entries (which may hold a vendor's answer about a person) are not kept
                    // waiting for the next append to forget them.
                    let settled = self.settled.load(Ordering::Acquire);
                    if settled > forgotten {
                        match self.journal.append(&[], settled) {
                            Ok(_) => forgotten = settled,
                            Err(e) => tracing::warn!(error = %e, "cannot forget settled outcomes; trying again"),
                        }
                    }
                    self.scrub_if_due(forgotten);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            batch.extend(first);
            batch.extend(attempts.try_iter().flatten());
            loop {
                // Awaited answers go into the log, flushed, before their outcomes are journalled: after a crash in
                // between, the action is delivered again and its answer, with the same message id, is dropped
                // as a duplicate; after a crash once journalled, the log still brings the answer to its run. No
                // answer travels any other way, so none is lost with the process.
                match self.append(self.answer_events(&batch), true) {
                    Ok(()) => {}
                    Err(tutti_intake::IntakeError::Closed) => {
                        // Stopping, the log closed first: an awaited action stays pending and is delivered again
                        // at the next start, whose answer then reaches the run. The others are recorded.
                        let (awaited, plain): (Vec<_>, Vec<_>) =
                            std::mem::take(&mut batch).into_iter().partition(|(_, a)| a.result.is_some());
                        abandon(&self.answers, awaited);
                        batch = plain;
                        if batch.is_empty() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot write awaited answers; trying again");
                        std::thread::sleep(RECORD_RETRY);
                        batch.extend(attempts.try_iter().flatten());
                        continue;
                    }
                }
                let settled = self.settled.load(Ordering::Acquire);
                match self.journal.append(&outcomes_of(&batch), settled) {
                    Ok(last) => {
                        forgotten = settled;
                        self.last = last;
                        self.scrub_if_due(forgotten);
                        // The lanes go on as soon as the outcomes are journalled; the outcome events (a courtesy
                        // to flows that wait for them) follow. A crash in between loses those events, not the
                        // delivery's record.
                        let courtesy = self.outcome_events(&batch);
                        for (_, attempt) in &mut batch {
                            if let Some(journalled) = attempt.journalled.take() {
                                let _ = journalled.send(());
                            }
                        }
                        if let Err(std::sync::mpsc::SendError((_, lost))) =
                            self.settle.send((last, std::mem::take(&mut batch)))
                        {
                            // The settler is gone (it panicked): the rows are let go and settled at the next
                            // start, from the journal.
                            tracing::error!(
                                count = lost.len(),
                                "the settler is gone; outcomes settle at the next start"
                            );
                            abandon(&self.answers, lost);
                        }
                        self.record_courtesy(courtesy);
                        break;
                    }
                    Err(e) => {
                        // Kept and written with the next try; if the process dies first, these are delivered
                        // again, which the idempotency key makes safe.
                        tracing::error!(error = %e, "cannot record deliveries; trying again");
                        std::thread::sleep(RECORD_RETRY);
                        batch.extend(attempts.try_iter().flatten());
                    }
                }
            }
        }
    }

    /// After an erasure: once every entry journalled before it is settled and forgotten (the erased person's
    /// among them), empties the journal's write-ahead log so none of them stays on disk.
    fn scrub_if_due(&mut self, forgotten: u64) {
        if self.scrub.swap(false, Ordering::AcqRel) {
            self.scrub_after = Some(self.last);
        }
        if self.scrub_after.is_some_and(|after| forgotten >= after) {
            match self.journal.scrub() {
                Ok(()) => self.scrub_after = None,
                Err(e) => tracing::warn!(error = %e, "cannot scrub the outcome journal; trying again"),
            }
        }
    }

    /// Appends outcome events, with those that waited for the log. When the log cannot take them they wait for
    /// the next batch, unless the engine is stopping (then they are let go: a courtesy, not a record).
    fn record_courtesy(&mut self, courtesy: Vec<tutti_store::NewEvent>) {
        let was_waiting = !self.waiting.is_empty();
        self.waiting.extend(courtesy);
        // A copy goes to the intake, so that what it could not take is still here.
        match self.append(self.waiting.clone(), false) {
            Ok(()) => {
                if was_waiting {
                    tracing::info!(count = self.waiting.len(), "outcome events that waited for the log are recorded");
                }
                self.waiting.clear();
            }
            Err(tutti_intake::IntakeError::Closed) => {
                tracing::warn!(count = self.waiting.len(), "outcome events not recorded: the engine is stopping");
                self.waiting.clear();
            }
            Err(e) => {
                if !was_waiting {
                    tracing::warn!(error = %e, "outcome events wait for the log to take them");
                }
                let over = self.waiting.len().saturating_sub(WAITING_EVENTS);
                if over > 0 {
                    tracing::warn!(count = over, "outcome events let go: too many waited for the log");
                    self.waiting.drain(..over);
                }
            }
        }
    }

    /// Appends events to the log; `flushed`: wait until they are on disk, not only committed.
    fn append(&self, events: Vec<tutti_store::NewEvent>, flushed: bool) -> Result<(), tutti_intake::IntakeError> {
        let Some((intake, _)) = &self.outcomes else { return Ok(()) };
        if events.is_empty() {
            return Ok(());
        }
        if flushed { intake.append_blocking(events) } else { intake.append_committed_blocking(events) }.map(|_| ())
    }

    /// The `Action Result` events that bring awaited actions' answers to their runs.
    fn answer_events(&self, batch: &[(OutboxRow, Attempt)]) -> Vec<tutti_store::NewEvent> {
        if self.outcomes.is_none() {
            return Vec::new();
        }
        let now = self.clock.now_ms();
        let mut events = Vec::new();
        for (row, attempt) in batch {
            let Some(result) = &attempt.result else { continue };
            let value = |result: &Value| {
                json!({
                    "type": "track",
                    "anonymousId": format!("tutti:profile:{}", row.profile.0),
                    "event": tutti_core::event::ACTION_RESULT_EVENT,
                    "messageId": format!("tutti:result:{}", row.key),
                    "properties": {"action_key": row.key, "result": result},
                    "context": {"source": "tutti.dispatcher"},
                })
            };
            // The run waits for an answer whatever it is: one that cannot be stored is answered with why.
            let event = dispatcher_event(value(result), now).or_else(|e| {
                dispatcher_event(
                    value(&json!({"error": format!("the connector's answer could not be recorded: {e}")})),
                    now,
                )
            });
            match event {
                Ok(event) => events.push(event),
                Err(e) => tracing::error!(key = %row.key, error = %e, "an action result cannot be built"),
            }
        }
        events
    }

    /// `Action Delivered` / `Failed` / `Skipped` on the profile, for the connectors that record outcomes.
    fn outcome_events(&self, batch: &[(OutboxRow, Attempt)]) -> Vec<tutti_store::NewEvent> {
        let Some((_, connectors)) = &self.outcomes else { return Vec::new() };
        let now = self.clock.now_ms();
        let mut events = Vec::new();
        for (row, attempt) in batch {
            let (name, suffix, error) = match &attempt.outcome {
                Outcome::Done { .. } => ("Action Delivered", "delivered", None),
                Outcome::Dead { error } => ("Action Failed", "failed", Some(error.as_str())),
                Outcome::Skipped { .. } => ("Action Skipped", "skipped", None),
                Outcome::Retry { .. } | Outcome::Defer { .. } => continue,
            };
            let Some(what) = attempt.what.as_ref().filter(|_| connectors.contains(&row.connector)) else { continue };
            let mut properties = json!({
                "connector": row.connector, "operation": what.operation, "flow": what.flow,
                "step": what.step, "action_key": row.key, "attempts": row.attempts + 1,
            });
            if let Some(error) = error {
                properties["error"] = json!(error);
            }
            let value = json!({
                "type": "track",
                "anonymousId": format!("tutti:profile:{}", row.profile.0),
                "event": name,
                "messageId": format!("tutti:outcome:{}:{suffix}", row.key),
                "properties": properties,
                "context": {"source": "tutti.dispatcher"},
            });
            match dispatcher_event(value, now) {
                Ok(event) => events.push(event),
                Err(e) => tracing::error!(key = %row.key, error = %e, "an outcome event cannot be built"),
            }
        }
        events
    }
}

/// Each attempt's outbox row and how it ended, as the journal and the outbox record them.
pub(super) fn outcomes_of(attempts: &[(OutboxRow, Attempt)]) -> Vec<(u64, Outcome)> {
    attempts.iter().map(|(row, attempt)| (row.seq, attempt.outcome.clone())).collect()
}

/// Lets attempts go without settling them (the engine is stopping, or the settler is gone): their rows stay
/// pending in the table for the next start.
pub(super) fn abandon(answers: &mpsc::Sender<Incoming>, batch: Vec<(OutboxRow, Attempt)>) {
    let back = batch.into_iter().map(|(row, attempt)| (row, attempt.outcome, false)).collect();
    let _ = answers.send(Incoming::Recorded(back));
}
