//! `ai`: the connector the `generate` step goes through. It writes a personalised message for one profile
//! (`tutti_ai::generate`): the personalisation context, N variants from the routed provider (the local one
//! when no model is configured, or when the model fails, is too slow or is over budget), review by the gate,
//! revision with the gate's feedback. Its answer is the message, which the run keeps as `run.steps.<id>`.
//!
//! `[connectors.ai]` configures the models, beside the settings every connector has:
//!
//! ```toml
//! [connectors.ai]
//! default = "openai"                 # the provider of generation and planning (else local)
//! routes = { classify = "local" }   # per task
//! budget_per_day = 5.0               # in the price table's currency; over it, local
//! review_dir = "review"              # rule packs beside the built-in ones
//! allow_contacts = ["help@acme.example"]
//! [connectors.ai.prices]
//! "gpt-4o-mini" = { input = 0.15, output = 0.60 }   # per million tokens
//! [connectors.ai.providers.openai]
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tutti_ai::generate;
use tutti_ai::provider::local::Local;
use tutti_ai::provider::route::{Router, Routes};
use tutti_ai::provider::{Prices, Provider, Task};
use tutti_ai::review::Gate;

use crate::llm::OpenAi;
use crate::{Action, Context, Delivery, Failure, Kind, Sender, Settings};

pub static KIND: Kind = Kind { name: "ai", channel: "ai", operations: &["generate"], default_on: true, build };

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    providers: BTreeMap<String, Value>,
    #[serde(default)]
    routes: BTreeMap<String, String>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    prices: Prices,
    #[serde(default)]
    budget_per_day: Option<f64>,
    #[serde(default = "thousand")]
    cache_entries: usize,
    #[serde(default)]
    review_dir: Option<String>,
    #[serde(default)]
    allow_contacts: Vec<String>,
}

fn thousand() -> usize {
    1000
}

/// The local provider with every skill Tutti has.
pub fn local() -> Local {
    Local::new().with(Task::Generate, Arc::new(generate::local_skill))
}

fn build(table: &Value, _: &Settings, cx: &Context<'_>) -> Result<Arc<dyn Sender>, String> {
    let config: Config = crate::config(table)?;
    config.prices.check().map_err(|e| format!("`prices`: {e}"))?;
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    for (name, t) in &config.providers {
        if name == "local" || !tutti_ai::provider::valid_name(name) {
            return Err(format!(
                "`providers.{name}`: a provider's name is letters, digits, `_` and `-`, and not `local`"
            ));
        }
        let p = OpenAi::build(name, t, &config.prices, cx.env).map_err(|e| format!("`providers.{name}`: {e}"))?;
        providers.push(Arc::new(p));
    }
    let mut tasks = BTreeMap::new();
    for (task, provider) in &config.routes {
        let t = Task::from_name(task).ok_or_else(|| {
            let all: Vec<&str> = Task::ALL.iter().map(|t| t.name()).collect();
            format!("`routes.{task}`: no such task; tasks are {}", all.join(", "))
        })?;
        tasks.insert(t, provider.clone());
    }
    let budget = match config.budget_per_day {
        Some(b) if !(b.is_finite() && b >= 0.0) => return Err("`budget_per_day` must be a non-negative number".into()),
        Some(b) => Some((b * 1e6) as u64),
        None => None,
    };
    let routes = Routes {
        tasks,
        default: config.default.clone(),
        budget_per_day_micros: budget,
        cache_entries: config.cache_entries,
        cache_ttl_ms: 24 * 3_600_000,
    };
    let router = Router::new(local(), providers, routes)?;
    let gate = Gate::load(config.review_dir.as_deref().map(std::path::Path::new))
        .map_err(|e| format!("`review_dir`: {e}"))?
        .allow_contacts(config.allow_contacts.clone());
    Ok(Arc::new(Ai { router, gate, stats: cx.shared.ai.clone() }))
}

struct Ai {
    router: Router,
    gate: Gate,
    stats: Arc<generate::Stats>,
}

impl Sender for Ai {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            if action.operation != "generate" {
                return Err(crate::unknown_operation("ai", action.operation));
            }
            let g = generate::generate(action.payload, &self.router, &self.gate, &self.stats, action.now)
                .await
                .map_err(Failure::permanent)?;
            serde_json::to_value(g).map_err(|e| Failure::permanent(e.to_string()))
        })
    }

    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            Ok(serde_json::json!({"local": true, "remote": self.router.has_remote(),
                                  "generate": self.router.provider_for(Task::Generate)}))
        })
    }
}
