//! `[connectors.zalo]`: the Zalo app, its secret and first refresh token, and the API hosts.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    app_id: String,
    app_secret_env: String,
    /// The refresh token the Official Account's authorisation gave; Tutti keeps each new one it is given (a
    /// refresh token is used once), and goes back to this one only when it changes.
    refresh_token_env: String,
    #[serde(default = "oauth_base")]
    oauth_base: String,
    #[serde(default = "zns_base")]
    zns_base: String,
    #[serde(default = "oa_base")]
    oa_base: String,
    #[serde(default = "vietnam")]
    default_country_code: Option<String>,
}

fn oauth_base() -> String {
    "https://oauth.zaloapp.com".into()
}

fn zns_base() -> String {
    "https://business.openapi.zalo.me".into()
}

fn oa_base() -> String {
    "https://openapi.zalo.me".into()
}

fn vietnam() -> Option<String> {
    Some("84".into())
}

pub(super) struct Checked {
    pub app_id: String,
    pub app_secret: Secret,
    pub refresh_token: Secret,
    pub oauth_base: String,
    pub zns_base: String,
    pub oa_base: String,
    pub default_country_code: Option<String>,
    pub memory: Arc<dyn Memory>,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    let app_secret = Secret::from_env(cx.env, "app_secret_env", &config.app_secret_env)?;
    let refresh_token = Secret::from_env(cx.env, "refresh_token_env", &config.refresh_token_env)?;
    if config.app_id.is_empty() || !config.app_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err("`app_id` is the Zalo app's id, digits".into());
    }
    for (key, base) in
        [("oauth_base", &config.oauth_base), ("zns_base", &config.zns_base), ("oa_base", &config.oa_base)]
    {
        parse_url(base).map_err(|e| format!("`{key}`: {e}"))?;
    }
    crate::phone::check_country_code(config.default_country_code.as_deref())?;
    let trim = |s: String| s.trim_end_matches('/').to_owned();
    Ok(Box::new(Checked {
        app_id: config.app_id,
        app_secret,
        refresh_token,
        oauth_base: trim(config.oauth_base),
        zns_base: trim(config.zns_base),
        oa_base: trim(config.oa_base),
        default_country_code: config.default_country_code,
        memory: cx.shared.memory.clone(),
    }))
}
