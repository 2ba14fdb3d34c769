//! `[connectors.ai]`: providers, routes, prices and budget, review packs, disclosure, the judge and the taxonomy. The review packs and the taxonomy are files, read here.

use super::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    #[serde(default)]
    pub(super) providers: BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) routes: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) default: Option<String>,
    #[serde(default)]
    pub(super) prices: Prices,
    #[serde(default)]
    pub(super) budget_per_day: Option<f64>,
    #[serde(default = "thousand")]
    pub(super) cache_entries: usize,
    #[serde(default)]
    pub(super) review_dir: Option<String>,
    #[serde(default)]
    pub(super) allow_contacts: Vec<String>,
    /// Channel (or `*`) -> `never`, `model` or `always`.
    #[serde(default)]
    pub(super) disclosure: BTreeMap<String, generate::Disclose>,
    /// Language code -> the disclosure's text.
    #[serde(default)]
    pub(super) disclosure_text: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) judge: bool,
    /// A taxonomy file for `classify` (else the shipped objections).
    #[serde(default)]
    pub(super) taxonomy: Option<String>,
    /// How many days back a complaint makes any generated message an apology.
    #[serde(default = "complaint_days")]
    pub(super) complaint_days: i64,
    /// A file with the brand's voice (a style guide in words), given to a model that writes copy.
    #[serde(default)]
    pub(super) voice: Option<String>,
}

/// The longest voice file read (a style guide, not a book).
const MAX_VOICE_BYTES: u64 = 16 * 1024;

fn complaint_days() -> i64 {
    generate::COMPLAINT_DAYS
}

fn thousand() -> usize {
    1000
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub router: Router,
    pub gate: Gate,
    pub policy: generate::GenerationPolicy,
    pub stats: Arc<generate::Stats>,
    pub audit: Arc<dyn Audit>,
    pub history: Arc<dyn crate::History>,
    pub taxonomy: Option<TopicTaxonomy>,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
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
    for (code, text) in &config.disclosure_text {
        if tutti_ai::text::Language::from_code(code).is_none() || text.trim().is_empty() {
            return Err(format!("`disclosure_text.{code}`: a language code (vi, zh, en...) and a text"));
        }
    }
    let policy = generate::GenerationPolicy {
        disclosure: config.disclosure.clone(),
        disclosure_text: config.disclosure_text.clone(),
        judge: config.judge,
        complaint_days: config.complaint_days,
        voice: match &config.voice {
            None => None,
            Some(path) => {
                let size = std::fs::metadata(path).map_err(|e| format!("`voice`: cannot read {path}: {e}"))?.len();
                if size > MAX_VOICE_BYTES {
                    return Err(format!("`voice`: {path} is {size} bytes; the limit is {MAX_VOICE_BYTES}"));
                }
                Some(std::fs::read_to_string(path).map_err(|e| format!("`voice`: cannot read {path}: {e}"))?)
            }
        },
    };
    if !(0..=365).contains(&config.complaint_days) {
        return Err("`complaint_days` must be a number of days from 0 to 365".into());
    }
    let taxonomy = match &config.taxonomy {
        None => None,
        Some(path) => {
            let source = std::fs::read_to_string(path).map_err(|e| format!("`taxonomy`: cannot read {path}: {e}"))?;
            Some(TopicTaxonomy::from_yaml(&source).map_err(|e| format!("`taxonomy`: {path}: {e}"))?)
        }
    };
    Ok(Box::new(Checked {
        router,
        gate,
        policy,
        stats: cx.shared.ai.clone(),
        audit: cx.shared.audit.clone(),
        history: cx.shared.history.clone(),
        taxonomy,
    }))
}
