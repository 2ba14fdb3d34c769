//! `log`: writes the action to Tutti's own log (target `tutti::actions`): its key, flow, step and the names of
//! its fields at INFO, and the rendered payload at DEBUG only, since it carries personal data
//! (`[log] level = "debug"`, or `RUST_LOG=tutti::actions=debug`). Needs no configuration; useful while a flow
//! is being built and as the cheapest connector in tests and benchmarks.

use std::sync::Arc;

use serde_json::json;

use crate::{Action, CheckedConfig, Delivery, Kind, Operation, Sender, Settings};

mod config;

pub static KIND: Kind = Kind {
    name: "log",
    channel: "log",
    operations: &[Operation::open("write")],
    default_on: true,
    units: crate::per_action,
    validate: config::validate,
};

impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, _: &Settings) -> Arc<dyn Sender> {
        Arc::new(Log)
    }
}

struct Log;

impl Sender for Log {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            let fields = action.payload.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>().join(","));
            tracing::info!(target: "tutti::actions", key = %action.key, flow = %action.flow, step = %action.step,
                fields = fields.as_deref().unwrap_or(""), "log action");
            tracing::debug!(target: "tutti::actions", key = %action.key, payload = %action.payload, "log action payload");
            Ok(json!({"logged": true}))
        })
    }

    fn health(&self) -> Delivery<'_> {
        Box::pin(async { Ok(json!({"ok": true})) })
    }
}
