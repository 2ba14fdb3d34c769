//! Policies at the last moment: consent, suppressions, frequency caps and quiet hours checked again right
//! before every delivery attempt (the first, every retry, after a circuit breaker or `Retry-After` pause, and
//! on a dead-letter replay), not only when the step ran.
//!
//! A promo queued while the vendor was down must not reach someone who complained or unsubscribed meanwhile:
//! backoff runs to an hour, and a breaker or `Retry-After` holds actions longer. The processor publishes each
//! profile's [`Standing`] (its public view, suppressions, counted sends, and the runs that exited) for every
//! profile it queues actions for and every one already published, right after each commit; the delivery lanes
//! read it through [`DeliveryPolicy::check`]. A profile with nothing published (after a restart, or evicted)
//! is read back from the store. Skips are recorded on the outbox row (`skipped`, with the reason) and never
//! attempted; quiet hours defer without counting an attempt.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tutti_core::{Millis, ProfileId};
use tutti_flows::Dispatch;
use tutti_flows::machine::ProfileState;
use tutti_flows::policy::{self, Sent, Subject, Suppression, Verdict};
use tutti_store::{FlowReader, ProfileReader};

use tutti_flows::FlowDefinitions;

/// The most standings held; the oldest published go first and are read back from the store if needed.
const HELD: usize = 65_536;

/// What the policies need to know about one profile, as of the processor's last commit.
#[derive(Debug, Default)]
pub struct Standing {
    /// The profile's public JSON (traits, time zone): consent and quiet hours read it.
    pub profile: Value,
    pub suppressions: Vec<Suppression>,
    pub sent: Vec<Sent>,
    /// Runs that ended otherwise than by completing (exited, failed), with why: their queued actions go no
    /// further.
    pub ended: HashMap<String, String>,
    pub erased: bool,
}

impl Standing {
    /// A profile's standing from its committed profile and flow state.
    pub fn of(profile: Value, state: Option<&ProfileState>) -> Standing {
        let mut standing = Standing { profile, ..Standing::default() };
        if let Some(state) = state {
            standing.suppressions = state.suppressions.clone();
            standing.sent = state.sent.clone();
        }
        standing
    }
}

/// The standings the processor publishes and the delivery lanes read.
pub struct DeliveryPolicy {
    definitions: Arc<FlowDefinitions>,
    standings: Mutex<Standings>,
    profiles: Arc<dyn ProfileReader>,
    flows: Arc<dyn FlowReader>,
}

#[derive(Default)]
struct Standings {
    /// Each profile's standing, with the number of its publication.
    by_profile: HashMap<ProfileId, (u64, Arc<Standing>)>,
    /// Publications in order, for eviction: a profile published again appears again, and only its last
    /// publication counts.
    order: VecDeque<(ProfileId, u64)>,
    published: u64,
    /// Messages delivered, by profile, within the longest cap window: a cap counts a message when it went
    /// out, which after an outage can be long after its step counted it.
    delivered: HashMap<ProfileId, Vec<Sent>>,
}

impl DeliveryPolicy {
    pub fn new(
        definitions: Arc<FlowDefinitions>,
        profiles: Arc<dyn ProfileReader>,
        flows: Arc<dyn FlowReader>,
    ) -> DeliveryPolicy {
        DeliveryPolicy { definitions, standings: Mutex::default(), profiles, flows }
    }

    /// Whether a standing is held for the profile (the processor keeps it current while it is).
    pub fn holds(&self, profile: ProfileId) -> bool {
        self.lock().by_profile.contains_key(&profile)
    }

