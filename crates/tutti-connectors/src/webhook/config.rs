//! `[connectors.webhook]`: the secret requests are signed with, if any.

use serde::Deserialize;
use serde_json::Value;

use crate::{CheckedConfig, Context, Secret};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The environment variable holding the signing secret; requests are unsigned without it.
    signing_secret_env: Option<String>,
}

pub(super) struct Checked {
    pub secret: Option<Secret>,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    let secret = match &config.signing_secret_env {
        Some(name) => Some(Secret::from_env(cx.env, "signing_secret_env", name)?),
        None => None,
    };
    Ok(Box::new(Checked { secret }))
}
