//! Identity and profiles: one profile per customer.
//!
//! [`identity`] normalises the identifiers an event carries (user ids, anonymous ids, emails, phones, Zalo ids)
//! and decides, from who owns each of them, whether the event belongs to a known profile, starts a new one or
//! merges several. [`profile`] is a profile's state: its identities, traits with when each was set, and the
//! events folded into it. Both are pure: the processor passes in what is stored and applies the decision.

pub mod identity;
pub mod profile;

pub use identity::{IdKind, Identifier, IdentityConfig, Resolution, ResolveInput};
pub use profile::Profile;
pub use tutti_core::ProfileId;
