//! Counters and histograms, rendered in the Prometheus text format by [`Metrics::render`].

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tutti_core::ErrorCode;

/// A histogram with fixed bucket bounds, in seconds or in plain units.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    /// Sum in millionths of the unit, to stay integral.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// How a delivery attempt can end, as counted in `tutti_connector_attempts_total`.
pub const OUTCOMES: [&str; 5] = ["dead", "deferred", "delivered", "retried", "skipped"];

const LATENCY_BOUNDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
const BATCH_BOUNDS: &[f64] = &[1.0, 10.0, 100.0, 1000.0, 5000.0, 20000.0];

/// The engine's metrics. Every field is safe to bump from any thread.
#[derive(Debug)]
pub struct Metrics {
    /// Events seen in requests that passed authentication, valid or not.
    pub events_received: AtomicU64,
    /// Events durably stored.
    pub events_accepted: AtomicU64,
    /// Events dropped as retries of an already stored `messageId`.
    pub events_duplicate: AtomicU64,
    rejected: Vec<AtomicU64>,
    /// Time to durably commit one group of events.
    pub commit_latency: Histogram,
    /// Events per group commit.
    pub commit_events: Histogram,
    pub profiles: AtomicI64,
    pub merges: AtomicU64,
    pub events_processed: AtomicU64,
    /// Events whose every identifier was blocked, so they belong to nobody.
    pub events_unattributed: AtomicU64,
    /// Events of erased people that were still in flight and were dropped.
    pub events_erased_in_flight: AtomicU64,
    /// Highest durable log sequence number.
    pub log_head: AtomicU64,
    /// Highest log sequence number the processor has finished.
    pub processed_seq: AtomicU64,
    /// Highest log sequence number projected into the analytics store.
    pub analytics_seq: AtomicU64,
    /// Profile timers that came due.
    pub timers_fired: AtomicU64,
    /// Whether the processor thread is running its loop.
    pub processor_up: std::sync::atomic::AtomicBool,
    /// When the processor last came round its loop (Unix milliseconds, wall clock).
    pub processor_beat: AtomicI64,
    /// Inputs whose handling panicked, each failing its profile's active runs.
    pub inputs_failed: AtomicU64,
    /// Runs that ended failed (a limit, or a failed input).
    pub runs_failed: AtomicU64,
    /// Runs started, and runs that ended (completed, exited or failed), as committed.
    pub runs_started: AtomicU64,
    pub runs_ended: AtomicU64,
    /// Actions written to the outbox.
    pub actions_queued: AtomicU64,
    /// Actions a connector confirmed.
    pub actions_delivered: AtomicU64,
    /// Delivery attempts that will be retried.
    pub actions_retried: AtomicU64,
    /// Actions given up on (dead letters).
    pub actions_dead: AtomicU64,
    /// Actions a policy stopped right before an attempt.
    pub actions_skipped: AtomicU64,
    /// From an action queued to its delivery confirmed.
    pub dispatch_latency: Histogram,
    /// Attempts by connector, counted per outcome in the order of [`OUTCOMES`].
    pub connector_attempts: std::sync::Mutex<std::collections::BTreeMap<String, [u64; 5]>>,
    /// One attempt's time with the vendor (the dispatcher's waits for a rate limit excluded).
    pub attempt_latency: Histogram,
    /// From the dispatcher taking an action (hand-off, read or retry) to its connector's send starting: the
    /// dispatcher's own time, and the wait for the action's lane.
    pub dispatch_overhead: Histogram,
    /// How long after its due time a timer was handled.
    pub timer_lateness: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            events_received: AtomicU64::new(0),
            events_accepted: AtomicU64::new(0),
            events_duplicate: AtomicU64::new(0),
            rejected: ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            commit_latency: Histogram::new(LATENCY_BOUNDS),
            commit_events: Histogram::new(BATCH_BOUNDS),
            profiles: AtomicI64::new(0),
            merges: AtomicU64::new(0),
            events_processed: AtomicU64::new(0),
            events_unattributed: AtomicU64::new(0),
            events_erased_in_flight: AtomicU64::new(0),
            log_head: AtomicU64::new(0),
            processed_seq: AtomicU64::new(0),
            analytics_seq: AtomicU64::new(0),
            timers_fired: AtomicU64::new(0),
            processor_up: std::sync::atomic::AtomicBool::new(false),
            processor_beat: AtomicI64::new(0),
            inputs_failed: AtomicU64::new(0),
            runs_failed: AtomicU64::new(0),
            runs_started: AtomicU64::new(0),
            runs_ended: AtomicU64::new(0),
            actions_queued: AtomicU64::new(0),
            actions_delivered: AtomicU64::new(0),
            actions_retried: AtomicU64::new(0),
            actions_dead: AtomicU64::new(0),
            actions_skipped: AtomicU64::new(0),
            dispatch_latency: Histogram::new(LATENCY_BOUNDS),
            connector_attempts: Default::default(),
            attempt_latency: Histogram::new(LATENCY_BOUNDS),
            dispatch_overhead: Histogram::new(LATENCY_BOUNDS),
            timer_lateness: Histogram::new(LATENCY_BOUNDS),
        }
    }
}

