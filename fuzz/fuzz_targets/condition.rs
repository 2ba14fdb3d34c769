//! CEL compile and evaluate: the input is a condition, then (after a NUL) the event's JSON. Evaluation may
//! fail, but a panic caught inside the interpreter ("the condition failed") is a finding.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tutti_core::condition::Condition;

fuzz_target!(|data: &[u8]| {
    let (source, rest) = common::source_and_data(data);
    let Ok(source) = std::str::from_utf8(source) else { return };
    let Ok(condition) = Condition::compile(source) else { return };
    let event: Value = serde_json::from_slice(rest)
        .unwrap_or_else(|_| json!({"properties": {"n": i64::MAX, "list": [1, 2, 3], "text": "chào 你好"}}));
    let profile = json!({"traits": {"plan": "pro"}});
    if let Err(e) = condition.evaluate(&[("event", &event), ("profile", &profile)]) {
        assert!(!e.message.starts_with("the condition failed"), "a panic inside CEL: {e}");
    }
});
