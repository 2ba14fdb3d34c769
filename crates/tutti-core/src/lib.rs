//! The pure core of Tutti.
//!
//! The vocabulary every stage shares: the Segment event model and its validation, time, JSON and YAML with
//! positions, conditions (CEL) and templates (Liquid) with their budgets, error codes, and the reading of
//! definitions with located problems. Nothing in this crate performs I/O or spawns tasks, and no decision reads
//! a clock: callers pass in the current time (from a [`clock::Clock`], the shell's one reading of it) and
//! whatever stored state a decision needs, and get back the decision.
//! Identity and profiles, segments and flows build on it in crates of their own.

pub mod audit;
pub mod batch;
pub mod budget;
pub mod clock;
pub mod codes;
pub mod condition;
pub mod creative;
pub mod cron;
pub mod decode;
pub mod event;
pub mod event_match;
pub mod hash;
pub mod html;
pub mod json;
pub mod money;
pub mod profile_id;
pub mod secret;
pub mod template;
pub mod time;
pub mod yaml;

pub use batch::{BatchDefaults, BatchEnvelope, EnvelopeError, read_envelope};
pub use codes::ErrorCode;
pub use event::{Event, EventError, EventType, FieldError};
pub use profile_id::ProfileId;
pub use time::Millis;
