//! `[connectors.hubspot]`: the private app token and the API base.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    pub(super) token_env: String,
    #[serde(default = "default_api_base")]
    pub(super) api_base: String,
}

fn default_api_base() -> String {
    "https://api.hubapi.com".into()
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub auth: Secret,
    pub api_base: String,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    let token = Secret::from_env(cx.env, "token_env", &config.token_env)?;
    parse_url(&config.api_base).map_err(|e| format!("`api_base`: {e}"))?;
    Ok(Box::new(Checked {
        auth: Secret::derived(format!("Bearer {}", token.expose())),
        api_base: config.api_base.trim_end_matches('/').to_owned(),
    }))
}
