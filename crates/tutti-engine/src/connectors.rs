//! The one list of connectors flows can call. Until the connectors crate lands (issue #4) there are two
//! built-in ones, so that every flow is testable end to end: `log` (writes the rendered payload to the
//! decision record) and `webhook` (an HTTP POST of the rendered JSON to the payload's `url`).

use tutti_core::flow::ConnectorInfo;

/// Every connector, with its operations and the channel its messages count against.
pub fn all() -> Vec<ConnectorInfo> {
    vec![
        ConnectorInfo { name: "log".into(), operations: vec!["write".into()], channel: "log".into() },
        ConnectorInfo { name: "webhook".into(), operations: vec!["post".into()], channel: "webhook".into() },
    ]
}
