//! Segments: who is in, decided incrementally on every event and re-decided by time where a window slides.
//!
//! ```yaml
//! segment: pricing-interested
//! when: 'has(profile.traits.plan) && profile.traits.plan == "free"'   # over the profile (optional)
//! behaviour:                                                          # every clause must hold (optional)
//!   - performed: Page Viewed
//!     where: 'event.properties.path.startsWith("/pricing")'
//!     at_least: 3
//!     within: 7d
//!   - last_performed: Order Completed      # performed, but the last time more than 90 days ago
//!     more_than: 90d
//!   - not_performed: Support Ticket Opened # not in the last 30 days (or `since: <event>`, or ever)
//!     within: 30d
//! ```
//!
//! Each clause keeps only what it needs: `performed ... at_least N within W` keeps the times of the last N
//! matching events (membership holds while the N-th latest is inside the window, so the profile leaves exactly
//! when it slides out); `last_performed` and `not_performed` keep one time. [`Segment::evaluate`] says whether
//! the profile is in and when, with no event, the answer could next change, which the machine sets a timer
//! for. Event times are the events' corrected timestamps.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use tutti_core::condition::Condition;
use tutti_core::decode::Problem;
use tutti_core::decode::{Cx, Obj, kind};
use tutti_core::event::EventType;
use tutti_core::event_match::{EventMatch, matches};
use tutti_core::time::Millis;
use tutti_core::yaml::{Positions, push_token};

/// The most clauses a segment may have.
pub const MAX_CLAUSES: usize = 20;
/// The largest `at_least` count (each counts one remembered time per profile).
pub const MAX_AT_LEAST: u64 = 1000;

/// A compiled segment.
#[derive(Debug)]
pub struct Segment {
    pub id: String,
    pub name: Option<String>,
    pub when: Option<Condition>,
    pub behaviour: Vec<Clause>,
    pub source: String,
}

#[derive(Debug)]
pub enum Clause {
    Performed { event: EventMatch, at_least: u32, within: Option<Millis> },
    NotPerformed { event: EventMatch, within: Option<Millis>, since: Option<EventMatch> },
    LastPerformed { event: EventMatch, more_than: Millis },
}

/// What one profile's membership of one segment remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentState {
    pub member: bool,
    /// Per clause: the times it remembers (ascending). For `not_performed ... since`, the time of the latest
    /// `since` event is kept in `since`.
    pub clauses: Vec<ClauseState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClauseState {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
}

