//! The line an operator reads at info level to know actions are flowing: per connector, how many attempts were
//! delivered, retried, deferred, skipped or given up on since the last line. Written once a period (a minute by
//! default, `[log] delivery_summary`), and only for a period in which something happened, so a quiet engine
//! writes nothing.

use std::collections::BTreeMap;

use tutti_metrics::{Metrics, OUTCOMES};

/// Counts by connector at the last line, and when it was written.
pub struct DeliverySummary {
    every_ms: i64,
    last_at: i64,
    last: BTreeMap<String, [u64; 5]>,
}

impl DeliverySummary {
    /// Starts counting from what `metrics` holds at `now` (Unix milliseconds). `every_ms` 0 turns it off.
    pub fn new(every_ms: i64, now: i64, metrics: &Metrics) -> DeliverySummary {
        DeliverySummary { every_ms, last_at: now, last: snapshot(metrics) }
    }

    /// The line for the period that ended, once `every_ms` has passed since the last, when anything happened.
    pub fn due(&mut self, now: i64, metrics: &Metrics) -> Option<String> {
        if self.every_ms <= 0 || now - self.last_at < self.every_ms {
            return None;
        }
        let current = snapshot(metrics);
        let mut parts = Vec::new();
        for (connector, counts) in &current {
            let before = self.last.get(connector).copied().unwrap_or_default();
            let changes: Vec<String> = OUTCOMES
                .iter()
                .zip(counts.iter().zip(before))
                .filter(|(_, (now, before))| **now > *before)
                .map(|(outcome, (now, before))| format!("{outcome} {}", now - before))
                .collect();
            if !changes.is_empty() {
                parts.push(format!("{connector}: {}", changes.join(", ")));
            }
        }
        let period = tutti_core::time::format_duration(now - self.last_at);
        self.last_at = now;
        self.last = current;
        (!parts.is_empty()).then(|| format!("deliveries in the last {period}: {}", parts.join("; ")))
    }
}

fn snapshot(metrics: &Metrics) -> BTreeMap<String, [u64; 5]> {
    metrics.connector_attempts.lock().expect("never poisoned").clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_period_with_what_changed_in_it_and_none_for_a_quiet_one() {
        let metrics = Metrics::default();
        metrics.attempted("smtp", "delivered");
        let mut summary = DeliverySummary::new(60_000, 0, &metrics);
        for _ in 0..3 {
            metrics.attempted("smtp", "delivered");
        }
        metrics.attempted("smtp", "retried");
        metrics.attempted("slack", "dead");
        assert_eq!(summary.due(59_999, &metrics), None, "not before the period ends");
        assert_eq!(
            summary.due(60_000, &metrics).as_deref(),
            Some("deliveries in the last 1m: slack: dead 1; smtp: delivered 3, retried 1"),
            "what happened before the summary started is not counted again"
        );
        assert_eq!(summary.due(120_000, &metrics), None, "a quiet minute writes nothing");
        metrics.attempted("slack", "delivered");
        assert_eq!(summary.due(185_000, &metrics).as_deref(), Some("deliveries in the last 1m5s: slack: delivered 1"));
        let mut off = DeliverySummary::new(0, 0, &metrics);
        metrics.attempted("slack", "delivered");
        assert_eq!(off.due(1_000_000, &metrics), None);
    }
}
