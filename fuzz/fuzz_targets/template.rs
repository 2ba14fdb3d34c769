//! Liquid parse and render over hostile data: the input is a template, then (after a NUL) the event's JSON.
//! A render may fail, but only with a reason: a panic caught inside Liquid ("failed inside Liquid") is a
//! finding, as is any crash, hang or allocation past libFuzzer's limits.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tutti_core::template::Template;

fuzz_target!(|data: &[u8]| {
    let (source, rest) = common::source_and_data(data);
    let Ok(source) = std::str::from_utf8(source) else { return };
    let Ok(template) = Template::parse(source) else { return };
    let event: Value = serde_json::from_slice(rest).unwrap_or_else(
        |_| json!({"properties": {"qty": i64::MAX, "min": i64::MIN, "text": "chào 你好", "list": [1, 2, 3]}}),
    );
    let profile = json!({"traits": {"name": "Lan", "tags": ["a", "b"]}});
    if let Err(e) = template.render(&[("event", &event), ("profile", &profile)]) {
        assert!(!e.message.contains("inside Liquid"), "a panic inside Liquid: {e}");
    }
});
