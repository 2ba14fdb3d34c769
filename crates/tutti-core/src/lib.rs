//! The pure core of Tutti.
//!
//! Everything here is deterministic decision logic: the Segment event model and its validation, identifier
//! normalisation, the identity-resolution algorithm and the profile state. Nothing in this crate performs I/O,
//! spawns tasks or reads a clock; callers pass in the current time and whatever stored state a decision needs,
//! and get back the decision. That makes every decision replayable and testable with plain values.

pub mod audit;
pub mod batch;
pub mod budget;
pub mod codes;
pub mod condition;
pub mod creative;
pub mod cron;
pub mod event;
pub mod flow;
pub mod hash;
pub mod identity;
pub mod json;
pub mod profile;
pub mod profile_id;
pub mod template;
pub mod time;
pub mod yaml;

pub use batch::{BatchDefaults, BatchEnvelope, EnvelopeError, read_envelope};
pub use codes::ErrorCode;
pub use event::{Event, EventError, EventType, FieldError};
pub use identity::{IdKind, Identifier, IdentityConfig, Resolution, ResolveInput};
pub use profile::{Profile, ProfileId};
pub use time::Millis;
