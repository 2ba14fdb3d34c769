//! `[connectors.trello]`: the key and token, the default list and the API base.

use super::*;
use crate::Memory;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    pub(super) key_env: String,
    pub(super) token_env: String,
    pub(super) default_list: Option<String>,
    #[serde(default = "default_api_base")]
    pub(super) api_base: String,
}

fn default_api_base() -> String {
    "https://api.trello.com/1".into()
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub memory: Arc<dyn Memory>,
    pub auth: Secret,
    pub default_list: Option<String>,
    pub api_base: String,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    let key = Secret::from_env(cx.env, "key_env", &config.key_env)?;
    let token = Secret::from_env(cx.env, "token_env", &config.token_env)?;
    parse_url(&config.api_base).map_err(|e| format!("`api_base`: {e}"))?;
    let auth =
        Secret::derived(format!(r#"OAuth oauth_consumer_key="{}", oauth_token="{}""#, key.expose(), token.expose()));
    Ok(Box::new(Checked {
        memory: cx.shared.memory.clone(),
        auth,
        default_list: config.default_list,
        api_base: config.api_base.trim_end_matches('/').to_owned(),
    }))
}
