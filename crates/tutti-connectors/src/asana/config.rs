//! `[connectors.asana]`: the token, the workspace or default project, and the API base.

use super::*;
use crate::Memory;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    pub(super) token_env: String,
    pub(super) workspace: Option<String>,
    pub(super) default_project: Option<String>,
    #[serde(default = "default_api_base")]
    pub(super) api_base: String,
}

fn default_api_base() -> String {
    "https://app.asana.com/api/1.0".into()
}

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub memory: Arc<dyn Memory>,
    pub auth: Secret,
    pub workspace: Option<String>,
    pub default_project: Option<String>,
    pub api_base: String,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let config: Config = crate::config(table)?;
    let token = Secret::from_env(cx.env, "token_env", &config.token_env)?;
    parse_url(&config.api_base).map_err(|e| format!("`api_base`: {e}"))?;
    for (key, gid) in [("workspace", &config.workspace), ("default_project", &config.default_project)] {
        if let Some(gid) = gid
            && !is_gid(gid)
        {
            return Err(format!("`{key}` `{gid}` is not an Asana gid (digits)"));
        }
    }
    Ok(Box::new(Checked {
        memory: cx.shared.memory.clone(),
        auth: Secret::derived(format!("Bearer {}", token.expose())),
        workspace: config.workspace,
        default_project: config.default_project,
        api_base: config.api_base.trim_end_matches('/').to_owned(),
    }))
}
