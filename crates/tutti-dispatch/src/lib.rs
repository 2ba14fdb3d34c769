//! The dispatcher: delivers the outbox, at least once, through the connectors of `tutti-connectors`.
//!
//! The processor hands it each batch's new actions in memory right after committing them ([`ToDispatcher`]),
//! so the hot path never reads the outbox table: the table is the durable record, read back only at start
//! (and when more actions wait than the dispatcher holds in memory, and after a replay). Each connector has its
//! own lanes (`concurrency` of them), tasks on one delivery thread: a profile's actions for one connector go
//! through the same lane, one after another, so they arrive in order, while lanes deliver side by side, and a
//! connector that hangs holds up only its own lanes.
//!
//! Around every attempt (each connector's [`Settings`]):
//! - a **rate limit** ([`RateLimiter`], a generic cell rate: `rate_per_second` with `burst` at once), waited for in the
//!   lane;
//! - a **circuit breaker** ([`CircuitBreaker`]): `breaker_failures` consecutive failed attempts open it for
//!   `breaker_cooldown`, then one attempt probes; while it is open, and while the vendor's `Retry-After`
//!   lasts, actions are deferred without counting an attempt;
//! - a **timeout** per attempt;
//! - **retries** of transient failures (network, timeout, 408, 425, 429, 5xx) with exponential backoff and
//!   jitter (half the step, plus up to half again, spread by the action's key), never sooner than the vendor's
//!   `Retry-After`; a **dead letter** after `max_attempts`, or at once for a permanent failure (another 4xx, a
//!   refused address, a payload the connector refuses). Dead letters stay in the outbox, listable and
//!   replayable ([`Incoming::Replayed`]).
//!
//! Right before each send, the policies are checked again ([`DeliveryPolicy`]): an action they stop is recorded
//! as skipped, quiet hours defer it.
//!
//! Outcomes are written on a recorder thread, in batches (whatever gathers while one write waits for the
//! disk goes into the next): delivered (with the connector's result, handed back to the run when it awaits it),
//! retried or deferred (the due time in memory and in the table), skipped, or dead. The recorder writes them to
//! the outcome journal ([`OutcomeJournal`]), a file of its own whose write never waits for the processor's
//! transaction on the outbox; a settler thread then applies them to the outbox in batches, every
//! [`SETTLE_EVERY`] at most, and only then does the dispatcher let their rows go. At start, whatever was
//! journalled and not settled is settled before the outbox is read. A lane runs at most `unrecorded` attempts
//! (1 by default) ahead of their outcomes being journalled, so the actions delivered but not yet recorded when
//! the process dies (delivered again at the next start with the same idempotency key: the run, step and visit,
//! which vendors that take one use to drop the repeat) are at most that many per lane.
//!
//! Retries and the breaker follow the injected clock (tests drive them by hand); rate limits and timeouts are
//! about the vendor's real time and follow Tokio's.
//!
//! [`InFlight`] is the bookkeeping that keeps an action from being taken twice: from the processor's hand-off and
//! from a read of the table, or from a read after it was recorded.
//!
//! The parts, one file each: [`in_flight`] (which rows are held), [`rate_limiter`], [`circuit_breaker`],
//! [`attempt`] (one attempt at a connector, with the policies checked last), [`lanes`] (the delivery thread),
//! [`recorder`] (outcomes to the journal) and [`settler`] (the journal into the outbox).

mod attempt;
pub mod budgets;
mod circuit_breaker;
pub mod delivery_policy;
mod in_flight;
mod lanes;
mod rate_limiter;
mod recorder;
mod settler;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tutti_core::{Millis, ProfileId};
use tutti_flows::Dispatch;
use tutti_flows::policy::Verdict;
use tutti_store::{Outbox, OutboxRow, Outcome, OutcomeJournal};

use crate::delivery_policy::DeliveryPolicy;
use tutti_core::clock::Clock;
use tutti_metrics::Metrics;

pub use attempt::Attempt;
use attempt::{ActionSummary, skipped};
use in_flight::InFlight;
use lanes::Lane;
pub use lanes::{DeliveryLanes, start_delivery};
use recorder::OutcomeRecorder;
use settler::{OutcomeSettler, settle_journalled};

