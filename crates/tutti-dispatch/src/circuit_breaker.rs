//! A connector's circuit breaker, and the vendor's own requests to pause.

use std::time::Duration;

use tutti_connectors::Settings;
use tutti_core::Millis;

/// While the breaker's probe is out, other actions wait this long (or the cooldown, if shorter).
const PROBE_WAIT_MS: Millis = 5_000;

/// A circuit breaker and the vendor's requests to pause, on the injected clock.
#[derive(Debug)]
pub(super) struct CircuitBreaker {
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

impl CircuitBreaker {
    pub(super) fn new(settings: &Settings) -> CircuitBreaker {
        CircuitBreaker {
            threshold: settings.breaker_failures.max(1),
            cooldown: settings.breaker_cooldown.as_millis() as Millis,
            failures: 0,
            open_until: 0,
            probing: false,
            paused_until: 0,
        }
    }

    /// Whether an attempt may go now; if not, when to try again.
    pub(super) fn admit(&mut self, now: Millis) -> Result<(), Millis> {
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
    pub(super) fn answered(&mut self) {
        self.failures = 0;
        self.probing = false;
    }

    /// A transient failure; `retry_after`, the vendor's own request to wait.
    pub(super) fn failed(&mut self, now: Millis, retry_after: Option<Duration>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(failures: u32, cooldown_ms: u64) -> Settings {
        Settings {
            breaker_failures: failures,
            breaker_cooldown: Duration::from_millis(cooldown_ms),
            ..Settings::default()
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_probes_once_after_the_cooldown() {
        let mut breaker = CircuitBreaker::new(&settings(3, 10_000));
        for now in [0, 1, 2] {
            assert_eq!(breaker.admit(now), Ok(()));
            breaker.failed(now, None);
        }
        assert!(breaker.is_open(3));
        assert_eq!(breaker.admit(3), Err(10_002), "open: deferred to the end of the cooldown");
        assert_eq!(breaker.admit(10_002), Ok(()), "half-open: one probe");
        assert_eq!(breaker.admit(10_003), Err(15_003), "others wait while the probe is out");
        breaker.failed(10_500, None);
        assert_eq!(breaker.admit(10_501), Err(20_500), "a failed probe opens it again");
        assert_eq!(breaker.admit(20_500), Ok(()));
        breaker.answered();
        assert_eq!(breaker.admit(20_501), Ok(()), "closed after a good probe");
        assert_eq!(breaker.admit(20_502), Ok(()));
        // A success between failures resets the count.
        breaker.failed(1, None);
        breaker.failed(2, None);
        breaker.answered();
        breaker.failed(3, None);
        assert!(!breaker.is_open(4));
    }

    #[test]
    fn retry_after_pauses_the_whole_connector() {
        let mut breaker = CircuitBreaker::new(&settings(100, 1_000));
        breaker.failed(1_000, Some(Duration::from_secs(30)));
        assert_eq!(breaker.admit(1_001), Err(31_000));
        assert_eq!(breaker.admit(31_000), Ok(()));
    }
}
