//! The [`Engine`](crate::Engine)'s operations, by area; the type itself, its health and its shutdown are in
//! `lib.rs`.

mod broadcasts;
mod budgets;
mod connectors;
mod conversations;
mod flows;
mod history;
mod insights;
mod people;
mod plans;
mod preview;
mod profiles;
mod questions;
mod reports;
mod start;
mod tokens;

pub use broadcasts::{BroadcastDraft, BroadcastError, BroadcastReview, BroadcastSample};
pub use budgets::BudgetError;
pub use connectors::ConnectorsHandle;
pub use insights::InsightsHandle;
pub use people::{PeopleHandle, Person, Session, SignInFailures, SignedIn};
pub use plans::PlanError;
pub use preview::PreviewError;
pub use questions::AskError;
pub use reports::{ArmReport, ChannelDay, FlowReport, MessageDay, MessageReport, SplitReport, VersionReport};
pub use tokens::{DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, TOKEN_PREFIX, TokenInfo};
