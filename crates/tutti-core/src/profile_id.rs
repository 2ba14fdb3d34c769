//! A profile's id: what identity resolution hands out and profiles are stored under. A module of its own so that
//! identity (which resolves identifiers to ids) and profiles (which hold identifiers) need not import each other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A profile's id, rendered as `p<number>` (`p42`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileId(pub u64);

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl FromStr for ProfileId {
    type Err = std::num::ParseIntError;

    /// Accepts `p42` and `42`: digits only (no sign, no spaces).
    fn from_str(s: &str) -> Result<ProfileId, Self::Err> {
        let digits = s.strip_prefix('p').unwrap_or(s);
        // `u64::from_str` takes a leading `+`; a profile id does not, so anything but digits is read as the empty
        // string, for the same error.
        let digits = if digits.bytes().all(|b| b.is_ascii_digit()) { digits } else { "" };
        digits.parse().map(ProfileId)
    }
}
