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
//! - a **rate limit** ([`Pace`], a generic cell rate: `rate_per_second` with `burst` at once), waited for in the
//!   lane;
//! - a **circuit breaker** ([`Gate`]): `breaker_failures` consecutive failed attempts open it for
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
//! [`Ledger`] is the bookkeeping that keeps an action from being taken twice: from the processor's hand-off and
//! from a read of the table, or from a read after it was recorded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tutti_connectors::{Action, Built, Failure, Registry, Settings};
use tutti_core::flow::Dispatch;
use tutti_core::flow::policy::Verdict;
use tutti_core::{Millis, ProfileId};
use tutti_store::{Outbox, OutboxRow, Outcome, OutcomeJournal};

use crate::clock::Clock;
use crate::delivery_policy::DeliveryPolicy;
use crate::metrics::Metrics;

/// The most actions held in memory (queued for a lane, in flight, or waiting for a retry). More wait in the
/// table and are read back as these drain.
const HELD: usize = 65_536;
/// The most rows taken from the table per read.
const READ: usize = 4_096;
/// How long the recorder waits before trying again when outcomes cannot be written.
const RECORD_RETRY: Duration = Duration::from_millis(100);
/// How often, at most, journalled outcomes are settled into the outbox: each settle is a transaction on the
/// processor's database, so they are few and large. Until then the dispatcher holds the rows.
const SETTLE_EVERY: Duration = Duration::from_millis(25);
/// How long the journal may keep settled entries when no new outcome comes to forget them with.
const FORGET_AFTER: Duration = Duration::from_millis(100);
/// The longest the dispatcher sleeps with nothing to do (retries come due on the injected clock).
const IDLE: Duration = Duration::from_millis(20);
/// The longest wait between retries.
const MAX_BACKOFF_MS: Millis = 3_600_000;
/// While the breaker's probe is out, other actions wait this long (or the cooldown, if shorter).
const PROBE_WAIT_MS: Millis = 5_000;

/// What reaches the dispatcher's thread.
pub(crate) enum Incoming {
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
pub(crate) struct ToDispatcher(pub mpsc::Sender<Incoming>);

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

pub(crate) struct Dispatcher {
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
    pub lanes: Lanes,
    /// Where outcome events go (`Action Delivered`, `Action Failed`), for the connectors that record them.
    pub outcomes: Option<(crate::Intake, HashSet<String>)>,
    /// The policies checked before each attempt, and for revisits.
    pub policy: Arc<DeliveryPolicy>,
}

/// What one attempt came to.
pub(crate) struct Attempt {
    outcome: Outcome,
    result: Option<Value>,
    /// What the action was, read once from its stored form, for its outcome event.
    what: Option<What>,
    /// Told when the outcome is journalled: the lane waits for it before its next attempt.
    journalled: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The parts of an action its outcome event names.
struct What {
    operation: String,
    flow: String,
    step: String,
}

/// Which outbox rows the dispatcher holds in memory, and the rules that keep it from taking one twice.
///
/// A row is taken from the processor's hand-off or from a read of the table, held until its outcome is
/// recorded (and, for a retry, until it is tried again), and only then let go. Reads go in queue order and
/// remember how far they reached (`cursor`): every row at or below it was pending in the table when read (the
/// processor queues in increasing order and commits in order), so a hand-off at or below the cursor came through
/// a read already and is ignored; a read skips what is held. Rows that do not fit stay in the table and mark the
/// ledger `behind`, which reads catch up on.
struct Ledger {
    /// Rows held: with a delivery thread, attempted and not yet recorded, or waiting for a retry.
    held: HashSet<u64>,
    /// Rows waiting for a retry, by when it is due.
    retries: BTreeMap<(Millis, u64), OutboxRow>,
    /// The highest sequence number a read of the table reached: a hand-off at or below it came through a read.
    cursor: u64,
    /// Where the next read starts: the cursor, or before it after a replay.
    read_from: u64,
    /// Whether the table may hold pending rows that are not held (at start, and after rows were turned away).
    behind: bool,
    capacity: usize,
}

impl Ledger {
    fn new(capacity: usize) -> Ledger {
        Ledger { held: HashSet::new(), retries: BTreeMap::new(), cursor: 0, read_from: 0, behind: true, capacity }
    }

    /// Takes rows the processor queued; returns those due now. Rows it has no room for stay in the table.
    fn queued(&mut self, rows: Vec<OutboxRow>, now: Millis) -> Vec<OutboxRow> {
        let mut ready = Vec::with_capacity(rows.len());
        for row in rows {
            if row.seq <= self.cursor || self.held.contains(&row.seq) {
                continue;
            }
            if self.held.len() >= self.capacity {
                self.behind = true;
                continue;
            }
            self.hold(row, now, &mut ready);
        }
        ready
    }

    /// How many rows the next read of the table may take, if one is wanted: only when behind, and only with
    /// room for a good share of a read, so reads are not wasted one row at a time.
    fn read_room(&self) -> Option<usize> {
        let room = self.capacity.saturating_sub(self.held.len()).min(READ);
        (self.behind && room >= (self.capacity / 2).min(READ)).then_some(room)
    }

