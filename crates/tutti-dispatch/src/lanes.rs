//! The delivery thread and its lanes: each connector's actions, delivered side by side across lanes and in
//! order within one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use tutti_connectors::{Built, Registry, Settings};
use tutti_store::OutboxRow;

use super::Incoming;
use super::attempt::GuardedConnector;
use super::circuit_breaker::CircuitBreaker;
use super::rate_limiter::RateLimiter;
use crate::delivery_policy::DeliveryPolicy;
use tutti_core::clock::Clock;
use tutti_metrics::Metrics;

/// One delivery lane's queue: rows in order, with when the dispatcher handed them over.
pub(super) type Lane = tokio::sync::mpsc::UnboundedSender<(Vec<OutboxRow>, Instant)>;

/// The delivery thread's lanes, by connector.
pub struct DeliveryLanes {
    by_connector: HashMap<String, Vec<Lane>>,
    /// For actions naming a connector that is not configured.
    unknown: Lane,
}

impl DeliveryLanes {
    pub(super) fn lane(&self, row: &OutboxRow) -> &Lane {
        match self.by_connector.get(&row.connector) {
            Some(lanes) => &lanes[(row.profile.0 % lanes.len() as u64) as usize],
            None => &self.unknown,
        }
    }
}

/// Starts the delivery thread: one Tokio runtime on one thread, with `concurrency` lanes per connector (each
/// delivering its rows one after another, so a profile's actions arrive in order) and one lane for actions
/// naming a connector that is not configured.
pub fn start_delivery(
    registry: Registry,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    policy: Arc<DeliveryPolicy>,
    budgets: Arc<crate::budgets::Budgets>,
    answers: mpsc::Sender<Incoming>,
) -> std::io::Result<DeliveryLanes> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outlet = |built: Option<Built>| {
        Arc::new(GuardedConnector {
            breaker: Mutex::new(CircuitBreaker::new(built.as_ref().map_or(&Settings::default(), |b| &b.settings))),
            limiter: built.as_ref().and_then(|b| {
                b.settings.rate_per_second.map(|rate| Mutex::new(RateLimiter::new(rate, b.settings.burst)))
            }),
            built,
            clock: clock.clone(),
            metrics: metrics.clone(),
            policy: policy.clone(),
            budgets: budgets.clone(),
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
    Ok(DeliveryLanes { by_connector, unknown })
}