impl Metrics {
    /// Counts `n` events (or whole requests, for request-level errors) rejected with `code`.
    pub fn reject(&self, code: ErrorCode, n: u64) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.rejected[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts an attempt of `connector` that ended in `outcome` (one of [`OUTCOMES`]). Allocates only for a
    /// connector's first attempt.
    pub fn attempted(&self, connector: &str, outcome: &'static str) {
        let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) else { return };
        let mut map = self.connector_attempts.lock().expect("never poisoned");
        match map.get_mut(connector) {
            Some(counts) => counts[i] += 1,
            None => {
                let mut counts = [0; 5];
                counts[i] = 1;
                map.insert(connector.to_owned(), counts);
            }
        }
    }

    pub fn rejected(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL.iter().position(|c| *c == code).map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "tutti_events_received_total",
            "Events received in authenticated requests.",
            load(&self.events_received),
        );
        counter(&mut out, "tutti_events_accepted_total", "Events durably stored.", load(&self.events_accepted));
        counter(
            &mut out,
            "tutti_events_duplicate_total",
            "Retried events dropped by messageId deduplication.",
            load(&self.events_duplicate),
        );
        let _ = writeln!(
            out,
            "# HELP tutti_events_rejected_total Events or requests rejected, by error code.\n# TYPE tutti_events_rejected_total counter"
        );
        for (code, n) in ErrorCode::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(out, "tutti_events_rejected_total{{reason=\"{}\"}} {}", code.as_str(), load(n));
        }
        self.commit_latency.render(
            &mut out,
            "tutti_commit_latency_seconds",
            "Time to durably commit a group of events.",
        );
        self.commit_events.render(&mut out, "tutti_commit_events", "Events per group commit.");
        gauge(&mut out, "tutti_profiles", "Profiles that exist.", self.profiles.load(Ordering::Relaxed));
        counter(&mut out, "tutti_merges_total", "Profile merges.", load(&self.merges));
        counter(&mut out, "tutti_events_processed_total", "Events folded into profiles.", load(&self.events_processed));
        counter(
            &mut out,
            "tutti_events_unattributed_total",
            "Events with no usable identifier.",
            load(&self.events_unattributed),
        );
        counter(
            &mut out,
            "tutti_events_erased_in_flight_total",
            "In-flight events of erased profiles, dropped.",
            load(&self.events_erased_in_flight),
        );
        gauge(&mut out, "tutti_log_head", "Highest durable event sequence number.", load(&self.log_head) as i64);
        gauge(
            &mut out,
            "tutti_processed_seq",
            "Highest event sequence number folded into profiles.",
            load(&self.processed_seq) as i64,
        );
        gauge(
            &mut out,
            "tutti_analytics_seq",
            "Highest event sequence number projected for reports and questions.",
            load(&self.analytics_seq) as i64,
        );
        gauge(
            &mut out,
            "tutti_analytics_lag_events",
            "Events the processor has folded that reports and questions do not count yet.",
            load(&self.processed_seq).saturating_sub(load(&self.analytics_seq)) as i64,
        );
        counter(&mut out, "tutti_timers_fired_total", "Profile timers that came due.", load(&self.timers_fired));
        gauge(
            &mut out,
            "tutti_processor_up",
            "Whether the processor thread is running (1) or stopped (0).",
            i64::from(self.processor_up.load(Ordering::Relaxed)),
        );
        gauge(
            &mut out,
            "tutti_processor_lag_events",
            "Durable events the processor has not folded yet.",
            load(&self.log_head).saturating_sub(load(&self.processed_seq)) as i64,
        );
        counter(
            &mut out,
            "tutti_inputs_failed_total",
            "Inputs whose handling failed; each failed its profile's active runs.",
            load(&self.inputs_failed),
        );
        counter(&mut out, "tutti_runs_failed_total", "Runs that ended failed.", load(&self.runs_failed));
        counter(&mut out, "tutti_actions_queued_total", "Actions written to the outbox.", load(&self.actions_queued));
        counter(
            &mut out,
            "tutti_actions_delivered_total",
            "Actions a connector confirmed.",
            load(&self.actions_delivered),
        );
        counter(
            &mut out,
            "tutti_actions_retried_total",
            "Delivery attempts to be retried.",
            load(&self.actions_retried),
        );
        counter(&mut out, "tutti_actions_dead_total", "Actions given up on (dead letters).", load(&self.actions_dead));
        counter(&mut out, "tutti_runs_started_total", "Flow runs started.", load(&self.runs_started));
        counter(
            &mut out,
            "tutti_runs_ended_total",
            "Flow runs that ended (completed, exited or failed).",
            load(&self.runs_ended),
        );
        counter(
            &mut out,
            "tutti_actions_skipped_total",
            "Actions a policy stopped right before an attempt.",
            load(&self.actions_skipped),
        );
        self.dispatch_latency.render(
            &mut out,
            "tutti_dispatch_latency_seconds",
            "From an action queued to its delivery confirmed.",
        );
        let _ = writeln!(
            out,
            "# HELP tutti_connector_attempts_total Delivery attempts, by connector and outcome.\n# TYPE tutti_connector_attempts_total counter"
        );
        for (connector, counts) in self.connector_attempts.lock().expect("never poisoned").iter() {
            // Only outcomes that happened, as before: a line per (connector, outcome) seen.
            for (outcome, n) in OUTCOMES.iter().zip(counts).filter(|(_, n)| **n > 0) {
                let _ = writeln!(
                    out,
                    "tutti_connector_attempts_total{{connector=\"{connector}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        self.attempt_latency.render(
            &mut out,
            "tutti_connector_attempt_seconds",
            "One delivery attempt's time with the vendor.",
        );
        self.dispatch_overhead.render(
            &mut out,
            "tutti_dispatch_overhead_seconds",
            "From the dispatcher taking an action to its connector's send starting (including the wait for its lane).",
        );
        self.timer_lateness.render(
            &mut out,
            "tutti_timer_lateness_seconds",
            "How long after its due time a timer was handled.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.events_accepted.fetch_add(3, Ordering::Relaxed);
        m.reject(ErrorCode::InvalidJson, 2);
        m.commit_latency.observe(0.0007);
        m.commit_latency.observe(3.0);
        let text = m.render();
        assert!(text.contains("tutti_events_accepted_total 3\n"));
        assert!(text.contains("tutti_events_rejected_total{reason=\"invalid_json\"} 2\n"));
        assert!(text.contains("tutti_commit_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("tutti_commit_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("tutti_commit_latency_seconds_count 2\n"));
    }
}
