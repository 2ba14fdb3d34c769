//! Whole numbers in JSON bodies as JSON Schema reads them: `793.0` is the integer 793, as the OpenAPI
//! document's `"type": "integer"` promises, while `793.5`, `-1` and numbers past `u64` are refused with a
//! reason. For `#[serde(deserialize_with = ...)]` on body fields.

use serde::Deserialize;
use serde::de::{Deserializer, Error};
use serde_json::value::RawValue;

/// 2^64, the first double past `u64::MAX`.
const PAST_U64: f64 = 18_446_744_073_709_551_616.0;

/// Reads the number's own text: serde_json's default float parsing is best-effort, and a whole double such
/// as `4413273872597334.0` must not come back with a fraction. `f64::from_str` rounds correctly.
fn whole(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().or_else(|| {
        let f = text.parse::<f64>().ok()?;
        (f.fract() == 0.0 && (0.0..PAST_U64).contains(&f)).then_some(f as u64)
    })
}

fn read<E: Error>(raw: &RawValue) -> Result<u64, E> {
    let text = raw.get();
    let number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    number
        .then(|| whole(text))
        .flatten()
        .ok_or_else(|| E::custom(format!("expected a whole number from 0, found {text}")))
}

/// A whole number from 0.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    read(<&RawValue>::deserialize(d)?)
}

/// A whole number from 0, or null (absent).
pub fn optional_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let raw = <&RawValue>::deserialize(d)?;
    if raw.get() == "null" { Ok(None) } else { read(raw).map(Some) }
}

/// A list of whole numbers from 0.
pub fn counts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    Vec::<&RawValue>::deserialize(d)?.into_iter().map(read).collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Body {
        #[serde(default, deserialize_with = "super::counts")]
        seqs: Vec<u64>,
        #[serde(default, deserialize_with = "super::optional_count")]
        limit: Option<u64>,
    }

    fn read(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_double_is_an_integer_and_a_fraction_is_not() {
        let body = read(r#"{"seqs": [1, 2.0, 1e3, 4413273872597334.0], "limit": 793.0}"#).unwrap();
        assert_eq!((body.seqs, body.limit), (vec![1, 2, 1000, 4_413_273_872_597_334], Some(793)));
        assert_eq!(read(r#"{"limit": null}"#).unwrap().limit, None);
        for bad in
            [r#"{"limit": 793.5}"#, r#"{"limit": -1}"#, r#"{"seqs": [1.8446744073709552e19]}"#, r#"{"limit": "7"}"#]
        {
            assert!(read(bad).is_err(), "{bad} was read");
        }
        assert!(read(r#"{"limit": -1}"#).unwrap_err().contains("from 0"));
    }
}
