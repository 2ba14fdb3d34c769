//! The work budget of one template render or one condition evaluation.
//!
//! Templates and conditions are written by people and run over data sent by anyone holding the write key, so
//! neither may take unbounded time or memory: a loop over `(1..event.properties.qty)` or five nested `.all()`
//! must end with a clear error, not stall the processor. Every loop iteration, comprehension element and
//! filter call draws steps from one meter per evaluation, every kilobyte produced draws a step too, and the
//! wall clock is a backstop for work that steps do not see. The meter lives in a thread-local for the
//! duration of one evaluation (Liquid's and CEL's interpreters call back into Tutti's code without a handle
//! of ours); evaluations are synchronous, so one thread runs one at a time.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Default steps per evaluation: far above a real message (a hundred products with ten filters each is about
/// a thousand), far below what stalls the processor.
pub const DEFAULT_STEPS: u64 = 100_000;

/// Default wall-clock limit per evaluation, a backstop behind the steps.
pub const DEFAULT_TIME: Duration = Duration::from_millis(250);

/// Bytes that cost one step when produced.
pub const BYTES_PER_STEP: usize = 1024;

/// How much one evaluation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Loop iterations, comprehension elements and filter calls, plus one per [`BYTES_PER_STEP`] produced.
    pub steps: u64,
    /// The longest any one string, rendered output or captured text may grow, in bytes.
    pub output_bytes: usize,
    /// Wall-clock time.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { steps: DEFAULT_STEPS, output_bytes: crate::template::MAX_OUTPUT_BYTES, time: DEFAULT_TIME }
    }
}

impl Limits {
    /// These limits, each lowered to `other`'s where that is lower.
    pub fn min(self, other: Limits) -> Limits {
        Limits {
            steps: self.steps.min(other.steps),
            output_bytes: self.output_bytes.min(other.output_bytes),
            time: self.time.min(other.time),
        }
    }
}

/// Which limit an evaluation ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Steps(u64),
    Output(usize),
    Time(Duration),
    /// An integer operation would overflow (or divide by zero); named by the operation.
    Arithmetic(&'static str),
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exceeded::Steps(n) => {
                write!(f, "the step limit of {n} (loop iterations, filter calls and kilobytes produced)")
            }
            Exceeded::Output(n) => write!(f, "the size limit of {n} bytes"),
            Exceeded::Time(t) => write!(f, "the time limit of {} ms", t.as_millis()),
            Exceeded::Arithmetic(op) => write!(f, "integer overflow in {op}"),
        }
    }
}

struct Meter {
    limits: Limits,
    left: u64,
    started: Instant,
    /// Steps drawn since the clock was last read.
    since_clock: u64,
    exceeded: Option<Exceeded>,
}

thread_local! {
    static METER: RefCell<Option<Meter>> = const { RefCell::new(None) };
}

/// The meter of the evaluation running on this thread, while this lives. Restores whatever meter was there
/// before when dropped, so evaluations may nest.
pub struct Metered {
    /// What to put back when dropped; `None` when this joined a meter already running.
    restore: Option<Option<Meter>>,
}

impl Metered {
    /// A new meter with `limits`, whatever runs already.
    pub fn start(limits: Limits) -> Metered {
        let meter = Meter { limits, left: limits.steps, started: Instant::now(), since_clock: 0, exceeded: None };
        Metered { restore: Some(METER.with(|m| m.borrow_mut().replace(meter))) }
    }

    /// The meter already running on this thread, or a new one with `limits`.
    pub(crate) fn join_or_start(limits: Limits) -> Metered {
        if METER.with(|m| m.borrow().is_some()) { Metered { restore: None } } else { Metered::start(limits) }
    }

    /// A new meter with `limits`, lowered to those of any meter already running.
    pub(crate) fn start_within(limits: Limits) -> Metered {
        let outer = METER.with(|m| m.borrow().as_ref().map(|m| m.limits));
        Metered::start(outer.map_or(limits, |o| limits.min(o)))
    }

    /// The limit the evaluation ran into, if any.
    #[cfg(test)]
    pub(crate) fn exceeded(&self) -> Option<Exceeded> {
        exceeded()
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if let Some(previous) = self.restore.take() {
            METER.with(|m| *m.borrow_mut() = previous);
        }
    }
}