    /// Takes what a read of pending rows after `read_from` returned (in queue order, no more than
    /// [`Ledger::read_room`]); `asked` is how many the read asked for. Returns the rows due now.
    fn read(&mut self, rows: Vec<OutboxRow>, asked: usize, now: Millis) -> Vec<OutboxRow> {
        if rows.len() < asked {
            self.behind = false;
        }
        let mut ready = Vec::new();
        for row in rows {
            self.cursor = self.cursor.max(row.seq);
            self.read_from = self.read_from.max(row.seq);
            if !self.held.contains(&row.seq) {
                self.hold(row, now, &mut ready);
            }
        }
        ready
    }

    fn hold(&mut self, row: OutboxRow, now: Millis, ready: &mut Vec<OutboxRow>) {
        self.held.insert(row.seq);
        if row.due_at > now {
            self.retries.insert((row.due_at, row.seq), row);
        } else {
            ready.push(row);
        }
    }

    /// Retries due by `now`.
    fn due(&mut self, now: Millis) -> Vec<OutboxRow> {
        let later = self.retries.split_off(&(now + 1, 0));
        std::mem::replace(&mut self.retries, later).into_values().collect()
    }

    fn next_retry(&self) -> Option<Millis> {
        self.retries.keys().next().map(|(at, _)| *at)
    }

    /// An attempt's outcome is recorded (`kept`: the row was still in the table, not erased meanwhile): a retry
    /// waits for its time, anything else is let go.
    fn recorded(&mut self, mut row: OutboxRow, outcome: &Outcome, kept: bool) {
        match outcome {
            Outcome::Retry { at, .. } if kept => {
                row.attempts += 1;
                row.due_at = *at;
                self.retries.insert((*at, row.seq), row);
            }
            Outcome::Defer { at } if kept => {
                row.due_at = *at;
                self.retries.insert((*at, row.seq), row);
            }
            _ => {
                self.held.remove(&row.seq);
            }
        }
    }

    /// Forgets a profile's rows waiting for a retry (the processor has deleted them).
    fn erased(&mut self, profile: ProfileId) {
        let held = &mut self.held;
        self.retries.retain(|_, row| {
            let keep = row.profile != profile;
            if !keep {
                held.remove(&row.seq);
            }
            keep
        });
    }
}

impl Ledger {
    /// Takes dead letters made pending again. A row still held (its death not yet confirmed here) is caught by
    /// the read this asks for.
    fn replayed(&mut self, rows: Vec<OutboxRow>, now: Millis) -> Vec<OutboxRow> {
        let mut ready = Vec::new();
        for row in rows {
            self.read_from = self.read_from.min(row.seq.saturating_sub(1));
            self.behind = true;
            if !self.held.contains(&row.seq) && self.held.len() < self.capacity {
                self.hold(row, now, &mut ready);
            }
        }
        ready
    }
}

/// A circuit breaker and the vendor's requests to pause, on the injected clock.
#[derive(Debug)]
pub(crate) struct Gate {
    threshold: u32,
    cooldown: Millis,
    /// Consecutive failed attempts.
    failures: u32,
    open_until: Millis,
    /// A probe is out (half-open).
    probing: bool,
    /// The vendor's `Retry-After`: no attempts before this.
    paused_until: Millis,
}

impl Gate {
    fn new(settings: &Settings) -> Gate {
        Gate {
            threshold: settings.breaker_failures.max(1),
            cooldown: settings.breaker_cooldown.as_millis() as Millis,
            failures: 0,
            open_until: 0,
            probing: false,
            paused_until: 0,
        }
    }

    /// Whether an attempt may go now; if not, when to try again.
    fn admit(&mut self, now: Millis) -> Result<(), Millis> {
        if now < self.paused_until {
            return Err(self.paused_until);
        }
        if self.failures >= self.threshold {
            if now < self.open_until {
                return Err(self.open_until);
            }
            if self.probing {
                return Err(now + PROBE_WAIT_MS.min(self.cooldown.max(1)));
            }
            self.probing = true;
        }
        Ok(())
    }

    /// The vendor answered (delivered, or refused for good: either way it is up).
    fn answered(&mut self) {
        self.failures = 0;
        self.probing = false;
    }

    /// A transient failure; `retry_after`, the vendor's own request to wait.
    fn failed(&mut self, now: Millis, retry_after: Option<Duration>) {
        if let Some(wait) = retry_after {
            self.paused_until = self.paused_until.max(now + wait.as_millis() as Millis);
        }
        self.failures = self.failures.saturating_add(1);
        self.probing = false;
        if self.failures >= self.threshold {
            self.open_until = now + self.cooldown;
        }
    }

