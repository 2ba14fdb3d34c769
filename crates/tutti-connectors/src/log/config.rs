//! `[connectors.log]`: nothing of its own, only the settings every connector takes.

use serde::Deserialize;
use serde_json::Value;

use crate::{CheckedConfig, Context};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

pub(super) struct Checked;

pub(super) fn validate(table: &Value, _: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    let Config {} = crate::config(table)?;
    Ok(Box::new(Checked))
}
