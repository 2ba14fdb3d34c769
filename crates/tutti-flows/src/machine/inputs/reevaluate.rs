//! A segment defined or changed after a profile's events arrived: its membership worked out afresh from the
//! profile's traits and the events given (the profile's history), then what entering or leaving it causes, as
//! after any event (runs that exit on it, flows it triggers, schedules over it). The engine's backfill feeds
//! every existing profile through this once per new or changed segment.

use crate::machine::{Change, Machine};
use tutti_core::event::Event;
use tutti_segments::SegmentState;

impl Machine<'_, '_> {
    pub(in crate::machine) fn on_reevaluate(&mut self, segments: &[String], history: &[Event]) {
        let mut changes = Vec::new();
        for id in segments {
            let Some(segment) = self.world.defs.segments.get(id) else { continue };
            let was = self.state.segments.get(id).is_some_and(|s| s.member);
            let mut st = SegmentState::default();
            if segment.has_behaviour() {
                for event in history {
                    segment.observe(&mut st, event.kind, event.name.as_deref(), event.timestamp, &event.body_value());
                }
            }
            let (member, wake) = segment.evaluate(&st, self.world.profile, self.now);
            match wake {
                Some(t) => self.state.segment_wake.insert(id.clone(), t),
                None => self.state.segment_wake.remove(id),
            };
            st.member = member;
            self.state.segments.insert(id.clone(), st);
            if member != was {
                changes.push(Change { segment: id.clone(), entered: member });
            }
        }
        self.record_changes(&changes);
        self.exit_on_segments(&changes);
        self.segment_triggers(&changes);
        self.refresh_schedules();
    }
}
