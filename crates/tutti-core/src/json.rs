//! Zero-copy JSON objects: the top level of an event is read as keys pointing at raw, unparsed values.
//!
//! Events are normalised by replacing a handful of top-level fields and copying everything else through
//! byte for byte, so the bulk of an event (`properties`, most of `context`) is validated by the parser but
//! never turned into a tree and never re-serialised. Duplicate keys keep the last value, as
//! `serde_json::Value` does, so what is validated is exactly what is stored.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object key: borrowed from the input unless it contained escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// One JSON object's members, values left raw. Sorted by key; a repeated key keeps its last value.
pub type RawObject<'a> = BTreeMap<Key<'a>, &'a RawValue>;

/// Parses `text` as one JSON object without parsing its members' values (they are still validated).
pub fn parse_object(text: &str) -> Result<RawObject<'_>, serde_json::Error> {
    serde_json::from_str(text)
}

/// One JSON object read in a single pass: the members named in advance in fixed slots, the others in a list.
/// As everywhere here, a repeated key keeps its last value.
#[derive(Debug)]
pub struct Members<'a, const N: usize> {
    /// `known[i]` is the member named `names[i]`.
    pub known: [Option<&'a RawValue>; N],
    /// The other members, sorted by key, without repeats (empty unless asked for).
    pub other: Vec<(Key<'a>, &'a RawValue)>,
}

/// Parses `text` as one JSON object, picking out the members `names`; keeps the others only if `keep_other`.
pub fn parse_members<'a, const N: usize>(
    text: &'a str,
    names: &[&str; N],
    keep_other: bool,
) -> Result<Members<'a, N>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let members = MembersSeed { names, keep_other }.deserialize(&mut de)?;
    de.end()?;
    Ok(members)
}

struct MembersSeed<'n, const N: usize> {
    names: &'n [&'n str; N],
    keep_other: bool,
}

impl<'de, const N: usize> DeserializeSeed<'de> for MembersSeed<'_, N> {
    type Value = Members<'de, N>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for MembersSeed<'_, N> {
    type Value = Members<'de, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Members { known: [None; N], other: Vec::new() };
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            match self.names.iter().position(|n| *n == key.0) {
                Some(i) => members.known[i] = Some(value),
                None if self.keep_other => members.other.push((key, value)),
                None => {}
            }
        }
        if members.other.len() > 1 {
            // Last wins: reverse, sort stably, keep the first of each key.
            members.other.reverse();
            members.other.sort_by(|a, b| a.0.cmp(&b.0));
            members.other.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        Ok(members)
    }
}

/// The JSON kind of a raw value, read from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// The kind of an already validated raw value.
pub fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// Something in valid JSON that Tutti still refuses to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    /// An escaped U+0000 in a string or key: it truncates C strings downstream and Postgres cannot store it.
    Nul,
    /// Arrays and objects nested deeper than the limit.
    TooDeep,
    /// A `\u` escape of half a UTF-16 surrogate pair: no character at all, and most parsers refuse it.
    LoneSurrogate,
    /// A number beyond the range of a double, such as `1e999`.
    NumberOutOfRange,
}

/// The UTF-16 code unit of the `\uXXXX` escape starting at `at`, if there is one.
fn unit(bytes: &[u8], at: usize) -> Option<u32> {
    if bytes.get(at) != Some(&b'\\') || bytes.get(at + 1) != Some(&b'u') {
        return None;
    }
    let hex = std::str::from_utf8(bytes.get(at + 2..at + 6)?).ok()?;
    u32::from_str_radix(hex, 16).ok()
}