/// The most actions held in memory (queued for a lane, in flight, or waiting for a retry). More wait in the
/// table and are read back as these drain.
const HELD: usize = 65_536;
/// The longest the dispatcher sleeps with nothing to do (retries come due on the injected clock).
const IDLE: Duration = Duration::from_millis(20);

/// ActionSummary reaches the dispatcher's thread.
pub enum Incoming {
    /// Actions the processor has just committed to the outbox, in queue order.
    Queued(Vec<OutboxRow>),
    /// Dead letters made pending again (through the API or the CLI).
    Replayed(Vec<OutboxRow>),
    /// A profile was erased (its outbox rows deleted): forget its actions waiting for a retry.
    Erased(ProfileId),
    /// These profiles' standing changed: check their actions waiting for a retry against the policies now,
    /// so an unsubscribe or a complaint revokes them at once instead of at their next attempt.
    Revisit(Vec<ProfileId>),
    /// The processor has stopped: nothing more is queued until the next start.
    Closed,
    /// A delivery lane's attempts.
    Attempted(Vec<(OutboxRow, Attempt)>),
    /// The recorder has written these outcomes; `bool`: the row was still there (not erased meanwhile).
    Recorded(Vec<(OutboxRow, Outcome, bool)>),
}

/// The processor's end of the hand-off. Dropping it (the processor stopping, even by a panic) tells the
/// dispatcher to finish what it holds and stop.
pub struct ToDispatcher(pub mpsc::Sender<Incoming>);

impl ToDispatcher {
    /// Hands over actions committed to the outbox. If the dispatcher has gone, they stay in the table for the
    /// next start.
    pub fn queued(&self, rows: Vec<OutboxRow>) {
        if !rows.is_empty() {
            let _ = self.0.send(Incoming::Queued(rows));
        }
    }

    pub fn erased(&self, profile: ProfileId) {
        let _ = self.0.send(Incoming::Erased(profile));
    }

    pub fn revisit(&self, profiles: Vec<ProfileId>) {
        if !profiles.is_empty() {
            let _ = self.0.send(Incoming::Revisit(profiles));
        }
    }
}

impl Drop for ToDispatcher {
    fn drop(&mut self) {
        let _ = self.0.send(Incoming::Closed);
    }
}

pub struct Dispatcher {
    /// Read at start (and when behind) on the dispatcher's thread.
    pub outbox: Box<dyn Outbox>,
    /// The outcome journal, written by the recorder thread, and the outbox connection that settles it, on the
    /// settler thread. Taken by [`Dispatcher::run`].
    pub recorder: Option<(Box<dyn OutcomeJournal>, Box<dyn Outbox>)>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The processor's hand-off, the delivery lanes' attempts and the recorder's confirmations.
    pub incoming: mpsc::Receiver<Incoming>,
    /// A sender for the delivery lanes and the recorder to answer on.
    pub answers: mpsc::Sender<Incoming>,
    /// The delivery thread's lanes, started by [`start_delivery`].
    pub lanes: DeliveryLanes,
    /// Where outcome events go (`Action Delivered`, `Action Failed`), for the connectors that record them.
    pub outcomes: Option<(tutti_intake::Intake, HashSet<String>)>,
    /// The policies checked before each attempt, and for revisits.
    pub policy: Arc<DeliveryPolicy>,
    /// Flows' budgets in money, loaded once the journal is settled, before any attempt.
    pub budgets: Arc<budgets::Budgets>,
    /// With several workers: whether this worker holds a partition now. A row of a partition it no longer
    /// holds is let go unattempted (the partition's new owner takes it); `None`: every row is this one's.
    pub holds: Option<Arc<dyn Fn(u32) -> bool + Send + Sync>>,
}

/// The dispatcher thread's working state.
struct DispatcherState {
    rows: InFlight,
    /// Rows with a delivery lane.
    with_lanes: usize,
    /// Attempted rows with the recorder.
    recording: usize,
    /// Where attempts go to be recorded.
    record: Option<mpsc::Sender<Vec<(OutboxRow, Attempt)>>>,
    /// Raised after an erasure: the recorder scrubs the journal once what it holds now is settled and forgotten.
    scrub_journal: Arc<AtomicBool>,
    closed: bool,
    /// The last read of the outbox failed.
    read_failing: bool,
}

