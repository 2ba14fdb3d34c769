//! `[connectors.decide]`: nothing of its own, only the settings every connector takes.

use super::*;

/// The table, checked: what the sender is built from.
pub(super) struct Checked {
    pub memory: Arc<dyn Memory>,
    pub decisions: Arc<super::Decisions>,
}

pub(super) fn validate(table: &Value, cx: &Context<'_>) -> Result<Box<dyn CheckedConfig>, String> {
    if table.as_object().is_some_and(|o| !o.is_empty()) {
        let keys: Vec<&String> = table.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        return Err(format!("`decide` takes only the dispatcher's settings; unknown: {keys:?}"));
    }
    Ok(Box::new(Checked { memory: cx.shared.memory.clone(), decisions: cx.shared.decisions.clone() }))
}
