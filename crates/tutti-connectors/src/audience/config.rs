//! `[connectors.audience]`: the platform, its endpoint and token, and the audiences by name.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Format {
    Meta,
    Google,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    pub(super) format: Format,
    pub(super) endpoint: String,
    pub(super) token_env: String,
    pub(super) audiences: BTreeMap<String, String>,
    pub(super) default_country_code: Option<String>,
    #[serde(default = "default_batch")]
    pub(super) batch_size: usize,
    #[serde(default = "default_flush", deserialize_with = "crate::duration")]
    pub(super) flush_every: Duration,
}

fn default_batch() -> usize {
    1_000
}

fn default_flush() -> Duration {
    Duration::from_secs(10)
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub auth: Secret,
    pub config: Config,
    pub memory: Arc<dyn Memory>,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    let token = Secret::from_env(cx.env, "token_env", &config.token_env)?;
    if !config.endpoint.contains("{audience_id}") {
        return Err("`endpoint` must contain `{audience_id}`".into());
    }
    parse_url(&config.endpoint.replace("{audience_id}", "1")).map_err(|e| format!("`endpoint`: {e}"))?;
    if config.audiences.is_empty() {
        return Err("`audiences` maps each audience's name to the platform's id; it is empty".into());
    }
    for (name, id) in &config.audiences {
        if name.is_empty()
            || name.contains('/')
            || id.is_empty()
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("audience `{name}` = `{id}`: names without `/`, ids of letters, digits, `-` and `_`"));
        }
    }
    if config.batch_size == 0 || config.batch_size > MAX_BATCH {
        return Err(format!("`batch_size` is 1 to {MAX_BATCH}"));
    }
    if let Some(cc) = &config.default_country_code
        && !(1..=3).contains(&cc.len())
    {
        return Err("`default_country_code` is the calling code's digits, such as 84".into());
    }
    Ok(Box::new(Checked {
        auth: Secret::derived(format!("Bearer {}", token.expose())),
        config,
        memory: cx.shared.memory.clone(),
    }))
}
