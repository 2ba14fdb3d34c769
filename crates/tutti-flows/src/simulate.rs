//! A dry run: events played through flows on a simulated clock, every decision returned in order.
//!
//! `tutti flows test` is this. It is the engine's own decision code ([`super::machine::apply`], identity
//! resolution, profile folding) with memory in place of the stores: time is the events' timestamps, and before
//! each event every timer due by its time fires, earliest first. After the last event the clock runs on to
//! `horizon` so waits, goals and sliding windows play out. Actions are not sent: a dispatched action is
//! recorded with its rendered payload, and its result is what the caller's [`Answers`] give (by default
//! `{"dry_run": true}`; `tutti flows test` has the local model write a `generate` step's copy).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::Definitions;
use super::machine::{Decision, Dispatch, Effect, Input, ProfileState, StepCounts, World, apply};
use tutti_core::event::{BatchDefaults, Event};
use tutti_core::time::Millis;
use tutti_profiles::identity::{IdKind, Identifier, IdentityConfig, ResolveInput, resolve};
use tutti_profiles::profile::{Profile, ProfileId};

/// The most timer firings a dry run goes through before it stops (a schedule firing every minute for a year
/// would otherwise run for a long time).
pub const MAX_TICKS: usize = 1_000_000;

/// The result a dry run gives a dispatched action, in place of the connector's answer.
pub type Answers<'d> = Box<dyn FnMut(&Dispatch) -> Value + 'd>;

/// Profiles, identities and flow state in memory.
pub struct Simulation<'d> {
    answers: Answers<'d>,
    defs: &'d Definitions,
    identity: IdentityConfig,
    owners: HashMap<Identifier, ProfileId>,
    profiles: BTreeMap<ProfileId, Profile>,
    states: BTreeMap<ProfileId, ProfileState>,
    /// Due time and profile of every profile's next wake-up.
    wakes: BTreeSet<(Millis, ProfileId)>,
    /// Runs that reached each counted step, across the simulated profiles.
    counts: StepCounts,
    next_id: u64,
    generated: u64,
    pub decisions: Vec<Decision>,
    pub ticks: usize,
}

