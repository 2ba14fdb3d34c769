//! The dispatcher: delivers the outbox, at least once, to the built-in connectors.
//!
//! The processor hands it each batch's new actions in memory right after committing them ([`ToDispatcher`]),
//! so the hot path never reads the outbox table: the table is the durable record, read back only at start
//! (and when more actions wait than the dispatcher holds in memory). Actions go straight to `[webhook]
//! concurrency` lanes, tasks on one delivery thread running hyper's pooled HTTP/1.1 client: a profile's actions
//! always to the same lane, one after another, so they arrive in order, while the lanes deliver side by side and
//! none waits for another. Outcomes are written on a recorder thread, in batches (whatever gathers while one
//! write waits for the database goes into the next): delivered (with the connector's result, handed back to the
//! run when it awaits it), retried later with exponential backoff (network errors, 429 and 5xx; the retry waits
//! in memory and in the table), or a dead letter (other 4xx, a refused address, https, attempts exhausted). An
//! action delivered but not yet recorded when the process dies is delivered again at the next start: the
//! `Idempotency-Key` header (the run, step and visit) lets the receiver see it is the same action.
//!
//! [`Ledger`] is the bookkeeping that keeps an action from being taken twice: from the processor's hand-off and
//! from a read of the table, or from a read after it was recorded.
//!
//! The webhook connector refuses private, loopback and link-local addresses unless the host is allow-listed
//! in `[webhook] allow_private`, so flows cannot be turned against the network Tutti runs in. The check sits in
//! the HTTP client's connector ([`GuardedConnector`], [`GuardedResolver`]): the addresses checked are the
//! addresses connected to, so a name that resolves to a public address for a check and to a private one a
//! moment later (DNS rebinding) gains nothing. IP literals are checked without a lookup; names are looked up on
//! Tokio's blocking pool.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tutti_core::flow::Dispatch;
use tutti_core::{Millis, ProfileId};
use tutti_store::{Outbox, OutboxRow, Outcome};

use crate::clock::Clock;
use crate::config::WebhookConfig;
use crate::metrics::Metrics;
use crate::processor::ActionResult;

/// The most actions held in memory (queued for a delivery thread, in flight, or waiting for a retry). More
/// wait in the table and are read back as these drain.
const HELD: usize = 65_536;
/// The most rows taken from the table per read.
const READ: usize = 4_096;
/// How long the recorder waits before trying again when outcomes cannot be written.
const RECORD_RETRY: Duration = Duration::from_millis(100);
/// The longest the dispatcher sleeps with nothing to do (retries come due on the injected clock).
const IDLE: Duration = Duration::from_millis(20);
/// The longest wait between retries.
const MAX_BACKOFF_MS: Millis = 3_600_000;
/// The most of a response body kept as the action's result.
const MAX_RESULT_BYTES: u64 = 64 * 1024;

/// What reaches the dispatcher's thread.
pub(crate) enum Incoming {
    /// Actions the processor has just committed to the outbox, in queue order.
    Queued(Vec<OutboxRow>),
    /// A profile was erased (its outbox rows deleted): forget its actions waiting for a retry.
    Erased(ProfileId),
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
}

impl Drop for ToDispatcher {
    fn drop(&mut self) {
        let _ = self.0.send(Incoming::Closed);
    }
}

pub(crate) struct Dispatcher {
    /// Read at start (and when behind) on the dispatcher's thread.
    pub outbox: Box<dyn Outbox>,
    /// Written by the recorder thread: outcomes, in batches. Taken by [`Dispatcher::run`].
    pub recorder: Option<Box<dyn Outbox>>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub results: mpsc::Sender<ActionResult>,
    /// The processor's hand-off, the delivery lanes' attempts and the recorder's confirmations.
    pub incoming: mpsc::Receiver<Incoming>,
    /// A sender for the delivery lanes and the recorder to answer on.
    pub answers: mpsc::Sender<Incoming>,
    pub webhook: WebhookConfig,
}

/// What one attempt came to.
pub(crate) struct Attempt {
    outcome: Outcome,
    result: Option<Value>,
}

/// Delivers one action through its connector. Lives on a Tokio runtime (the delivery thread's).
struct Deliverer {
    clock: Arc<dyn Clock>,
    webhook: WebhookConfig,
    client: HttpClient,
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
    /// The highest sequence number a read of the table reached.
    cursor: u64,
    /// Whether the table may hold pending rows that are not held (at start, and after rows were turned away).
    behind: bool,
    capacity: usize,
}

