//! The unified profile.
//!
//! A profile is built so that the order of events does not matter: every field is a join of what the events
//! said. Traits keep the value with the latest event time (ties broken by message id), first and last seen are
//! a minimum and a maximum, counts are sums. Applying the same events in any order, or merging two profiles in
//! either direction, gives the same profile. The property tests in `tests/identity_props.rs` check this.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use tutti_core::profile_id::ProfileId;

use crate::identity::Identifier;
use tutti_core::event::{Event, EventType};
use tutti_core::time::{Millis, format_timestamp};

/// A value with the time and message that set it. Later wins; at equal times the greater message id wins, so
/// the outcome does not depend on arrival order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    #[serde(rename = "v")]
    pub value: T,
    pub at: Millis,
    #[serde(rename = "by")]
    pub message_id: String,
}

impl<T> Stamped<T> {
    fn wins_over(&self, other: &Stamped<T>) -> bool {
        (self.at, &self.message_id) > (other.at, &other.message_id)
    }
}

fn join<T: Clone>(slot: &mut Option<Stamped<T>>, candidate: &Stamped<T>) {
    match slot {
        Some(current) if !candidate.wins_over(current) => {}
        _ => *slot = Some(candidate.clone()),
    }
}

fn join_map(into: &mut BTreeMap<String, Stamped<Value>>, key: &str, candidate: Stamped<Value>) {
    match into.get(key) {
        Some(current) if !candidate.wins_over(current) => {}
        _ => {
            into.insert(key.to_owned(), candidate);
        }
    }
}

/// What a profile knows of one group (account) it belongs to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupState {
    pub traits: BTreeMap<String, Stamped<Value>>,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

/// One person, unified across identifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: ProfileId,
    #[serde(with = "identities_serde")]
    pub identities: BTreeSet<Identifier>,
    pub traits: BTreeMap<String, Stamped<Value>>,
    pub groups: BTreeMap<String, GroupState>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    /// Per track event name; other calls count under their type (`identify`, `page`, ...).
    pub event_counts: BTreeMap<String, u64>,
    pub timezone: Option<Stamped<String>>,
    pub locale: Option<Stamped<String>>,
    /// Profiles merged into this one.
    pub merged_from: BTreeSet<ProfileId>,
}

mod identities_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ids: &BTreeSet<Identifier>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<Identifier>, D::Error> {
        let keys = Vec::<String>::deserialize(d)?;
        keys.iter().map(|k| k.parse().map_err(serde::de::Error::custom)).collect()
    }
}

impl Profile {
    /// An empty profile; `first_seen`/`last_seen` are set by the first event applied.
    pub fn new(id: ProfileId) -> Profile {
        Profile {
            id,
            identities: BTreeSet::new(),
            traits: BTreeMap::new(),
            groups: BTreeMap::new(),
            first_seen: Millis::MAX,
            last_seen: Millis::MIN,
            event_counts: BTreeMap::new(),
            timezone: None,
            locale: None,
            merged_from: BTreeSet::new(),
        }
    }

    /// The distinct user ids this profile holds.
    pub fn user_ids(&self) -> BTreeSet<String> {
        self.identities.iter().filter(|i| i.kind == crate::identity::IdKind::UserId).map(|i| i.value.clone()).collect()
    }

