//! Identity resolution: which identifiers an event carries, and which profile it belongs to.
//!
//! The algorithm is Segment Unify's "flat matching" with limits and priorities:
//! 1. Collect the event's identifiers, normalised, blocked values dropped, sorted by priority
//!    (`user_id`, `email`, `phone`, custom identifier traits alphabetically, `anonymous_id`).
//! 2. Find the profiles that own any of them. None: create a profile. One or more: merge them into one.
//! 3. If the merged profile would hold more distinct user ids than the limit (default 1), drop the
//!    lowest-priority identifier from the event and try again. Dropped identifiers stay where they are.
//!
//! [`resolve`] is the pure decision; the engine looks up the current owners, calls it, and stores the result.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use tutti_core::event::{Event, EventType};
use tutti_core::profile_id::ProfileId;

/// The kind of an identifier. The declaration order is the merge priority, highest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKind {
    UserId,
    Email,
    Phone,
    /// An identifier trait named in configuration, such as `zalo_id`.
    Custom(String),
    AnonymousId,
}

impl IdKind {
    /// The name used in profile keys (`email:a@b.c`) and in storage.
    pub fn as_str(&self) -> &str {
        match self {
            IdKind::UserId => "user_id",
            IdKind::Email => "email",
            IdKind::Phone => "phone",
            IdKind::Custom(name) => name,
            IdKind::AnonymousId => "anonymous_id",
        }
    }

    /// Parses a kind name; any name other than the four built-in ones is a custom identifier trait.
    pub fn parse(name: &str) -> IdKind {
        match name {
            "user_id" => IdKind::UserId,
            "email" => IdKind::Email,
            "phone" => IdKind::Phone,
            "anonymous_id" => IdKind::AnonymousId,
            other => IdKind::Custom(other.to_owned()),
        }
    }
}

/// One normalised identifier, such as `email:an.nguyen@example.vn`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    pub kind: IdKind,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: IdKind, value: impl Into<String>) -> Identifier {
        Identifier { kind, value: value.into() }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// Parse errors of `type:value` keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("expected type:value, such as email:a@b.c or user_id:42")]
    Shape,
    #[error("the identifier type must be lowercase letters, digits, '_' or '.'")]
    Kind,
}

impl FromStr for Identifier {
    type Err = KeyError;

    /// Parses `type:value`; the value is taken as given (see [`IdentityConfig::normalise`] to normalise it).
    fn from_str(key: &str) -> Result<Identifier, KeyError> {
        let (kind, value) = key.split_once(':').ok_or(KeyError::Shape)?;
        if kind.is_empty() || value.is_empty() {
            return Err(KeyError::Shape);
        }
        if !kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.') {
            return Err(KeyError::Kind);
        }
        Ok(Identifier::new(IdKind::parse(kind), value))
    }
}

/// Identity-resolution settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// The most distinct user ids one profile may hold (Segment's default: 1).
    pub max_user_ids: usize,
    /// Trait names that are identifiers too, such as `zalo_id` or `crm_id`.
    pub identifier_traits: Vec<String>,
    /// Country calling code (digits only, such as `84`) for phone numbers written without one.
    /// Without it, such numbers cannot be made E.164 and are not used as identifiers.
    pub default_country_code: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { max_user_ids: 1, identifier_traits: Vec::new(), default_country_code: None }
    }
}

/// True for values that must never identify anyone: they are what broken or test instrumentation sends.
pub fn is_blocked(raw: &str) -> bool {
    let v = raw.trim();
    v.is_empty()
        || ["null", "undefined", "anonymous", "-1", "nil", "none"].iter().any(|b| v.eq_ignore_ascii_case(b))
        || v.chars().all(|c| c == '0' || c == '-')
}

/// The kind of a `type:value` key whose value is a placeholder (`user_id:null`, `anonymous_id:0`): such a key is
/// well formed but identifies nobody. `None` for any other key, one with an empty value included (malformed).
pub fn placeholder_kind(key: &str) -> Option<&str> {
    let (kind, value) = key.split_once(':')?;
    (!value.trim().is_empty() && is_blocked(value)).then_some(kind)
}

/// Trimmed, lower-case email; `None` unless it has the shape `local@domain`.
pub fn normalise_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    ok.then_some(email)
}

/// E.164 (`+` and 8 to 15 digits) from common written forms: `+84 912 345 678`, `0084-912-345-678`, and with a
/// default country code, national forms such as `0912 345 678` (the trunk `0` is dropped).
pub fn normalise_phone(raw: &str, default_country_code: Option<&str>) -> Option<String> {
    let text = raw.trim();
    let (international, rest) = if let Some(rest) = text.strip_prefix('+') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("00") {
        (true, rest)
    } else {
        (false, text)
    };
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    let full = if international {
        digits
    } else {
        let cc = default_country_code?;
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        format!("{cc}{national}")
    };
    let ok = (8..=15).contains(&full.len()) && !full.starts_with('0');
    ok.then(|| format!("+{full}"))
}

