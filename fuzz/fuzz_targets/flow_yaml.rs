//! Flow, segment and policy YAML: compiled, or refused with located problems; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_flows::{ConnectorInfo, compile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let connectors = [
        ConnectorInfo { name: "webhook".into(), operations: vec!["post".into()], channel: "webhook".into() },
        ConnectorInfo { name: "log".into(), operations: vec!["write".into()], channel: "log".into() },
    ];
    let _ = compile(text, &connectors);
});
