//! The commands, one file per family; they share the admin client and printer in `client.rs`.

pub(crate) mod analytics;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod client;
pub(crate) mod connectors;
pub(crate) mod conversations;
pub(crate) mod dead_letters;
pub(crate) mod flows;
pub(crate) mod insights;
pub(crate) mod plan;
pub(crate) mod profiles;
pub(crate) mod review;
pub(crate) mod serve;
pub(crate) mod users;