/// Scans an already validated raw value for [`Hazard`]s, in one pass and without allocating. `depth` is the
/// nesting depth the value sits at (1 for a member of a top-level object).
pub fn hazard(raw: &str, depth: usize, max_depth: usize) -> Option<Hazard> {
    let bytes = raw.as_bytes();
    let mut depth = depth;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                loop {
                    // Skip plain characters at memchr speed: most of an event is the inside of strings.
                    i = memchr::memchr2(b'"', b'\\', &bytes[i.min(bytes.len())..]).map_or(bytes.len(), |n| i + n);
                    match bytes.get(i) {
                        None | Some(b'"') => break,
                        Some(b'\\') if bytes.get(i + 1) == Some(&b'u') => {
                            match unit(bytes, i) {
                                Some(0) => return Some(Hazard::Nul),
                                // A high surrogate must be followed at once by a low one.
                                Some(0xD800..=0xDBFF) => {
                                    if !matches!(unit(bytes, i + 6), Some(0xDC00..=0xDFFF)) {
                                        return Some(Hazard::LoneSurrogate);
                                    }
                                    i += 12;
                                }
                                Some(0xDC00..=0xDFFF) | None => return Some(Hazard::LoneSurrogate),
                                Some(_) => i += 6,
                            }
                        }
                        Some(b'\\') => i += 2,
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Some(Hazard::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(bytes.len(), |n| i + n);
                let token = &raw[i..end];
                // Only an exponent or some 309 digits can overflow a double; parse just those.
                if (token.len() > 300 || token.contains(['e', 'E'])) && !token.parse::<f64>().is_ok_and(f64::is_finite)
                {
                    return Some(Hazard::NumberOutOfRange);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing a string to a Vec cannot fail");
}

/// Writes members as a JSON object, in the order given.
pub fn write_object<'k>(out: &mut Vec<u8>, members: impl IntoIterator<Item = (&'k str, &'k str)>) {
    out.push(b'{');
    for (n, (key, raw)) in members.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        push_str(out, key);
        out.push(b':');
        out.extend_from_slice(raw.as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_stay_raw_and_the_last_duplicate_wins() {
        let text = r#"{"b": [1, {"x": 2}], "a\u0041": "v", "b": {"k": "Phở 购买"}}"#;
        let object = parse_object(text).unwrap();
        assert_eq!(object.len(), 2);
        let get = |key: &'static str| object[&Key(Cow::Borrowed(key))];
        assert_eq!(get("b").get(), r#"{"k": "Phở 购买"}"#);
        assert_eq!(get("aA").get(), r#""v""#);
        assert_eq!(kind(get("b")), Kind::Object);
        assert!(parse_object("[1]").is_err());
        assert!(parse_object(r#"{"a": tru}"#).is_err());
    }

    #[test]
    fn members_are_picked_out_in_one_pass() {
        let text = r#"{"z": 1, "b": 2, "a": [3], "z": "last", "\u0062": 4, "m": null}"#;
        let members = parse_members(text, &["b", "x"], true).unwrap();
        assert_eq!(members.known[0].unwrap().get(), "4", "an escaped key is the same key, and the last one wins");
        assert!(members.known[1].is_none());
        let other: Vec<(&str, &str)> = members.other.iter().map(|(k, v)| (k.0.as_ref(), v.get())).collect();
        assert_eq!(other, [("a", "[3]"), ("m", "null"), ("z", r#""last""#)]);
        assert!(parse_members(r#"{"a": 1} x"#, &["a"], false).is_err(), "trailing characters");
        assert!(parse_members("[1]", &["a"], false).is_err());
    }

    #[test]
    fn hazards_are_found_outside_and_inside_strings() {
        assert_eq!(hazard(r#"{"a": "b\u0000"}"#, 1, 64), Some(Hazard::Nul));
        assert_eq!(hazard(r#"{"a\u0000": 1}"#, 1, 64), Some(Hazard::Nul));
        // An escaped backslash followed by the letters u0000 is not a NUL.
        assert_eq!(hazard(r#"{"a": "\\u0000"}"#, 1, 64), None);
        // Brackets inside strings do not count as nesting.
        assert_eq!(hazard(r#"["[[[[[[[[["]"#, 1, 3), None);
        assert_eq!(hazard("[[[1]]]", 1, 3), Some(Hazard::TooDeep));
        assert_eq!(hazard("[[1]]", 1, 3), None);
        assert_eq!(hazard(r#""\ud800""#, 1, 3), Some(Hazard::LoneSurrogate));
        assert_eq!(hazard(r#""\udc00\ud800""#, 1, 3), Some(Hazard::LoneSurrogate));
        assert_eq!(hazard(r#"[1e999]"#, 1, 3), Some(Hazard::NumberOutOfRange));
        assert_eq!(hazard(r#"{"n": -1.5e308, "m": 12, "s": "1e999"}"#, 1, 3), None);
        assert_eq!(hazard(r#""a\ud83d\ude00b\u00e9""#, 1, 3), None, "a proper pair and a BMP escape");
    }

    #[test]
    fn objects_are_written_as_valid_json() {
        let mut out = Vec::new();
        write_object(&mut out, [("quote\"key", "1"), ("tên", r#"{"x":[true]}"#)]);
        let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back["quote\"key"], 1);
        assert_eq!(back["tên"]["x"][0], true);
    }
}