impl IdentityConfig {
    /// Normalises a value of the given kind, or `None` if it is blocked or malformed.
    pub fn normalise(&self, kind: &IdKind, raw: &str) -> Option<String> {
        if is_blocked(raw) {
            return None;
        }
        match kind {
            IdKind::Email => normalise_email(raw),
            IdKind::Phone => normalise_phone(raw, self.default_country_code.as_deref()),
            _ => Some(raw.trim().to_owned()),
        }
    }

    /// Parses and normalises a `type:value` profile key. `user_id:`, `anonymous_id:`, `email:`, `phone:` and
    /// the configured identifier traits are accepted.
    pub fn parse_key(&self, key: &str) -> Result<Identifier, KeyError> {
        let id: Identifier = key.parse()?;
        if let IdKind::Custom(name) = &id.kind
            && !self.identifier_traits.iter().any(|t| t == name)
        {
            return Err(KeyError::Kind);
        }
        let value = self.normalise(&id.kind, &id.value).ok_or(KeyError::Shape)?;
        Ok(Identifier::new(id.kind, value))
    }

    /// The identifiers an event carries, normalised, deduplicated and sorted by priority.
    ///
    /// `previous_is_user_id` says how to read an alias's `previousId`: as a user id when the engine knows it as
    /// one, otherwise as an anonymous id.
    pub fn identifiers(&self, event: &Event, previous_is_user_id: bool) -> Vec<Identifier> {
        let mut ids = BTreeSet::new();
        let mut push = |kind: IdKind, raw: &str| {
            if let Some(value) = self.normalise(&kind, raw) {
                ids.insert(Identifier::new(kind, value));
            }
        };
        if let Some(u) = &event.user_id {
            push(IdKind::UserId, u);
        }
        if let Some(a) = &event.anonymous_id {
            push(IdKind::AnonymousId, a);
        }
        if let (EventType::Alias, Some(prev)) = (event.kind, &event.previous_id) {
            push(if previous_is_user_id { IdKind::UserId } else { IdKind::AnonymousId }, prev);
        }
        // A group call's `traits` describe the group, not the person.
        let own_traits = match event.kind {
            EventType::Identify => Some(event.traits()),
            _ => None,
        };
        for traits in own_traits.into_iter().chain([event.context_traits()]) {
            for (name, kind) in [("email", IdKind::Email), ("phone", IdKind::Phone)] {
                if let Some(raw) = scalar(traits, name) {
                    push(kind, &raw);
                }
            }
            for name in &self.identifier_traits {
                if let Some(raw) = scalar(traits, name) {
                    push(IdKind::Custom(name.clone()), &raw);
                }
            }
        }
        let mut ids: Vec<Identifier> = ids.into_iter().collect();
        // The event's own userId outranks an alias's previousId read as a user id.
        if let Some(own) = event.user_id.as_deref().and_then(|u| self.normalise(&IdKind::UserId, u))
            && let Some(pos) = ids.iter().position(|i| i.kind == IdKind::UserId && i.value == own)
        {
            let mine = ids.remove(pos);
            ids.insert(0, mine);
        }
        ids
    }
}

fn scalar(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What [`resolve`] needs to know about the current identity graph.
#[derive(Debug, Clone, Default)]
pub struct ResolveInput {
    /// The event's identifiers in priority order (as [`IdentityConfig::identifiers`] returns them), each with
    /// the profile that owns it now, if any.
    pub identifiers: Vec<(Identifier, Option<ProfileId>)>,
    /// The user ids held by each profile named in `identifiers`.
    pub user_ids: BTreeMap<ProfileId, BTreeSet<String>>,
}

/// The decision for one event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    /// The profile the event belongs to; `None` means a new profile is to be created for it.
    pub target: Option<ProfileId>,
    /// Profiles to merge into the target, in ascending id order.
    pub merge: Vec<ProfileId>,
    /// Identifiers not yet owned by anyone, to link to the target.
    pub link: Vec<Identifier>,
    /// Identifiers left out because keeping them would break a limit.
    pub dropped: Vec<Identifier>,
}