    /// Folds one event into the profile. Commutative: the order of calls does not change the result.
    pub fn apply(&mut self, event: &Event) {
        let at = event.timestamp;
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
        *self.event_counts.entry(event.count_key().to_owned()).or_default() += 1;
        let stamp = |value: Value| Stamped { value, at, message_id: event.message_id.clone() };
        let identify_traits = event.identify_traits();

        match event.kind {
            EventType::Identify => {
                for (key, value) in &identify_traits {
                    join_map(&mut self.traits, key, stamp(value.clone()));
                }
            }
            EventType::Group => {
                if let Some(group_id) = &event.group_id {
                    let group = self.groups.entry(group_id.clone()).or_insert_with(|| GroupState {
                        first_seen: at,
                        last_seen: at,
                        ..GroupState::default()
                    });
                    group.first_seen = group.first_seen.min(at);
                    group.last_seen = group.last_seen.max(at);
                    for (key, value) in event.traits() {
                        join_map(&mut group.traits, key, stamp(value.clone()));
                    }
                }
            }
            _ => {}
        }

        let traits = (event.kind == EventType::Identify).then_some(&identify_traits);
        let pick = |from_context: Option<&str>, trait_keys: &[&str]| -> Option<String> {
            let from_traits = || traits.and_then(|t| trait_keys.iter().find_map(|k| t.get(*k).and_then(Value::as_str)));
            from_context.or_else(from_traits).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        if let Some(tz) = pick(event.timezone.as_deref(), &["timezone", "time_zone"]) {
            join(&mut self.timezone, &Stamped { value: tz, at, message_id: event.message_id.clone() });
        }
        if let Some(locale) = pick(event.locale.as_deref(), &["locale", "language"]) {
            join(&mut self.locale, &Stamped { value: locale, at, message_id: event.message_id.clone() });
        }
    }

    /// Absorbs another profile (a merge). Commutative and associative, like [`Profile::apply`].
    pub fn absorb(&mut self, other: Profile) {
        self.identities.extend(other.identities);
        for (key, value) in other.traits {
            join_map(&mut self.traits, &key, value);
        }
        for (group_id, theirs) in other.groups {
            match self.groups.get_mut(&group_id) {
                None => {
                    self.groups.insert(group_id, theirs);
                }
                Some(ours) => {
                    ours.first_seen = ours.first_seen.min(theirs.first_seen);
                    ours.last_seen = ours.last_seen.max(theirs.last_seen);
                    for (key, value) in theirs.traits {
                        join_map(&mut ours.traits, &key, value);
                    }
                }
            }
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        for (name, count) in other.event_counts {
            *self.event_counts.entry(name).or_default() += count;
        }
        if let Some(tz) = &other.timezone {
            join(&mut self.timezone, tz);
        }
        if let Some(locale) = &other.locale {
            join(&mut self.locale, locale);
        }
        self.merged_from.extend(other.merged_from);
        if other.id != self.id {
            self.merged_from.insert(other.id);
        }
    }

    /// The profile as the admin API shows it.
    pub fn to_public_json(&self) -> Value {
        let plain = |m: &BTreeMap<String, Stamped<Value>>| -> Map<String, Value> {
            m.iter().map(|(k, s)| (k.clone(), s.value.clone())).collect()
        };
        let times = |m: &BTreeMap<String, Stamped<Value>>| -> Map<String, Value> {
            m.iter().map(|(k, s)| (k.clone(), Value::String(format_timestamp(s.at)))).collect()
        };
        let groups: Map<String, Value> = self
            .groups
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    json!({"traits": plain(&g.traits), "first_seen": format_timestamp(g.first_seen),
                           "last_seen": format_timestamp(g.last_seen)}),
                )
            })
            .collect();
        let identities: Vec<Value> =
            self.identities.iter().map(|i| json!({"type": i.kind.as_str(), "value": i.value})).collect();
        json!({
            "id": self.id.to_string(),
            "identities": identities,
            "traits": plain(&self.traits),
            "traits_updated_at": times(&self.traits),
            "groups": groups,
            "first_seen": format_timestamp(self.first_seen),
            "last_seen": format_timestamp(self.last_seen),
            "event_counts": self.event_counts,
            "timezone": self.timezone.as_ref().map(|s| &s.value),
            "locale": self.locale.as_ref().map(|s| &s.value),
            "merged_from": self.merged_from.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_core::event::BatchDefaults;

    fn identify(mid: &str, ts: &str, traits: Value) -> Event {
        let v = json!({"type": "identify", "userId": "u", "messageId": mid, "timestamp": ts, "traits": traits,
                       "context": {"timezone": "Asia/Ho_Chi_Minh"}});
        Event::from_json(v, None, &BatchDefaults::default(), 0, String::new).unwrap()
    }

    #[test]
    fn latest_trait_wins_whatever_the_order() {
        let old = identify("m1", "2026-01-01T00:00:00Z", json!({"plan": "free", "name": "Lan"}));
        let new = identify("m2", "2026-02-01T00:00:00Z", json!({"plan": "pro"}));
        let mut a = Profile::new(ProfileId(1));
        a.apply(&old);
        a.apply(&new);
        let mut b = Profile::new(ProfileId(1));
        b.apply(&new);
        b.apply(&old);
        assert_eq!(a, b);
        assert_eq!(a.traits["plan"].value, "pro");
        assert_eq!(a.traits["name"].value, "Lan");
        assert_eq!(a.event_counts["identify"], 2);
        assert_eq!(a.timezone.as_ref().unwrap().value, "Asia/Ho_Chi_Minh");
    }

    #[test]
    fn identify_traits_come_from_context_traits_too() {
        let v = json!({"type": "identify", "userId": "u", "messageId": "m", "timestamp": "2026-01-01T00:00:00Z",
                       "traits": {"plan": "pro"}, "context": {"traits": {"plan": "free", "name": "Lan"}}});
        let e = Event::from_json(v, None, &BatchDefaults::default(), 0, String::new).unwrap();
        let mut p = Profile::new(ProfileId(1));
        p.apply(&e);
        assert_eq!((p.traits["plan"].value.as_str(), p.traits["name"].value.as_str()), (Some("pro"), Some("Lan")));
    }

    #[test]
    fn absorb_is_symmetric_apart_from_the_id() {
        let e1 = identify("m1", "2026-01-01T00:00:00Z", json!({"plan": "free"}));
        let e2 = identify("m2", "2026-02-01T00:00:00Z", json!({"plan": "pro"}));
        let (mut a, mut b) = (Profile::new(ProfileId(1)), Profile::new(ProfileId(2)));
        a.apply(&e1);
        b.apply(&e2);
        let mut ab = a.clone();
        ab.absorb(b.clone());
        let mut ba = b;
        ba.absorb(a);
        assert_eq!(ab.traits, ba.traits);
        assert_eq!(ab.event_counts, ba.event_counts);
        assert_eq!((ab.first_seen, ab.last_seen), (ba.first_seen, ba.last_seen));
        assert_eq!(ab.merged_from, BTreeSet::from([ProfileId(2)]));
    }

    #[test]
    fn storage_form_round_trips() {
        let mut p = Profile::new(ProfileId(9));
        p.identities.insert("email:lan@example.vn".parse().unwrap());
        p.apply(&identify("m1", "2026-01-01T00:00:00Z", json!({"tên": "Lan", "城市": "上海"})));
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Profile>(&text).unwrap(), p);
    }
}