/// The limit the running evaluation ran into, if any.
pub(crate) fn exceeded() -> Option<Exceeded> {
    METER.with(|m| m.borrow().as_ref().and_then(|m| m.exceeded))
}

/// Draws `steps` from the running evaluation's meter. Outside an evaluation it allows everything (a value
/// built by Tutti itself, not by a template).
pub(crate) fn charge(steps: u64) -> Result<(), Exceeded> {
    METER.with(|m| {
        let mut m = m.borrow_mut();
        let Some(m) = m.as_mut() else { return Ok(()) };
        if let Some(e) = m.exceeded {
            return Err(e);
        }
        if steps > m.left {
            m.left = 0;
            return Err(*m.exceeded.insert(Exceeded::Steps(m.limits.steps)));
        }
        m.left -= steps;
        m.since_clock += steps;
        // Reading the clock costs about as much as a step; once per 256 steps is enough for a backstop.
        if m.since_clock >= 256 {
            m.since_clock = 0;
            if m.started.elapsed() > m.limits.time {
                return Err(*m.exceeded.insert(Exceeded::Time(m.limits.time)));
            }
        }
        Ok(())
    })
}

/// Draws the steps for `bytes` produced, and refuses a single value past the size limit.
pub(crate) fn charge_bytes(bytes: usize) -> Result<(), Exceeded> {
    let limit = output_limit();
    if bytes > limit {
        return Err(fail(Exceeded::Output(limit)));
    }
    charge(1 + (bytes / BYTES_PER_STEP) as u64)
}

/// The size limit of the running evaluation (the default outside one).
pub(crate) fn output_limit() -> usize {
    METER.with(|m| m.borrow().as_ref().map_or(Limits::default().output_bytes, |m| m.limits.output_bytes))
}

/// Records that the evaluation ran into `e`, and returns it.
pub(crate) fn fail(e: Exceeded) -> Exceeded {
    METER.with(|m| {
        if let Some(m) = m.borrow_mut().as_mut() {
            m.exceeded.get_or_insert(e);
        }
    });
    e
}

/// The text of a caught panic.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "an unknown failure".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_out_and_stay_out() {
        let meter = Metered::start(Limits { steps: 10, ..Limits::default() });
        assert!(charge(6).is_ok());
        assert_eq!(charge(5), Err(Exceeded::Steps(10)));
        assert_eq!(charge(1), Err(Exceeded::Steps(10)), "once exceeded, every later draw fails");
        assert_eq!(meter.exceeded(), Some(Exceeded::Steps(10)));
        drop(meter);
        assert!(charge(1_000_000).is_ok(), "outside an evaluation nothing is metered");
    }

    #[test]
    fn the_clock_is_a_backstop() {
        let meter = Metered::start(Limits { steps: u64::MAX, time: Duration::ZERO, ..Limits::default() });
        let stopped = (0..10_000).find_map(|_| charge(1).err());
        assert_eq!(stopped, Some(Exceeded::Time(Duration::ZERO)));
        assert_eq!(meter.exceeded(), Some(Exceeded::Time(Duration::ZERO)));
    }

    #[test]
    fn nested_meters_restore_the_outer_one() {
        let outer = Metered::start(Limits { steps: 5, ..Limits::default() });
        {
            let _inner = Metered::start(Limits { steps: 1000, ..Limits::default() });
            assert!(charge(100).is_ok());
        }
        assert_eq!(charge(6), Err(Exceeded::Steps(5)));
        assert!(outer.exceeded().is_some());
    }

    #[test]
    fn bytes_cost_steps_and_big_values_are_refused() {
        let _m = Metered::start(Limits { steps: 3, output_bytes: 10_000, ..Limits::default() });
        assert!(charge_bytes(2048).is_ok(), "two kilobytes and the call: three steps");
        assert_eq!(charge_bytes(1), Err(Exceeded::Steps(3)));
        let _m = Metered::start(Limits { output_bytes: 10, ..Limits::default() });
        assert_eq!(charge_bytes(11), Err(Exceeded::Output(10)));
    }
}
