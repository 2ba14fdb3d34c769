//! The demo's clock: a day played fast, then real time. From `start` it runs `speed` times faster than the wall
//! until it reaches `fast_until`, and from there at the wall's pace, so that what waits beyond the day (an
//! approval's deadline, a session's expiry) waits as it would.
//!
//! While the day is played the clock is held at the next call not yet ingested: it never reads past an event
//! that has yet to arrive, so a timer due after it (a promotion five minutes after a checkout) cannot fire
//! before it (the complaint two minutes after) however busy the machine is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use tutti_core::Millis;
use tutti_engine::Clock;

pub(crate) struct DemoClock {
    began: Instant,
    start: Millis,
    speed: f64,
    fast_until: Millis,
    /// The time the clock may not pass: the next call not yet ingested (`Millis::MAX` once all are).
    hold: AtomicI64,
}

impl DemoClock {
    pub(crate) fn new(start: Millis, speed: f64, fast_until: Millis) -> DemoClock {
        DemoClock {
            began: Instant::now(),
            start,
            speed: speed.max(1.0),
            fast_until: fast_until.max(start),
            hold: AtomicI64::new(Millis::MAX),
        }
    }

    /// Holds the clock at `at` (the next call to play) until told otherwise; `Millis::MAX` lets it run.
    pub(crate) fn hold_at(&self, at: Millis) {
        self.hold.store(at, Ordering::SeqCst);
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
        let paced = if real <= fast_real {
            self.start + (real * self.speed) as Millis
        } else {
            self.fast_until + (real - fast_real) as Millis
        };
        paced.min(self.hold.load(Ordering::SeqCst))
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

    #[test]
    fn the_clock_waits_for_the_next_call_to_be_played() {
        let clock = DemoClock::new(0, 1e9, i64::MAX / 2);
        clock.hold_at(5);
        // However much wall time passes, it reads no later than the call it waits for, then runs on.
        while clock.real_until(1_000_000) > std::time::Duration::ZERO {
            std::hint::spin_loop();
        }
        assert_eq!(clock.now_ms(), 5);
        clock.hold_at(Millis::MAX);
        assert!(clock.now_ms() >= 1_000_000);
    }
}