    #[cfg(test)]
    fn is_open(&self, now: Millis) -> bool {
        self.failures >= self.threshold && now < self.open_until
    }
}

/// A rate limit as a generic cell rate: each request takes one `interval`; `burst` may go at once.
#[derive(Debug)]
pub(crate) struct Pace {
    interval: Duration,
    tolerance: Duration,
    /// The theoretical arrival time of the next request.
    next: Option<Instant>,
}

impl Pace {
    fn new(rate_per_second: f64, burst: u32) -> Pace {
        let interval = Duration::from_secs_f64(1.0 / rate_per_second);
        Pace { interval, tolerance: interval * burst.max(1).saturating_sub(1), next: None }
    }

    /// Reserves a slot; returns how long to wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let at = self.next.map_or(now, |next| next.max(now));
        self.next = Some(at + self.interval);
        at.checked_sub(self.tolerance).map_or(Duration::ZERO, |start| start.saturating_duration_since(now))
    }
}

/// The wait before retry number `attempts` (1 after the first failure): 1 s doubling up to an hour, of which
/// the upper half is spread by the action's key, so actions that failed together do not return together.
pub(crate) fn backoff(attempts: u32, key: &str) -> Millis {
    let step = (1_000i64 << attempts.saturating_sub(1).min(22)).min(MAX_BACKOFF_MS);
    let half = step / 2;
    let hash = tutti_core::hash::Fnv1a::new().write(key.as_bytes()).write(&attempts.to_le_bytes()).finish();
    half + (hash % (half as u64 + 1)) as i64
}

/// One connector on the delivery thread: its sender, its breaker, its rate limit.
struct Outlet {
    /// `None`: no connector by that name is configured; its actions become dead letters saying so.
    built: Option<Built>,
    gate: Mutex<Gate>,
    pace: Option<Mutex<Pace>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    policy: Arc<DeliveryPolicy>,
}

impl Outlet {
    async fn deliver(&self, row: &OutboxRow, ready: Instant) -> Attempt {
        let dispatch: Dispatch = match serde_json::from_slice(&row.body) {
            Ok(d) => d,
            Err(e) => return dead(format!("the stored action cannot be read: {e}"), false),
        };
        let mut attempt = self.attempt(row, &dispatch, ready).await;
        attempt.what = Some(What { operation: dispatch.operation, flow: dispatch.flow, step: dispatch.step });
        attempt
    }

