//! Creative intelligence: creatives, their tags and their daily performance, and what the tags say about what
//! wins on which channel, with how sure the data lets us be.
//!
//! - [`model`]: creatives, tags (with confidence and source), daily performance.
//! - [`analysis`]: Beta-Binomial posteriors per creative shrunk toward the channel's mean, a Bayesian bootstrap
//!   over creatives per trait value, the probability that one value beats another and the expected lift.
//! - [`synth`]: synthetic campaigns with planted effects, to check the analysis against a known truth.
//! - [`stats`]: the seeded generator and the distributions.

pub mod analysis;
pub mod model;
pub mod stats;
pub mod synth;

pub use analysis::{Options, Report, analyze};
pub use model::{Creative, Daily, Owner, Performance, Tag, TagSource, Totals};