impl Dispatcher {
    pub fn run(mut self) {
        let mut state = DispatcherState {
            rows: InFlight::new(HELD),
            with_lanes: 0,
            recording: 0,
            record: None,
            scrub_journal: Arc::default(),
            closed: false,
            read_failing: false,
        };
        if let Some((mut journal, mut outbox)) = self.recorder.take() {
            // Before the first read of the outbox, so that nothing journalled is taken for pending.
            if let Err(e) = settle_journalled(&mut *journal, &mut *outbox) {
                tracing::error!(error = %e, "cannot settle the outcome journal; those actions are delivered again");
            }
            if let Err(e) = self.budgets.load() {
                tracing::error!(error = %e, "cannot read flows' spend; budgets count from zero until restarted");
            }
            let settled = Arc::new(AtomicU64::new(0));
            let (settle, journalled) = mpsc::channel();
            let settler = OutcomeSettler {
                outbox,
                metrics: self.metrics.clone(),
                answers: self.answers.clone(),
                settled: settled.clone(),
            };
            let recorder = OutcomeRecorder::new(
                journal,
                settled,
                settle,
                state.scrub_journal.clone(),
                self.answers.clone(),
                self.outcomes.take(),
                self.clock.clone(),
            );
            let (record, attempts) = mpsc::channel();
            let started = std::thread::Builder::new()
                .name("tutti-settle".into())
                .spawn(move || settler.run(journalled))
                .and_then(|_| {
                    std::thread::Builder::new().name("tutti-record".into()).spawn(move || recorder.run(attempts))
                });
            match started {
                Ok(_) => state.record = Some(record),
                Err(e) => tracing::error!(error = %e, "cannot start the recorder; outcomes wait for the next start"),
            }
        }
        loop {
            let now = self.clock.now_ms();
            let mut ready = state.rows.due(now);
            if let Some(room) = state.rows.read_room() {
                match self.outbox.pending_after(state.rows.read_from, room) {
                    Ok(rows) => {
                        if std::mem::take(&mut state.read_failing) {
                            tracing::info!("the outbox is read again");
                        }
                        ready.extend(state.rows.read(rows, room, now));
                    }
                    // Said once, and tried again at the idle pace, so a database away for a while (restarting)
                    // neither spins nor floods the log.
                    Err(e) => {
                        if !std::mem::replace(&mut state.read_failing, true) {
                            tracing::error!(error = %e, "cannot read the outbox; retrying");
                        }
                    }
                }
            }
            self.send(&mut state, ready);
            if state.closed && state.with_lanes == 0 && state.recording == 0 && state.rows.read_room().is_none() {
                break;
            }
            // Asleep until something arrives or a retry comes due (on the injected clock, so looked at every
            // IDLE).
            let mut wait = if state.rows.read_room().is_some() && !state.read_failing { Duration::ZERO } else { IDLE };
            if let Some(at) = state.rows.next_retry() {
                wait = wait.min(Duration::from_millis((at - self.clock.now_ms()).max(0) as u64));
            }
            let first = match self.incoming.recv_timeout(wait) {
                Ok(message) => message,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                // Unreachable while this holds `answers`; handled as a close all the same.
                Err(mpsc::RecvTimeoutError::Disconnected) => Incoming::Closed,
            };
            self.take(&mut state, first);
            // Whatever else has arrived, without waiting.
            for _ in 0..1024 {
                match self.incoming.try_recv() {
                    Ok(message) => self.take(&mut state, message),
                    Err(_) => break,
                }
            }
        }
        if !state.rows.retries.is_empty() {
            tracing::info!(waiting = state.rows.retries.len(), "actions waiting for a retry resume at the next start");
        }
    }

    fn take(&self, state: &mut DispatcherState, message: Incoming) {
        match message {
            Incoming::Queued(rows) => {
                let ready = state.rows.queued(rows, self.clock.now_ms());
                self.send(state, ready);
            }
            Incoming::Replayed(rows) => {
                let ready = state.rows.replayed(rows, self.clock.now_ms());
                self.send(state, ready);
            }
            Incoming::Attempted(attempts) => {
                state.with_lanes -= attempts.len().min(state.with_lanes);
                self.attempted(state, attempts);
            }
            Incoming::Recorded(recorded) => {
                state.recording -= recorded.len().min(state.recording);
                for (row, outcome, kept) in recorded {
                    state.rows.recorded(row, &outcome, kept);
                }
            }
            Incoming::Erased(profile) => {
                state.rows.erased(profile);
                state.scrub_journal.store(true, Ordering::Release);
            }
            Incoming::Revisit(profiles) => self.revisit(state, &profiles),
            Incoming::Closed => state.closed = true,
        }
    }

