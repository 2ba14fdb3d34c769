//! Segments as the machine sees them: membership observed after each input, the exits and triggers it causes,
//! and each scheduled flow's next firing.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::def::Trigger;
use crate::machine::{Change, DecisionKind, Machine, segment_exit};
use crate::policy::{self};
use tutti_core::event::Event;

impl Machine<'_, '_> {
    /// Folds an event (if any) into every segment's state and re-evaluates membership.
    pub(super) fn observe_segments(&mut self, event: Option<(&Event, &Value)>) -> Vec<Change> {
        let mut changes = Vec::new();
        for segment in self.world.defs.segments.values() {
            let st = self.state.segments.entry(segment.id.clone()).or_default();
            if let Some((e, body)) = event {
                segment.observe(st, e.kind, e.name.as_deref(), e.timestamp, body);
            }
            let (member, wake) = segment.evaluate(st, self.world.profile, self.now);
            match wake {
                Some(t) => self.state.segment_wake.insert(segment.id.clone(), t),
                None => self.state.segment_wake.remove(&segment.id),
            };
            if member != st.member {
                st.member = member;
                changes.push(Change { segment: segment.id.clone(), entered: member });
            }
        }
        self.record_changes(&changes);
        changes
    }

    /// Records each membership change as a decision (what the engine commits as segment members).
    pub(super) fn record_changes(&mut self, changes: &[Change]) {
        for c in changes {
            let kind = if c.entered {
                DecisionKind::SegmentEntered { segment: c.segment.clone() }
            } else {
                DecisionKind::SegmentLeft { segment: c.segment.clone() }
            };
            self.record(self.decision(None, None, kind));
        }
    }

    pub(super) fn exit_on_segments(&mut self, changes: &[Change]) {
        if !changes.iter().any(|c| c.entered) {
            return;
        }
        let defs = self.world.defs;
        self.each_active_run(|m, run| {
            if let Some(reason) = defs.flow(&run.flow, run.version).and_then(|f| segment_exit(f, changes)) {
                m.interrupt(run, &reason);
            }
        });
    }

    pub(super) fn segment_triggers(&mut self, changes: &[Change]) {
        for c in changes {
            for flow in self.world.defs.current_flows() {
                if let Trigger::Segment { id, leave, when } = &flow.trigger
                    && *id == c.segment
                    && *leave != c.entered
                {
                    let body = json!({"type": "segment", "segment": id, "entered": c.entered});
                    let vars = [("event", &body), ("profile", self.world.profile)];
                    if when.as_ref().is_none_or(|w| w.evaluate(&vars).unwrap_or(false)) {
                        let what = if c.entered { "entered" } else { "left" };
                        self.start(flow, body.clone(), format!("{what} segment {id}"));
                    }
                }
            }
        }
    }

    /// Keeps one pending firing per scheduled flow whose audience the profile is in.
    pub(super) fn refresh_schedules(&mut self) {
        for flow in self.world.defs.current_flows() {
            let Trigger::Schedule { cron, zone, segment, .. } = &flow.trigger else { continue };
            let in_audience = segment.as_ref().is_none_or(|s| self.state.in_segment(s));
            if !in_audience {
                self.state.schedules.remove(&flow.id);
            } else if !self.state.schedules.contains_key(&flow.id) {
                let tz = policy::resolve_zone(zone, self.world.profile);
                if let Some(next) = cron.next_after(self.now, &tz) {
                    self.state.schedules.insert(flow.id.clone(), next);
                }
            }
        }
        let live: BTreeSet<&str> = self.world.defs.current_flows().map(|f| f.id.as_str()).collect();
        self.state.schedules.retain(|f, _| live.contains(f.as_str()));
    }
}
