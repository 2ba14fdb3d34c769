//! A plan: typed steps drawn from Tutti's own capabilities, each a value a person can read and change before
//! anything exists. What it compiles to is in `compile.rs`; how a goal becomes one, in `planner.rs`.

use serde::{Deserialize, Serialize};
use tutti_core::money::Money;

/// The goal shapes the local planner covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Bring back customers who bought before and stopped.
    WinBack,
    /// Welcome and nurture new sign-ups towards a first order.
    Nurture,
    /// Promote something to a chosen audience.
    Promote,
    /// Re-engage people who left a cart.
    CartRecovery,
    /// Announce something to everyone reachable.
    Announce,
    /// Offer what goes with a recent purchase.
    Upsell,
}

impl Shape {
    pub const ALL: [Shape; 6] =
        [Shape::WinBack, Shape::Nurture, Shape::Promote, Shape::CartRecovery, Shape::Announce, Shape::Upsell];

    pub fn name(self) -> &'static str {
        match self {
            Shape::WinBack => "win_back",
            Shape::Nurture => "nurture",
            Shape::Promote => "promote",
            Shape::CartRecovery => "cart_recovery",
            Shape::Announce => "announce",
            Shape::Upsell => "upsell",
        }
    }
}

/// One condition of the audience, as it is stated and as it is checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// A trait at least a number (`ltv >= 10000000`).
    TraitAtLeast { name: String, trait_name: String, at_least: f64 },
    /// A trait equal to one of these values (`city` in Hà Nội, Hanoi, Ha Noi, 河内).
    TraitIn { name: String, trait_name: String, values: Vec<String> },
    /// Bought (or did `event`) before, but not in the last `days` days.
    LastPerformed { event: String, days: u32 },
    /// Did `event` at least `times` times, within `days` days when given.
    Performed { event: String, times: u32, days: Option<u32> },
    /// Did not do `event` within `days` days (ever, when not given).
    NotPerformed { event: String, days: Option<u32> },
    /// Has a way to be reached on one of the plan's channels (its email, Zalo id or phone).
    Reachable { traits: Vec<String> },
}

/// Who the plan is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audience {
    /// The segment the plan creates (`plan-p3-audience`).
    pub segment: String,
    pub conditions: Vec<Condition>,
}

/// What to write for one channel: the `generate` step's prompt. Each customer gets it in their own language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    pub channel: String,
    pub prompt: String,
    /// Days after the run starts that it goes (if the goal was not reached before).
    pub day: u32,
}

/// When the plan runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// How long it runs, from approval; runs end by then.
    pub days: u32,
    /// Quiet hours: the policies in force defer messages met by them (`quiet_hours: defer`).
    pub quiet_hours: String,
    /// When it started and ends (RFC 3339, UTC): set when it is approved. A member who enters after the end
    /// gets nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// One channel's share of the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelBudget {
    pub channel: String,
    /// What one message costs (the connector's `price`); none when it has no price.
    pub price: Option<Money>,
    /// Messages expected: the treated audience that can be reached on the channel.
    pub messages: u64,
    pub cost: Option<Money>,
}

/// A plan, one version of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `p3`.
    pub id: String,
    pub version: u32,
    pub goal: String,
    /// The language the goal was written in (`vi`, `zh`, `en`); assumptions are written in it.
    pub language: String,
    pub shape: Shape,
    /// Every reading the planner made that the goal did not say outright, as sentences.
    pub assumptions: Vec<String>,
    pub audience: Audience,
    /// The share of the audience kept out as a control (no message), to measure what the plan adds.
    pub holdout: f64,
    pub channels: Vec<String>,
    pub briefs: Vec<Brief>,
    pub schedule: Schedule,
    pub budget: Option<Money>,
    pub budget_split: Vec<ChannelBudget>,
    /// The event that counts as success, and the flow's exit.
    pub goal_event: String,
    /// The flow the plan creates (`plan-p3`).
    pub flow: String,
    /// `proposed`, `approved`, `rejected` or `superseded` (a newer version was made).
    pub status: String,
}