impl Ledger {
    fn new(capacity: usize) -> Ledger {
        Ledger { held: HashSet::new(), retries: BTreeMap::new(), cursor: 0, behind: true, capacity }
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

    /// Takes what a read of pending rows after the cursor returned (in queue order, no more than
    /// [`Ledger::read_room`]); `asked` is how many the read asked for. Returns the rows due now.
    fn read(&mut self, rows: Vec<OutboxRow>, asked: usize, now: Millis) -> Vec<OutboxRow> {
        if rows.len() < asked {
            self.behind = false;
        }
        let mut ready = Vec::new();
        for row in rows {
            self.cursor = self.cursor.max(row.seq);
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

/// The dispatcher thread's working state.
struct Desk {
    ledger: Ledger,
    /// One channel per delivery lane (a profile's rows always to the same one).
    lanes: Vec<tokio::sync::mpsc::UnboundedSender<Vec<OutboxRow>>>,
    /// Rows with a delivery lane.
    in_flight: usize,
    /// Attempted rows with the recorder.
    recording: usize,
    /// Where attempts go to be recorded.
    record: Option<mpsc::Sender<Vec<(OutboxRow, Attempt)>>>,
    closed: bool,
    /// Where rows are delivered if the delivery thread is gone: a runtime on this thread, made when needed.
    fallback: Option<(tokio::runtime::Runtime, Deliverer)>,
}

/// Starts the delivery thread: one Tokio runtime on one thread with `[webhook] concurrency` lanes, each
/// delivering its rows one after another (so a profile's actions arrive in order) while the lanes run side by
/// side. Returns the lanes' channels.
fn spawn_delivery(
    clock: Arc<dyn Clock>,
    webhook: WebhookConfig,
    answers: mpsc::Sender<Incoming>,
) -> std::io::Result<Vec<tokio::sync::mpsc::UnboundedSender<Vec<OutboxRow>>>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let lanes = webhook.concurrency.max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..lanes).map(|_| tokio::sync::mpsc::unbounded_channel::<Vec<OutboxRow>>()).unzip();
    std::thread::Builder::new().name("tutti-deliver".into()).spawn(move || {
        crate::processor::lower_priority("delivery thread");
        runtime.block_on(async move {
            let deliverer = Arc::new(Deliverer::new(clock, webhook));
            let mut tasks = tokio::task::JoinSet::new();
            for mut rx in receivers {
                let (deliverer, answers) = (deliverer.clone(), answers.clone());
                tasks.spawn(async move {
                    while let Some(rows) = rx.recv().await {
                        if answers.send(Incoming::Attempted(deliverer.deliver_all(rows).await)).is_err() {
                            break;
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
    })?;
    Ok(senders)
}

impl Dispatcher {
    pub fn run(mut self) {
        let mut desk = Desk {
            ledger: Ledger::new(HELD),
            lanes: Vec::new(),
            in_flight: 0,
            recording: 0,
            record: None,
            closed: false,
            fallback: None,
        };
        if let Some(outbox) = self.recorder.take() {
            let recorder = Recorder {
                outbox,
                metrics: self.metrics.clone(),
                results: self.results.clone(),
                answers: self.answers.clone(),
            };
            let (record, attempts) = mpsc::channel();
            match std::thread::Builder::new().name("tutti-record".into()).spawn(move || recorder.run(attempts)) {
                Ok(_) => desk.record = Some(record),
                Err(e) => tracing::error!(error = %e, "cannot start the recorder; outcomes wait for the next start"),
            }
        }
        match spawn_delivery(self.clock.clone(), self.webhook.clone(), self.answers.clone()) {
            Ok(lanes) => desk.lanes = lanes,
            Err(e) => tracing::error!(error = %e, "cannot start the delivery thread; delivering on the dispatcher's"),
        }
        loop {
            let now = self.clock.now_ms();
            let mut ready = desk.ledger.due(now);
            if let Some(room) = desk.ledger.read_room() {
                match self.outbox.pending_after(desk.ledger.cursor, room) {
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
            Incoming::Erased(profile) => desk.ledger.erased(profile),
            Incoming::Closed => desk.closed = true,
        }
    }

    /// Hands rows to the delivery lanes (a profile's to one lane, in order); delivers here what no lane takes.
    fn send(&self, desk: &mut Desk, rows: Vec<OutboxRow>) {
        if rows.is_empty() {
            return;
        }
        let mut here = Vec::new();
        if desk.lanes.is_empty() {
            here = rows;
        } else {
            let n = desk.lanes.len();
            let mut shares: Vec<Vec<OutboxRow>> = vec![Vec::new(); n];
            for row in rows {
                shares[(row.profile.0 % n as u64) as usize].push(row);
            }
            for (share, lane) in shares.into_iter().zip(&desk.lanes) {
                if share.is_empty() {
                    continue;
                }
                let count = share.len();
                match lane.send(share) {
                    Ok(()) => desk.in_flight += count,
                    Err(tokio::sync::mpsc::error::SendError(share)) => here.extend(share),
                }
            }
        }
        if here.is_empty() {
            return;
        }
        if desk.fallback.is_none() {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => {
                    let deliverer = {
                        let _inside = runtime.enter();
                        Deliverer::new(self.clock.clone(), self.webhook.clone())
                    };
                    desk.fallback = Some((runtime, deliverer));
                }
                Err(e) => {
                    // Nothing can deliver: the rows stay pending in the table for the next start.
                    tracing::error!(error = %e, "cannot deliver: no runtime for the webhook client");
                    return;
                }
            }
        }
        let (runtime, deliverer) = desk.fallback.as_ref().expect("made above");
        let attempts = runtime.block_on(deliverer.deliver_all(here));
        self.attempted(desk, attempts);
    }

    /// Counts deliveries and hands the attempts to the recorder. The hand-off path never waits for the
    /// database: writing outcomes (which may wait for the processor's commit) happens on the recorder's thread.
    fn attempted(&self, desk: &mut Desk, attempts: Vec<(OutboxRow, Attempt)>) {
        let now = self.clock.now_ms();
        for (row, attempt) in &attempts {
            if let Outcome::Done { .. } = attempt.outcome {
                self.metrics.actions_delivered.fetch_add(1, Ordering::Relaxed);
                self.metrics.dispatch_latency.observe((now - row.created_at).max(0) as f64 / 1000.0);
            }
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

/// Writes delivery outcomes in batches on its own thread: whatever has gathered while the last write waited for
/// the database goes into the next transaction.
struct Recorder {
    outbox: Box<dyn Outbox>,
    metrics: Arc<Metrics>,
    results: mpsc::Sender<ActionResult>,
    answers: mpsc::Sender<Incoming>,
}

impl Recorder {
    fn run(mut self, attempts: mpsc::Receiver<Vec<(OutboxRow, Attempt)>>) {
        let mut batch: Vec<(OutboxRow, Attempt)> = Vec::new();
        while let Ok(first) = attempts.recv() {
            batch.extend(first);
            batch.extend(attempts.try_iter().flatten());
            loop {
                let outcomes: Vec<(u64, Outcome)> =
                    batch.iter().map(|(row, attempt)| (row.seq, attempt.outcome.clone())).collect();
                match self.outbox.settle(&outcomes) {
                    Ok(kept) => {
                        self.recorded(std::mem::take(&mut batch), kept);
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

    /// Logs and counts what was written, hands results back to the runs awaiting them, and tells the
    /// dispatcher, which lets the rows go (or keeps them for their retry).
    fn recorded(&self, batch: Vec<(OutboxRow, Attempt)>, kept: Vec<bool>) {
        let mut back = Vec::with_capacity(batch.len());
        for ((row, attempt), kept) in batch.into_iter().zip(kept) {
            match &attempt.outcome {
                Outcome::Done { .. } => {}
                Outcome::Retry { error, .. } => {
                    self.metrics.actions_retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key = %row.key, attempts = row.attempts + 1, %error, "delivery failed; will retry");
                }
                Outcome::Dead { error } => {
                    self.metrics.actions_dead.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(key = %row.key, %error, "delivery given up; kept as a dead letter");
                }
            }
            if let Some(result) = attempt.result {
                let _ = self.results.send(ActionResult { profile: row.profile, key: row.key.clone(), result });
            }
            back.push((row, attempt.outcome, kept));
        }
        let _ = self.answers.send(Incoming::Recorded(back));
    }
}

/// The HTTP client of the webhook connector.
type HttpClient = hyper_util::client::legacy::Client<GuardedConnector, http_body_util::Full<bytes::Bytes>>;

impl Deliverer {
    /// Must be built inside the Tokio runtime its requests will run on (connections belong to it).
    fn new(clock: Arc<dyn Clock>, webhook: WebhookConfig) -> Deliverer {
        let connector =
            GuardedConnector { resolver: Arc::new(GuardedResolver { allow_private: webhook.allow_private.clone() }) };
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(webhook.concurrency.max(1))
            .build(connector);
        Deliverer { clock, webhook, client }
    }

    /// Delivers rows one after another, in order.
    async fn deliver_all(&self, rows: Vec<OutboxRow>) -> Vec<(OutboxRow, Attempt)> {
        let mut attempts = Vec::with_capacity(rows.len());
        for row in rows {
            let attempt = self.deliver(&row).await;
            attempts.push((row, attempt));
        }
        attempts
    }

    async fn deliver(&self, row: &OutboxRow) -> Attempt {
        let dispatch: Dispatch = match serde_json::from_slice(&row.body) {
            Ok(d) => d,
            Err(e) => return dead(format!("the stored action cannot be read: {e}")),
        };
        let delivered = match dispatch.connector.as_str() {
            "log" => {
                tracing::info!(target: "tutti::actions", key = %dispatch.key, flow = %dispatch.flow,
                    step = %dispatch.step, payload = %dispatch.payload, "log action");
                Ok(json!({"logged": true}))
            }
            "webhook" => self.webhook(&dispatch).await,
            other => Err(Failure::Permanent(format!("no connector named `{other}`"))),
        };
        match delivered {
            Ok(result) => Attempt {
                outcome: Outcome::Done { result: result.to_string() },
                result: dispatch.await_result.then_some(result),
            },
            Err(Failure::Permanent(error)) => Attempt {
                result: dispatch.await_result.then(|| json!({"error": error})),
                outcome: Outcome::Dead { error },
            },
            Err(Failure::Transient(error)) => {
                let attempts = row.attempts + 1;
                if attempts >= self.webhook.max_attempts.max(1) {
                    let error = format!("{error} (after {attempts} attempts)");
                    return Attempt {
                        result: dispatch.await_result.then(|| json!({"error": error})),
                        outcome: Outcome::Dead { error },
                    };
                }
                let backoff = (1_000i64 << (attempts - 1).min(22)).min(MAX_BACKOFF_MS);
                Attempt { outcome: Outcome::Retry { at: self.clock.now_ms() + backoff, error }, result: None }
            }
        }
    }

    async fn webhook(&self, dispatch: &Dispatch) -> Result<Value, Failure> {
        let Some(url) = dispatch.payload.get("url").and_then(Value::as_str) else {
            return Err(Failure::Permanent("a webhook action needs a `url` in its payload".into()));
        };
        let uri: hyper::Uri = url.parse().map_err(|e| Failure::Permanent(format!("`{url}` is not a URL: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(Failure::Permanent(format!(
                    "`{url}`: this build's webhook connector speaks plain HTTP only (TLS comes with the connectors)"
                )));
            }
            _ => return Err(Failure::Permanent(format!("`{url}`: only http and https are allowed"))),
        }
        if uri.host().is_none() {
            return Err(Failure::Permanent(format!("`{url}` has no host")));
        }
        let mut body = dispatch.payload.clone();
        if let Some(object) = body.as_object_mut() {
            object.remove("url");
        }
        let bytes = serde_json::to_vec(&body).expect("JSON serialises");
        let mut request = hyper::Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &dispatch.key)
            .header("Tutti-Flow", &dispatch.flow)
            .header("Tutti-Step", &dispatch.step);
        if let Some(secret) = &self.webhook.signing_secret {
            let t = self.clock.now_ms() / 1000;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
            mac.update(format!("{t}.").as_bytes());
            mac.update(&bytes);
            let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            request = request.header("Tutti-Signature", format!("t={t},v1={signature}"));
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| Failure::Permanent(format!("the request cannot be built: {e}")))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| {
                    if refused(&e) { Failure::Permanent(chain(&e)) } else { Failure::Transient(chain(&e)) }
                })?;
            let status = response.status().as_u16();
            // A body over the limit (or cut off) is kept as empty: the status is what decides.
            let limited = http_body_util::Limited::new(response.into_body(), MAX_RESULT_BYTES as usize);
            let text = match http_body_util::BodyExt::collect(limited).await {
                Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            Ok::<_, Failure>((status, text))
        };
        let (status, text) = tokio::time::timeout(self.webhook.timeout, exchange)
            .await
            .map_err(|_| Failure::Transient(format!("no answer within {:?}", self.webhook.timeout)))??;
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        match status {
            200..=299 => Ok(json!({"status": status, "body": body})),
            408 | 425 | 429 | 500..=599 => Err(Failure::Transient(format!("HTTP {status}"))),
            _ => Err(Failure::Permanent(format!("HTTP {status}: {}", truncate(&body.to_string(), 200)))),
        }
    }
}

/// Whether a client error comes from the resolver refusing a private address (a permanent failure).
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<PrivateAddress>() {
            return true;
        }
        // An I/O error's `source` skips the error it wraps.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<PrivateAddress>())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its causes, as one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// The webhook client's connector: it resolves the host (IP literals without a lookup, names on Tokio's
/// blocking pool), refuses private addresses unless allow-listed ([`GuardedResolver`]), and connects to the
/// addresses it checked, in order.
#[derive(Clone)]
struct GuardedConnector {
    resolver: Arc<GuardedResolver>,
}

impl tower_service::Service<hyper::Uri> for GuardedConnector {
    type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| std::io::Error::other(format!("`{uri}` has no host")))?.to_owned();
            let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
            let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
            let addrs = if literal {
                resolver.check(&host, port)?
            } else {
                let name = host.clone();
                tokio::task::spawn_blocking(move || resolver.check(&name, port))
                    .await
                    .map_err(std::io::Error::other)??
            };
            let mut last = None;
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(hyper_util::rt::TokioIo::new(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other(format!("{host} has no address"))))
        })
    }
}

/// The webhook connector's name resolution: it resolves, then refuses private addresses unless allow-listed (by
/// host name or by address). The refusal is a [`PrivateAddress`] inside an I/O error of kind
/// `PermissionDenied`, which the connector treats as permanent (other I/O errors, `EPERM` from a firewall
/// included, stay transient).
#[derive(Debug)]
struct GuardedResolver {
    allow_private: Vec<String>,
}

impl GuardedResolver {
    fn check(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => (bare, port).to_socket_addrs()?.collect(),
        };
        if self.allow_private.iter().any(|a| a.eq_ignore_ascii_case(bare)) {
            return Ok(addrs);
        }
        if let Some(private) =
            addrs.iter().find(|a| is_private(a.ip()) && !self.allow_private.iter().any(|x| *x == a.ip().to_string()))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                PrivateAddress(format!(
                    "{bare} resolves to {}, a private address; allow it in [webhook] allow_private",
                    private.ip()
                )),
            ));
        }
        Ok(addrs)
    }
}

/// Why [`GuardedResolver`] refused a destination.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PrivateAddress(String);

enum Failure {
    Permanent(String),
    Transient(String),
}

fn dead(error: String) -> Attempt {
    Attempt { outcome: Outcome::Dead { error }, result: None }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, broadcast, multicast, documentation and
/// benchmarking ranges, and their IPv6 counterparts (with IPv4-mapped addresses judged as IPv4).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_resolver_refuses_private_addresses_unless_allowed() {
        let strict = GuardedResolver { allow_private: Vec::new() };
        for (host, port) in [("127.0.0.1", 80), ("[::1]", 8080), ("localhost", 80), ("169.254.169.254", 80)] {
            let err = strict.check(host, port).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{host}");
            assert!(err.get_ref().is_some_and(|e| e.is::<PrivateAddress>()), "{host}: {err}");
            assert!(err.to_string().contains("allow_private"), "{err}");
        }
        assert_eq!(strict.check("8.8.8.8", 443).unwrap(), vec!["8.8.8.8:443".parse::<SocketAddr>().unwrap()]);
        let by_address = GuardedResolver { allow_private: vec!["127.0.0.1".into()] };
        assert_eq!(by_address.check("127.0.0.1", 9).unwrap(), vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
        assert!(by_address.check("10.0.0.1", 9).is_err());
        let by_name = GuardedResolver { allow_private: vec!["LOCALHOST".into()] };
        assert!(!by_name.check("localhost", 9).unwrap().is_empty());
    }

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
