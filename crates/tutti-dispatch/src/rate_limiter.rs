//! A connector's rate limit.

use std::time::{Duration, Instant};

/// A rate limit as a generic cell rate: each request takes one `interval`; `burst` may go at once.
#[derive(Debug)]
pub(super) struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    /// The theoretical arrival time of the next request.
    next: Option<Instant>,
}

impl RateLimiter {
    pub(super) fn new(rate_per_second: f64, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs_f64(1.0 / rate_per_second);
        RateLimiter { interval, tolerance: interval * burst.max(1).saturating_sub(1), next: None }
    }

    /// Reserves a slot; returns how long to wait for it.
    pub(super) fn reserve(&mut self, now: Instant) -> Duration {
        let at = self.next.map_or(now, |next| next.max(now));
        self.next = Some(at + self.interval);
        at.checked_sub(self.tolerance).map_or(Duration::ZERO, |start| start.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_lets_a_burst_through_then_spaces_requests() {
        let mut limiter = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| limiter.reserve(t0)).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 0, 100, 200, 300]);
        // After a quiet second the burst is available again.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(limiter.reserve(later), Duration::ZERO);
    }
}
