//! Analytics: Tutti's own events answering questions.
//!
//! - [`project`]: an event as the analytics tables keep it (pure);
//! - [`sqlite`]: the embedded store those tables live in, its writer and its read-only query connections;
//! - [`metrics`]: the metrics layer, the names of what can be counted;
//! - [`query`]: the structured query, checked against the layer; [`compile`]: that query as SQL;
//! - [`ask`]: questions in Vietnamese, Chinese and English read into structured queries, without a model;
//! - [`answer`]: a query run, and its answer written in the question's language.
//!
//! The engine runs the projection on a thread of its own (`tutti-engine/src/analytics.rs`).

pub mod answer;
pub mod ask;
pub mod compile;
pub mod metrics;
pub mod project;
pub mod query;
pub mod sqlite;
pub mod stats;

pub use metrics::MetricsLayer;
pub use query::{MetricQuery, PeopleQuery, Period, Query, QueryError};
