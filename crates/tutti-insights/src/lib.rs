//! Creative intelligence: creatives, their tags and their daily performance, and what the tags say about what
//! wins on which channel, with how sure the data lets us be.
//!
//! The data model (creatives, tags with confidence and source, daily performance) is `tutti_core::creative`.
//! - [`analysis`]: Beta-Binomial posteriors per creative shrunk toward the channel's mean, a Bayesian bootstrap
//!   over creatives per trait value, the probability that one value beats another and the expected lift.
//! - [`predict`] (a creative not yet launched), [`budget`] (Thompson sampling, proposed for approval),
//!   [`competitors`] (trait shares by owner and month), [`alerts`] (verdicts that changed since the last look).
//! - [`import`]: Meta Ads Manager, Google Ads and generic CSV exports, in chunks, with rejected rows and why.
//! - [`service`]: import (then tag), tag, override, analyse over a `CreativeStore`; [`render`]: text tables.
//! - [`synth`]: synthetic campaigns with planted effects, to check the analysis against a known truth.
//! - [`stats`]: the seeded generator and the distributions.

pub mod alerts;
pub mod analysis;
pub mod budget;
pub mod competitors;
pub mod import;
pub mod predict;
pub mod render;
pub mod service;
pub mod stats;
pub mod synth;

pub use analysis::{Options, Report, analyze, analyze_totals};
pub use tutti_core::creative::{Creative, Daily, Owner, Performance, Tag, TagSource, Totals};