/// Decides which profile an event belongs to. Pure: same input, same answer.
pub fn resolve(input: &ResolveInput, max_user_ids: usize) -> Resolution {
    let mut active: Vec<&(Identifier, Option<ProfileId>)> = input.identifiers.iter().collect();
    let mut dropped = Vec::new();
    loop {
        let owners: BTreeSet<ProfileId> = active.iter().filter_map(|(_, owner)| *owner).collect();
        let mut user_ids: BTreeSet<&str> = BTreeSet::new();
        for owner in &owners {
            if let Some(ids) = input.user_ids.get(owner) {
                user_ids.extend(ids.iter().map(String::as_str));
            }
        }
        for (id, _) in &active {
            if id.kind == IdKind::UserId {
                user_ids.insert(&id.value);
            }
        }
        if user_ids.len() <= max_user_ids.max(1) || active.len() <= 1 {
            // The survivor is the profile holding the most user ids (an anonymous profile merges into a known
            // one); among equals, the oldest, which is the smallest id.
            let target = owners.iter().copied().max_by(|a, b| {
                let count = |p: &ProfileId| input.user_ids.get(p).map_or(0, BTreeSet::len);
                count(a).cmp(&count(b)).then(b.cmp(a))
            });
            let merge = owners.iter().copied().filter(|p| Some(*p) != target).collect();
            let link = active.iter().filter(|(_, owner)| owner.is_none()).map(|(id, _)| id.clone()).collect();
            dropped.reverse();
            return Resolution { target, merge, link, dropped };
        }
        let (id, _) = active.pop().expect("active has more than one element");
        dropped.push(id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use tutti_core::event::BatchDefaults;

    fn event(v: Value) -> Event {
        Event::from_json(v, None, &BatchDefaults::default(), 0, || "m".into()).unwrap()
    }

    #[test]
    fn blocked_values_never_identify() {
        for v in ["", "  ", "null", "NULL", "undefined", "anonymous", "-1", "0", "0000", "00-00"] {
            assert!(is_blocked(v), "{v:?} should be blocked");
        }
        for v in ["42", "abc", "0x1", "-2"] {
            assert!(!is_blocked(v), "{v:?} should pass");
        }
    }

    #[test]
    fn emails_and_phones_are_normalised() {
        assert_eq!(normalise_email("  An.Nguyen@Example.VN "), Some("an.nguyen@example.vn".into()));
        assert_eq!(normalise_email("not-an-email"), None);
        assert_eq!(normalise_phone("+84 912-345-678", None), Some("+84912345678".into()));
        assert_eq!(normalise_phone("0084 912 345 678", None), Some("+84912345678".into()));
        assert_eq!(normalise_phone("0912 345 678", Some("84")), Some("+84912345678".into()));
        assert_eq!(normalise_phone("0912 345 678", None), None);
        assert_eq!(normalise_phone("+86 138 0013 8000", None), Some("+8613800138000".into()));
        assert_eq!(normalise_phone("call me", Some("84")), None);
    }

    #[test]
    fn identifiers_come_in_priority_order() {
        let config = IdentityConfig { identifier_traits: vec!["zalo_id".into()], ..IdentityConfig::default() };
        let e = event(json!({"type": "identify", "userId": "u1", "anonymousId": "a1",
            "traits": {"email": "X@Y.com", "phone": "+84 912 345 678", "zalo_id": 77}}));
        let ids: Vec<String> = config.identifiers(&e, false).iter().map(ToString::to_string).collect();
        assert_eq!(ids, ["user_id:u1", "email:x@y.com", "phone:+84912345678", "zalo_id:77", "anonymous_id:a1"]);
    }

    #[test]
    fn group_traits_are_not_personal_identifiers() {
        let e = event(json!({"type": "group", "userId": "u1", "groupId": "g", "traits": {"email": "team@acme.vn"}}));
        assert_eq!(IdentityConfig::default().identifiers(&e, false).len(), 1);
    }

    #[test]
    fn anonymous_profile_merges_into_the_known_one() {
        let (known, anon) = (ProfileId(1), ProfileId(2));
        let input = ResolveInput {
            identifiers: vec![
                (Identifier::new(IdKind::UserId, "u1"), Some(known)),
                (Identifier::new(IdKind::AnonymousId, "a1"), Some(anon)),
            ],
            user_ids: BTreeMap::from([(known, BTreeSet::from(["u1".to_owned()])), (anon, BTreeSet::new())]),
        };
        let r = resolve(&input, 1);
        assert_eq!(r.target, Some(known));
        assert_eq!(r.merge, vec![anon]);
        assert!(r.link.is_empty() && r.dropped.is_empty());
    }

    #[test]
    fn a_second_user_id_is_not_merged_and_the_lower_identifier_is_dropped() {
        // Segment's documented example: a profile holds user abc123 and an email; a new event carries user abc456
        // with the same email. The email is demoted and a new profile is created for abc456.
        let existing = ProfileId(1);
        let input = ResolveInput {
            identifiers: vec![
                (Identifier::new(IdKind::UserId, "abc456"), None),
                (Identifier::new(IdKind::Email, "jane@example1.com"), Some(existing)),
            ],
            user_ids: BTreeMap::from([(existing, BTreeSet::from(["abc123".to_owned()]))]),
        };
        let r = resolve(&input, 1);
        assert_eq!(r.target, None);
        assert_eq!(r.link, vec![Identifier::new(IdKind::UserId, "abc456")]);
        assert_eq!(r.dropped, vec![Identifier::new(IdKind::Email, "jane@example1.com")]);
        // With a limit of two user ids the same event merges.
        assert_eq!(resolve(&input, 2).target, Some(existing));
    }
}
