//! One attempt at delivering an action through its connector: the breaker, the rate limit and the policies at
//! the last moment, then the send, and what it came to.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use tutti_connectors::{Action, Built, Failure};
use tutti_core::Millis;
use tutti_flows::Dispatch;
use tutti_flows::policy::Verdict;
use tutti_store::{Cost, OutboxRow, Outcome};

use super::circuit_breaker::CircuitBreaker;
use super::rate_limiter::RateLimiter;
use crate::delivery_policy::DeliveryPolicy;
use tutti_core::clock::Clock;
use tutti_metrics::Metrics;

/// The longest wait between retries.
const MAX_BACKOFF_MS: Millis = 3_600_000;

/// ActionSummary one attempt came to.
pub struct Attempt {
    pub(super) outcome: Outcome,
    pub(super) result: Option<Value>,
    /// ActionSummary the action was, read once from its stored form, for its outcome event.
    pub(super) what: Option<ActionSummary>,
    /// Told when the outcome is journalled: the lane waits for it before its next attempt.
    pub(super) journalled: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The parts of an action its outcome event names.
pub(super) struct ActionSummary {
    pub(super) operation: String,
    pub(super) flow: String,
    pub(super) step: String,
}

/// The wait before retry number `attempts` (1 after the first failure): 1 s doubling up to an hour, of which
/// the upper half is spread by the action's key, so actions that failed together do not return together.
pub(super) fn backoff(attempts: u32, key: &str) -> Millis {
    let step = (1_000i64 << attempts.saturating_sub(1).min(22)).min(MAX_BACKOFF_MS);
    let half = step / 2;
    let hash = tutti_core::hash::Fnv1a::new().write(key.as_bytes()).write(&attempts.to_le_bytes()).finish();
    half + (hash % (half as u64 + 1)) as i64
}

/// One connector on the delivery thread: its sender, its breaker, its rate limit.
pub(super) struct GuardedConnector {
    /// `None`: no connector by that name is configured; its actions become dead letters saying so.
    pub(super) built: Option<Built>,
    pub(super) breaker: Mutex<CircuitBreaker>,
    pub(super) limiter: Option<Mutex<RateLimiter>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) policy: Arc<DeliveryPolicy>,
    pub(super) budgets: Arc<crate::budgets::Budgets>,
}

impl GuardedConnector {
    pub(super) async fn deliver(&self, row: &OutboxRow, ready: Instant) -> Attempt {
        let dispatch: Dispatch = match serde_json::from_slice(&row.body) {
            Ok(d) => d,
            Err(e) => return dead(format!("the stored action cannot be read: {e}"), false),
        };
        let mut attempt = self.attempt(row, &dispatch, ready).await;
        attempt.what = Some(ActionSummary { operation: dispatch.operation, flow: dispatch.flow, step: dispatch.step });
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
        if let Err(at) = self.breaker.lock().expect("never poisoned").admit(self.clock.now_ms()) {
            return Attempt::new(Outcome::Defer { at }, None);
        }
        self.metrics.dispatch_overhead.observe_duration(ready.elapsed());
        if let Some(limiter) = &self.limiter {
            let wait = limiter.lock().expect("never poisoned").reserve(Instant::now());
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
        let action = Action::of(dispatch, row.profile.0, self.clock.now_ms());
        // The budget in money, last: a priced action holds its cost until it is delivered or fails.
        let reservation = match &built.settings.price {
            Some(price) => match self.budgets.reserve(&dispatch.flow, built.kind.cost(&action, price)) {
                Ok(r) => Some(r),
                Err(reason) => return skipped(reason, dispatch.await_result),
            },
            None => None,
        };
        let settle = |delivered: bool| {
            if let Some(r) = &reservation {
                self.budgets.settle(r, delivered);
            }
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
                self.breaker.lock().expect("never poisoned").answered();
                self.policy.delivered(row.profile, dispatch, now);
                settle(true);
                let cost = reservation.map(|r| Cost { flow: r.flow, micros: r.cost.micros, currency: r.cost.currency });
                Attempt::new(Outcome::Done { result: result.to_string(), cost }, answer(result))
            }
            Err(Failure::Permanent(error)) => {
                self.breaker.lock().expect("never poisoned").answered();
                settle(false);
                dead(error, dispatch.await_result)
            }
            Err(Failure::Transient { error, retry_after }) => {
                self.breaker.lock().expect("never poisoned").failed(now, retry_after);
                settle(false);
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
    pub(super) fn new(outcome: Outcome, result: Option<Value>) -> Attempt {
        Attempt { outcome, result, what: None, journalled: None }
    }
}

/// An attempt a policy stopped: recorded as skipped with the reason; a run awaiting the result is told.
pub(super) fn skipped(reason: String, await_result: bool) -> Attempt {
    let result = await_result.then(|| json!({"skipped": &reason}));
    Attempt::new(Outcome::Skipped { reason }, result)
}

pub(super) fn dead(error: String, await_result: bool) -> Attempt {
    let result = await_result.then(|| json!({"error": &error}));
    Attempt::new(Outcome::Dead { error }, result)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

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