    /// Publishes a profile's standing; the runs it ended before stay ended.
    pub fn publish(&self, profile: ProfileId, mut standing: Standing) {
        let mut standings = self.lock();
        if let Some((_, before)) = standings.by_profile.get(&profile) {
            for (run, why) in &before.ended {
                standing.ended.entry(run.clone()).or_insert_with(|| why.clone());
            }
        }
        standings.published += 1;
        let number = standings.published;
        standings.by_profile.insert(profile, (number, Arc::new(standing)));
        standings.order.push_back((profile, number));
        while standings.order.len() > HELD * 2 || standings.by_profile.len() > HELD {
            let Some((oldest, number)) = standings.order.pop_front() else { break };
            if standings.by_profile.get(&oldest).is_some_and(|(last, _)| *last == number) {
                standings.by_profile.remove(&oldest);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Standings> {
        self.standings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The standing to check an action against: the published one, or the committed state read back.
    fn standing(&self, profile: ProfileId) -> Result<Arc<Standing>, String> {
        if let Some((_, s)) = self.lock().by_profile.get(&profile) {
            return Ok(s.clone());
        }
        let stored = self.profiles.profile(profile).map_err(|e| e.to_string())?;
        // Merged into another profile since it was queued: the person is the same, and what was decided for
        // them stands. (An erasure publishes its own standing, and deletes the rows.)
        let Some(stored) = stored else {
            return Ok(Arc::new(Standing { profile: Value::Null, ..Standing::default() }));
        };
        let state = self.flows.flow_state(profile).map_err(|e| e.to_string())?;
        let state: Option<ProfileState> = state.and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Ok(Arc::new(Standing::of(stored.to_public_json(), state.as_ref())))
    }

    /// Notes a policed message delivered now, for the caps checked before the next attempts.
    pub fn delivered(&self, profile: ProfileId, dispatch: &Dispatch, now: Millis) {
        let memory = self.memory();
        // No cap looks back: nothing to count.
        if !dispatch.policed || memory == 0 {
            return;
        }
        let horizon = now - memory;
        let mut standings = self.lock();
        let list = standings.delivered.entry(profile).or_default();
        list.retain(|s| s.at > horizon);
        list.push(Sent {
            at: now,
            channel: dispatch.channel.clone(),
            category: dispatch.category.clone(),
            key: Some(dispatch.key.clone()),
        });
        if standings.delivered.len() > HELD {
            standings.delivered.retain(|_, list| list.iter().any(|s| s.at > horizon));
        }
    }

    /// The longest window any cap looks back over.
    fn memory(&self) -> Millis {
        self.definitions.get().policies.values().map(|p| p.memory()).max().unwrap_or(0)
    }

    /// What the policies say about attempting `dispatch` (queued at `queued_at`) now.
    pub fn check(&self, profile: ProfileId, dispatch: &Dispatch, queued_at: Millis, now: Millis) -> Verdict {
        if !dispatch.policed {
            return Verdict::Allow;
        }
        let standing = match self.standing(profile) {
            Ok(s) => s,
            // Unsure is not a reason to send: try again shortly.
            Err(e) => return Verdict::Defer { until: now + 1_000, reason: format!("the profile cannot be read: {e}") },
        };
        if standing.erased {
            return Verdict::Skip("the profile was erased".into());
        }
        if let Some(why) = standing.ended.get(&dispatch.run) {
            return Verdict::Skip(format!("its run ended: {why}"));
        }
        // The step counted this action when it queued it; the cap is about the others, each counted when it
        // went out if it has (a reservation whose message was delivered later counts at its delivery).
        let own = |s: &Sent| match &s.key {
            Some(key) => *key == dispatch.key,
            None => s.at == queued_at && s.channel == dispatch.channel && s.category == dispatch.category,
        };
        let delivered = self.lock().delivered.get(&profile).cloned().unwrap_or_default();
        let out = |s: &Sent| s.key.as_ref().is_some_and(|k| delivered.iter().any(|d| d.key.as_ref() == Some(k)));
        let mut sent: Vec<Sent> = standing.sent.iter().filter(|s| !own(s) && !out(s)).cloned().collect();
        sent.extend(delivered.into_iter().filter(|d| !own(d)));
        let subject = Subject { profile: &standing.profile, suppressions: &standing.suppressions, sent: &sent };
        let definitions = self.definitions.get();
        policy::check(definitions.policies.values().map(|p| &**p), &subject, &dispatch.channel, &dispatch.category, now)
    }
}
