//! The demo's clock: a day played fast, then real time. From `start` it runs `speed` times faster than the wall
//! until it reaches `fast_until`, and from there at the wall's pace, so that what waits beyond the day (an
//! approval's deadline, a session's expiry) waits as it would.

use std::time::Instant;

use tutti_core::Millis;
use tutti_engine::Clock;

pub(crate) struct DemoClock {
    began: Instant,
    start: Millis,
    speed: f64,
    fast_until: Millis,
}

impl DemoClock {
    pub(crate) fn new(start: Millis, speed: f64, fast_until: Millis) -> DemoClock {
        DemoClock { began: Instant::now(), start, speed: speed.max(1.0), fast_until: fast_until.max(start) }
    }

    /// The real time from the start until the clock reads `at` (zero once it has).
    pub(crate) fn real_until(&self, at: Millis) -> std::time::Duration {
        let fast = (at.min(self.fast_until) - self.start).max(0) as f64 / self.speed;
        let slow = (at - self.fast_until).max(0) as f64;
        let due = std::time::Duration::from_secs_f64((fast + slow) / 1000.0);
        due.saturating_sub(self.began.elapsed())
    }
}

impl Clock for DemoClock {
    fn now_ms(&self) -> Millis {
        let real = self.began.elapsed().as_secs_f64() * 1000.0;
        let fast_real = (self.fast_until - self.start) as f64 / self.speed;
        if real <= fast_real {
            self.start + (real * self.speed) as Millis
        } else {
            self.fast_until + (real - fast_real) as Millis
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_runs_fast_then_the_clock_keeps_the_walls_pace() {
        let clock = DemoClock::new(0, 1000.0, 86_400_000);
        // A point in the day is due after its share of the fast part; beyond the day, at the wall's pace.
        assert!(clock.real_until(86_400_000).as_secs_f64() <= 86.4);
        assert!(clock.real_until(86_400_000 + 60_000).as_secs_f64() > 86.4 + 59.0);
        assert!(clock.now_ms() < 86_400_000);
    }
}