impl Segment {
    /// Folds one event into the clause states. Returns whether anything changed.
    pub fn observe(
        &self,
        state: &mut SegmentState,
        kind: EventType,
        name: Option<&str>,
        at: Millis,
        event: &Value,
    ) -> bool {
        state.clauses.resize_with(self.behaviour.len(), ClauseState::default);
        let vars = [("event", event)];
        let mut changed = false;
        for (clause, cs) in self.behaviour.iter().zip(state.clauses.iter_mut()) {
            match clause {
                Clause::Performed { event: m, at_least, .. } => {
                    if matches(m, kind, name, &vars) {
                        let i = cs.times.partition_point(|t| *t <= at);
                        cs.times.insert(i, at);
                        let excess = cs.times.len().saturating_sub(*at_least as usize);
                        cs.times.drain(..excess);
                        changed = true;
                    }
                }
                Clause::NotPerformed { event: m, since, .. } => {
                    if matches(m, kind, name, &vars) {
                        remember_latest(&mut cs.times, at);
                        changed = true;
                    }
                    if let Some(s) = since
                        && matches(s, kind, name, &vars)
                    {
                        cs.since = Some(cs.since.map_or(at, |t| t.max(at)));
                        changed = true;
                    }
                }
                Clause::LastPerformed { event: m, .. } => {
                    if matches(m, kind, name, &vars) {
                        remember_latest(&mut cs.times, at);
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Whether the profile is a member at `now`, and the next time the answer could change with no new event.
    /// A condition that cannot be evaluated (a trait that is missing) counts as false.
    pub fn evaluate(&self, state: &SegmentState, profile: &Value, now: Millis) -> (bool, Option<Millis>) {
        let empty = ClauseState::default();
        let mut member = self.when.as_ref().is_none_or(|c| c.evaluate(&[("profile", profile)]).unwrap_or(false));
        let mut next: Option<Millis> = None;
        let mut soon = |t: Millis| next = Some(next.map_or(t, |n: Millis| n.min(t)));
        for (i, clause) in self.behaviour.iter().enumerate() {
            let cs = state.clauses.get(i).unwrap_or(&empty);
            let holds = match clause {
                Clause::Performed { at_least, within, .. } => {
                    let n = *at_least as usize;
                    if cs.times.len() < n {
                        false
                    } else {
                        let nth_latest = cs.times[cs.times.len() - n];
                        match within {
                            None => true,
                            Some(w) if nth_latest > now - w => {
                                soon(nth_latest + w);
                                true
                            }
                            Some(_) => false,
                        }
                    }
                }
                Clause::NotPerformed { within, since, .. } => {
                    let last = cs.times.last().copied();
                    match (since, within) {
                        (Some(_), _) => cs.since.is_some_and(|s| last.is_none_or(|l| l < s)),
                        (None, Some(w)) => match last {
                            Some(l) if l > now - w => {
                                soon(l + w);
                                false
                            }
                            _ => true,
                        },
                        (None, None) => last.is_none(),
                    }
                }
                Clause::LastPerformed { more_than, .. } => match cs.times.last() {
                    None => false,
                    Some(l) if *l <= now - more_than => true,
                    Some(l) => {
                        soon(l + more_than);
                        false
                    }
                },
            };
            member &= holds;
        }
        (member, next)
    }

    /// Whether any clause looks at events (otherwise only profile changes matter).
    pub fn has_behaviour(&self) -> bool {
        !self.behaviour.is_empty()
    }
}

fn remember_latest(times: &mut Vec<Millis>, at: Millis) {
    let latest = times.iter().copied().max().map_or(at, |t| t.max(at));
    times.clear();
    times.push(latest);
}

const CLAUSES: [&str; 3] = ["performed", "not_performed", "last_performed"];

/// Compiles a segment from its loaded YAML.
pub fn compile(value: &Value, positions: &Positions) -> Result<Segment, Vec<Problem>> {
    let mut cx = Cx::new(positions);
    let segment = read(&mut cx, value);
    match segment {
        Some(s) if cx.problems.is_empty() => Ok(s),
        _ => {
            let mut problems = cx.problems;
            problems.sort_by_key(|p| p.pos);
            Err(problems)
        }
    }
}

fn read(cx: &mut Cx<'_>, value: &Value) -> Option<Segment> {
    let mut top = cx.object(value, "", "a segment")?;
    let id = top.require(cx, "segment", "").and_then(|(v, p)| cx.name(v, &p));
    let name = top.get("name").and_then(|(v, p)| cx.string(v, &p).map(str::to_owned));
    // Free text for people; only its kind is checked.
    if let Some((v, p)) = top.get("description") {
        cx.string(v, &p);
    }
    let when = top.get("when").map(|(v, p)| cx.condition(v, &p, &["profile"]));
    let mut behaviour = Vec::new();
    let mut ok = true;
    if let Some((v, p)) = top.get("behaviour") {
        match v {
            Value::Array(items) if items.len() <= MAX_CLAUSES => {
                for (i, item) in items.iter().enumerate() {
                    match read_clause(cx, item, &push_token(&p, &i.to_string())) {
                        Some(c) => behaviour.push(c),
                        None => ok = false,
                    }
                }
            }
            Value::Array(items) => cx.problem(&p, format!("{} clauses; the limit is {MAX_CLAUSES}", items.len()), ""),
            other => cx.problem(&p, format!("`behaviour` is a list of clauses, not {}", kind(other)), ""),
        }
    }
    if when.is_none() && behaviour.is_empty() && ok {
        cx.problem("", "a segment needs `when` (over the profile), `behaviour`, or both", "");
    }
    top.finish(cx);
    let when = match when {
        Some(Some(c)) => Some(c),
        Some(None) => return None,
        None => None,
    };
    ok.then_some(())?;
    Some(Segment { id: id?, name, when, behaviour, source: String::new() })
}

fn matcher(cx: &mut Cx<'_>, o: &mut Obj<'_>, key: &'static str) -> Option<EventMatch> {
    let (v, p) = o.get(key)?;
    let name = cx.name(v, &p)?;
    let kind = match o.get("type") {
        Some((tv, tp)) => {
            let text = cx.string(tv, &tp)?;
            let Some(k) = EventType::parse(text) else {
                cx.problem(
                    &tp,
                    format!("`{text}` is not a call type"),
                    "track, page, screen, identify, group or alias",
                );
                return None;
            };
            k
        }
        None => EventType::Track,
    };
    let when = o.get("where").and_then(|(v, p)| cx.condition(v, &p, &["event"]));
    Some(EventMatch { kind: Some(kind), name: Some(name), when })
}

fn read_clause(cx: &mut Cx<'_>, value: &Value, pointer: &str) -> Option<Clause> {
    let mut o = cx.object(value, pointer, "a behaviour clause")?;
    let present: Vec<&str> = CLAUSES.iter().copied().filter(|k| o.has(k)).collect();
    let clause = match present.as_slice() {
        ["performed"] => {
            let event = matcher(cx, &mut o, "performed");
            let at_least = o.get("at_least").and_then(|(v, p)| cx.positive(v, &p, MAX_AT_LEAST)).unwrap_or(1) as u32;
            let within = o.get("within").and_then(|(v, p)| cx.duration(v, &p));
            Some(Clause::Performed { event: event?, at_least, within })
        }
        ["not_performed"] => {
            let event = matcher(cx, &mut o, "not_performed");
            let within = o.get("within").and_then(|(v, p)| cx.duration(v, &p));
            let since = o.get("since").and_then(|(v, p)| {
                let name = cx.name(v, &p)?;
                Some(EventMatch { kind: Some(EventType::Track), name: Some(name), when: None })
            });
            if within.is_some() && since.is_some() {
                cx.problem(pointer, "choose `within` or `since`, not both", "");
            }
            Some(Clause::NotPerformed { event: event?, within, since })
        }
        ["last_performed"] => {
            let event = matcher(cx, &mut o, "last_performed");
            let more_than =
                o.require(cx, "more_than", "such as `more_than: 90d`").and_then(|(v, p)| cx.duration(v, &p));
            Some(Clause::LastPerformed { event: event?, more_than: more_than? })
        }
        [] => {
            cx.problem(pointer, "a clause is one of these", CLAUSES.join(", "));
            None
        }
        _ => {
            cx.problem(pointer, "a clause is one of performed, not_performed, last_performed; this has several", "");
            None
        }
    };
    for k in CLAUSES {
        o.get(k);
    }
    o.finish(cx);
    clause
}