    async fn attempt(&self, row: &OutboxRow, dispatch: &Dispatch, ready: Instant) -> Attempt {
        let Some(built) = &self.built else {
            let name = &row.connector;
            let why = if tutti_connectors::kind(name).is_some() {
                format!("the `{name}` connector is not configured; add [connectors.{name}] to tutti.toml")
            } else {
                format!("there is no connector named `{name}`")
            };
            return dead(why, dispatch.await_result);
        };
        if let Err(at) = self.gate.lock().expect("never poisoned").admit(self.clock.now_ms()) {
            return Attempt::new(Outcome::Defer { at }, None);
        }
        self.metrics.dispatch_overhead.observe_duration(ready.elapsed());
        if let Some(pace) = &self.pace {
            let wait = pace.lock().expect("never poisoned").reserve(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        // The policies at the last moment: after any wait for the breaker, the vendor's pause or the rate limit,
        // right before the send.
        match self.policy.check(row.profile, dispatch, row.created_at, self.clock.now_ms()) {
            Verdict::Allow => {}
            Verdict::Skip(reason) => return skipped(reason, dispatch.await_result),
            Verdict::Defer { until, .. } => {
                return Attempt::new(Outcome::Defer { at: until }, None);
            }
        }
        let action = Action {
            key: &dispatch.key,
            profile: row.profile.0,
            flow: &dispatch.flow,
            step: &dispatch.step,
            operation: &dispatch.operation,
            category: &dispatch.category,
            channel: &dispatch.channel,
            payload: &dispatch.payload,
            now: self.clock.now_ms(),
        };
        let timeout = built.settings.timeout;
        let started = Instant::now();
        let sent = match tokio::time::timeout(timeout, built.sender.send(action)).await {
            Ok(sent) => sent,
            Err(_) => Err(Failure::transient(format!("no answer within {timeout:?}"))),
        };
        self.metrics.attempt_latency.observe_duration(started.elapsed());
        let now = self.clock.now_ms();
        let answer = |value: Value| dispatch.await_result.then_some(value);
        match sent {
            Ok(result) => {
                self.gate.lock().expect("never poisoned").answered();
                self.policy.delivered(row.profile, dispatch, now);
                Attempt::new(Outcome::Done { result: result.to_string() }, answer(result))
            }
            Err(Failure::Permanent(error)) => {
                self.gate.lock().expect("never poisoned").answered();
                dead(error, dispatch.await_result)
            }
            Err(Failure::Transient { error, retry_after }) => {
                self.gate.lock().expect("never poisoned").failed(now, retry_after);
                let attempts = row.attempts + 1;
                if attempts >= built.settings.max_attempts {
                    return dead(format!("{error} (after {attempts} attempts)"), dispatch.await_result);
                }
                let wait = backoff(attempts, &dispatch.key).max(retry_after.map_or(0, |d| d.as_millis() as Millis));
                Attempt::new(Outcome::Retry { at: now + wait, error }, None)
            }
        }
    }
}

impl Attempt {
    /// An attempt's outcome, and what a run awaiting it is told.
    fn new(outcome: Outcome, result: Option<Value>) -> Attempt {
        Attempt { outcome, result, what: None, journalled: None }
    }
}

/// An attempt a policy stopped: recorded as skipped with the reason; a run awaiting the result is told.
fn skipped(reason: String, await_result: bool) -> Attempt {
    let result = await_result.then(|| json!({"skipped": &reason}));
    Attempt::new(Outcome::Skipped { reason }, result)
}

fn dead(error: String, await_result: bool) -> Attempt {
    let result = await_result.then(|| json!({"error": &error}));
    Attempt::new(Outcome::Dead { error }, result)
}

/// One delivery lane's queue: rows in order, with when the dispatcher handed them over.
type Lane = tokio::sync::mpsc::UnboundedSender<(Vec<OutboxRow>, Instant)>;

/// The delivery thread's lanes, by connector.
pub(crate) struct Lanes {
    by_connector: HashMap<String, Vec<Lane>>,
    /// For actions naming a connector that is not configured.
    unknown: Lane,
}

impl Lanes {
    fn lane(&self, row: &OutboxRow) -> &Lane {
        match self.by_connector.get(&row.connector) {
            Some(lanes) => &lanes[(row.profile.0 % lanes.len() as u64) as usize],
            None => &self.unknown,
        }
    }
}

/// Starts the delivery thread: one Tokio runtime on one thread, with `concurrency` lanes per connector (each
/// delivering its rows one after another, so a profile's actions arrive in order) and one lane for actions
/// naming a connector that is not configured.
pub(crate) fn start_delivery(
    registry: Registry,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    policy: Arc<DeliveryPolicy>,
    answers: mpsc::Sender<Incoming>,
) -> std::io::Result<Lanes> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outlet = |built: Option<Built>| {
        Arc::new(Outlet {
            gate: Mutex::new(Gate::new(built.as_ref().map_or(&Settings::default(), |b| &b.settings))),
            pace: built
                .as_ref()
                .and_then(|b| b.settings.rate_per_second.map(|rate| Mutex::new(Pace::new(rate, b.settings.burst)))),
            built,
            clock: clock.clone(),
            metrics: metrics.clone(),
            policy: policy.clone(),
        })
    };
    let mut work = Vec::new();
    let mut by_connector = HashMap::new();
    let starters: Vec<_> = registry.connectors.values().map(|b| b.sender.clone()).collect();
    for (name, built) in registry.connectors {
        let outlet = outlet(Some(built.clone()));
        let mut senders = Vec::new();
        for _ in 0..built.settings.concurrency.max(1) {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<OutboxRow>, Instant)>();
            senders.push(tx);
            work.push((outlet.clone(), rx));
        }
        by_connector.insert(name.to_owned(), senders);
    }
    let (unknown, rx) = tokio::sync::mpsc::unbounded_channel();
    work.push((outlet(None), rx));
    std::thread::Builder::new().name("tutti-deliver".into()).spawn(move || {
        // The delivery thread keeps the normal priority: it mostly waits on vendors, and at the processor's lower
        // priority its dispatch overhead under load rose past 2 ms at p99 (docs/benchmarks.md, connector targets).
        runtime.block_on(async move {
            for sender in starters {
                sender.start();
            }
            let mut tasks = tokio::task::JoinSet::new();
            for (outlet, mut rx) in work {
                let answers = answers.clone();
                // Each attempt is handed back as soon as the vendor answers, and a lane with `unrecorded` outcomes
                // not yet in the table waits for the oldest before its next attempt: a delivery not yet recorded
                // is what a crash repeats, so at most `concurrency × unrecorded` of a connector's deliveries can be
                // repeated by one crash. The recorder writes whatever every lane hands it in one transaction.
                // The overhead measured for each row is its time in the dispatcher not spent waiting for a
                // vendor: from when it could have gone (taken, or the lane's previous answer, whichever is later)
                // to its send.
                tasks.spawn(async move {
                    let mut free = Instant::now();
                    let unrecorded_limit = outlet.built.as_ref().map_or(1, |b| b.settings.unrecorded.max(1));
                    let mut unrecorded = std::collections::VecDeque::new();
                    while let Some((rows, taken)) = rx.recv().await {
                        let mut ready = taken.max(free);
                        for row in rows {
                            while unrecorded.len() >= unrecorded_limit {
                                // An error: the recorder is gone (shutting down); the rows stay pending for the
                                // next start.
                                let oldest: tokio::sync::oneshot::Receiver<()> =
                                    unrecorded.pop_front().expect("not empty");
                                let _ = oldest.await;
                                ready = ready.max(Instant::now());
                            }
                            let mut attempt = outlet.deliver(&row, ready).await;
                            let (journalled, recorded) = tokio::sync::oneshot::channel();
                            attempt.journalled = Some(journalled);
                            if answers.send(Incoming::Attempted(vec![(row, attempt)])).is_err() {
                                return;
                            }
                            unrecorded.push_back(recorded);
                            ready = Instant::now();
                        }
                        free = ready;
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
    })?;
    Ok(Lanes { by_connector, unknown })
}

/// The dispatcher thread's working state.
struct Desk {
    ledger: Ledger,
    /// Rows with a delivery lane.
    in_flight: usize,
    /// Attempted rows with the recorder.
    recording: usize,
    /// Where attempts go to be recorded.
    record: Option<mpsc::Sender<Vec<(OutboxRow, Attempt)>>>,
    /// Raised after an erasure: the recorder scrubs the journal once what it holds now is settled and forgotten.
    scrub_journal: Arc<AtomicBool>,
    closed: bool,
}

impl Dispatcher {
    pub fn run(mut self) {
        let mut desk = Desk {
            ledger: Ledger::new(HELD),
            in_flight: 0,
            recording: 0,
            record: None,
            scrub_journal: Arc::default(),
            closed: false,
        };
        if let Some((mut journal, mut outbox)) = self.recorder.take() {
            // Before the first read of the outbox, so that nothing journalled is taken for pending.
            if let Err(e) = settle_journalled(&mut *journal, &mut *outbox) {
                tracing::error!(error = %e, "cannot settle the outcome journal; those actions are delivered again");
            }
            let settled = Arc::new(AtomicU64::new(0));
            let (settle, journalled) = mpsc::channel();
            let settler = Settler {
                outbox,
                metrics: self.metrics.clone(),
                answers: self.answers.clone(),
                settled: settled.clone(),
            };
            let recorder = Recorder {
                journal,
                settled,
                settle,
                scrub: desk.scrub_journal.clone(),
                scrub_after: None,
                last: 0,
                answers: self.answers.clone(),
                outcomes: self.outcomes.take(),
                clock: self.clock.clone(),
            };
            let (record, attempts) = mpsc::channel();
            let started = std::thread::Builder::new()
                .name("tutti-settle".into())
                .spawn(move || settler.run(journalled))
                .and_then(|_| {
                    std::thread::Builder::new().name("tutti-record".into()).spawn(move || recorder.run(attempts))
                });
            match started {
                Ok(_) => desk.record = Some(record),
                Err(e) => tracing::error!(error = %e, "cannot start the recorder; outcomes wait for the next start"),
            }
        }
        loop {
            let now = self.clock.now_ms();
            let mut ready = desk.ledger.due(now);
            if let Some(room) = desk.ledger.read_room() {
                match self.outbox.pending_after(desk.ledger.read_from, room) {
                    Ok(rows) => ready.extend(desk.ledger.read(rows, room, now)),
                    Err(e) => tracing::error!(error = %e, "cannot read the outbox; retrying"),
                }
            }
            self.send(&mut desk, ready);
            if desk.closed && desk.in_flight == 0 && desk.recording == 0 && desk.ledger.read_room().is_none() {
                break;
            }
            // Asleep until something arrives or a retry comes due (on the injected clock, so looked at every
            // IDLE).
            let mut wait = if desk.ledger.read_room().is_some() { Duration::ZERO } else { IDLE };
            if let Some(at) = desk.ledger.next_retry() {
                wait = wait.min(Duration::from_millis((at - self.clock.now_ms()).max(0) as u64));
            }
            let first = match self.incoming.recv_timeout(wait) {
                Ok(message) => message,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                // Unreachable while this holds `answers`; handled as a close all the same.
                Err(mpsc::RecvTimeoutError::Disconnected) => Incoming::Closed,
            };
            self.take(&mut desk, first);
            // Whatever else has arrived, without waiting.
            for _ in 0..1024 {
                match self.incoming.try_recv() {
                    Ok(message) => self.take(&mut desk, message),
                    Err(_) => break,
                }
            }
        }
        if !desk.ledger.retries.is_empty() {
            tracing::info!(waiting = desk.ledger.retries.len(), "actions waiting for a retry resume at the next start");
        }
    }

    fn take(&self, desk: &mut Desk, message: Incoming) {
        match message {
            Incoming::Queued(rows) => {
                let ready = desk.ledger.queued(rows, self.clock.now_ms());
                self.send(desk, ready);
            }
            Incoming::Replayed(rows) => {
                let ready = desk.ledger.replayed(rows, self.clock.now_ms());
                self.send(desk, ready);
            }
            Incoming::Attempted(attempts) => {
                desk.in_flight -= attempts.len().min(desk.in_flight);
                self.attempted(desk, attempts);
            }
            Incoming::Recorded(recorded) => {
                desk.recording -= recorded.len().min(desk.recording);
                for (row, outcome, kept) in recorded {
                    desk.ledger.recorded(row, &outcome, kept);
                }
            }
            Incoming::Erased(profile) => {
                desk.ledger.erased(profile);
                desk.scrub_journal.store(true, Ordering::Release);
            }
            Incoming::Revisit(profiles) => self.revisit(desk, &profiles),
            Incoming::Closed => desk.closed = true,
        }
    }

    /// Checks the actions of `profiles` waiting for a retry against the policies now; those a policy stops are
    /// recorded as skipped at once.
    fn revisit(&self, desk: &mut Desk, profiles: &[ProfileId]) {
        let now = self.clock.now_ms();
        let waiting: Vec<(Millis, u64)> =
            desk.ledger.retries.iter().filter(|(_, row)| profiles.contains(&row.profile)).map(|(at, _)| *at).collect();
        let mut stopped = Vec::new();
        for at in waiting {
            let Some(row) = desk.ledger.retries.get(&at) else { continue };
            let Ok(dispatch) = serde_json::from_slice::<Dispatch>(&row.body) else { continue };
            if let Verdict::Skip(reason) = self.policy.check(row.profile, &dispatch, row.created_at, now) {
                let row = desk.ledger.retries.remove(&at).expect("looked up above");
                let mut attempt = skipped(reason, dispatch.await_result);
                attempt.what = Some(What { operation: dispatch.operation, flow: dispatch.flow, step: dispatch.step });
                stopped.push((row, attempt));
            }
        }
        if !stopped.is_empty() {
            self.attempted(desk, stopped);
        }
    }

    /// Hands rows to their connector's lanes (a profile's to one lane, in order).
    fn send(&self, desk: &mut Desk, rows: Vec<OutboxRow>) {
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
                Ok(()) => desk.in_flight += count,
                // The delivery thread is gone (it panicked): the rows stay held, and pending in the table for the
                // next start.
                Err(_) => tracing::error!(count, "the delivery thread is gone; actions wait for the next start"),
            }
        }
    }

    /// Counts attempts and hands them to the recorder. The hand-off path never waits for the disk: writing
    /// outcomes happens on the recorder's thread.
    fn attempted(&self, desk: &mut Desk, attempts: Vec<(OutboxRow, Attempt)>) {
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
        match &desk.record {
            Some(record) if record.send(attempts).is_ok() => desk.recording += count,
            // No recorder: the rows stay held (not delivered again) and pending in the table, so the next start
            // delivers them again, which the idempotency key makes safe.
            _ => tracing::error!(count, "outcomes cannot be recorded: the recorder is gone"),
        }
    }
}

/// One of the dispatcher's own events, as the log stores it (received now, its message id as given).
fn dispatcher_event(value: Value, now: Millis) -> Result<tutti_store::NewEvent, tutti_core::EventError> {
    let event = tutti_core::Event::from_json(value, None, &tutti_core::BatchDefaults::default(), now, String::new)?;
    Ok(tutti_store::NewEvent {
        message_id: event.message_id,
        client_message_id: true,
        received_at: now,
        body: event.body,
    })
}

/// Settles what was journalled but not settled when the engine last stopped (or died), and has the journal hand
/// out only ids above what the outbox settled. Runs before the dispatcher first reads the outbox.
fn settle_journalled(journal: &mut dyn OutcomeJournal, outbox: &mut dyn Outbox) -> tutti_store::Result<()> {
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

/// Writes attempts' outcomes to the journal in batches on its own thread (whatever has gathered while the last
/// write waited for the disk goes into the next), then hands them to the [`Settler`].
struct Recorder {
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
    outcomes: Option<(crate::Intake, HashSet<String>)>,
    clock: Arc<dyn Clock>,
}

impl Recorder {
    fn run(mut self, attempts: mpsc::Receiver<Vec<(OutboxRow, Attempt)>>) {
        let mut batch: Vec<(OutboxRow, Attempt)> = Vec::new();
        let mut forgotten = 0;
        loop {
            let first = match attempts.recv_timeout(FORGET_AFTER) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
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
                    Err(crate::IntakeError::Closed) => {
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
                        if let Err(e) = self.append(courtesy, false) {
                            tracing::warn!(error = %e, "outcome events not recorded (the engine is stopping?)");
                        }
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

    /// Appends events to the log; `flushed`: wait until they are on disk, not only committed.
    fn append(&self, events: Vec<tutti_store::NewEvent>, flushed: bool) -> Result<(), crate::IntakeError> {
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
fn outcomes_of(attempts: &[(OutboxRow, Attempt)]) -> Vec<(u64, Outcome)> {
    attempts.iter().map(|(row, attempt)| (row.seq, attempt.outcome.clone())).collect()
}

/// Lets attempts go without settling them (the engine is stopping, or the settler is gone): their rows stay
/// pending in the table for the next start.
fn abandon(answers: &mpsc::Sender<Incoming>, batch: Vec<(OutboxRow, Attempt)>) {
    let back = batch.into_iter().map(|(row, attempt)| (row, attempt.outcome, false)).collect();
    let _ = answers.send(Incoming::Recorded(back));
}

/// Applies journalled outcomes to the outbox, every [`SETTLE_EVERY`] at most, and then lets the dispatcher know.
struct Settler {
    outbox: Box<dyn Outbox>,
    metrics: Arc<Metrics>,
    answers: mpsc::Sender<Incoming>,
    /// The highest journal id settled, for the recorder to forget.
    settled: Arc<AtomicU64>,
}

impl Settler {
    fn run(mut self, journalled: mpsc::Receiver<(u64, Vec<(OutboxRow, Attempt)>)>) {
        let mut waiting: Vec<(OutboxRow, Attempt)> = Vec::new();
        let mut upto = 0;
        let mut last = Instant::now();
        let mut open = true;
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
                    last = Instant::now();
                    self.settled.store(upto, Ordering::Release);
                    self.recorded(std::mem::take(&mut waiting), kept);
                }
                Err(e) => {
                    // Journalled already: kept and settled with the next try, or at the next start.
                    tracing::error!(error = %e, "cannot settle outcomes into the outbox; trying again");
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
        journal.append(&[(1, Outcome::Done { result: "{}".into() })], 0).unwrap();
        let second = journal.append(&[(2, retry.clone())], 0).unwrap();
        outbox.settle(&[(1, Outcome::Done { result: "{}".into() }), (2, retry)], second).unwrap();
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

    fn row(seq: u64, profile: u64, due_at: Millis) -> OutboxRow {
        OutboxRow {
            seq,
            key: format!("run-{seq}:tell:1"),
            profile: ProfileId(profile),
            connector: "webhook".into(),
            body: b"{}".to_vec(),
            created_at: 0,
            due_at,
            attempts: 0,
        }
    }

    fn seqs(rows: &[OutboxRow]) -> Vec<u64> {
        rows.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn the_ledger_never_takes_a_row_twice_between_hand_offs_and_reads() {
        let mut ledger = Ledger::new(100);
        // At start it reads the table; the processor hands over row 3 meanwhile.
        assert_eq!(ledger.read_room(), Some(100));
        assert_eq!(seqs(&ledger.queued(vec![row(3, 1, 0)], 10)), [3]);
        // The read finds 1..=3 pending (3 is held already) and reaches the end.
        let ready = ledger.read(vec![row(1, 1, 0), row(2, 2, 50), row(3, 1, 0)], 100, 10);
        assert_eq!(seqs(&ready), [1], "2 waits for its retry, 3 is held");
        assert_eq!(ledger.read_room(), None, "caught up");
        // The hand-off of a row the read already took (queued before the read, handed over after) is ignored,
        // even once that row is recorded and let go.
        ledger.recorded(row(1, 1, 0), &Outcome::Done { result: "{}".into() }, true);
        assert!(ledger.queued(vec![row(1, 1, 0)], 10).is_empty());
        assert!(ledger.queued(vec![row(3, 1, 0)], 10).is_empty(), "still held");
        assert_eq!(seqs(&ledger.queued(vec![row(4, 3, 0)], 10)), [4]);
        assert_eq!(ledger.due(49).len(), 0);
        assert_eq!(seqs(&ledger.due(50)), [2]);
    }

    #[test]
    fn the_ledger_leaves_what_does_not_fit_in_the_table_and_reads_it_back() {
        let mut ledger = Ledger::new(4);
        assert_eq!(ledger.read(Vec::new(), 4, 0).len(), 0);
        let ready = ledger.queued((1..=6).map(|s| row(s, s, 0)).collect(), 0);
        assert_eq!(seqs(&ready), [1, 2, 3, 4], "5 and 6 stay in the table");
        assert_eq!(ledger.read_room(), None, "no room to read into");
        for r in ready.into_iter().take(3) {
            ledger.recorded(r, &Outcome::Done { result: "{}".into() }, true);
        }
        let room = ledger.read_room().expect("room again, and behind");
        assert_eq!(room, 3);
        // The table still has 4 (held) and 5, 6 pending after the cursor.
        let ready = ledger.read(vec![row(4, 4, 0), row(5, 5, 0), row(6, 6, 0)], room, 0);
        assert_eq!(seqs(&ready), [5, 6]);
        assert_eq!(ledger.read_room(), None, "a full read may not be the end: still behind, but no room");
        assert!(ledger.behind);
    }

    #[test]
    fn retries_wait_in_the_ledger_and_erasure_or_deletion_lets_them_go() {
        let mut ledger = Ledger::new(10);
        ledger.read(Vec::new(), 10, 0);
        let ready = ledger.queued(vec![row(1, 7, 0), row(2, 8, 0), row(3, 7, 0)], 0);
        let mut ready = ready.into_iter();
        let (a, b, c) = (ready.next().unwrap(), ready.next().unwrap(), ready.next().unwrap());
        ledger.recorded(a, &Outcome::Retry { at: 1_000, error: "HTTP 503".into() }, true);
        ledger.recorded(b, &Outcome::Retry { at: 2_000, error: "HTTP 503".into() }, true);
        // Row 3's profile was erased while it was being delivered: its row is gone, so it is not retried.
        ledger.recorded(c, &Outcome::Retry { at: 1_000, error: "HTTP 503".into() }, false);
        assert_eq!(ledger.next_retry(), Some(1_000));
        ledger.erased(ProfileId(7));
        assert_eq!(ledger.next_retry(), Some(2_000));
        let due = ledger.due(2_000);
        assert_eq!(seqs(&due), [2]);
        assert_eq!((due[0].attempts, due[0].due_at), (1, 2_000));
        assert_eq!(ledger.held.len(), 1, "row 2 stays held while it is tried again");
        ledger.recorded(due.into_iter().next().unwrap(), &Outcome::Dead { error: "HTTP 400".into() }, true);
        assert!(ledger.held.is_empty());
    }

    #[test]
    fn replayed_dead_letters_are_taken_again_and_a_read_catches_what_was_still_held() {
        let mut ledger = Ledger::new(10);
        let ready = ledger.read(vec![row(1, 1, 0), row(2, 2, 0)], 10, 0);
        let mut ready = ready.into_iter();
        let (a, b) = (ready.next().unwrap(), ready.next().unwrap());
        ledger.recorded(a, &Outcome::Dead { error: "HTTP 400".into() }, true);
        assert!(ledger.queued(vec![row(1, 1, 0)], 0).is_empty(), "a stale hand-off is still ignored");
        // Row 1 is replayed: taken again. Row 2 is replayed before its death was confirmed here: not taken
        // twice, but the ledger asks for a read from before it.
        assert_eq!(seqs(&ledger.replayed(vec![row(1, 1, 5), row(2, 2, 5)], 5)), [1]);
        assert_eq!(ledger.read_room(), Some(8));
        assert_eq!(ledger.read_from, 0);
        ledger.recorded(b, &Outcome::Dead { error: "HTTP 400".into() }, true);
        let ready = ledger.read(vec![row(1, 1, 5), row(2, 2, 5)], 8, 5);
        assert_eq!(seqs(&ready), [2], "row 1 is held; row 2, pending again, is taken once");
        assert_eq!((ledger.read_from, ledger.cursor), (2, 2));
    }

    #[test]
    fn deferred_rows_wait_without_counting_an_attempt() {
        let mut ledger = Ledger::new(10);
        ledger.read(Vec::new(), 10, 0);
        let r = ledger.queued(vec![row(1, 1, 0)], 0).pop().unwrap();
        ledger.recorded(r, &Outcome::Defer { at: 500 }, true);
        let due = ledger.due(500);
        assert_eq!((due[0].attempts, due[0].due_at), (0, 500));
    }

    fn settings(failures: u32, cooldown_ms: u64) -> Settings {
        Settings {
            breaker_failures: failures,
            breaker_cooldown: Duration::from_millis(cooldown_ms),
            ..Settings::default()
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_probes_once_after_the_cooldown() {
        let mut gate = Gate::new(&settings(3, 10_000));
        for now in [0, 1, 2] {
            assert_eq!(gate.admit(now), Ok(()));
            gate.failed(now, None);
        }
        assert!(gate.is_open(3));
        assert_eq!(gate.admit(3), Err(10_002), "open: deferred to the end of the cooldown");
        assert_eq!(gate.admit(10_002), Ok(()), "half-open: one probe");
        assert_eq!(gate.admit(10_003), Err(15_003), "others wait while the probe is out");
        gate.failed(10_500, None);
        assert_eq!(gate.admit(10_501), Err(20_500), "a failed probe opens it again");
        assert_eq!(gate.admit(20_500), Ok(()));
        gate.answered();
        assert_eq!(gate.admit(20_501), Ok(()), "closed after a good probe");
        assert_eq!(gate.admit(20_502), Ok(()));
        // A success between failures resets the count.
        gate.failed(1, None);
        gate.failed(2, None);
        gate.answered();
        gate.failed(3, None);
        assert!(!gate.is_open(4));
    }

    #[test]
    fn retry_after_pauses_the_whole_connector() {
        let mut gate = Gate::new(&settings(100, 1_000));
        gate.failed(1_000, Some(Duration::from_secs(30)));
        assert_eq!(gate.admit(1_001), Err(31_000));
        assert_eq!(gate.admit(31_000), Ok(()));
    }

    #[test]
    fn the_pace_lets_a_burst_through_then_spaces_requests() {
        let mut pace = Pace::new(10.0, 3);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| pace.reserve(t0)).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 0, 100, 200, 300]);
        // After a quiet second the burst is available again.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(pace.reserve(later), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_with_jitter_in_its_upper_half() {
        for attempts in 1..=30u32 {
            let step = (1_000i64 << (attempts - 1).min(22)).min(MAX_BACKOFF_MS);
            let mut seen = HashSet::new();
            for k in 0..200 {
                let wait = backoff(attempts, &format!("run-{k}:s:1"));
                assert!(wait >= step / 2 && wait <= step, "attempt {attempts}: {wait} outside [{}, {step}]", step / 2);
                seen.insert(wait);
            }
            assert!(seen.len() > 100, "attempt {attempts}: keys spread the retries ({} distinct)", seen.len());
        }
        assert_eq!(backoff(3, "a"), backoff(3, "a"), "the same action waits the same");
    }
}
