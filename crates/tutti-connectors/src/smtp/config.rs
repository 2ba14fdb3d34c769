//! `[connectors.smtp]`: the server, its security and credentials, the sender, and the unsubscribe base.

use super::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Security {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    pub(super) host: String,
    pub(super) port: Option<u16>,
    #[serde(default)]
    pub(super) security: Security,
    pub(super) username_env: Option<String>,
    pub(super) password_env: Option<String>,
    /// The sender, such as `Tutti Shop <news@shop.vn>`.
    pub(super) from: String,
    pub(super) reply_to: Option<String>,
    /// Tutti's public address, for one-click unsubscribe links and open and click tracking
    /// (`https://mkt.shop.vn`).
    pub(super) unsubscribe_base_url: Option<String>,
    /// Links in HTML bodies go through Tutti and a one-pixel image is added (needs `unsubscribe_base_url`).
    #[serde(default = "tracking_by_default")]
    pub(super) track_opens_and_clicks: bool,
    /// The name given in EHLO (default: this machine's host name).
    pub(super) helo_name: Option<String>,
}

fn tracking_by_default() -> bool {
    true
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub config: Config,
    pub credentials: Option<(Secret, Secret)>,
    pub from: Mailbox,
    pub domain: String,
    pub unsubscribe: Option<String>,
    pub link_key: Vec<u8>,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    if config.host.trim().is_empty() {
        return Err("`host` is required".into());
    }
    let from: Mailbox = config.from.parse().map_err(|e| format!("`from` `{}` is not an address: {e}", config.from))?;
    if let Some(reply_to) = &config.reply_to {
        reply_to.parse::<Mailbox>().map_err(|e| format!("`reply_to` `{reply_to}` is not an address: {e}"))?;
    }
    let credentials = match (&config.username_env, &config.password_env) {
        (Some(user), Some(pass)) => {
            Some((Secret::from_env(cx.env, "username_env", user)?, Secret::from_env(cx.env, "password_env", pass)?))
        }
        (None, None) => None,
        _ => return Err("set both `username_env` and `password_env`, or neither".into()),
    };
    if credentials.is_some() && config.security == Security::None {
        return Err("credentials over `security = \"none\"` would travel in clear text; use starttls or tls".into());
    }
    let unsubscribe = match &config.unsubscribe_base_url {
        Some(base) => {
            crate::http::parse_url(base).map_err(|e| format!("`unsubscribe_base_url`: {e}"))?;
            Some(base.trim_end_matches('/').to_owned())
        }
        None => None,
    };
    if cx.link_key.len() < 16 {
        return Err("the installation's link key is missing".into());
    }
    let domain = from.email.domain().to_owned();
    Ok(Box::new(Checked { config, credentials, from, domain, unsubscribe, link_key: cx.link_key.to_vec() }))
}