    /// Checks the actions of `profiles` waiting for a retry against the policies now; those a policy stops are
    /// recorded as skipped at once.
    fn revisit(&self, state: &mut DispatcherState, profiles: &[ProfileId]) {
        let now = self.clock.now_ms();
        let waiting: Vec<(Millis, u64)> =
            state.rows.retries.iter().filter(|(_, row)| profiles.contains(&row.profile)).map(|(at, _)| *at).collect();
        let mut stopped = Vec::new();
        for at in waiting {
            let Some(row) = state.rows.retries.get(&at) else { continue };
            let Ok(dispatch) = serde_json::from_slice::<Dispatch>(&row.body) else { continue };
            if let Verdict::Skip(reason) = self.policy.check(row.profile, &dispatch, row.created_at, now) {
                let row = state.rows.retries.remove(&at).expect("looked up above");
                let mut attempt = skipped(reason, dispatch.await_result);
                attempt.what =
                    Some(ActionSummary { operation: dispatch.operation, flow: dispatch.flow, step: dispatch.step });
                stopped.push((row, attempt));
            }
        }
        if !stopped.is_empty() {
            self.attempted(state, stopped);
        }
    }

    /// Hands rows to their connector's lanes (a profile's to one lane, in order).
    fn send(&self, state: &mut DispatcherState, mut rows: Vec<OutboxRow>) {
        if let Some(holds) = &self.holds {
            let (mine, theirs): (Vec<OutboxRow>, Vec<OutboxRow>) = rows.into_iter().partition(|r| holds(r.partition));
            if !theirs.is_empty() {
                tracing::debug!(
                    count = theirs.len(),
                    "actions of partitions this worker gave up are left to their new owner"
                );
                state.rows.let_go(&theirs);
            }
            rows = mine;
        }
        if rows.is_empty() {
            return;
        }
        // Gathered per lane first, so a lane gets its share in one message.
        let mut shares: Vec<(&Lane, Vec<OutboxRow>)> = Vec::new();
        for row in rows {
            let lane = self.lanes.lane(&row);
            match shares.iter_mut().find(|(l, _)| l.same_channel(lane)) {
                Some((_, share)) => share.push(row),
                None => shares.push((lane, vec![row])),
            }
        }
        let taken = Instant::now();
        for (lane, share) in shares {
            let count = share.len();
            match lane.send((share, taken)) {
                Ok(()) => state.with_lanes += count,
                // The delivery thread is gone (it panicked): the rows stay held, and pending in the table for the
                // next start.
                Err(_) => tracing::error!(count, "the delivery thread is gone; actions wait for the next start"),
            }
        }
    }

    /// Counts attempts and hands them to the recorder. The hand-off path never waits for the disk: writing
    /// outcomes happens on the recorder's thread.
    fn attempted(&self, state: &mut DispatcherState, attempts: Vec<(OutboxRow, Attempt)>) {
        let now = self.clock.now_ms();
        for (row, attempt) in &attempts {
            let outcome = match attempt.outcome {
                Outcome::Done { .. } => {
                    self.metrics.actions_delivered.fetch_add(1, Ordering::Relaxed);
                    self.metrics.dispatch_latency.observe((now - row.created_at).max(0) as f64 / 1000.0);
                    "delivered"
                }
                Outcome::Retry { .. } => "retried",
                Outcome::Dead { .. } => "dead",
                Outcome::Defer { .. } => "deferred",
                Outcome::Skipped { .. } => "skipped",
            };
            self.metrics.attempted(&row.connector, outcome);
        }
        let count = attempts.len();
        match &state.record {
            Some(record) if record.send(attempts).is_ok() => state.recording += count,
            // No recorder: the rows stay held (not delivered again) and pending in the table, so the next start
            // delivers them again, which the idempotency key makes safe.
            _ => tracing::error!(count, "outcomes cannot be recorded: the recorder is gone"),
        }
    }
}
