//! The `wait` and `wait_for` steps.

use super::AfterStep;
use crate::def::{EventMatch, Step, WaitSpec};
use crate::machine::{DecisionKind, Machine, Run, RunStatus, WaitOn, trait_time};
use crate::policy::{self};
use tutti_core::time::{Millis, format_duration};

impl Machine<'_, '_> {
    /// Waits for a time: a duration, a time of day in the profile's zone, or a date in a trait.
    pub(in crate::machine) fn wait_step(&mut self, run: &mut Run, step: &Step, spec: &WaitSpec) -> AfterStep {
        let sid = Some(step.id.as_str());
        let (until, reason) = match spec {
            WaitSpec::For(d) => (Some(self.now + d), format!("wait {}", format_duration(*d))),
            WaitSpec::UntilTime { at, zone } => {
                let tz = policy::resolve_zone(zone, self.world.profile);
                (Some(at.next_at_or_after(self.now, &tz)), format!("until {at} in {}", tz.iana_name().unwrap_or("UTC")))
            }
            WaitSpec::UntilTrait { name, offset } => {
                let date = trait_time(&self.world.profile["traits"][name]);
                let shifted = date.map(|d| d + offset);
                (
                    shifted,
                    format!(
                        "until traits.{name}{}",
                        if *offset == 0 {
                            String::new()
                        } else {
                            format!(" {}{}", if *offset < 0 { "-" } else { "+" }, format_duration(offset.abs()))
                        }
                    ),
                )
            }
        };
        match until {
            Some(until) if until > self.now => {
                self.note(run, sid, DecisionKind::Waiting { until, reason });
                run.status = RunStatus::Waiting { until, on: WaitOn::Timer };
                return AfterStep::Stop;
            }
            Some(_) => {
                self.note(run, sid, DecisionKind::Resumed { reason: format!("{reason}: already past") });
                run.step = step.next;
            }
            None => {
                self.note(
                    run,
                    sid,
                    DecisionKind::Resumed { reason: format!("{reason}: the trait is not a date; not waiting") },
                );
                run.step = step.next;
            }
        }
        AfterStep::Next
    }

    /// Waits for an event, at most `timeout`.
    pub(in crate::machine) fn wait_for_step(
        &mut self,
        run: &mut Run,
        step: &Step,
        event: &EventMatch,
        timeout: &Millis,
    ) -> AfterStep {
        let sid = Some(step.id.as_str());
        let until = self.now + timeout;
        let what = event.name.clone().or_else(|| event.kind.map(|k| k.as_str().to_owned())).unwrap_or_default();
        self.note(
            run,
            sid,
            DecisionKind::Waiting { until, reason: format!("for {what}, at most {}", format_duration(*timeout)) },
        );
        run.status = RunStatus::Waiting { until, on: WaitOn::Event };
        AfterStep::Stop
    }
}
