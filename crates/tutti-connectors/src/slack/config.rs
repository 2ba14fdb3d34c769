//! `[connectors.slack]`: a bot token for chat.postMessage or an incoming webhook, or both.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    pub(super) token_env: Option<String>,
    pub(super) webhook_url_env: Option<String>,
    pub(super) default_channel: Option<String>,
    #[serde(default = "default_api_base")]
    pub(super) api_base: String,
}

fn default_api_base() -> String {
    "https://slack.com/api".into()
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub token: Option<Secret>,
    pub webhook: Option<Secret>,
    pub default_channel: Option<String>,
    pub api_base: String,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    if config.token_env.is_none() && config.webhook_url_env.is_none() {
        return Err(
            "set `token_env` (a bot token for chat.postMessage) or `webhook_url_env` (an incoming webhook)".into()
        );
    }
    let token = match &config.token_env {
        Some(name) => Some(Secret::from_env(cx.env, "token_env", name)?),
        None => None,
    };
    let webhook = match &config.webhook_url_env {
        Some(name) => {
            let url = Secret::from_env(cx.env, "webhook_url_env", name)?;
            // The URL is a secret: the error names the variable, never the value.
            parse_url(url.expose()).map_err(|_| format!("the environment variable {name} does not hold a URL"))?;
            Some(url)
        }
        None => None,
    };
    parse_url(&config.api_base).map_err(|e| format!("`api_base`: {e}"))?;
    Ok(Box::new(Checked {
        token,
        webhook,
        default_channel: config.default_channel,
        api_base: config.api_base.trim_end_matches('/').to_owned(),
    }))
}