impl<'d> Simulation<'d> {
    pub fn new(defs: &'d Definitions) -> Simulation<'d> {
        Simulation {
            answers: Box::new(|_| json!({"dry_run": true})),
            defs,
            identity: IdentityConfig::default(),
            owners: HashMap::new(),
            profiles: BTreeMap::new(),
            states: BTreeMap::new(),
            wakes: BTreeSet::new(),
            counts: StepCounts::new(),
            next_id: 1,
            generated: 0,
            decisions: Vec::new(),
            ticks: 0,
        }
    }

    /// Answers dispatched actions with `answers` instead of `{"dry_run": true}`.
    pub fn with_answers(mut self, answers: Answers<'d>) -> Simulation<'d> {
        self.answers = answers;
        self
    }

    /// Fires every wake-up due at or before `until`, in time order.
    pub fn run_until(&mut self, until: Millis) {
        while let Some(&(at, id)) = self.wakes.first() {
            if at > until || self.ticks >= MAX_TICKS {
                break;
            }
            self.wakes.pop_first();
            self.ticks += 1;
            self.step(id, Input::Tick, at);
        }
    }

    /// Plays one event at its own timestamp (firing due timers first).
    pub fn event(&mut self, event: &Event) {
        self.run_until(event.timestamp);
        let Some(id) = self.fold(event) else { return };
        self.step(id, Input::Event(event), event.timestamp);
    }

    /// Plays a signal for the profile owning `key` (such as `user_id:42`) at `at`.
    pub fn signal(&mut self, key: &Identifier, name: &str, payload: &Value, at: Millis) {
        self.run_until(at);
        if let Some(id) = self.owners.get(key).copied() {
            self.step(id, Input::Signal { name, payload }, at);
        }
    }

    /// The profile's state, for tests.
    pub fn state_of(&self, key: &Identifier) -> Option<&ProfileState> {
        self.owners.get(key).and_then(|id| self.states.get(id))
    }

    /// The number of profiles waiting for the clock.
    pub fn waiting(&self) -> usize {
        self.wakes.len()
    }

    /// Resolves the event's identity as the processor does and folds it into the profile.
    fn fold(&mut self, event: &Event) -> Option<ProfileId> {
        let ids = self.identity.identifiers(event, false);
        if ids.is_empty() {
            return None;
        }
        let mut input = ResolveInput::default();
        for id in ids {
            let owner = self.owners.get(&id).copied();
            if let Some(p) = owner {
                input.user_ids.insert(p, self.profiles.get(&p).map(Profile::user_ids).unwrap_or_default());
            }
            input.identifiers.push((id, owner));
        }
        let decision = resolve(&input, self.identity.max_user_ids);
        let target = decision.target.unwrap_or_else(|| {
            let id = ProfileId(self.next_id);
            self.next_id += 1;
            self.profiles.insert(id, Profile::new(id));
            id
        });
        for other in decision.merge {
            if let Some(absorbed) = self.profiles.remove(&other) {
                for identity in &absorbed.identities {
                    self.owners.insert(identity.clone(), target);
                }
                self.profiles.get_mut(&target).expect("target exists").absorb(absorbed);
            }
            if let Some(state) = self.states.remove(&other) {
                self.states.entry(target).or_default().absorb(state);
            }
            self.wakes.retain(|(_, p)| *p != other);
        }
        let profile = self.profiles.get_mut(&target).expect("target exists");
        for id in decision.link {
            self.owners.insert(id.clone(), target);
            profile.identities.insert(id);
        }
        profile.apply(event);
        Some(target)
    }

    fn step(&mut self, id: ProfileId, input: Input<'_>, now: Millis) {
        let Some(profile) = self.profiles.get(&id) else { return };
        let view = profile.to_public_json();
        let profile_id = id.to_string();
        let world = World { defs: self.defs, profile_id: &profile_id, profile: &view, counts: &self.counts };
        let state = self.states.entry(id).or_default();
        let before = state.next_wake();
        let effects = apply(&world, state, input, now);
        let after = state.next_wake();
        if before != after {
            if let Some(t) = before {
                self.wakes.remove(&(t, id));
            }
            if let Some(t) = after {
                self.wakes.insert((t, id));
            }
        }
        let mut follow_ups = Vec::new();
        for effect in effects {
            match effect {
                Effect::Record(d) => self.decisions.push(d),
                Effect::Dispatch(d) => {
                    let result = (self.answers)(&d);
                    follow_ups.push(Follow::Result(d.key, result));
                }
                Effect::UpdateProfile { traits, .. } => follow_ups.push(Follow::Traits(traits)),
                Effect::Counted(key) => *self.counts.entry(key).or_default() += 1,
                Effect::Run(_) => {}
            }
        }
        for follow in follow_ups {
            match follow {
                Follow::Result(key, result) => {
                    self.step(id, Input::ActionResult { key: &key, result: &result }, now);
                }
                Follow::Traits(traits) => {
                    let Some(profile) = self.profiles.get(&id) else { continue };
                    let who = profile
                        .identities
                        .iter()
                        .find(|i| i.kind == IdKind::UserId)
                        .map(|i| ("userId", i.value.clone()))
                        .unwrap_or_else(|| ("anonymousId", format!("profile-{id}")));
                    self.generated += 1;
                    let body = json!({"type": "identify", who.0: who.1, "traits": traits,
                                      "messageId": format!("flow-update-{}", self.generated),
                                      "timestamp": tutti_core::time::format_timestamp(now)});
                    if let Ok(event) = Event::from_json(body, None, &BatchDefaults::default(), now, String::new) {
                        self.event(&event);
                    }
                }
            }
        }
    }
}

enum Follow {
    Result(String, Value),
    Traits(serde_json::Map<String, Value>),
}
