//! The copilot: a marketer's goal ("Bring back lapsed VIP customers in Hanoi, budget 50 million VND, email and
//! Zalo, two weeks") read in Vietnamese, Chinese or English into a typed [`Plan`]: the audience (conditions on
//! traits and behaviour), a holdout, content briefs per channel, a schedule, the budget split across channels
//! from the price table, the goal event and the exits, with every assumption stated. A plan compiles to an
//! ordinary segment and flow ([`compile`]); nothing exists, is sent or spent until a person approves it.
//!
//! Pure: no I/O, no clock. The engine counts the audience, drafts sample messages, keeps plan versions and
//! creates the definitions on approval. `read/` is the local reader of goals, `planner.rs` fills the gaps with
//! assumptions, `change.rs` applies a change asked in words, `compile.rs` writes the YAML.

pub mod change;
pub mod compile;
pub mod plan;
pub mod planner;
pub mod read;
pub mod suite;
pub mod tool;

pub use plan::{Audience, Brief, ChannelBudget, Condition, Plan, Schedule, Shape};
pub use planner::{Context, Refusal, plan, plan_reading};
