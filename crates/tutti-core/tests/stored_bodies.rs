//! Whatever the intake accepts, every later reader can read: an event body that `Event::parse` stores must
//! parse as a `serde_json::Value` and read back through `Event::from_stored` to the same event.
//!
//! The intake copies most members through raw, validated only by a scanning parser, so this guards against
//! the two parsers disagreeing (lone surrogates, numbers beyond a double, deep nesting were such gaps).

use proptest::prelude::*;
use tutti_core::{BatchDefaults, Event, EventType};

/// JSON string literals, including escapes that are valid, doubtful or wrong.
fn string_literal() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 ]{0,6}",
        Just("Phở 购买".to_owned()),
        Just("\\n".to_owned()),
        Just("\\\\".to_owned()),
        Just("\\\"".to_owned()),
        Just("\\u0000".to_owned()),
        Just("\\\\u0000".to_owned()),
        "\\\\u[0-9a-fA-F]{4}",
        "\\\\u[dD][89abAB][0-9a-f]{2}",
        "\\\\u[dD][c-fC-F][0-9a-f]{2}",
        Just("\\x".to_owned()),
        Just("\u{1}".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,5}",
        "-?[0-9]{1,3}\\.[0-9]{1,3}",
        "-?[0-9]\\.?[0-9]?[eE][+-]?[0-9]{1,4}",
        "[0-9]{300,320}",
        Just("01".to_owned()),
        Just("1.".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_literal(),
        number_literal(),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("nul".to_owned()),
    ];
    leaf.prop_recursive(80, 400, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((string_literal(), inner), 0..4).prop_map(|members| {
                let members: Vec<String> = members.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

fn object_of(values: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::collection::vec((string_literal(), values), 0..5).prop_map(|members| {
        let members: Vec<String> = members.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", members.join(","))
    })
}

fn event_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("\"u1\"".to_owned()), string_literal(), number_literal()],
        object_of(value()),
        object_of(value()),
        value(),
    )
        .prop_map(|(user_id, properties, context, extra)| {
            format!(
                r#"{{"type":"identify","userId":{user_id},"traits":{properties},"properties":{properties},"context":{context},"extra":{extra}}}"#
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn whatever_is_stored_can_be_read_back(text in event_text()) {
        let parsed = Event::parse(&text, None, &BatchDefaults::default(), 1_800_000_000_000, || "m".into());
        // The stricter parser is the judge: whatever it refuses must not be stored.
        if serde_json::from_str::<serde_json::Value>(&text).is_err() {
            prop_assert!(parsed.is_err(), "accepted what serde_json refuses: {text}");
        }
        let Ok(event) = parsed else {
            return Ok(());
        };
        let body = serde_json::from_slice::<serde_json::Value>(&event.body);
        prop_assert!(body.is_ok(), "stored body does not parse: {:?}\nfrom: {text}", body.err());
        let again = Event::from_stored(event.body.clone());
        prop_assert_eq!(again, Ok(event.clone()));
        prop_assert_eq!(event.kind, EventType::Identify);
    }
}
